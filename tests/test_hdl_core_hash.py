"""The core's pipelined scalar hash against the golden ``spec.fixed.hash32``."""

import numpy as np

from hdl.core import HASH_LATENCY
from hdl.core.scalar_hash import ScalarHash
from hdl.testing import run_sim
from spec.fixed import hash32


def test_scalar_hash_latency_and_values():
    rng = np.random.default_rng(12)
    xs = [0, 1, 0xFFFFFFFF] + [int(v) for v in rng.integers(0, 1 << 32, 200, dtype=np.uint64)]
    dut = ScalarHash()
    got = []

    async def tb(ctx):
        # a new input every cycle: the pipeline takes one a cycle, HASH_LATENCY deep
        for x in xs + [0] * HASH_LATENCY:
            ctx.set(dut.i, x)
            got.append(ctx.get(dut.o))
            await ctx.tick()

    run_sim(dut, tb, name="scalar_hash")
    want = [int(hash32(x)) for x in xs]
    out = got[HASH_LATENCY:HASH_LATENCY + len(xs)]
    bad = [(hex(x), hex(g), hex(w)) for x, g, w in zip(xs, out, want) if g != w]
    assert not bad, f"{len(bad)} mismatches, first: {bad[:5]}"
    assert ScalarHash.latency == HASH_LATENCY
