"""The error registers and projection against a NumPy sum over ``B`` and the centered error."""

import numpy as np
import pytest

from hdl.core.projection import ErrorProjection
from hdl.testing import run_sim


def _shl_sat(x, k, bits):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return int(np.clip(x * 2**k, lo, hi))


@pytest.mark.parametrize("lanes,n_hid,n_out,T,sb", [(1, 5, 3, 6, 8), (2, 7, 4, 8, 10),
                                                    (4, 8, 10, 16, 12), (3, 5, 2, 3, 6)])
@pytest.mark.parametrize("per_sample", [False, True])
def test_projection_matches_numpy(lanes, n_hid, n_out, T, sb, per_sample):
    rng = np.random.default_rng(lanes * 7 + n_out + 100 * per_sample)
    nb1, nb2 = -(-n_hid // lanes), -(-n_out // lanes)
    dut = ErrorProjection(n_out=n_out, lanes=lanes, timesteps=T, state_bits=sb,
                          n_blocks=max(nb1, nb2))
    bad = []
    trials = []
    for _ in range(4):
        e = rng.integers(-T, T + 1, n_out) if per_sample else rng.integers(-1, 2, n_out)
        B = np.where(rng.random((nb1 * lanes, n_out)) < 0.5, 1, -1)
        trials.append((e, B, int(rng.integers(0, sb - 1)), int(rng.integers(0, sb - 1))))

    async def tb(ctx):
        for e, B, sh_h, sh_o in trials:
            if per_sample:          # DFA: one error a cycle
                ctx.set(dut.set, 1)
                for k in range(n_out):
                    ctx.set(dut.set_k, k)
                    ctx.set(dut.set_value, int(e[k]))
                    await ctx.tick()
                ctx.set(dut.set, 0)
            else:                   # eRBP: all at once
                ctx.set(dut.load, 1)
                for k in range(n_out):
                    ctx.set(dut.e_in[k], int(e[k]))
                await ctx.tick()
                ctx.set(dut.load, 0)
            ctx.set(dut.sum, 1)
            await ctx.tick()
            ctx.set(dut.sum, 0)
            ctx.set(dut.err_shift_hid, sh_h)
            ctx.set(dut.err_shift_out, sh_o)
            ec = n_out * e - e.sum()
            for layer, nb in ((0, nb1), (1, nb2)):
                for unshifted in (0, 1):
                    for b in range(nb):
                        for l in range(lanes):
                            row = B[b * lanes + l] if layer == 0 else B[0]
                            ctx.set(dut.b_row[l], sum(int(v > 0) << k for k, v in enumerate(row)))
                        await ctx.tick()
                        await ctx.tick()
                        ctx.set(dut.layer, layer)
                        ctx.set(dut.block, b)
                        ctx.set(dut.unshifted, unshifted)
                        await ctx.tick()
                        await ctx.tick()
                        shift = 0 if unshifted else (sh_o if layer else sh_h)
                        for l in range(lanes):
                            j = b * lanes + l
                            if layer == 0:
                                want = _shl_sat(int(B[j] @ ec), shift, sb + 1)
                            elif j < n_out:
                                want = _shl_sat(int(e[j]), shift, sb + 1)
                            else:
                                continue        # padding lanes of the output layer
                            got = ctx.get(dut.proj[l])
                            if got != want:
                                bad.append((layer, b, l, unshifted, got, want))

    run_sim(dut, tb, name="projection")
    assert not bad, f"{len(bad)} mismatches (layer, block, lane, unshifted, rtl, numpy): {bad[:5]}"
