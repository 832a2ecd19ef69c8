"""Exhaustive checks of the core's small arithmetic helpers against plain integers."""

import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from hdl.core import _sat, _shl_sat


def _clamp(v, bits):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return min(max(v, lo), hi)


def _run(m, bench):
    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("width,bits", [(6, 4), (9, 6), (7, 7), (5, 8)])
def test_sat_equals_clamp(width, bits):
    x = Signal(signed(width))
    y = Signal(signed(max(width, bits)))
    m = Module()
    m.d.comb += y.eq(_sat(x, -(1 << (bits - 1)), (1 << (bits - 1)) - 1))
    bad = []

    async def bench(ctx):
        for v in range(-(1 << (width - 1)), 1 << (width - 1)):
            ctx.set(x, v)
            if ctx.get(y) != _clamp(v, bits):
                bad.append((v, ctx.get(y)))

    _run(m, bench)
    assert not bad, bad[:5]


@pytest.mark.parametrize("width,kbits,bits", [(7, 3, 7), (8, 4, 7), (5, 2, 9), (6, 3, 4)])
def test_shl_sat_equals_clamped_shift(width, kbits, bits):
    x = Signal(signed(width))
    k = Signal(unsigned(kbits))
    y = Signal(signed(bits))
    m = Module()
    m.d.comb += y.eq(_shl_sat(x, k, bits))
    bad = []

    async def bench(ctx):
        for v in range(-(1 << (width - 1)), 1 << (width - 1)):
            for s in range(1 << kbits):
                ctx.set(x, v)
                ctx.set(k, s)
                if ctx.get(y) != _clamp(v << s, bits):
                    bad.append((v, s, ctx.get(y)))

    _run(m, bench)
    assert not bad, bad[:5]
