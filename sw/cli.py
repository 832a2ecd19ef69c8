"""Command line: ``python -m sw train ...`` and ``python -m sw config ...``.

Every user error (bad option, missing file, wrong shapes, invalid configuration, corrupted
checkpoint, unavailable backend) ends with one line ``error: ...`` and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from sim.data import BUILTIN, DataError, load_dataset
from sim.floatref import RULES as FLOAT_RULES
from sim.preprocess import PreprocessError
from spec import link
from spec.config import RULES, Config, ConfigError, markdown_table

from .backend import BACKENDS, BackendError, make_backend
from .checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from .driver import BoardError

EPILOG = """\
examples:
  python -m sw train --dataset digits --rule erbp --epochs 20 --seed 0 --plots runs/plots
  python -m sw train --dataset my_data.npz --rule dfa --set n_hid=256 --json out.json
  python -m sw train --backend float --rule bp --epochs 20          (float reference)
  python -m sw train --resume runs/digits-erbp-seed0/checkpoint.npz --epochs 5
  python -m sw config --set timesteps=32                             (show the configuration)

""" + textwrap.fill(
    f"datasets: a built-in name ({', '.join(BUILTIN)}; scikit-learn's, each with a fixed "
    "stratified 80/20 split); a .npz file with x_train, y_train, x_test, y_test; or a "
    "directory of MNIST IDX files. The network's input and output sizes follow the data. "
    "Configuration fields and their meaning: docs/spec.md section 11.", 92,
    break_on_hyphens=False) + "\n"


class UserError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not a usage dump
        raise UserError(f"{message} (see {self.prog} --help)")


def _add_config_args(p):
    p.add_argument("--config", metavar="FILE",
                   help="JSON or TOML file of configuration fields (flat, or a [config] table), "
                        "or 'images' / 'dense' (the defaults per kind of data, sw/defaults/); "
                        "train picks the dataset's kind when this is not given")
    p.add_argument("--set", metavar="FIELD=VALUE", action="append", default=[],
                   help="override one configuration field; repeatable (e.g. --set n_hid=64)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m sw", description="Train spiking networks with on-chip learning "
                "(eRBP, DFA) on the golden model, a virtual board or an FPGA board.",
                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    t = sub.add_parser("train", help="train and evaluate a network",
                       description="Train, evaluate each epoch, checkpoint, plot.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--backend", choices=BACKENDS, default="golden",
                   help="where to run: golden (NumPy golden model, default), float (float "
                        "reference nets), virtual (simulated board), serial (a real board)")
    t.add_argument("--port", help="serial port of the board (--backend serial), e.g. "
                   "/dev/ttyUSB1, or a port printed by `python -m sw virtual-board`")
    t.add_argument("--baud", type=int, default=link.BAUD,
                   help=f"UART baud rate of the board (default: {link.BAUD}, what every "
                        "board build uses; ignored by the virtual board)")
    t.add_argument("--lanes", type=int, default=None, metavar="P",
                   help="neuron lanes of the core: built into the virtual board (default 4), "
                        "checked against a real board's bitstream (default: any)")
    t.add_argument("--timeout", type=float, default=2.0, metavar="S",
                   help="seconds to wait for each reply of a board before resending "
                        "(default: 2; 3 resends)")
    t.add_argument("--dataset", default="digits", help=f"a built-in name ({', '.join(BUILTIN)}),"
                   " FILE.npz or an MNIST IDX directory (default: digits)")
    t.add_argument("--rule", default=RULES[0],
                   help=f"{' or '.join(RULES)}; for --backend float: {' or '.join(FLOAT_RULES)} "
                   f"(default: {RULES[0]}, or {FLOAT_RULES[0]} with --backend float)")
    t.add_argument("--epochs", type=int, default=20, help="epochs to train (default: 20)")
    t.add_argument("--seed", type=int, default=0,
                   help="seed of weights, sample order and the on-chip random streams")
    _add_config_args(t)
    t.add_argument("--json", metavar="FILE", help="write results (accuracy, speed, history)")
    t.add_argument("--plots", metavar="DIR", help="write accuracy, alignment, weight and raster "
                   "plots here")
    t.add_argument("--checkpoint", metavar="FILE",
                   help="checkpoint written after every epoch (default: "
                        "runs/<dataset>-<rule>-seed<S>/checkpoint.npz; 'none' to skip)")
    t.add_argument("--resume", metavar="FILE", help="continue from a checkpoint (its "
                   "configuration is used; --set still applies to runtime registers)")
    t.add_argument("--limit-train", type=int, metavar="N", help="use the first N training samples")
    t.add_argument("--limit-test", type=int, metavar="N", help="use the first N test samples")
    t.add_argument("--calibrate", choices=("auto", "on", "off"), default="auto",
                   help="set theta_hid (and the hidden boxcar with it) so the hidden layer "
                        "starts firing at --calibrate-rate; auto: for any dataset but digits, "
                        "unless theta_hid is given with --set (default: auto)")
    t.add_argument("--calibrate-rate", type=float, default=0.1, metavar="R",
                   help="target initial hidden firing rate, spikes per neuron per step, and "
                        "the centre of the band --set recalibrate=epoch keeps it in after "
                        "each epoch (default: 0.1)")
    t.add_argument("--probe", type=int, default=64, metavar="K",
                   help="samples in the per-epoch gradient-alignment probe (0: off)")
    t.add_argument("--train-eval", choices=("auto", "backend", "host"), default="auto",
                   help="where to measure training-set accuracy each epoch: backend, or host "
                        "(golden model on the weights read back, bit-exact and much faster "
                        "than a board); auto: host for virtual/serial (default: auto). Test "
                        "accuracy is always measured on the backend")
    t.add_argument("--quiet", action="store_true", help="no progress bar, no per-epoch lines")

    v = sub.add_parser("virtual-board", help="run the simulated board behind a pseudo-terminal",
                       description="Build (once, cached under build/virtual) the real top-level "
                       "RTL with Verilator and run it free-running behind a pseudo-terminal. "
                       "Prints the port path; any serial program, or `python -m sw train "
                       "--backend serial --port PATH`, can then talk to it. Ctrl-C stops it.")
    _add_config_args(v)
    from . import virtual
    virtual.add_arguments(v)

    c = sub.add_parser("config", help="print the effective configuration",
                       description="Print the configuration (defaults, file and --set applied).")
    _add_config_args(c)
    c.add_argument("--markdown", action="store_true", help="print the field table of the spec")
    return p


def _load_config(args, dataset=None) -> Config:
    """``--config`` (a file or a kind's defaults) with ``--set`` applied; for a training run
    (``dataset``) without ``--config``, the defaults of the dataset's kind."""
    from .defaults import KINDS, config_for

    if dataset is None and args.config not in KINDS:
        cfg = Config.from_file(args.config) if args.config else Config()
    else:
        cfg, source = config_for(args.config, dataset)
        if dataset is not None:
            _say(args, f"configuration: {source}")
    return cfg.with_overrides(args.set)


def cmd_virtual_board(args) -> int:
    from . import virtual
    return virtual.run(args, _load_config(args))


def cmd_config(args) -> int:
    if args.markdown:
        print(markdown_table())
        return 0
    cfg = _load_config(args)
    kinds = Config.field_kinds()
    for k, v in cfg.to_dict().items():
        print(f"{k:16s} {str(v):>10s}   ({kinds[k]})")
    return 0


def _say(args, msg):
    if not args.quiet:
        from tqdm import tqdm
        tqdm.write(msg)  # keeps an active progress bar intact


def cmd_train(args) -> int:
    if args.epochs < 1:
        raise UserError("--epochs must be at least 1")
    float_backend = args.backend == "float"
    valid = FLOAT_RULES if float_backend else RULES
    if args.rule == RULES[0] and float_backend:
        args.rule = FLOAT_RULES[0]
    if args.rule not in valid:
        raise UserError(f"unknown rule {args.rule!r} for the {args.backend} backend; "
                        f"choose one of {', '.join(valid)}")
    if args.lanes is not None and not 1 <= args.lanes <= 64:
        raise UserError(f"--lanes must be in 1..64, not {args.lanes}")
    if args.backend == "serial" and not args.port:
        raise UserError("--backend serial needs --port (e.g. --port /dev/ttyUSB1)")
    if args.probe < 0:
        raise UserError("--probe must be >= 0")

    resume = load_checkpoint(args.resume) if args.resume else None
    if resume:
        kinds = Config.field_kinds()
        cfg = resume.cfg.with_overrides(args.set)
        changed = [k for k, v in cfg.to_dict().items()
                   if kinds[k] == "arch" and v != resume.cfg.to_dict()[k]]
        if changed:
            raise UserError(f"cannot change architecture fields of a checkpoint: {changed}")
        if cfg.encoding != resume.cfg.encoding:
            raise UserError(f"cannot change the input encoding of a checkpoint: it was trained "
                            f"with encoding={resume.cfg.encoding!r}, not {cfg.encoding!r} (the "
                            "preprocessing is part of the model)")
    else:
        cfg = _load_config(args, args.dataset)
    cfg = cfg.replace(seed=args.seed & 0xFFFFFFFF) if not resume else cfg
    # a checkpoint's preprocessing is applied as stored (one written before it was stored:
    # refitted on the training split, as it was then)
    ds = load_dataset(args.dataset, cfg.in_bits, args.limit_train, args.limit_test,
                      encoding=cfg.encoding, preprocess=resume.preprocess if resume else None)
    cfg = cfg.replace(n_in=ds.n_features, n_out=ds.n_classes) if not resume else cfg
    if resume and (cfg.n_in, cfg.n_out) != (ds.n_features, ds.n_classes):
        raise UserError(f"checkpoint network is {cfg.n_in} in / {cfg.n_out} out but the dataset "
                        f"has {ds.n_features} input channels / {ds.n_classes} classes")
    n_const = int(np.sum(np.ptp(ds.x_train, axis=0) == 0))
    const = f" ({n_const} with one code over the training set: no information)" \
        if n_const else ""
    _say(args, f"{ds.name}: {len(ds.x_train)} train / {len(ds.x_test)} test samples, "
               f"{ds.preprocess.n_features} features, {cfg.encoding} encoding: "
               f"{ds.n_features} input channels{const}, {ds.n_classes} classes; network "
               f"{cfg.n_in}-{cfg.n_hid}-{cfg.n_out}, T={cfg.timesteps}, rule {args.rule}, "
               f"backend {args.backend}")

    if float_backend:
        summary, w1, trace = _train_float(args, cfg, ds), None, None
    else:
        summary, w1, trace, label, pred = _train_spiking(args, cfg, ds, resume)

    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
        _say(args, f"results written to {args.json}")
    if args.plots:
        from .plots import write_plots
        if float_backend:
            written = write_plots(args.plots, summary, np.asarray(summary.pop("_w1")),
                                  ds.image_shape)
        else:
            written = write_plots(args.plots, summary, w1, ds.image_shape, trace, label, pred)
        _say(args, "plots: " + ", ".join(str(p) for p in written))
    summary.pop("_w1", None)
    print(f"test accuracy {100 * summary['test_accuracy']:.2f} % after {summary['epochs']} "
          f"epochs ({args.rule}, {args.backend}, seed {args.seed}); "
          f"{summary['samples_per_second']:.0f} training samples/s")
    return 0


def _train_spiking(args, cfg, ds, resume):
    from sim.golden import GoldenModel, init_weights

    from .train import train

    start_epoch = resume.epoch if resume else 0
    run_name = f"{Path(ds.name).stem}-{args.rule}-seed{args.seed}"
    ck_path = args.checkpoint or f"runs/{run_name}/checkpoint.npz"
    if ck_path == "none":
        ck_path = None

    def on_epoch(rec, backend, cfg):
        _say(args, f"epoch {rec.epoch:3d}: train {100 * rec.train_accuracy:6.2f} %  "
                   f"test {100 * rec.test_accuracy:6.2f} %  hidden rate {rec.hidden_rate:.3f}  "
                   f"zero updates {_frac(rec.zero_update_fraction_hid)}/"
                   f"{_frac(rec.zero_update_fraction_out)}  align {rec.alignment_deg:5.1f} deg  "
                   f"{rec.samples_per_second:.0f} samples/s")
        if rec.recalibrated:
            _say(args, f"recalibrated theta_hid {rec.theta_hid} -> {cfg.theta_hid}, hidden "
                       f"boxcar ({cfg.bmin_hid}, {cfg.bmax_hid}): hidden rate "
                       f"{rec.calibration_rate:.3f} -> {rec.recalibrated_rate:.3f} on the "
                       f"calibration samples (target {args.calibrate_rate:g})")
        if ck_path:
            w1, w2 = backend.read_weights()
            save_checkpoint(ck_path, Checkpoint(cfg, w1, w2, backend.sample_counter, rec.epoch,
                                                {"dataset": ds.name, "rule": args.rule,
                                                 "seed": args.seed}, ds.preprocess))

    with _open_backend(args, cfg, ds) as backend:
        if resume:
            w1, w2 = resume.w1, resume.w2
            backend.sample_counter = resume.sample_counter
        else:
            w1, w2 = init_weights(cfg, args.seed)
        backend.write_weights(w1, w2)
        if _wants_calibration(args, ds):
            from .calibrate import calibrate_start
            new, rate = calibrate_start(cfg, w1, ds.x_train, args.seed, args.calibrate_rate)
            _say(args, f"calibrated theta_hid {cfg.theta_hid} -> {new.theta_hid}, hidden "
                       f"boxcar ({new.bmin_hid}, {new.bmax_hid}): initial hidden rate "
                       f"{rate:.3f} (--calibrate off to keep the configured values)")
            cfg = new
        if not np.array_equal(backend.read_weights()[0], w1):
            raise BackendError("weights read back from the backend differ from those written")
        where = args.train_eval
        if where == "auto":
            where = "host" if args.backend in ("virtual", "serial") else "backend"
        result = train(backend, ds, cfg, args.rule, args.epochs, args.seed, start_epoch,
                       progress=not args.quiet, on_epoch=on_epoch, probe=args.probe,
                       train_eval=where, target_rate=args.calibrate_rate)
        w1, w2 = backend.read_weights()
        cfg = result.cfg
    if ck_path:
        _say(args, f"checkpoint: {ck_path}")
    summary = result.to_json()
    trace = label = pred = None
    if len(ds.x_test):
        m = GoldenModel(cfg, w1, w2)
        res = m.present(ds.x_test[0], mode="infer", trace=True)
        trace, label, pred = res.trace, int(ds.y_test[0]), res.pred
    return summary, w1, trace, label, pred


def _open_backend(args, cfg, ds):
    """``make_backend``; a board whose bitstream cannot hold the dataset's features or
    classes is named in the dataset's terms."""
    try:
        return make_backend(args.backend, cfg, port=args.port, baud=args.baud,
                            lanes=args.lanes, timeout=args.timeout)
    except BackendError as e:
        info = e.board_info
        net = (f"a {info.get('n_in')}-{info.get('n_hid')}-{info.get('n_out')} network")
        pre = ds.preprocess
        channels = "features" if pre.n_channels == pre.n_features else \
            f"input channels ({pre.n_features} features, {cfg.encoding} encoding)"
        for key, have, what in (("n_in", ds.n_features, channels),
                                ("n_out", ds.n_classes, "classes")):
            if key not in info or info[key] == have:
                continue
            if have > info[key]:
                why = (f", more than the board can hold: its bitstream is built for {net} "
                       f"({key} = {info[key]})")
            else:
                why = (f" but the board's bitstream is built for {net} ({key} = {info[key]}) "
                       f"and {key} must equal the dataset's number of {what}")
            raise UserError(f"{ds.name} has {have} {what}{why}; build a bitstream for "
                            f"{key} = {have} (docs/boards.md)") from None
        raise


def _frac(x) -> str:
    """A fraction, or n/a where the backend cannot tell (boards do not report update
    statistics)."""
    return "n/a" if x != x else f"{x:.3f}"


def _wants_calibration(args, ds) -> bool:
    if args.calibrate != "auto" or args.resume:
        return args.calibrate == "on" and not args.resume
    user_set = any(item.split("=")[0].strip() == "theta_hid" for item in args.set)
    return ds.name != "digits" and not user_set and not args.config


def _train_float(args, cfg, ds) -> dict:
    from sim.floatref import train_float
    from spec.fixed import feedback_matrix

    t0 = time.perf_counter()
    res = train_float(ds.x_train, ds.y_train, ds.x_test, ds.y_test, cfg.n_hid, rule=args.rule,
                      epochs=args.epochs, seed=args.seed, in_bits=cfg.in_bits,
                      feedback=feedback_matrix(cfg).astype(float),
                      lr_decay_epoch=cfg.lr_decay_epochs[0] if cfg.lr_decay_epochs else None,
                      progress=(lambda e, tr, te: _say(
                          args, f"epoch {e:3d}: train {100 * tr:6.2f} %  test {100 * te:6.2f} %")))
    dt = time.perf_counter() - t0
    history = [{"epoch": i + 1, "train_accuracy": tr, "test_accuracy": te, "alignment_deg": al}
               for i, (tr, te, al) in enumerate(zip(res.train_accuracy, res.test_accuracy,
                                                     res.alignment_deg))]
    return {"rule": args.rule, "seed": args.seed, "backend": "float", "dataset": ds.name,
            "epochs": args.epochs, "test_accuracy": res.test_accuracy[-1],
            "train_accuracy": res.train_accuracy[-1],
            "samples_per_second": args.epochs * len(ds.x_train) / dt, "history": history,
            "config": cfg.to_dict(), "_w1": res.w1.tolist()}


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return {"train": cmd_train, "config": cmd_config,
                "virtual-board": cmd_virtual_board}[args.command](args)
    except (UserError, DataError, ConfigError, CheckpointError, BackendError, BoardError,
            PreprocessError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted (the last completed epoch's checkpoint is kept)",
              file=sys.stderr)
        return 130
