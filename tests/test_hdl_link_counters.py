# amaranth: UnusedElaboratable=no
"""The flip-flop counters (``hdl/link/counters.py``) against Python sums."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hdl.link.counters import LinkCounters


def test_bad_lanes():
    with pytest.raises(TypeError, match="lanes"):
        LinkCounters(0)


@pytest.mark.parametrize("lanes", [1, 4])
def test_random_increments_match_sums(lanes):
    dut = LinkCounters(lanes)
    rng = np.random.default_rng(lanes)

    async def tb(ctx):
        cyc = ev = ue = 0
        for _ in range(800):
            start, count = rng.random() < 0.02, int(rng.random() < 0.8)
            events, err = int(rng.integers(0, lanes + 1)), int(rng.random() < 0.1)
            for sig, val in ((dut.start, start), (dut.count, count), (dut.events, events),
                             (dut.rx_error, err)):
                ctx.set(sig, val)
            await ctx.tick()
            cyc, ev = (0, 0) if start else (cyc + count, ev + events)
            ue += err
            assert (ctx.get(dut.cycles), ctx.get(dut.syn_events),
                    ctx.get(dut.uart_errors)) == (cyc, ev, ue)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
