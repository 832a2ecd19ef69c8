"""``make bench``: measure accuracy and speed, write ``bench/results.md`` and ``.json``.

Accuracy: the golden model trained with eRBP and with DFA, the online float BP and float DFA
networks of the same size (the device's schedule, ``sim.floatref``) and the strong float
references (``sim.strongref``: standardised inputs, tanh, Adam, minibatches; BP, DFA and a
logistic regression), on the digits split, for several seeds, all in this run (the seeds run
in parallel worker processes); then the same per built-in dataset (``--datasets``), the
spiking runs with the command line's automatic threshold calibration. Every "minus float"
gap is taken against the strong references. Speed: the golden model's training and inference
samples/s on one core, measured alone after the accuracy runs (nothing else running in
this script). Every figure in the table is measured, none computed.

    python -m bench.run [--epochs N] [--seeds 0 1 2] [--jobs 2] [--quick]
                        [--datasets digits wine ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from sim.data import BUILTIN, load_dataset
from sim.floatref import RULES as FLOAT_RULES
from sim.strongref import RULES as STRONG_RULES
from spec.config import Config
from spec.rules import RULE_NAMES

HERE = Path(__file__).resolve().parent


#: The per-dataset section's models, in table order.
DATASET_MODELS = ("erbp", "dfa", "strong-bp", "strong-dfa", "logreg")


def _load(dataset, limit, limit_test):
    """The defaults of the dataset's kind (as the command line picks them) and the dataset
    encoded by them."""
    from sw.defaults import config_for

    cfg, _ = config_for(None, dataset)
    return cfg, load_dataset(dataset, cfg.in_bits, limit_train=limit, limit_test=limit_test,
                             encoding=cfg.encoding)


def _spiking(args):
    rule, seed, epochs, limit, *more = args
    dataset, limit_test, probe = more if more else ("digits", None, 64)
    from sim.golden import init_weights
    from sw.backend import GoldenBackend
    from sw.calibrate import calibrate_start
    from sw.train import train

    cfg, ds = _load(dataset, limit, limit_test)
    cfg = cfg.replace(seed=seed, n_in=ds.n_features, n_out=ds.n_classes)
    be = GoldenBackend(cfg)
    w1, w2 = init_weights(cfg, seed)
    be.write_weights(w1, w2)
    if dataset != "digits":  # as `python -m sw train --calibrate auto`
        cfg, _ = calibrate_start(cfg, w1, ds.x_train, seed)  # train() writes its registers
    res = train(be, ds, cfg, rule, epochs, seed, progress=False, probe=probe)
    last = res.history[-1]
    w1, w2 = be.read_weights()
    return {"rule": rule, "seed": seed, "dataset": dataset, "test_accuracy": last.test_accuracy,
            "weights": [w1.tolist(), w2.tolist()],
            "train_accuracy": last.train_accuracy, "alignment_deg": last.alignment_deg,
            "hidden_rate": last.hidden_rate, "zero_hid": last.zero_update_fraction_hid,
            "zero_out": last.zero_update_fraction_out,
            "curve": [r.test_accuracy for r in res.history]}


def _float(args):
    rule, seed, epochs, limit = args
    from sim.floatref import train_float
    from spec.fixed import feedback_matrix

    ds = load_dataset("digits", limit_train=limit)
    cfg = Config(seed=seed)
    decay = cfg.lr_decay_epochs[0] if cfg.lr_decay_epochs else None
    res = train_float(ds.x_train, ds.y_train, ds.x_test, ds.y_test, cfg.n_hid, rule=rule,
                      epochs=epochs, seed=seed, feedback=feedback_matrix(cfg).astype(float),
                      lr_decay_epoch=decay)
    return {"rule": f"float-{rule}", "seed": seed, "test_accuracy": res.test_accuracy[-1],
            "train_accuracy": res.train_accuracy[-1],
            "alignment_deg": res.alignment_deg[-1] if rule == "dfa" else 0.0,
            "curve": res.test_accuracy}


def _strong(args):
    model, dataset, seed, epochs, limit, limit_test = args
    from sim.strongref import train_logreg, train_strong

    cfg, ds = _load(dataset, limit, limit_test)   # the codes the spiking model sees
    xy = (ds.x_train, ds.y_train, ds.x_test, ds.y_test)
    if model == "logreg":
        res = train_logreg(*xy, seed=seed)
    else:
        res = train_strong(*xy, Config().n_hid, model.split("-")[1], epochs=epochs, seed=seed,
                           n_out=ds.n_classes)
    return {"rule": model, "seed": seed, "dataset": dataset,
            "test_accuracy": res.test_accuracy, "train_accuracy": res.train_accuracy,
            "epochs": res.epochs, "n_in": ds.n_features, "n_out": ds.n_classes,
            "encoding": cfg.encoding, "n_train": len(ds.x_train), "n_test": len(ds.x_test)}


def measure_speed(n_train: int = 400, repeats: int = 3) -> dict:
    """Training and inference samples/s of the golden model, one process, best of
    ``repeats`` (the least disturbed by anything else on the machine)."""
    from sim.golden import GoldenModel, init_weights

    ds = load_dataset("digits")
    cfg = Config()
    out = {}
    for rule in RULE_NAMES:
        best = 0.0
        for _ in range(repeats):
            m = GoldenModel(cfg, *init_weights(cfg, 0))
            t0 = time.perf_counter()
            for x, y in zip(ds.x_train[:n_train], ds.y_train[:n_train]):
                m.present(x, int(y), mode=rule)
            best = max(best, n_train / (time.perf_counter() - t0))
        out[f"train_{rule}"] = best
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        m.infer_batch(ds.x_train)
        best = max(best, len(ds.x_train) / (time.perf_counter() - t0))
    out["infer"] = best
    return out


def _mean(rows, rule, key="test_accuracy", dataset=None):
    v = [r[key] for r in rows if r["rule"] == rule
         and (dataset is None or r.get("dataset", "digits") == dataset)]
    return (float(np.mean(v)), float(np.std(v))) if v else (float("nan"), float("nan"))


def _dataset_rows(results: dict) -> list:
    """The per-dataset section's runs: the digits spiking runs of the main table and the
    ``dataset_runs`` (the other datasets' spiking runs, every dataset's strong references)."""
    return ([r for r in results["runs"] if r["rule"] in RULE_NAMES]
            + results.get("dataset_runs", []))


def _pm(m, s) -> str:
    return "n/a" if m != m else f"{100 * m:.2f} ± {100 * s:.2f}"


def _dataset_section(results: dict) -> list:
    rows = _dataset_rows(results)
    names = results.get("datasets") or []
    if not names:
        return []
    lines = [
        "## Accuracy per dataset (measured, all in this run)",
        "",
        f"Test accuracy in %, mean ± std over seeds {', '.join(map(str, results['seeds']))}; "
        f"the built-in datasets of `sim/data.py` (fixed stratified 80/20 splits), each "
        f"quantised to the 8-bit codes the spiking model sees, which the float references "
        f"also train on. Golden model: {results['epochs']} epochs of the default "
        f"configuration with the network sized to the data (n_hid = "
        f"{results['config']['n_hid']}) and, except on digits, the command line's automatic "
        f"threshold calibration (`sw/calibrate.py`). Strong float references "
        f"(`sim/strongref.py`): the same n_in-n_hid-n_out, standardised inputs, tanh, "
        f"softmax cross-entropy, Adam, minibatches of 32, "
        f"{results.get('strong_epochs', 60)} epochs; DFA with a fixed random feedback "
        f"matrix; logistic regression: scikit-learn on the standardised inputs. Gaps: the "
        f"better on-chip rule (by mean) minus the strong float network, in points "
        f"(negative: the chip is worse).",
        "",
        "| dataset | network (encoding), train / test | golden eRBP | golden DFA | "
        "strong float BP | strong float DFA | logistic regression | "
        "best on-chip minus strong DFA | best on-chip minus strong BP |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        info = next((r for r in rows if r.get("dataset") == name and "n_in" in r), None)
        if info is None:
            continue
        net = (f"{info['n_in']}-{results['config']['n_hid']}-{info['n_out']} "
               f"({info.get('encoding', 'global')}), {info['n_train']} / {info['n_test']}")
        cells = [_pm(*_mean(rows, m, dataset=name)) for m in DATASET_MODELS]
        best = max(_mean(rows, r, dataset=name)[0] for r in RULE_NAMES)
        gaps = [f"{100 * (best - _mean(rows, f'strong-{r}', dataset=name)[0]):+.2f}"
                for r in ("dfa", "bp")]
        lines.append(f"| {name} | {net} | " + " | ".join(cells + gaps) + " |")
    return lines + [""] + _overfit_note(rows, names)


def _overfit_note(rows: list, names: list) -> list:
    """Where a strong float network fits its training set (>= 99 %) yet tests below the
    better on-chip rule, it overfits: say so (it is then not the strong reference it should
    be; there is no early stopping yet)."""
    flagged = []
    for name in names:
        best = max(_mean(rows, r, dataset=name)[0] for r in RULE_NAMES)
        for model in ("strong-bp", "strong-dfa"):
            runs = [r for r in rows if r.get("dataset") == name and r["rule"] == model]
            train = float(np.mean([r["train_accuracy"] for r in runs])) if runs else 0.0
            if train >= 0.99 and _mean(rows, model, dataset=name)[0] < best:
                flagged.append(f"{name} ({model}: train {100 * train:.1f} %)")
    if not flagged:
        return []
    return [f"Overfitted references: {', '.join(flagged)}: the strong network fits its "
            "training set and tests below the chip, so on these datasets it is not yet the "
            "well-trained reference it should be (no early stopping or tuned regularisation "
            "yet).", ""]


def render(results: dict) -> str:
    rows = results["runs"]
    cfg = results["config"]
    lines = [
        "# Benchmark results",
        "",
        f"Produced by `{results['command']}` on {results['date']} "
        f"({results['machine']}); {results['epochs']} epochs, seeds "
        f"{', '.join(map(str, results['seeds']))}. Digits (scikit-learn 8x8), stratified 80/20 "
        f"split (1437 train / 360 test), network {cfg['n_in']}-{cfg['n_hid']}-{cfg['n_out']}, "
        f"{cfg['w_bits']}-bit weights, {cfg['state_bits']}-bit states, T = {cfg['timesteps']}.",
        "",
        "## Accuracy (measured, all in this run)",
        "",
        "| model | test accuracy, mean ± std (%) | per seed (%) | train (%) | "
        "hidden angle to BP (deg) |",
        "|---|---|---|---|---|",
    ]
    names = {"erbp": "golden model, eRBP", "dfa": "golden model, DFA",
             "float-bp": "float network, BP (online reference: the device's schedule)",
             "float-dfa": "float network, DFA (online reference: the device's schedule)",
             "strong-bp": "strong float network, BP", "strong-dfa": "strong float network, DFA",
             "logreg": "logistic regression"}
    strong = [r for r in results.get("dataset_runs", []) if r.get("dataset") == "digits"]
    rows = rows + strong
    for rule in names:
        sel = [r for r in rows if r["rule"] == rule]
        if not sel:
            continue
        m, s = _mean(rows, rule)
        tr, _ = _mean(rows, rule, "train_accuracy")
        al = _mean(rows, rule, "alignment_deg")[0] if "alignment_deg" in sel[0] else None
        per = " / ".join(f"{100 * r['test_accuracy']:.1f}" for r in sel)
        lines.append(f"| {names[rule]} | {100 * m:.2f} ± {100 * s:.2f} | {per} | {100 * tr:.2f} | "
                     f"{'n/a' if al is None else f'{al:.1f}'} |")
    lines.append("")
    for ref, what in (("strong-bp", "BP"), ("strong-dfa", "DFA")):
        if any(x["rule"] == ref for x in rows):
            f = _mean(rows, ref)[0]
            lines.append(f"Strong float {what} of the same size minus the model, in points "
                         "(negative: the model is better): " + ", ".join(
                             f"{r} {100 * (f - _mean(rows, r)[0]):+.2f}" for r in RULE_NAMES
                             if any(x["rule"] == r for x in rows)) + ".")
            lines.append("")
    if any(x["rule"] == "float-bp" for x in rows):
        bp = _mean(rows, "float-bp")[0]
        lines += ["Online float BP (the device's schedule, a weak reference) minus the model: "
                  + ", ".join(f"{r} {100 * (bp - _mean(rows, r)[0]):+.2f}" for r in RULE_NAMES
                              if any(x["rule"] == r for x in rows)) + ".", ""]
    lines += _dataset_section(results)
    sp = results.get("speed")
    if sp:
        lines += [
            "## Golden model speed (measured, one process on one core)",
            "",
            "| what | samples/s |",
            "|---|---|",
            f"| training, eRBP | {sp['train_erbp']:.0f} |",
            f"| training, DFA | {sp['train_dfa']:.0f} |",
            f"| inference (batched) | {sp['infer']:.0f} |",
            "",
        ]
    cyc = results.get("core_cycles")
    if cyc:
        lines += [
            "## Core cycles (computed: docs/cycles.md formulas on measured spike counts)",
            "",
            f"Spike counts of the golden model on the first {results['cycles_samples']} test "
            "samples with the trained eRBP weights of the first seed (learning modes keep "
            "learning through them, as on the device). The formulas are checked against the "
            "simulated RTL in tests/test_hdl_core.py. L is the weight memories' read latency "
            "(1 on the iCEBreaker, 3 on the ECP5 boards). Goal: at least 0.8 P synaptic events "
            "per cycle during integration.",
            "",
            "| mode | P | L | cycles/step | cycles/sample | events/sample | events/cycle in "
            "integration | events/cycle overall |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in cyc:
            ok = "" if r["events_per_integration_cycle"] >= 0.8 * r["lanes"] else " (below 0.8 P)"
            lines.append(f"| {r['mode']} | {r['lanes']} | {r.get('latency', 1)} | "
                         f"{r['cycles_per_step']:.0f} | "
                         f"{r['cycles_per_sample']:.0f} | {r['events_per_sample']:.0f} | "
                         f"{r['events_per_integration_cycle']:.2f}{ok} | "
                         f"{r['events_per_cycle']:.2f} |")
        r0 = cyc[0]
        lines += ["", f"Spikes per step: {r0['input_spikes_per_step']:.1f} input, "
                      f"{r0['hidden_spikes_per_step']:.1f} hidden (inference).", ""]
    link, vb = results.get("link"), results.get("virtual_board")
    if link:
        lines += ["## Host link (computed from the protocol and the cycle counts)", "",
                  f"A training sample costs {link['total']:.0f} bytes on the wire "
                  f"({link['request']:.0f}-byte PRESENT request, {link['reply']:.0f}-byte "
                  "reply, SLIP framing and CRC included; 10 bits per byte). The host waits for "
                  "each reply (stop and wait), so the two bounds add up.", "",
                  "| P | baud | clock | UART bound (samples/s) | core bound, eRBP (samples/s) "
                  "| both, stop and wait |", "|---|---|---|---|---|---|"]
        for b in results.get("link_bounds", []):
            lines.append(f"| {b['lanes']} | {b['baud'] / 1e6:g} M | {b['clk_hz'] / 1e6:g} MHz | "
                         f"{b['uart_samples_per_s']:.0f} | {b['core_samples_per_s']:.0f} | "
                         f"{b['stop_and_wait_samples_per_s']:.0f} |")
        lines.append("")
    if vb:
        lines += ["## Virtual board (measured)", "",
                  f"The top level (core P = {vb['lanes']}, protocol engine, UART at "
                  f"{vb['divisor']} cycles per bit) compiled with Verilator, free-running behind "
                  "a pseudo-terminal, driven by the same driver as a real board:", "",
                  "| what | figure |", "|---|---|",
                  f"| simulated cycles/s | {vb['simulated_cycles_per_s'] / 1e6:.2f} M |",
                  f"| training samples/s (eRBP) | {vb['train_samples_per_s']:.1f} |",
                  f"| inference samples/s | {vb['infer_samples_per_s']:.1f} |",
                  f"| core busy fraction | {100 * vb['core_busy_fraction']:.0f} % |",
                  f"| start-up (build cached or not, and launch) | {vb['start_seconds']:.0f} s |",
                  ""]
    boards = results.get("boards")
    if boards:
        lines += ["## Boards (resources and Fmax measured by nextpnr; the rest computed)", "",
                  "From the `report.json` that `make bitstream BOARD=...` writes (date in the "
                  "table). Samples/s, updates/s and the ratio are computed from the achieved "
                  "Fmax and the eRBP cycle counts of the digits network at the board's P "
                  "and L (table above), with the UART at the build's baud rate (stop and "
                  "wait). The ECP5 builds hold MNIST-sized networks; their digits figures say "
                  "how fast the digits network trains with that board's P, L and Fmax. "
                  "The memory-port bound is the weight read-modify-writes per cycle that the "
                  "block RAMs holding the digits W1 allow (each block at its widest port, one "
                  "read and one write per cycle; the UP5K's SPRAM holds no weights). CPU: the "
                  "golden model's eRBP training samples/s on one core, measured above.", "",
                  "| board | network (synapses), P, L | LUT | FF | block RAM | SPRAM | DSP | "
                  "Fmax / target / goal (MHz) | digits cycles/sample | "
                  "samples/s (core, UART, both) | updates/cycle | updates/s | of port bound | "
                  "device / CPU | report |",
                  "|" + "---|" * 15]
        for b in boards:
            r, n = b["resources"], b["network"]
            met = "" if b["timing_met"] else " **not met**"
            lines.append(
                f"| {b['board']}{'' if b['design'] == 'Top' else ' (core alone)'} | "
                f"{n['n_in']}-{n['n_hid']}-{n['n_out']} ({n['synapses']:,}), "
                f"{b['lanes']}, {b.get('weight_latency', 1)} | "
                f"{r['lut']['used']:,}/{r['lut']['available']:,} | "
                f"{r['ff']['used']:,} | {r['bram']['used']}/{r['bram']['available']} | "
                f"{r['spram']['used']}/{r['spram']['available']} | {r['dsp']['used']} | "
                f"{b['fmax_mhz']:.1f} / {b['target_mhz']:.0f}{met} / "
                f"{b['goal_mhz'] or 0:.0f} | "
                f"{b['digits_cycles_per_sample']:.0f} | {b['core_samples_per_s']:.0f}, "
                f"{b['uart_samples_per_s']:.0f}, {b['samples_per_s']:.0f} | "
                f"{b['updates_per_cycle']:.2f} | {b['updates_per_s'] / 1e6:.0f} M | "
                f"{100 * b['port_bound_fraction']:.0f} % | {b['device_over_cpu']:.2f} | "
                f"{b['report_date']} |")
        lines += ["", "P: lanes (synapses updated per cycle at most), L: the weight memory's read "
                  "latency. What limits Fmax: nextpnr's critical path, with the sources it "
                  "goes through (from the report):", ""]
        for b in boards:
            lines.append(f"- {b['board']}: {_critical(b.get('critical_path'))}")
        lines.append("")
    cc = results.get("cocotb")
    if cc:
        lines += ["## Verification time (measured)", "",
                  f"Default cocotb suite of the core (`pytest -m 'not slow' "
                  f"tests/test_cocotb_core.py`, Verilator): {cc['seconds']:.0f} s "
                  f"({'with' if cc['build_cache_was_warm'] else 'without'} a warm build cache; "
                  f"{cc['result']}).", ""]
    return "\n".join(lines)


def _critical(cp) -> str:
    """One line for a report's critical path: its length and the sources it goes through."""
    if not cp:
        return "not in the report"
    srcs = []
    for step in cp.get("steps", []):
        for src in step.get("src", []):
            if src not in srcs:
                srcs.append(src)
    ends = f" from `{cp['from']}` to `{cp['to']}`" if cp.get("from") else ""
    where = f" through {', '.join(f'`{x}`' for x in srcs[:4])}" if srcs else ""
    return f"{cp['ns']:.1f} ns{ends}{where}"


