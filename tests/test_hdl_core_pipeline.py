"""The block pipeline against a Python delay line: random tokens, issued with random gaps (and
random contents in the gaps), come out of ``q[1]``, ``q[L]`` and stage X unchanged after 1,
``L`` and ``L + 1`` cycles, no output depends on this cycle's ``issue`` (every stage starts
from registers), and ``drained`` is high exactly when no valid token is in ``q[1..L]`` or X."""

import numpy as np
import pytest
from amaranth.lib import data

from hdl.core.pipeline import BlockPipeline, token_layout
from hdl.testing import run_sim


def _random_token(rng, layout, valid):
    """A token's bits: every field random within its shape (a ``range`` field within the
    range), ``valid`` as given."""
    bits = 0
    for name, field in layout:
        shape = field.shape
        if isinstance(shape, range):
            v = int(rng.choice(shape))
        else:
            v = int(rng.integers(0, 1 << field.width))
        if name == "valid":
            v = valid
        bits |= (v & ((1 << field.width) - 1)) << field.offset
    return bits


@pytest.mark.parametrize("latency", [1, 2, 3, 4])
@pytest.mark.parametrize("sizes", [(4, 5, 3, 6, 1), (9, 7, 2, 3, 2), (3, 16, 10, 8, 4)])
def test_pipeline_delays_tokens(latency, sizes):
    n_in, n_hid, n_out, T, P = sizes
    rng = np.random.default_rng(latency * 100 + n_hid)
    tok = token_layout(n_in, n_hid, n_out, T, P)
    dut = BlockPipeline(token=tok, latency=latency)
    L = latency
    # random runs of issues and gaps (a gap carries whatever S0 drives: random bits, invalid)
    cycles = 300
    issued = []
    while len(issued) < cycles:
        valid = int(rng.random() < 0.5)
        for _ in range(int(rng.integers(1, 6))):
            issued.append(_random_token(rng, tok, valid))
    issued = issued[:cycles]
    valid_bit = tok["valid"].offset
    bad = []

    def past(c, k):
        """What was issued ``k`` cycles before cycle ``c`` (zero before the start: the
        registers' reset value)."""
        return issued[c - k] if 0 <= c - k < cycles else 0

    async def tb(ctx):
        for c in range(cycles + L + 2):
            ctx.set(dut.issue.as_value(), issued[c] if c < cycles else 0)
            want = {"q1": past(c, 1), "qL": past(c, L), "x": past(c, L + 1)}
            got = {k: ctx.get(getattr(dut, k).as_value()) for k in want}
            if got != want:
                bad.append((c, "tokens", got, want))
            busy = any((past(c, k) >> valid_bit) & 1 for k in range(1, L + 2))
            if ctx.get(dut.drained) != int(not busy):
                bad.append((c, "drained", ctx.get(dut.drained), int(not busy)))
            await ctx.tick()

    run_sim(dut, tb, name="pipeline")
    assert not bad, f"{len(bad)} mismatches (cycle, what, rtl, model): {bad[:5]}"


def test_pipeline_parameters():
    tok = token_layout(4, 5, 3, 6, 2)
    sig = BlockPipeline.Signature(token=tok, latency=2)
    assert sig == BlockPipeline.Signature(token=tok, latency=2)
    assert sig != BlockPipeline.Signature(token=tok, latency=3)
    assert (sig.token, sig.latency) == (tok, 2)
    with pytest.raises(ValueError):
        BlockPipeline.Signature(token=tok, latency=0)
    with pytest.raises(TypeError):
        BlockPipeline.Signature(token=tok, latency=1.0)
    with pytest.raises(TypeError):
        BlockPipeline.Signature(token=data.ArrayLayout(8, 2), latency=1)
