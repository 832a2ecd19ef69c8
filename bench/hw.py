"""Hardware figures for ``make bench``: core cycle counts and synaptic events per cycle (from
golden-model spike counts and the cycle formulas of docs/cycles.md, which the RTL tests check
against simulation), and the time the default cocotb suite takes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from hdl.core import presentation_cycles, synaptic_events
from sim.golden import GoldenModel

ROOT = Path(__file__).resolve().parent.parent


def spike_counts(cfg, w1, w2, X, y, mode, counter=0):
    """Per-sample, per-step input and hidden spike counts of ``mode`` presentations of
    ``X`` in a row (learning modes update the weights as they go, as on the device)."""
    m = GoldenModel(cfg, w1, w2)
    m.sample_counter = counter
    out = []
    for x, label in zip(X, y):
        tr = m.present(x, int(label), mode=mode, trace=True).trace
        out.append((tr.s_in.sum(1), tr.s_hid.sum(1)))
    return out


def core_cycles(cfg, w1, w2, X, y, lanes=(1, 2, 4, 8)) -> list[dict]:
    """Cycle and event figures per lane count and mode on real spike counts."""
    rows = []
    for mode in ("infer", "erbp", "dfa"):
        counts = spike_counts(cfg, w1, w2, X, y, mode)
        for P in lanes:
            nb1, nb2 = -(-cfg.n_hid // P), -(-cfg.n_out // P)
            cyc = np.array([presentation_cycles(cfg, P, mode, a, b) for a, b in counts])
            ev = np.array([synaptic_events(cfg, mode, a, b) for a, b in counts])
            passes = 2 if mode == "dfa" else 1
            integ = np.array([passes * int(a.sum() * nb1 + b.sum() * nb2) for a, b in counts])
            rows.append({
                "mode": mode, "lanes": P,
                "cycles_per_sample": float(cyc.mean()),
                "cycles_per_step": float(cyc.mean() / cfg.timesteps),
                "events_per_sample": float(ev.mean()),
                "events_per_integration_cycle": float(ev.sum() / integ.sum()),
                "events_per_cycle": float(ev.sum() / cyc.sum()),
                "input_spikes_per_step": float(np.mean([a.mean() for a, _ in counts])),
                "hidden_spikes_per_step": float(np.mean([b.mean() for _, b in counts])),
            })
    return rows


def cocotb_suite_seconds() -> dict:
    """Wall time of the default (not slow) cocotb suite of the core, as CI runs it."""
    warm = (ROOT / "build" / "cocotb").exists()
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "not slow",
                        "tests/test_cocotb_core.py"], cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ))
    dt = time.perf_counter() - t0
    tail = (r.stdout.strip().splitlines() or ["?"])[-1]
    return {"seconds": dt, "build_cache_was_warm": warm, "result": tail,
            "ok": r.returncode == 0}
