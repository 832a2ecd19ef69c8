"""RTL hash32 against the golden ``spec.fixed.hash32``."""

import numpy as np

from hdl.hash import Hash32
from hdl.testing import run_sim
from spec.fixed import hash32 as golden_hash32


def _check(registered):
    rng = np.random.default_rng(1)
    xs = [0, 1, 0xFFFFFFFF, 0x9E3779B9, 0x61C88647] + \
        [int(v) for v in rng.integers(0, 1 << 32, 300, dtype=np.uint64)]
    dut = Hash32(registered=registered)
    bad = []

    async def tb(ctx):
        for x in xs:
            ctx.set(dut.i, x)
            if registered:
                await ctx.tick()
            got = ctx.get(dut.o)
            if got != golden_hash32(x):
                bad.append((hex(x), hex(got), hex(golden_hash32(x))))

    run_sim(dut, tb, name=f"hash{int(registered)}")
    assert not bad, f"{len(bad)} mismatches, first: {bad[:5]}"


def test_hash32_combinational():
    _check(False)


def test_hash32_registered():
    _check(True)