def update_readme(table: str, readme: Path = HERE.parent / "README.md") -> None:
    """Replace the block between the bench-table markers of the README with ``table``."""
    text = readme.read_text()
    start, end = "<!-- bench-table -->", "<!-- /bench-table -->"
    if start not in text or end not in text:
        return
    body = table.replace("# Benchmark results\n", "").strip()
    body = body.replace("\n## ", "\n### ")
    head, rest = text.split(start, 1)
    text = head + start + "\n" + body + "\n" + end + rest.split(end, 1)[1]
    readme.write_text(text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--limit-train", type=int, help="use the first N training samples")
    p.add_argument("--datasets", nargs="*", choices=BUILTIN, default=list(BUILTIN),
                   metavar="NAME", help="datasets of the per-dataset accuracy section (default: "
                   f"all built-in ones: {', '.join(BUILTIN)}; none with an empty list)")
    p.add_argument("--strong-epochs", type=int, default=60,
                   help="epochs of the strong float references (default: 60)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1 epoch, seed 0, 200 training samples (and at most 200 "
                        "test samples per dataset of the per-dataset section), short speed "
                        "test")
    p.add_argument("--no-virtual", action="store_true",
                   help="skip the virtual-board measurements")
    p.add_argument("--no-cocotb", action="store_true",
                   help="skip timing the default cocotb suite of the core")
    p.add_argument("--out", default=str(HERE / "results"),
                   help="output path without suffix (default: bench/results)")
    p.add_argument("--no-readme", action="store_true",
                   help="do not copy the table into README.md (it is copied only when --out "
                        "is the default)")
    p.add_argument("--reports", default=str(HERE.parent / "build" / "boards"),
                   help="where the board reports are (default: build/boards, where "
                        "`make bitstream` writes them)")
    p.add_argument("--boards-only", action="store_true",
                   help="only re-read the board reports (build/boards/*/report.json, after "
                        "`make bitstream`) into the saved results and rewrite the table; the "
                        "cycle counts and the CPU speed stay those of the saved run")
    a = p.parse_args(argv)
    if a.boards_only:
        return _boards_only(Path(a.out), Path(a.reports),
                            readme=not a.no_readme and Path(a.out) == HERE / "results")
    limit_test = None
    if a.quick:
        a.epochs, a.seeds, a.limit_train, limit_test = 1, [0], 200, 200
    jobs = [(rule, s, a.epochs, a.limit_train) for s in a.seeds for rule in RULE_NAMES]
    fjobs = [(rule, s, a.epochs, a.limit_train) for s in a.seeds for rule in FLOAT_RULES]
    # the per-dataset section: the other datasets' spiking runs; every dataset's strong
    # references (digits' always: the main table's gaps use them)
    others = [d for d in a.datasets if d != "digits"]
    djobs = [(rule, s, a.epochs, a.limit_train, d, limit_test, 0)
             for d in others for s in a.seeds for rule in RULE_NAMES]
    sjobs = [(m, d, s, a.strong_epochs, a.limit_train, None if d == "digits" else limit_test)
             for d in ["digits", *others] for s in a.seeds
             for m in (*(f"strong-{r}" for r in STRONG_RULES), "logreg")]
    t0 = time.time()
    print(f"accuracy: {len(jobs)} spiking + {len(fjobs)} float runs on digits, {len(djobs)} "
          f"spiking + {len(sjobs)} strong-reference runs per dataset, {a.epochs} epochs, "
          f"{a.jobs} worker(s)...", flush=True)
    with ProcessPoolExecutor(a.jobs) as ex:
        futs = ([ex.submit(_spiking, j) for j in jobs + djobs]
                + [ex.submit(_float, j) for j in fjobs] + [ex.submit(_strong, j) for j in sjobs])
        runs, dataset_runs = [], []
        for f in futs:
            r = f.result()
            (runs if r.get("dataset", "digits") == "digits" and r["rule"] in
             (*RULE_NAMES, *(f"float-{x}" for x in FLOAT_RULES)) else dataset_runs).append(r)
            print(f"  {r.get('dataset', 'digits'):13s} {r['rule']:10s} seed {r['seed']}: "
                  f"test {100 * r['test_accuracy']:.2f} %", flush=True)
    print("speed (one process)...", flush=True)
    speed = measure_speed(n_train=50 if a.quick else 400, repeats=1 if a.quick else 3)
    print("core cycles (formulas of docs/cycles.md on golden-model spike counts)...", flush=True)
    from . import hw
    ds = load_dataset("digits")
    first = next(r for r in runs if r["rule"] == "erbp" and r["seed"] == a.seeds[0])
    w1, w2 = (np.array(w) for w in first["weights"])
    k = 20 if a.quick else 100
    cycles = hw.core_cycles(Config(seed=a.seeds[0]), w1, w2, ds.x_test[:k], ds.y_test[:k])
    link = hw.link_bytes(Config(), ds.x_train, ds.y_train)
    bounds = hw.link_bounds(Config(), cycles, link)
    vboard = None
    if not a.no_virtual:
        print("virtual board (Verilator, over the pty with the real driver)...", flush=True)
        vboard = hw.virtual_board(Config(), ds, n_train=30 if a.quick else 150,
                                  n_infer=10 if a.quick else 100)
    cocotb = None
    if not a.no_cocotb:
        print("default cocotb suite of the core...", flush=True)
        cocotb = hw.cocotb_suite_seconds()
    for r in runs + dataset_runs:
        r.pop("weights", None)
    results = {
        "command": "make bench" if argv is None and len(sys.argv) == 1 else
                   "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}",
        "epochs": a.epochs, "seeds": a.seeds, "config": Config().to_dict(), "runs": runs,
        "datasets": a.datasets, "strong_epochs": a.strong_epochs, "dataset_runs": dataset_runs,
        "speed": speed, "core_cycles": cycles, "cycles_samples": k, "cocotb": cocotb,
        "link": link, "link_bounds": bounds, "virtual_board": vboard,
        "boards": hw.board_rows(cycles, link, speed["train_erbp"], report_dir=Path(a.reports)),
        "wall_seconds": time.time() - t0,
    }
    out = Path(a.out)
    print(_publish(results, out, readme=not a.no_readme and out == HERE / "results"))
    print(f"\nwritten {out.with_suffix('.md')} and {out.with_suffix('.json')} "
          f"in {time.time() - t0:.0f} s")
    return 0


def _publish(results: dict, out: Path, readme: bool) -> str:
    """Write ``out``.json and ``out``.md (and the README block when ``readme``); returns the
    table."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    table = render(results)
    out.with_suffix(".md").write_text(table + "\n")
    if readme:
        update_readme(table)
    return table


def _boards_only(out: Path, reports: Path, readme: bool) -> int:
    from . import hw
    path = out.with_suffix(".json")
    if not path.exists():
        print(f"error: {path} does not exist: run `make bench` first", file=sys.stderr)
        return 2
    results = json.loads(path.read_text())
    results["boards"] = hw.board_rows(results["core_cycles"], results["link"],
                                      results["speed"]["train_erbp"], report_dir=reports)
    results["boards_date"] = time.strftime("%Y-%m-%d")
    _publish(results, out, readme)
    print(f"{len(results['boards'])} board report(s) read into {path} and {out.with_suffix('.md')}")
    return 0


def rerender(path: Path = HERE / "results") -> None:
    """Rewrite the table (and the README block) from a saved results JSON, without rerunning."""
    table = render(json.loads(path.with_suffix(".json").read_text()))
    path.with_suffix(".md").write_text(table + "\n")
    update_readme(table)


if __name__ == "__main__":
    sys.exit(main())
