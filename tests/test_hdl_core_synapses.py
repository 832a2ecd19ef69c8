"""The weight memories and stage W against NumPy: host writes and reads, and the learning
update ``sat_w(w + d)``; the per-event gate hook."""

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hdl.core.synapses import Synapses
from hdl.testing import run_sim
from spec.config import Config


class KeepLane0(wiring.Component):
    """A stand-in per-event gate: only lane 0 learns."""

    def __init__(self, *, lanes, words):
        super().__init__({"valid": In(1), "addr": In(range(words)), "keep": Out(lanes)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.keep.eq(1)
        return m


@pytest.mark.parametrize("lanes,latency,gated", [(1, 1, False), (2, 2, False), (4, 3, False),
                                                 (2, 1, True)])
def test_synapses_host_port_and_update(lanes, latency, gated):
    rng = np.random.default_rng(lanes * 10 + latency)
    cfg = Config(n_in=3, n_hid=5, n_out=3)
    nb1, nb2 = -(-cfg.n_hid // lanes), -(-cfg.n_out // lanes)
    dut = Synapses(cfg, lanes=lanes, nb1=nb1, nb2=nb2, latency=latency,
                   event_gate=KeepLane0 if gated else None)
    words = (cfg.n_in * nb1, cfg.n_hid * nb2)
    W = [rng.integers(cfg.w_min, cfg.w_max + 1, (n, lanes)) for n in words]
    bad = []

    async def read(ctx, layer, a):
        ctx.set(dut.rd_addr, a)
        ctx.set(dut.rd_layer, layer)
        for _ in range(latency):
            await ctx.tick()
        return [ctx.get(dut.rd_data[l]) for l in range(lanes)]

    async def tb(ctx):
        ctx.set(dut.idle, 1)
        for layer in (0, 1):
            for a in range(words[layer]):
                ctx.set(dut.host_we, 1)
                ctx.set(dut.host_layer, layer)
                ctx.set(dut.host_addr, a)
                for l in range(lanes):
                    ctx.set(dut.host_data[l], int(W[layer][a, l]))
                await ctx.tick()
        ctx.set(dut.host_we, 0)
        ctx.set(dut.idle, 0)
        await ctx.tick()
        for _ in range(20):
            layer = int(rng.integers(0, 2))
            a = int(rng.integers(0, words[layer]))
            d = rng.integers(-200, 201, lanes)      # large: the sum saturates
            got = await read(ctx, layer, a)
            if got != list(W[layer][a]):
                bad.append(("read", layer, a, got, list(W[layer][a])))
            ctx.set(dut.upd_en, 1)
            ctx.set(dut.upd_layer, layer)
            ctx.set(dut.upd_addr, a)
            for l in range(lanes):
                ctx.set(dut.d[l], int(d[l]))
            await ctx.tick()
            ctx.set(dut.upd_en, 0)
            await ctx.tick()                        # stage W, then the RAM
            if gated:
                d[1:] = 0
            W[layer][a] = np.clip(W[layer][a] + d, cfg.w_min, cfg.w_max)
        for layer in (0, 1):
            for a in range(words[layer]):
                got = await read(ctx, layer, a)
                if got != list(W[layer][a]):
                    bad.append(("final", layer, a, got, list(W[layer][a])))

    run_sim(dut, tb, name="synapses")
    assert not bad, f"{len(bad)} mismatches, first: {bad[:5]}"
