"""The DFA raster against a Python dict keyed by ``(layer, step, block)``.

Random ``FIRE`` blocks of both layers and several steps are recorded (stage Y: the hidden
layer keeps spikes and gates, the output layer its gates), interleaved with reads of random
words, one a cycle, as the pipeline reads them from ``q[1]``; every read is checked
``latency`` cycles later (``hid``, ``out_g``), and so are the replay outputs of the block then
in stage X (``replay_valid``, ``replay_block``, ``replay_mask``) under random ``replay``,
``x_pre`` and ``x_layer``. Reads in a cycle that writes are not checked: the rasters are
declared ``single_port`` (such a read is never used)."""

import gc

import numpy as np
import pytest
from amaranth.hdl import Module

from hdl.core.raster import Raster
from hdl.testing import run_sim


@pytest.mark.parametrize("latency", [1, 2, 3])
@pytest.mark.parametrize("lanes,n_hid,n_out,T", [(1, 3, 2, 4), (2, 5, 3, 3), (4, 9, 6, 5),
                                                 (3, 4, 7, 2)])
def test_raster_records_and_replays(lanes, n_hid, n_out, T, latency):
    rng = np.random.default_rng(lanes * 1000 + n_hid * 10 + latency)
    P, L = lanes, latency
    nb1, nb2 = -(-n_hid // P), -(-n_out // P)
    nbs = (nb1, nb2)
    dut = Raster(lanes=P, timesteps=T, nb1=nb1, nb2=nb2, latency=L)
    model = {}               # (layer, t, b) -> (spikes, gates); layer 1 keeps gates only
    full = (1 << P) - 1

    def word(layer, t, b):
        return model.get((layer, t, b), (0, 0))      # the RAMs start at zero

    # The schedule, one entry a cycle: a write ("w", layer, t, b, s, g) or a read
    # ("r", t, b) with random replay inputs, or nothing. First the forward pass's order
    # (every step: FIRE_H's blocks, then FIRE_O's, with gaps), then random traffic, which
    # also overwrites words.
    cycles = []

    def read(t, b):
        return ("r", t, b, int(rng.random() < 0.7), int(rng.random() < 0.7),
                int(rng.random() < 0.3))

    def write(layer, t, b):
        s = int(rng.integers(0, full + 1)) if rng.random() < 0.7 else 0
        return ("w", layer, t, b, s, int(rng.integers(0, full + 1)))

    for t in range(T):
        for layer in (0, 1):
            for b in range(nbs[layer]):
                cycles.append(write(layer, t, b))
                if rng.random() < 0.3:
                    cycles.append(None)
    for t in range(T):
        for b in range(max(nbs)):
            cycles.append(read(t, b))
    for _ in range(6 * T * max(nbs)):
        u = rng.random()
        t = int(rng.integers(0, T))
        if u < 0.25:
            layer = int(rng.integers(0, 2))
            cycles.append(write(layer, t, int(rng.integers(0, nbs[layer]))))
        elif u < 0.9:
            cycles.append(read(t, int(rng.integers(0, max(nbs)))))
        else:
            cycles.append(None)
    cycles += [None] * (L + 1)
    bad = []

    async def tb(ctx):
        expect = {}          # cycle -> what its outputs must be
        for c, op in enumerate(cycles):
            ctx.set(dut.wr_en, 0)
            ctx.set(dut.replay, 0)
            ctx.set(dut.x_pre, 0)
            # the block in X was read from q[1] L cycles ago
            want = expect.pop(c, None)
            if want is not None:
                (hs, hg), og, (replay, x_pre, x_layer, xb) = want
                ctx.set(dut.replay, replay)
                ctx.set(dut.x_pre, x_pre)
                ctx.set(dut.x_layer, x_layer)
                ctx.set(dut.x_block, xb)
            if op is not None and op[0] == "w":
                _, layer, t, b, s, g = op
                ctx.set(dut.base_h, t * nb1)
                ctx.set(dut.base_o, t * nb2)
                ctx.set(dut.wr_en, 1)
                ctx.set(dut.wr_layer, layer)
                ctx.set(dut.wr_block, b)
                ctx.set(dut.wr_s, s)
                ctx.set(dut.wr_g, g)
                ctx.set(dut.rd_block, int(rng.integers(0, max(nbs))))
            elif op is not None:
                _, t, b, *inputs = op
                ctx.set(dut.base_h, t * nb1)
                ctx.set(dut.base_o, t * nb2)
                ctx.set(dut.rd_block, b)
                # what the read returns: the words as they are now (a write in this cycle is
                # none: reads and writes are not in the same cycle here)
                hid = word(0, t, b) if b < nb1 else None
                out = word(1, t, b)[1] if b < nb2 else None
                expect[c + L] = (hid or (None, None), out, (*inputs, b))
            if want is not None:
                got_h = ctx.get(dut.hid)
                got = (got_h.s, got_h.g, ctx.get(dut.out_g))
                if hs is not None and got[:2] != (hs, hg):
                    bad.append((c, "hid", want, got))
                if og is not None and got[2] != og:
                    bad.append((c, "out_g", want, got))
                if hs is not None:
                    rv = int(replay and x_pre and not x_layer and hs != 0)
                    got_r = (ctx.get(dut.replay_valid), ctx.get(dut.replay_block),
                             ctx.get(dut.replay_mask))
                    if got_r != (rv, xb, hs):
                        bad.append((c, "replay", want, got_r, (rv, xb, hs)))
            elif ctx.get(dut.replay_valid):
                bad.append((c, "replay_valid without a PRE block in X"))
            await ctx.tick()
            if op is not None and op[0] == "w":
                _, layer, t, b, s, g = op
                model[(layer, t, b)] = (s, g) if layer == 0 else (0, g)

    run_sim(dut, tb, name="raster")
    assert not bad, f"{len(bad)} mismatches, first: {bad[:5]}"


class _LatencyOne:
    """A memory factory that ignores the read latency asked of it (a stand-in: the raster
    must refuse it before using its ports)."""

    read_latency = 1

    def __init__(self, shape, depth, **kw):
        pass

    def elaborate(self, platform):
        return Module()


# (the module the failed elaboration left behind is never used)
@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_raster_rejects_a_memory_of_another_latency():
    dut = Raster(lanes=2, timesteps=3, nb1=2, nb2=1, latency=2, memory=_LatencyOne)

    async def tb(ctx):
        await ctx.tick()

    with pytest.raises(ValueError, match="read latency 1, not 2") as info:
        run_sim(dut, tb, name="raster-latency")
    del info
    gc.collect()
