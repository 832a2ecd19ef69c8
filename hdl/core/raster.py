"""The DFA raster: the forward pass's hidden spikes and both layers' gates, per step."""

from amaranth.hdl import Module, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..mem import WordMemory
from .signature import ParamSignature, check_int

__all__ = ["Raster"]


class Raster(wiring.Component):
    """Two deep single-port RAMs (``T * NB1`` and ``T * NB2`` words), written by stage Y of
    the forward pass and read like the weights (from ``q[1]``, with latency ``L``) in the
    learning phase, which replays the hidden spikes into the hidden spike list.

    Members
    -------
    rd_block, base_h, base_o : In
        The block in ``q[1]`` and the raster rows of the step (``t * NB1``, ``t * NB2``).
    hid : Out(StructLayout({"s": lanes, "g": lanes}))
        Hidden spikes and gates of that block, ``latency`` cycles later.
    out_g : Out(lanes)
        Output gates of that block.
    wr_en, wr_layer, wr_block, wr_s, wr_g : In
        Record a ``FIRE`` block (stage Y).
    replay, x_pre, x_layer, x_block : In
        The learning phase's PRE block in stage X (whose raster word ``hid`` is).
    replay_valid, replay_block, replay_mask : Out
        That block's hidden spikes, for the hidden list (when it has any).
    """

    class Signature(ParamSignature):
        def __init__(self, *, lanes, timesteps, nb1, nb2, n_blocks):
            for name, v in (("lanes", lanes), ("timesteps", timesteps), ("nb1", nb1),
                            ("nb2", nb2), ("n_blocks", n_blocks)):
                check_int(name, v, 1)
            T, P = timesteps, lanes
            blk = range(max(n_blocks, 2))
            super().__init__({
                "rd_block": In(blk), "base_h": In(range(T * nb1 + 1)),
                "base_o": In(range(T * nb2 + 1)),
                "hid": Out(data.StructLayout({"s": P, "g": P})), "out_g": Out(P),
                "wr_en": In(1), "wr_layer": In(1), "wr_block": In(blk), "wr_s": In(P),
                "wr_g": In(P),
                "replay": In(1), "x_pre": In(1), "x_layer": In(1), "x_block": In(blk),
                "replay_valid": Out(1), "replay_block": Out(range(max(nb1, 2))),
                "replay_mask": Out(P),
            }, lanes=lanes, timesteps=timesteps, nb1=nb1, nb2=nb2, n_blocks=n_blocks)

    def __init__(self, *, lanes, timesteps, nb1, nb2, latency=1, memory=WordMemory):
        self.latency = latency
        self._memory = memory
        super().__init__(self.Signature(lanes=lanes, timesteps=timesteps, nb1=nb1, nb2=nb2,
                                        n_blocks=max(nb1, nb2)))

    def elaborate(self, platform):
        m = Module()
        sig, L, mem = self.signature, self.latency, self._memory
        P, T, nb1, nb2 = sig.lanes, sig.timesteps, sig.nb1, sig.nb2
        # Never read (usefully) in a cycle they are written: a single-port RAM will do.
        m.submodules.rs_h = rs_h = mem(data.StructLayout({"s": P, "g": P}), T * nb1,
                                       single_port=True, read_latency=L)
        m.submodules.rs_o = rs_o = mem(unsigned(P), T * nb2, single_port=True,
                                       read_latency=L)
        for wm in (rs_h, rs_o):
            if getattr(wm, "read_latency", 1) != L:
                raise ValueError(f"the memory factory returned a memory with read latency "
                                 f"{getattr(wm, 'read_latency', 1)}, not {L}")
        m.d.comb += [rs_h.rd_addr.eq(self.base_h + self.rd_block),
                     rs_o.rd_addr.eq(self.base_o + self.rd_block),
                     self.hid.eq(rs_h.rd_data), self.out_g.eq(rs_o.rd_data)]
        with m.If(self.wr_en):
            m.d.comb += [rs_h.wr_addr.eq(self.base_h + self.wr_block),
                         rs_h.wr_data.s.eq(self.wr_s), rs_h.wr_data.g.eq(self.wr_g),
                         rs_h.wr_en.eq(~self.wr_layer),
                         rs_o.wr_addr.eq(self.base_o + self.wr_block),
                         rs_o.wr_data.eq(self.wr_g), rs_o.wr_en.eq(self.wr_layer)]
        m.d.comb += [
            self.replay_valid.eq(self.x_pre & self.replay & ~self.x_layer
                                 & rs_h.rd_data.s.any()),
            self.replay_block.eq(self.x_block), self.replay_mask.eq(rs_h.rd_data.s),
        ]
        return m
