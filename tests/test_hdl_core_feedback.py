"""The hashed feedback source, filled through the scalar hash as the sequencer does, against
``spec.fixed.feedback_matrix``; read back through its feedback port."""

import numpy as np
import pytest
from amaranth.hdl import Module

from hdl.core import HASH_LATENCY
from hdl.core.feedback import HashedFeedback
from hdl.core.scalar_hash import ScalarHash
from hdl.testing import run_sim
from spec.config import Config
from spec.fixed import DOMAIN_FEEDBACK, feedback_matrix, stream_key


@pytest.mark.parametrize("lanes,n_hid,n_out", [(1, 3, 2), (2, 5, 3), (4, 6, 10), (3, 4, 33)])
def test_hashed_feedback_matches_spec(lanes, n_hid, n_out):
    rng = np.random.default_rng(n_hid * 10 + n_out)
    cfg = Config(n_in=2, n_hid=n_hid, n_out=n_out, seed=int(rng.integers(0, 1 << 32)))
    nb1 = -(-n_hid // lanes)
    m = Module()
    m.submodules.hash = sh = ScalarHash()
    m.submodules.fb = fb = HashedFeedback(lanes=lanes, n_hid=n_hid, n_out=n_out)
    m.d.comb += [sh.i.eq(fb.h_in), fb.h_q.eq(sh.o)]
    B = feedback_matrix(cfg)
    rows = {}

    async def tb(ctx):
        ctx.set(fb.key, stream_key(cfg.seed, DOMAIN_FEEDBACK))
        ctx.set(fb.start, 1)
        await ctx.tick()
        ctx.set(fb.start, 0)
        ctx.set(fb.issue, 1)
        for _ in range(HASH_LATENCY):           # the first hashes are in flight
            await ctx.tick()
        ctx.set(fb.fill, 1)
        k, cycles = 0, 0
        while True:
            ctx.set(fb.k, k)
            done = ctx.get(fb.done)
            await ctx.tick()
            k = 0 if k == n_out - 1 else k + 1
            cycles += 1
            if done:
                break
            assert cycles <= nb1 * lanes * n_out
        ctx.set(fb.fill, 0)
        ctx.set(fb.issue, 0)
        assert cycles == nb1 * lanes * n_out
        for b in range(nb1):
            ctx.set(fb.read.addr, b)
            await ctx.tick()
            rows[b] = [ctx.get(fb.read.data[l]) for l in range(lanes)]

    run_sim(m, tb, name="feedback")
    bad = []
    for b, words in rows.items():
        for l, word in enumerate(words):
            j = b * lanes + l
            if j >= n_hid:
                continue                        # padding rows: never used
            want = sum(int(B[j, k] > 0) << k for k in range(n_out))
            if word != want:
                bad.append((j, bin(word), bin(want)))
    assert not bad, f"{len(bad)} rows differ (row, rtl, spec): {bad[:5]}"
