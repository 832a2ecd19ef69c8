"""A stand-in for ``hdl.top.Top`` (same constructor and ports) that holds only the core.

It exists to measure the core's honest area and speed on a board before (or without) the
host link: every input of the core comes from one long shift register clocked from ``rx``
and every output is registered and folded into ``tx`` through a registered XOR, so synthesis
can neither treat an input as constant nor drop an output, and the fold adds nothing to the
core's own paths. The chain and the output register cost a flip-flop per core port bit
(about 500 at P = 1) and a small XOR tree; ``boards.build --standin`` builds it.
"""

from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hdl.core import Core
from hdl.mem import WordMemory

__all__ = ["StandInTop"]


class StandInTop(wiring.Component):
    """The core with its ports on a shift chain (see the module docstring).

    Parameters
    ----------
    cfg, lanes, memory, weight_latency
        As for :class:`hdl.core.Core`.
    divisor, clk_hz
        Accepted for the same signature as ``hdl.top.Top``; unused.

    Attributes
    ----------
    rx : In(1)
    tx : Out(1)
    busy : Out(1)
    """

    rx: In(1)
    tx: Out(1)
    busy: Out(1)

    def __init__(self, cfg, lanes=1, divisor=None, clk_hz=None, memory=WordMemory,
                 weight_latency=1):
        self.cfg = cfg
        self.lanes = lanes
        self._memory = memory
        self._weight_latency = weight_latency
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = Core(self.cfg, lanes=self.lanes, memory=self._memory,
                                        weight_latency=self._weight_latency)
        ins, outs = [], []
        for _path, member, value in core.signature.flatten(core):
            (ins if member.flow == In else outs).append(Value.cast(value))
        chain = Signal(sum(len(v) for v in ins))
        m.d.sync += chain.eq(Cat(self.rx, chain[:-1]))
        pos = 0
        for v in ins:
            m.d.comb += v.eq(chain[pos:pos + len(v)])
            pos += len(v)
        # registered before the fold, so that the XOR tree is not added to the core's paths
        outq = Signal(sum(len(v) for v in outs))
        fold = Signal()
        m.d.sync += [outq.eq(Cat(*outs)), fold.eq(outq.xor())]
        m.d.comb += [self.tx.eq(fold), self.busy.eq(core.busy)]
        return m
