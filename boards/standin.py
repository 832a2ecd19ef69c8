"""A stand-in for ``hdl.top.Top`` (same constructor and ports) that holds only the core.

It exists to measure the core's honest area and speed on a board before (or without) the
host link: every input of the core comes from one long shift register clocked from ``rx``
and every output is folded into ``tx`` through a registered XOR, so synthesis can neither
treat an input as constant nor drop an output. The chain costs one flip-flop per core input
bit (about 250 at P = 1) and a small XOR tree; ``boards.build --standin`` builds it.
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
    cfg, lanes, memory
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

    def __init__(self, cfg, lanes=1, divisor=None, clk_hz=None, memory=WordMemory):
        self.cfg = cfg
        self.lanes = lanes
        self._memory = memory
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = Core(self.cfg, lanes=self.lanes, memory=self._memory)
        ins, outs = [], []
        for _path, member, value in core.signature.flatten(core):
            (ins if member.flow == In else outs).append(Value.cast(value))
        chain = Signal(sum(len(v) for v in ins))
        m.d.sync += chain.eq(Cat(self.rx, chain[:-1]))
        pos = 0
        for v in ins:
            m.d.comb += v.eq(chain[pos:pos + len(v)])
            pos += len(v)
        fold = Signal()
        m.d.sync += fold.eq(Cat(*outs).xor())
        m.d.comb += [self.tx.eq(fold), self.busy.eq(core.busy)]
        return m
