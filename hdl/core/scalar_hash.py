"""The core's scalar hash: ``hash32`` pipelined in :data:`HASH_LATENCY` register stages.

One copy serves every scalar hash of a presentation (the keys, the feedback matrix ``B``,
the per-step half of the dither): its users take turns presenting inputs.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spec.cycles import HASH_LATENCY

from ..hash import STEPS as HASH_STEPS
from ..hash import hash32_steps

__all__ = ["HASH_LATENCY", "ScalarHash"]

# the cycle formulas (spec.cycles) count these stages
assert HASH_LATENCY == 1 + HASH_STEPS


class ScalarHash(wiring.Component):
    """``o`` is ``hash32`` of the ``i`` of :data:`HASH_LATENCY` cycles before.

    One adder step per register stage: the five-adder-deep ``hash32`` never sets the clock.

    Attributes
    ----------
    i : In(32)
        Input word, taken every cycle.
    o : Out(32)
        ``hash32(i)`` of ``HASH_LATENCY`` cycles before.
    """

    i: In(32)
    o: Out(32)

    latency = HASH_LATENCY

    def elaborate(self, platform):
        m = Module()
        h_st = Signal(32, name="h_st0")
        m.d.sync += h_st.eq(self.i)
        for i in range(HASH_STEPS):
            nxt = Signal(32, name=f"h_st{i + 1}")
            m.d.sync += nxt.eq(hash32_steps(h_st, i, i + 1))
            h_st = nxt
        m.d.comb += self.o.eq(h_st)
        return m
