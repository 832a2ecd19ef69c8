"""The error registers and projection against a NumPy sum over ``B`` and the centered error
(``B = +-1``), and with signed entries of ``b_bits`` against ``spec.fixed.project_error``."""

import numpy as np
import pytest

from hdl.core.projection import ErrorProjection
from hdl.testing import run_sim
from spec.fixed import feedback_values, project_error


def _shl_sat(x, k, bits):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return int(np.clip(x * 2**k, lo, hi))



async def _through_stages(ctx, dut, layer, block, unshifted):
    """The block's B rows (set before) through stages 1 and 2, its layer and shift into
    stage 3, and stage 4: ``proj`` is then the block's."""
    await ctx.tick()
    await ctx.tick()
    ctx.set(dut.layer, layer)
    ctx.set(dut.block, block)
    ctx.set(dut.unshifted, unshifted)
    await ctx.tick()
    await ctx.tick()


async def _load_errors(ctx, dut, e, per_sample):
    """Load the errors ``e`` as the sequencer does (DFA: one a cycle; eRBP: all at once),
    then form their sum."""
    if per_sample:
        ctx.set(dut.set, 1)
        for k, v in enumerate(e):
            ctx.set(dut.set_k, k)
            ctx.set(dut.set_value, int(v))
            await ctx.tick()
        ctx.set(dut.set, 0)
    else:
        ctx.set(dut.load, 1)
        for k, v in enumerate(e):
            ctx.set(dut.e_in[k], int(v))
        await ctx.tick()
        ctx.set(dut.load, 0)
    ctx.set(dut.sum, 1)
    await ctx.tick()
    ctx.set(dut.sum, 0)

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
            await _load_errors(ctx, dut, e, per_sample)
            ctx.set(dut.err_shift_hid, sh_h)
            ctx.set(dut.err_shift_out, sh_o)
            ec = n_out * e - e.sum()
            for layer, nb in ((0, nb1), (1, nb2)):
                for unshifted in (0, 1):
                    for b in range(nb):
                        for l in range(lanes):
                            row = B[b * lanes + l] if layer == 0 else B[0]
                            ctx.set(dut.b_row[l], sum(int(v > 0) << k for k, v in enumerate(row)))
                        await _through_stages(ctx, dut, layer, b, unshifted)
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


def _set_row(ctx, port, row, b_bits):
    """Drive one lane of ``b_row`` with a row of ``B`` (spec.fixed.feedback_values)."""
    if b_bits == 1:
        ctx.set(port, sum(int(v > 0) << k for k, v in enumerate(row)))
    else:
        for k, v in enumerate(row):
            ctx.set(port[k], int(v))


def _trials(rng, B_values, nb1, lanes, n_out, T, sb, per_sample):
    """Random errors, rows of B and shifts, then one extreme trial: rows
    ``(min, max, ..., max)`` and ``(max, min, ..., min)`` against ``e = T (1, -1, ..., -1)``
    (the largest projections) with the largest shifts."""
    hi = T if per_sample else 1
    trials = [(rng.integers(-hi, hi + 1, n_out), rng.choice(B_values, (nb1 * lanes, n_out)),
               int(rng.integers(0, sb - 1)), int(rng.integers(0, sb - 1))) for _ in range(4)]
    e = np.full(n_out, -hi)
    e[0] = hi
    lo, top = B_values.min(), B_values.max()
    rows = (np.array([lo] + [top] * (n_out - 1)), np.array([top] + [lo] * (n_out - 1)))
    B = np.array([rows[j % 2] for j in range(nb1 * lanes)])
    trials.append((e, B, sb - 2, sb - 2))
    return trials


@pytest.mark.parametrize("b_bits", [1, 3, 4])
@pytest.mark.parametrize("lanes,n_hid,n_out,T,sb", [(1, 5, 3, 6, 8), (2, 7, 4, 8, 10),
                                                    (4, 8, 10, 16, 12), (3, 5, 2, 3, 6),
                                                    (2, 3, 5, 15, 16)])
@pytest.mark.parametrize("per_sample", [False, True])
def test_signed_projection_matches_twin(b_bits, lanes, n_hid, n_out, T, sb, per_sample):
    """ErrorProjection with entries of ``b_bits`` against spec.fixed.project_error, shifted
    and saturated to ``state_bits + 1`` bits; the cases include saturated and exact values."""
    rng = np.random.default_rng(b_bits * 1000 + lanes * 7 + n_out + 100 * per_sample)
    nb1, nb2 = -(-n_hid // lanes), -(-n_out // lanes)
    dut = ErrorProjection(n_out=n_out, lanes=lanes, timesteps=T, state_bits=sb,
                          n_blocks=max(nb1, nb2), b_bits=b_bits)
    trials = _trials(rng, feedback_values(b_bits), nb1, lanes, n_out, T, sb, per_sample)
    bad, seen = [], {"saturated": 0, "exact": 0}

    def check(ctx, e, B, layer, b, shift):
        want_all = project_error(B, e) if layer == 0 else e
        for l in range(lanes):
            j = b * lanes + l
            if layer == 1 and j >= n_out:
                continue                # padding lanes of the output layer
            want = _shl_sat(int(want_all[j]), shift, sb + 1)
            seen["exact" if want == int(want_all[j]) * 2**shift else "saturated"] += 1
            got = ctx.get(dut.proj[l])
            if got != want:
                bad.append((layer, b, l, shift, got, want))

    async def tb(ctx):
        for e, B, sh_h, sh_o in trials:
            await _load_errors(ctx, dut, e, per_sample)
            ctx.set(dut.err_shift_hid, sh_h)
            ctx.set(dut.err_shift_out, sh_o)
            for layer, nb in ((0, nb1), (1, nb2)):
                for unshifted in (0, 1):
                    for b in range(nb):
                        for l in range(lanes):
                            row = B[(b * lanes + l) % len(B)]     # any row for layer 1
                            _set_row(ctx, dut.b_row[l], row, b_bits)
                        await _through_stages(ctx, dut, layer, b, unshifted)
                        shift = 0 if unshifted else (sh_o if layer else sh_h)
                        check(ctx, e, B, layer, b, shift)

    run_sim(dut, tb, name=f"projection-b{b_bits}")
    assert not bad, f"{len(bad)} mismatches (layer, block, lane, shift, rtl, twin): {bad[:5]}"
    assert seen["saturated"] and seen["exact"], seen
