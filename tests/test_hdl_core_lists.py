"""The spike lists against Python lists: what is appended is taken back in order."""

import numpy as np
import pytest

from hdl.core.lists import SpikeLists
from hdl.testing import run_sim


@pytest.mark.parametrize("n_in,nb1,lanes", [(6, 3, 2), (9, 1, 4), (1, 2, 1)])
def test_lists_take_what_was_appended(n_in, nb1, lanes):
    rng = np.random.default_rng(n_in * 3 + nb1)
    dut = SpikeLists(n_in=n_in, nb1=nb1, lanes=lanes)
    steps = []
    for _ in range(4):
        chans = sorted(int(c) for c in np.flatnonzero(rng.random(n_in) < 0.5))
        hid = [(b, int(rng.integers(1, 1 << lanes))) for b in range(nb1) if rng.random() < 0.6]
        steps.append((chans, hid, bool(rng.random() < 0.5)))
    bad = []

    async def take_all(ctx, avail, entry, n):
        ctx.set(dut.restart, 1)
        await ctx.tick()
        ctx.set(dut.restart, 0)
        got = []
        while ctx.get(avail) and len(got) <= n:
            got.append(ctx.get(entry))
            ctx.set(dut.take, 1)
            await ctx.tick()
            ctx.set(dut.take, 0)
        return got

    async def tb(ctx):
        for chans, hid, replay in steps:
            ctx.set(dut.reset, 1)
            await ctx.tick()
            ctx.set(dut.reset, 0)
            for c in chans:
                ctx.set(dut.enc_valid, 1)
                ctx.set(dut.enc_chan, c)
                await ctx.tick()
            ctx.set(dut.enc_valid, 0)
            pre = "replay" if replay else "fire"
            for b, mask in hid:
                ctx.set(getattr(dut, f"{pre}_valid"), 1)
                ctx.set(getattr(dut, f"{pre}_block"), b)
                ctx.set(getattr(dut, f"{pre}_mask"), mask)
                await ctx.tick()
            ctx.set(getattr(dut, f"{pre}_valid"), 0)
            await ctx.tick()
            got_in = await take_all(ctx, dut.in_avail, dut.in_entry, len(chans))
            got_hid = await take_all(ctx, dut.hid_avail, dut.hid_entry, len(hid))
            got_hid = [(e["block"], e["mask"]) for e in got_hid]
            if got_in != chans or got_hid != hid:
                bad.append((chans, got_in, hid, got_hid))

    run_sim(dut, tb, name="lists")
    assert not bad, f"{len(bad)} steps differ (inputs, rtl, hidden, rtl): {bad[:3]}"
