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

from sim.golden import GoldenModel
from spec.cycles import presentation_cycles, synaptic_events
from spec.link import BAUD, CLK_HZ, DIVISOR
from spec.rules import MODE_NAMES as MODES
from spec.rules import RULES

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


#: (P, weight latency) of the core-cycles table: the lane counts with one-cycle weight reads
#: (the iCEBreaker's), and the ECP5 boards' P with their three-cycle reads.
CYCLE_CONFIGS = ((1, 1), (2, 1), (4, 1), (8, 1), (2, 3), (4, 3))


def core_cycles(cfg, w1, w2, X, y, configs=CYCLE_CONFIGS) -> list[dict]:
    """Cycle and event figures per (lane count, weight latency) and mode on real spike
    counts."""
    rows = []
    for mode in MODES:
        counts = spike_counts(cfg, w1, w2, X, y, mode)
        for P, L in configs:
            nb1, nb2 = -(-cfg.n_hid // P), -(-cfg.n_out // P)
            cyc = np.array([presentation_cycles(cfg, P, mode, a, b, L) for a, b in counts])
            ev = np.array([synaptic_events(cfg, mode, a, b) for a, b in counts])
            passes = 2 if mode in RULES and RULES[mode].error == "sample" else 1
            integ = np.array([passes * int(a.sum() * nb1 + b.sum() * nb2) for a, b in counts])
            rows.append({
                "mode": mode, "lanes": P, "latency": L,
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


def link_bytes(cfg, X, y, mode="erbp") -> dict:
    """Mean bytes on the wire per PRESENT (request and reply, SLIP-framed) over ``X``."""
    from spec import protocol as pr
    req = [len(pr.request(1, pr.Op.PRESENT, pr.present_payload(cfg, mode, int(l), x)))
           for x, l in zip(X, y)]
    # the reply's escapes depend on counts and cycle figures: take a typical one
    rep = len(pr.slip_encode(pr.reply_frame(1, pr.Op.PRESENT, 0, pr.present_reply_payload(
        cfg, 3, np.arange(cfg.n_out) % 7, 60_000, 150_000))))
    return {"request": float(np.mean(req)), "reply": float(rep),
            "total": float(np.mean(req) + rep)}


def virtual_board(cfg, ds, lanes=4, n_train=150, n_infer=100, seed=0) -> dict:
    """Train ``n_train`` samples and run ``n_infer`` inferences through the virtual board
    with the real driver; measured wall time, simulated cycles/s from the board itself."""
    from sim.golden import init_weights
    from sw.backend import make_backend

    t_build = time.perf_counter()
    be = make_backend("virtual", cfg, lanes=lanes)
    t_build = time.perf_counter() - t_build
    try:
        vb = be.owner
        be.write_weights(*init_weights(cfg, seed))
        s0 = vb.snapshot()
        t0 = time.perf_counter()
        for i in range(n_train):
            be.present(ds.x_train[i], int(ds.y_train[i]), "erbp")
        t1 = time.perf_counter()
        for i in range(n_infer):
            be.present(ds.x_test[i], int(ds.y_test[i]), "infer")
        t2 = time.perf_counter()
        s1 = vb.snapshot()
        c = be.counters()
    finally:
        be.close()
    cycles = s1["cycles"] - s0["cycles"]
    return {
        "lanes": lanes, "divisor": vb_divisor(), "start_seconds": t_build,
        "train_samples_per_s": n_train / (t1 - t0),
        "infer_samples_per_s": n_infer / (t2 - t1),
        "simulated_cycles_per_s": cycles / (t2 - t0),
        "core_busy_fraction": c["busy_cycles"] / max(1, cycles),
        "n_train": n_train, "n_infer": n_infer,
    }


def vb_divisor():
    return DIVISOR


def link_bounds(cfg, cycles_rows, link, baud=BAUD, clk_hz=CLK_HZ, lanes=(1, 4)):
    """Samples/s the UART allows and the core allows (computed, not measured)."""
    uart = baud / (10 * link["total"])
    out = []
    for r in cycles_rows:
        if r["mode"] != "erbp" or r["lanes"] not in lanes or r.get("latency", 1) != 1:
            continue
        core = clk_hz / r["cycles_per_sample"]
        out.append({"lanes": r["lanes"], "baud": baud, "clk_hz": clk_hz,
                    "uart_samples_per_s": uart, "core_samples_per_s": core,
                    "stop_and_wait_samples_per_s": 1 / (1 / uart + 1 / core)})
    return out


# Block RAM geometry for the memory-port bound: (bits per block, widest port in bits,
# dual-port: one read and one write per cycle).
BRAM = {"ice40": (4096, 16, True), "ecp5": (18432, 36, True)}


def memory_port_bound(family, cfg) -> float:
    """Weight read-modify-writes per cycle the block RAMs that hold ``W1`` of ``cfg`` allow:
    every block needed for ``W1`` at its widest port does one read and one write per cycle,
    so it updates ``width // w_bits`` weights per cycle. (The weights are never in a UP5K
    SPRAM: the boards' memory factories put only the memories the core declares single-port
    there, the DFA raster and the feedback matrix; a weight memory needs a read and a write
    every cycle.)"""
    bits = cfg.n_in * cfg.n_hid * cfg.w_bits
    size, width, _ = BRAM[family]
    n = -(-bits // size)
    return n * (width // cfg.w_bits)


def board_rows(cycles_rows, link, golden_train_per_s, report_dir=ROOT / "build" / "boards"):
    """One row per board report found (``make bitstream`` writes them); figures computed
    from the report's achieved Fmax and the cycle counts of the digits network."""
    import json

    from spec.config import Config
    rows = []
    digits = Config()
    for path in sorted(Path(report_dir).glob("*/report.json")):
        rep = json.loads(path.read_text())
        P, L = rep["lanes"], rep.get("weight_latency", 1)
        fmax = rep["clock"]["achieved_mhz"] * 1e6
        cyc = next((r for r in cycles_rows if r["mode"] == "erbp" and r["lanes"] == P
                    and r.get("latency", 1) == L), None)
        if cyc is None:
            continue
        family = "ice40" if "UP5K" in rep["device"].upper() or "ICE40" in \
            rep["device"].upper() else "ecp5"
        core = fmax / cyc["cycles_per_sample"]
        uart = rep["clock"]["uart_baud"] / (10 * link["total"])
        both = 1 / (1 / core + 1 / uart)
        bound = memory_port_bound(family, digits)
        rows.append({
            "board": rep["board"], "device": rep["device"], "design": rep.get("design"),
            "network": rep["network"], "lanes": P, "weight_latency": L,
            "resources": rep["resources"],
            "target_mhz": rep["clock"]["target_mhz"], "fmax_mhz": fmax / 1e6,
            "goal_mhz": rep["clock"].get("goal_mhz"),
            "critical_path": rep.get("critical_path"),
            "timing_met": rep["clock"]["timing_met"], "build_seconds": rep.get("build_seconds"),
            "digits_cycles_per_sample": cyc["cycles_per_sample"],
            "core_samples_per_s": core, "uart_samples_per_s": uart,
            "samples_per_s": both, "updates_per_cycle": cyc["events_per_cycle"],
            "updates_per_s": cyc["events_per_cycle"] * fmax,
            "port_bound_per_cycle": bound,
            "port_bound_fraction": cyc["events_per_cycle"] / bound,
            "device_over_cpu": both / golden_train_per_s,
            "report": str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path),
            "report_date": time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime)),
        })
    return rows
