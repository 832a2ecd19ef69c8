"""cocotb testbench: the Verilog of :class:`hdl.core.Core` against the golden model.

Run by ``tests/test_cocotb_core.py`` through ``cocotb_tools.runner`` (not collected by pytest
itself: the file name does not start with ``test_``). It is the standard run of the
Amaranth-simulator tests (``tests.support.run_presentations``: the driver
:class:`hdl.testing.CoreDriver` with seeded random idle cycles and back-pressure, the
checker ``tests.support.compare_presentation``) on the Verilog ports, through
:class:`tests.cocotb_util.CocotbAdapter`: after every sample spikes, V and U of every neuron
at every step, the output counts, the prediction, all weights, the sample counter, the
cycle counts and the synaptic events against :class:`sim.golden.GoldenModel`.

Parameters come from environment variables set by the pytest function:

``SNN_COCOTB_CFG``      the configuration, JSON of ``Config.to_dict()``
``SNN_COCOTB_LANES``    ``P``
``SNN_COCOTB_MODES``    comma-separated modes, sample ``i`` uses ``modes[i % len(modes)]``
``SNN_COCOTB_SAMPLES``  number of presentations
``SNN_COCOTB_SEED``     seed of the weights, samples, labels and stalls
``SNN_COCOTB_LATENCY``  the core's ``weight_latency`` (default 1)
``SNN_COCOTB_ACTIVITY`` where to write the run's activity figures (JSON), optional

The ``trace`` port appears as ``trace_o``: the test wraps the core because ``trace`` clashes
with Verilator's ``Vtop::trace``.
"""

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock

from hdl.core import Core
from hdl.testing import CoreDriver
from spec.config import Config
from tests.cocotb_util import CocotbAdapter
from tests.support import STALL_PROBABILITY, random_weights, run_presentations, samples, stall_seed


def params():
    d = json.loads(os.environ["SNN_COCOTB_CFG"])
    cfg = Config.from_dict(d)
    P = int(os.environ["SNN_COCOTB_LANES"])
    modes = os.environ.get("SNN_COCOTB_MODES", "infer,erbp,dfa").split(",")
    n = int(os.environ.get("SNN_COCOTB_SAMPLES", "3"))
    seed = int(os.environ.get("SNN_COCOTB_SEED", "0"))
    latency = int(os.environ.get("SNN_COCOTB_LATENCY", "1"))
    return cfg, P, modes, n, seed, latency


@cocotb.test()
async def core_matches_golden(dut):
    cfg, P, modes, n_samples, seed, latency = params()
    rng = np.random.default_rng(seed)
    weights = random_weights(cfg, rng)
    xs, labels = samples(cfg, rng, n_samples)

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    core = Core(cfg, lanes=P, weight_latency=latency)      # its signature: no elaboration
    io = CocotbAdapter(dut, core, rename={"trace": "trace_o"})
    await io.reset()
    drv = CoreDriver.with_stalls(core, io, stall_seed(seed), STALL_PROBABILITY)
    board, acts = await run_presentations(drv, cfg, weights, xs, labels, modes,
                                          latency=latency, where=f"P={P}, L={latency}")

    activity = {k: sum(a[k] for a in acts) for k in ("hid_spikes", "u_nonzero", "w_changed")}
    activity["sat"] = sum(a["sat"] + a["w_sat"] for a in acts)
    activity["stalls"] = dict(drv.stalls)
    dut._log.info("P=%d, %d samples, modes %s: activity %s", P, n_samples, modes, activity)
    out = os.environ.get("SNN_COCOTB_ACTIVITY")
    if out:
        with open(out, "w") as f:
            json.dump(activity, f)
    board.check()
