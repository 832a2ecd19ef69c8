"""The spike lists of a step (spec 8: the order of synaptic events does not matter; these
keep the lowest index first anyway).

Inputs: the channel of every input spike of the step, written as the encoder emits them.
Hidden: ``(block, P-bit mask)`` of every block with a spike, written by ``FIRE_H`` (or
replayed from the raster in the DFA learning phase). A list and a counter instead of a
whole-layer bit vector and its priority encoder: the cost no longer grows with the layer's
width (784 inputs for MNIST).

The lists are read ahead: the read ports show entry ``rp`` (its address is ``rp``, or
``rp + 1`` in the cycle entry ``rp`` is taken), so the next spike is ready whenever the
current one's last block is issued. ``restart`` (the cycle before an integrate pass) rewinds
both to entry 0.
"""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..mem import WordMemory
from .signature import ParamSignature, check_int

__all__ = ["SpikeLists", "hidden_entry"]


def hidden_entry(nb1, lanes):
    """A hidden-list entry: a block with spikes and its ``P``-bit spike mask."""
    return data.StructLayout({"block": range(max(nb1, 2)), "mask": lanes})


class SpikeLists(wiring.Component):
    """The input and hidden spike lists and their shared read pointer.

    Members
    -------
    reset : In(1)
        A new step: empty both lists.
    restart, take : In(1)
        Rewind the read pointer to entry 0; take the entry shown.
    enc_valid, enc_chan : In
        An input spike from the encoder (registered here: the encoder's RAM and adder are a
        path of their own); listed a cycle later.
    fire_valid, fire_block, fire_mask : In
        Append a hidden block (stage Y of ``FIRE_H``).
    replay_valid, replay_block, replay_mask : In
        Append a hidden block (the DFA learning phase; never in the same cycle as ``fire``).
    in_entry, in_avail : Out
        The input entry at the read pointer, and whether it was written this step.
    hid_entry, hid_avail : Out
        The same for the hidden list.
    """

    class Signature(ParamSignature):
        def __init__(self, *, n_in, nb1, lanes):
            check_int("n_in", n_in, 1)
            check_int("nb1", nb1, 1)
            check_int("lanes", lanes, 1)
            ent = hidden_entry(nb1, lanes)
            blk = range(max(nb1, 2))
            super().__init__({
                "reset": In(1), "restart": In(1), "take": In(1),
                "enc_valid": In(1), "enc_chan": In(range(max(n_in, 2))),
                "fire_valid": In(1), "fire_block": In(blk), "fire_mask": In(lanes),
                "replay_valid": In(1), "replay_block": In(blk), "replay_mask": In(lanes),
                "in_entry": Out(unsigned(max(n_in, 2).bit_length())), "in_avail": Out(1),
                "hid_entry": Out(ent), "hid_avail": Out(1),
            }, n_in=n_in, nb1=nb1, lanes=lanes)

    def __init__(self, *, n_in, nb1, lanes, memory=WordMemory):
        self._memory = memory
        super().__init__(self.Signature(n_in=n_in, nb1=nb1, lanes=lanes))

    def elaborate(self, platform):
        m = Module()
        n_in, nb1, P = self.signature.n_in, self.signature.nb1, self.signature.lanes
        mem = self._memory
        m.submodules.in_list = in_list = mem(unsigned(max(n_in, 2).bit_length()), n_in)
        # transparent: the last FIRE_H block is written in the cycle INT_O reads entry 0
        m.submodules.hid_list = hid_list = mem(hidden_entry(nb1, P), nb1, transparent=True)
        in_n = Signal(range(n_in + 1))       # entries written this step
        hid_n = Signal(range(nb1 + 1))
        lst_rp = Signal(range(max(n_in, nb1) + 1))   # next list entry to take

        # the hidden list: FIRE_H's blocks, or the DFA learning phase's replayed ones
        with m.If(self.replay_valid):
            m.d.comb += [hid_list.wr_addr.eq(hid_n), hid_list.wr_data.block.eq(self.replay_block),
                         hid_list.wr_data.mask.eq(self.replay_mask), hid_list.wr_en.eq(1)]
            m.d.sync += hid_n.eq(hid_n + 1)
        with m.If(self.fire_valid):
            m.d.comb += [hid_list.wr_addr.eq(hid_n), hid_list.wr_data.block.eq(self.fire_block),
                         hid_list.wr_data.mask.eq(self.fire_mask), hid_list.wr_en.eq(1)]
            m.d.sync += hid_n.eq(hid_n + 1)
        with m.If(self.reset):
            m.d.sync += [in_n.eq(0), hid_n.eq(0)]

        sp_valid = Signal()
        sp_chan = Signal.like(self.enc_chan)
        m.d.sync += [sp_valid.eq(self.enc_valid), sp_chan.eq(self.enc_chan)]
        with m.If(sp_valid):
            m.d.comb += [in_list.wr_addr.eq(in_n), in_list.wr_data.eq(sp_chan),
                         in_list.wr_en.eq(1)]
            m.d.sync += in_n.eq(in_n + 1)

        rd_next = Mux(self.restart, 0, Mux(self.take, lst_rp + 1, lst_rp))
        m.d.comb += [in_list.rd_addr.eq(rd_next), hid_list.rd_addr.eq(rd_next)]
        m.d.sync += lst_rp.eq(rd_next)
        m.d.comb += [self.in_entry.eq(in_list.rd_data), self.in_avail.eq(lst_rp < in_n),
                     self.hid_entry.eq(hid_list.rd_data), self.hid_avail.eq(lst_rp < hid_n)]
        return m
