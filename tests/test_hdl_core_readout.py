"""The readout: output spike counts, the step's output spikes, and the prediction against the
tie rule (the lowest index of the largest count, as ``np.argmax``)."""

import numpy as np
import pytest

from hdl.core.readout import Readout
from hdl.testing import run_sim


@pytest.mark.parametrize("lanes,n_out,T", [(1, 3, 4), (2, 5, 3), (4, 10, 6), (3, 4, 2)])
def test_readout_counts_and_prediction(lanes, n_out, T):
    rng = np.random.default_rng(lanes * 31 + n_out)
    nb2 = -(-n_out // lanes)
    # few steps and dense spikes: ties between the largest counts are common
    trials = [rng.random((T, n_out)) < rng.uniform(0.2, 0.9) for _ in range(12)]
    trials.append(np.ones((T, n_out), bool))          # all tied
    trials.append(np.zeros((T, n_out), bool))         # all zero
    dut = Readout(n_out=n_out, timesteps=T, lanes=lanes, n_blocks=nb2 + 1)
    bad = []

    async def tb(ctx):
        for spikes in trials:
            ctx.set(dut.clear, 1)
            await ctx.tick()
            ctx.set(dut.clear, 0)
            for t in range(T):
                for b in range(nb2):
                    mask = sum(int(spikes[t, b * lanes + l]) << l
                               for l in range(lanes) if b * lanes + l < n_out)
                    ctx.set(dut.spk_valid, 1)
                    ctx.set(dut.spk_block, b)
                    ctx.set(dut.spk, mask)
                    await ctx.tick()
                ctx.set(dut.spk_valid, 0)
                s_out = ctx.get(dut.s_out)
                got_s = [(s_out >> k) & 1 for k in range(n_out)]
                if got_s != [int(v) for v in spikes[t]]:
                    bad.append(("s_out", t, got_s))
            ctx.set(dut.k_next, 0)              # the cycle before the scan (the count is
            await ctx.tick()                    # registered from k_next)
            ctx.set(dut.arg, 1)
            for k in range(n_out):
                ctx.set(dut.k, k)
                ctx.set(dut.k_next, (k + 1) % n_out)
                if ctx.get(dut.count) != spikes[:, k].sum():
                    bad.append(("count", k, ctx.get(dut.count)))
                await ctx.tick()
            ctx.set(dut.arg, 0)
            counts = spikes.sum(axis=0)
            got = [ctx.get(dut.counts[k]) for k in range(n_out)]
            if got != list(counts) or ctx.get(dut.pred) != int(np.argmax(counts)):
                bad.append(("pred", list(counts), got, ctx.get(dut.pred)))

    run_sim(dut, tb, name="readout")
    assert not bad, f"{len(bad)} mismatches, first: {bad[:5]}"
