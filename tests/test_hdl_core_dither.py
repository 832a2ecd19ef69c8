"""The per-lane dither registers against the integer spec (``spec.fixed.dither``)."""

import numpy as np
import pytest

from hdl.core.dither import Dither
from hdl.testing import run_sim
from spec.config import Config
from spec.fixed import DOMAIN_DITHER, dither, hash32, stream_key


@pytest.mark.parametrize("lanes,n_hid,n_out", [(1, 5, 3), (2, 5, 3), (4, 6, 2), (3, 9, 4)])
def test_dither_matches_spec(lanes, n_hid, n_out):
    rng = np.random.default_rng(lanes * 100 + n_hid)
    cfg = Config(n_in=4, n_hid=n_hid, n_out=n_out, seed=int(rng.integers(0, 1 << 32)))
    key = stream_key(cfg.seed, DOMAIN_DITHER)
    nb1, nb2 = -(-n_hid // lanes), -(-n_out // lanes)
    steps = [int(s) for s in rng.integers(0, 1 << 32, 4, dtype=np.uint64)] + [0xFFFFFFFF]
    dut = Dither(lanes=lanes, n_hid=n_hid)
    bad = []

    async def tb(ctx):
        for g in steps:
            ctx.set(dut.hstep, int(hash32(key ^ g)))
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            # the PRE scans: layer 0 from block 0, then layer 1 from block 0
            for layer, nb in ((0, nb1), (1, nb2)):
                for b in range(nb):
                    for shift in (1, 7, 13, 24):
                        for l in range(lanes):
                            j = b * lanes + l
                            if j >= (n_hid if layer == 0 else n_out):
                                continue        # padding lanes: never used
                            n = j if layer == 0 else n_hid + j
                            got = ctx.get(dut.x[l]) >> (32 - shift)
                            want = int(dither(cfg, g, n, shift))
                            if got != want:
                                bad.append((g, layer, b, l, shift, got, want))
                    # the block leaves X2: step to the next block's neurons
                    ctx.set(dut.advance, 1)
                    ctx.set(dut.last_hid, int(layer == 0 and b == nb1 - 1))
                    await ctx.tick()
                    ctx.set(dut.advance, 0)
                    ctx.set(dut.last_hid, 0)

    run_sim(dut, tb, name="dither")
    assert not bad, f"{len(bad)} mismatches (g, layer, block, lane, shift, rtl, spec): {bad[:5]}"


def test_dither_holds_without_advance():
    dut = Dither(lanes=2, n_hid=3)
    seen = []

    async def tb(ctx):
        ctx.set(dut.hstep, 1234)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for _ in range(3):
            seen.append((ctx.get(dut.x[0]), ctx.get(dut.x[1])))
            await ctx.tick()

    run_sim(dut, tb, name="dither_hold")
    assert seen == [(1234, (1234 + 0x9E3779B9) % 2**32)] * 3
