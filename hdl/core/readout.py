"""The readout: output spike counts, the output spikes of the step, and the prediction."""

from amaranth.hdl import Array, Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .signature import ParamSignature, check_int

__all__ = ["Readout"]


class Readout(wiring.Component):
    """Counts the output spikes of a presentation and forms the prediction (``ARG``).

    The prediction is the lowest index of the largest count, found one count a cycle (one
    comparator instead of a tree of them): the sequencer presents ``k = 0 .. n_out - 1``
    with ``arg`` high.

    ``count`` is registered: it is ``counts[k_next]`` of the cycle before, where ``k_next``
    is the value ``k`` takes next; so the count multiplexer is not in series with what uses
    the count (the prediction's comparator, the sequencer's DFA error). That equals
    ``counts[k]`` whenever the counts did not change in the cycle before, which holds for
    every scan of ``k`` (``ARG``, ``DFA_E``: no output ``FIRE`` block is in the pipeline
    after ``ERR``).

    Parameters
    ----------
    n_out, timesteps, lanes : int
        Output neurons, ``T`` and ``P``.
    n_blocks : int
        Blocks of the wider layer (the width of the stage-Y block number).

    Members
    -------
    clear : In(1)
        Zero the counts (a presentation starts).
    spk_valid, spk_block, spk : In
        Stage Y of an output ``FIRE`` block: its block number and ``P`` spikes.
    k, k_next : In(range(max(n_out, 2)))
        The count of the scan (for ``arg``); the value ``k`` takes in the next cycle.
    arg : In(1)
        One step of the prediction's scan: ``count`` (of ``k``) is compared with the best
        so far.
    count : Out(range(timesteps + 1))
        ``counts[k_next]`` of the cycle before (``counts[k]`` in a scan).
    counts : Out(ArrayLayout(range(timesteps + 1), n_out))
    pred : Out(range(max(n_out, 2)))
        The result of the last complete ``arg`` scan.
    s_out : Out(nb2 * lanes)
        The output spikes of the step (lane ``l`` of block ``b`` at bit ``b P + l``).
    """

    class Signature(ParamSignature):
        def __init__(self, *, n_out, timesteps, lanes, n_blocks):
            check_int("n_out", n_out, 1)
            check_int("timesteps", timesteps, 1)
            check_int("lanes", lanes, 1)
            check_int("n_blocks", n_blocks, 1)
            nb2 = -(-n_out // lanes)
            cnt = range(timesteps + 1)
            super().__init__({
                "clear": In(1),
                "spk_valid": In(1), "spk_block": In(range(max(n_blocks, 2))), "spk": In(lanes),
                "k": In(range(max(n_out, 2))), "k_next": In(range(max(n_out, 2))), "arg": In(1),
                "count": Out(cnt),
                "counts": Out(data.ArrayLayout(cnt, n_out)),
                "pred": Out(range(max(n_out, 2))),
                "s_out": Out(nb2 * lanes),
            }, n_out=n_out, timesteps=timesteps, lanes=lanes, n_blocks=n_blocks)

    def __init__(self, *, n_out, timesteps, lanes, n_blocks):
        super().__init__(self.Signature(n_out=n_out, timesteps=timesteps, lanes=lanes,
                                        n_blocks=n_blocks))

    def elaborate(self, platform):
        m = Module()
        sig = self.signature
        n_out, T, P = sig.n_out, sig.timesteps, sig.lanes
        nb2 = -(-n_out // P)
        counts = Array(Signal(range(T + 1), name=f"count{k}") for k in range(n_out))
        best = Signal(range(T + 1))              # the largest count so far
        best_k = Signal(range(max(n_out, 2)))    # the lowest index with that count
        s_out = Signal(nb2 * P)
        with m.If(self.spk_valid):
            m.d.sync += s_out.eq(Cat(s_out[P:], self.spk) if nb2 > 1 else self.spk)
        # Written as an add of the spike every cycle, not as an enabled increment: the counts
        # then map to flip-flops whose only control net is the shared clear (an iCE40 logic
        # block shares one enable and one reset among its eight flip-flops; ten counts with
        # ten enables cost the iCEBreaker build 5 MHz: 27.6 against 32.7 MHz, placed).
        for k in range(n_out):
            hit = self.spk_valid & (self.spk_block == k // P) & self.spk[k % P]
            m.d.sync += counts[k].eq(Mux(self.clear, 0, counts[k] + hit))
        ck = Signal(range(T + 1))
        m.d.sync += ck.eq(counts[self.k_next])
        with m.If(self.arg & ((self.k == 0) | (ck > best))):
            m.d.sync += [best.eq(ck), best_k.eq(self.k)]
        m.d.comb += [self.count.eq(ck), self.pred.eq(best_k), self.s_out.eq(s_out)]
        m.d.comb += [self.counts[k].eq(counts[k]) for k in range(n_out)]
        return m
