"""The weight memories and the synapse update (stage W of the block pipeline)."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..mem import WordMemory
from .arith import sat
from .signature import ParamSignature, check_int

__all__ = ["Synapses"]


class Synapses(wiring.Component):
    """``W1`` (``n_in * NB1`` words) and ``W2`` (``n_hid * NB2`` words) of ``P`` weights, read
    with latency ``L``, and their one write port: the learning update ``sat_w(w + d)`` of the
    block in stage X, or the host's word while the core is idle, registered once (stage W:
    deep weight memories fan out to many blocks) and saturated on its way into the RAM.

    Members
    -------
    rd_addr : In
        Word to read (from ``q[1]``), in both memories.
    rd_layer : In(1)
        The layer of the block in stage X: selects ``rd_data``.
    rd_data : Out(ArrayLayout(signed(w_bits), lanes))
        The word read ``L`` cycles before.
    d : In(ArrayLayout(signed(state_bits), lanes))
        The updates of the block in stage X.
    upd_en, upd_layer, upd_addr : In
        Write ``rd_data + d`` (stage X of a learning integration).
    idle, host_we, host_layer, host_addr, host_data : In
        The host's write port (only while ``idle``; it takes precedence).

    Parameters
    ----------
    event_gate : callable, optional
        The hook for stochastic synapses: ``event_gate(lanes=, words=)`` returns a component
        with members ``valid`` In(1), ``addr`` In(range(words)) (a learning integration's
        word, as ``upd_en`` / ``upd_addr``) and ``keep`` Out(lanes), a combinational answer:
        a lane whose ``keep`` is low keeps its weight for that event. None (the default)
        builds nothing: every update is applied.
    """

    class Signature(ParamSignature):
        def __init__(self, *, lanes, w_bits, state_bits, words):
            check_int("lanes", lanes, 1)
            check_int("w_bits", w_bits, 2)
            check_int("state_bits", state_bits, 2)
            check_int("words", words, 1)
            word = data.ArrayLayout(signed(w_bits), lanes)
            addr = range(max(words, 2))
            super().__init__({
                "rd_addr": In(range(words)), "rd_layer": In(1), "rd_data": Out(word),
                "d": In(data.ArrayLayout(signed(state_bits), lanes)),
                "upd_en": In(1), "upd_layer": In(1), "upd_addr": In(addr),
                "idle": In(1), "host_we": In(1), "host_layer": In(1),
                "host_addr": In(range(words)), "host_data": In(word),
            }, lanes=lanes, w_bits=w_bits, state_bits=state_bits, words=words)

    def __init__(self, cfg, *, lanes, nb1, nb2, latency=1, memory=WordMemory,
                 event_gate=None):
        self._event_gate = event_gate
        self.cfg = cfg
        self.latency = latency
        self._memory = memory
        self.words = (cfg.n_in * nb1, cfg.n_hid * nb2)
        super().__init__(self.Signature(lanes=lanes, w_bits=cfg.w_bits,
                                        state_bits=cfg.state_bits, words=max(self.words)))

    def elaborate(self, platform):
        m = Module()
        cfg, L, P = self.cfg, self.latency, self.signature.lanes
        wword = data.ArrayLayout(signed(cfg.w_bits), P)
        # The weights may be read with a longer latency (a board registers a deep memory's
        # blocks and their multiplexer); nothing else may.
        m.submodules.w1 = w1 = self._memory(wword, self.words[0], read_latency=L)
        m.submodules.w2 = w2 = self._memory(wword, self.words[1], read_latency=L)
        for wm in (w1, w2):
            if getattr(wm, "read_latency", 1) != L:
                raise ValueError(f"the memory factory returned a memory with read latency "
                                 f"{getattr(wm, 'read_latency', 1)}, not {L}")
        wd = self.rd_data
        m.d.comb += [w1.rd_addr.eq(self.rd_addr), w2.rd_addr.eq(self.rd_addr),
                     wd.eq(Mux(self.rd_layer, w2.rd_data.as_value(), w1.rd_data.as_value()))]

        # the updated weight before saturation (saturated on its way into the RAM)
        wsum = data.ArrayLayout(signed(max(cfg.w_bits, cfg.state_bits) + 1), P)
        wq_en, wq_layer = Signal(), Signal()
        wq_addr = Signal(range(max(max(self.words), 2)))
        wq_data = Signal(wsum)
        d = self.d
        if self._event_gate is not None:
            m.submodules.event_gate = gate = self._event_gate(lanes=P, words=max(self.words))
            m.d.comb += [gate.valid.eq(self.upd_en), gate.addr.eq(self.upd_addr)]
            d = [Mux(gate.keep[l], self.d[l], 0) for l in range(P)]
        m.d.sync += wq_en.eq(0)
        with m.If(self.idle & self.host_we):
            m.d.sync += [wq_en.eq(1), wq_layer.eq(self.host_layer), wq_addr.eq(self.host_addr)]
            m.d.sync += [wq_data[l].eq(self.host_data[l]) for l in range(P)]
        with m.Elif(self.upd_en):
            m.d.sync += [wq_en.eq(1), wq_layer.eq(self.upd_layer), wq_addr.eq(self.upd_addr)]
            m.d.sync += [wq_data[l].eq(wd[l] + d[l]) for l in range(P)]
        wq_sat = Signal(wword)
        m.d.comb += [wq_sat[l].eq(sat(wq_data[l], cfg.w_min, cfg.w_max)) for l in range(P)]
        for layer, wm in enumerate((w1, w2)):
            m.d.comb += [wm.wr_addr.eq(wq_addr), wm.wr_data.eq(wq_sat),
                         wm.wr_en.eq(wq_en & (wq_layer == layer))]
        return m
