"""Host side: configuration, checkpoints, the command line (including every bad-input path),
the training loop and the benchmark script's smoke run."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from sim.golden import init_weights
from spec.config import Config, ConfigError, markdown_table
from sw.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from sw.cli import main

ROOT = Path(__file__).resolve().parent.parent


# ---- configuration -------------------------------------------------------------------------
@pytest.mark.parametrize("bad, match", [
    (dict(w_bits=1), "w_bits"), (dict(state_bits=4), "state_bits"),
    (dict(theta_hid=0), "theta_hid"), (dict(bmin_hid=500, bmax_hid=400), "below"),
    (dict(seed=-1), "seed"), (dict(reset="sometimes"), "reset"), (dict(n_out=1), "n_out"),
    (dict(timesteps=2.5), "integer"), (dict(lr_decay_epochs=(0,)), "lr_decay_epochs"),
])
def test_config_rejects_bad_values(bad, match):
    with pytest.raises(ConfigError, match=match):
        Config(**bad)


def test_config_overrides_and_files(tmp_path):
    cfg = Config().with_overrides(["n_hid=32", "theta_hid=0x40", "lr_decay_epochs=3,5"])
    assert (cfg.n_hid, cfg.theta_hid, cfg.lr_decay_epochs) == (32, 64, (3, 5))
    assert cfg.registers(2)["lr_shift_hid"] == cfg.lr_shift_hid
    assert cfg.registers(4)["lr_shift_hid"] == cfg.lr_shift_hid + 1
    assert cfg.registers(9)["dfa_shift_out"] == cfg.dfa_shift_out + 2
    (tmp_path / "c.json").write_text(json.dumps(cfg.to_dict()))
    assert Config.from_file(tmp_path / "c.json") == cfg
    (tmp_path / "c.toml").write_text("[config]\nn_hid = 48\n")
    assert Config.from_file(tmp_path / "c.toml").n_hid == 48
    with pytest.raises(ConfigError, match="unknown"):
        Config().replace(nhid=3)
    with pytest.raises(ConfigError, match="FIELD=VALUE"):
        Config().with_overrides(["n_hid"])


def test_spec_config_table_is_current():
    spec = (ROOT / "docs" / "spec.md").read_text()
    table = spec.split("<!-- config-table -->")[1].split("<!-- /config-table -->")[0]
    assert table.strip() == markdown_table().strip(), \
        "docs/spec.md section 11 is stale: regenerate with python -m spec.config --markdown"


# ---- checkpoints ------------------------------------------------------------------------------
def test_checkpoint_round_trip_and_corruption(tmp_path):
    cfg = Config(n_hid=16)
    w1, w2 = init_weights(cfg, 1)
    p = save_checkpoint(tmp_path / "ck.npz", Checkpoint(cfg, w1, w2, 77, 3, {"x": 1}))
    ck = load_checkpoint(p)
    assert ck.cfg == cfg and ck.sample_counter == 77 and ck.epoch == 3
    np.testing.assert_array_equal(ck.w1, w1)
    # a flipped weight is caught by the checksum, never loaded silently
    with np.load(p) as z:
        parts = dict(z)
    parts["w1"] = parts["w1"].copy()
    parts["w1"][0, 0] += 1
    np.savez(tmp_path / "bad.npz", **parts)
    with pytest.raises(CheckpointError, match="checksum"):
        load_checkpoint(tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(tmp_path / "junk.npz")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.npz")


# ---- command line --------------------------------------------------------------------------
def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("argv, match", [
    (["train", "--rule", "hebb"], "unknown rule 'hebb'"),
    (["train", "--dataset", "/nonexistent/data.npz"], "/nonexistent/data.npz"),
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--set", "n_hid=abc"], "n_hid must be an integer"),
    (["train", "--set", "bogus=1"], "known field"),
    (["train", "--config", "/nonexistent.toml"], "cannot read configuration"),
    (["train", "--backend", "serial"], "--port"),
    (["train", "--backend", "serial", "--port", "/dev/nonexistent-snn"],
     "cannot open serial port /dev/nonexistent-snn"),
    (["train", "--backend", "virtual", "--lanes", "0"], "--lanes"),
    (["train", "--resume", "/nonexistent.npz"], "does not exist"),
    (["train", "--backend", "tpu"], "invalid choice"),
    (["frobnicate"], "invalid choice"),
])
def test_cli_bad_input_gives_one_line_error(capsys, argv, match):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert match in lines[0]
    assert "Traceback" not in err


def test_cli_wrong_dataset_shapes(capsys, tmp_path):
    p = tmp_path / "bad.npz"
    np.savez(p, x_train=np.zeros((10, 4)), y_train=np.zeros(9), x_test=np.zeros((5, 4)),
             y_test=np.zeros(5))
    code, _, err = run_cli(capsys, "train", "--dataset", str(p))
    assert code == 2 and err.startswith("error: ") and "bad.npz" in err


def test_cli_trains_on_user_npz_and_writes_everything(capsys, tmp_path):
    """Any number of features and classes; sizes follow the data; JSON, plots, checkpoint."""
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 3, (3, 5))
    def make(n):
        y = rng.integers(0, 3, n)
        return centers[y] + rng.normal(0, 0.5, (n, 5)) - 10.0, np.array(["a", "b", "c"])[y]
    xtr, ytr = make(150)
    xte, yte = make(60)
    np.savez(tmp_path / "blobs.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    out = tmp_path / "run"
    code, stdout, err = run_cli(
        capsys, "train", "--dataset", str(tmp_path / "blobs.npz"), "--rule", "dfa",
        "--epochs", "3", "--seed", "1", "--set", "n_hid=24", "--json", str(out / "r.json"),
        "--plots", str(out / "plots"), "--checkpoint", str(out / "ck.npz"), "--quiet")
    assert code == 0, err
    r = json.loads((out / "r.json").read_text())
    for key in ("test_accuracy", "train_accuracy", "epochs", "rule", "seed",
                "samples_per_second"):
        assert key in r
    assert r["epochs"] == 3 and r["rule"] == "dfa" and r["seed"] == 1
    # dense features: the dense defaults, two input channels (ON/OFF) per feature
    assert r["config"]["n_in"] == 2 * 5 and r["config"]["n_out"] == 3
    assert r["config"]["encoding"] == "onoff"
    assert r["test_accuracy"] > 0.6          # three well separated blobs
    assert (out / "plots" / "accuracy.png").stat().st_size > 1000
    assert (out / "plots" / "raster.png").exists()
    ck = load_checkpoint(out / "ck.npz")
    assert ck.epoch == 3 and ck.w1.shape == (2 * 5, 24)
    assert re.search(r"test accuracy \d+\.\d\d %", stdout)

    # resume continues from the checkpoint's epoch and counter
    code, stdout, err = run_cli(
        capsys, "train", "--dataset", str(tmp_path / "blobs.npz"), "--rule", "dfa",
        "--epochs", "1", "--seed", "1", "--resume", str(out / "ck.npz"),
        "--checkpoint", str(out / "ck2.npz"), "--json", str(out / "r2.json"), "--quiet")
    assert code == 0, err
    ck2 = load_checkpoint(out / "ck2.npz")
    assert ck2.epoch == 4 and ck2.sample_counter == ck.sample_counter + 150
    # a resumed run may not change the architecture
    code, _, err = run_cli(capsys, "train", "--dataset", str(tmp_path / "blobs.npz"),
                           "--resume", str(out / "ck.npz"), "--set", "n_hid=8")
    assert code == 2 and "architecture" in err


def test_cli_float_backend(capsys, tmp_path):
    code, stdout, err = run_cli(capsys, "train", "--backend", "float", "--epochs", "2",
                                "--limit-train", "300", "--json", str(tmp_path / "f.json"),
                                "--quiet")
    assert code == 0, err
    r = json.loads((tmp_path / "f.json").read_text())
    assert r["rule"] == "bp" and r["test_accuracy"] > 0.5


def test_cli_help_explains(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for word in ("--backend", "--rule", "--plots", "--checkpoint", "examples", "digits"):
        assert word in out


def test_bench_quick_writes_table(tmp_path):
    from bench.run import main as bench_main
    assert bench_main(["--quick", "--jobs", "1", "--no-cocotb", "--datasets", "iris",
                       "--out", str(tmp_path / "res")]) == 0
    md = (tmp_path / "res.md").read_text()
    assert "golden model, eRBP" in md and "float network, BP" in md and "samples/s" in md
    assert "strong float network, BP" in md and "Strong float DFA of the same size minus" in md
    assert "## Core cycles" in md and "## Host link" in md
    assert "## Accuracy per dataset" in md and "| iris | 8-128-3 (onoff), 120 / 30 |" in md
    res = json.loads((tmp_path / "res.json").read_text())
    assert {r["rule"] for r in res["runs"]} == {"erbp", "dfa", "float-bp", "float-dfa"}
    assert {(r["dataset"], r["rule"]) for r in res["dataset_runs"]} == {
        (d, m) for d in ("digits", "iris") for m in ("strong-bp", "strong-dfa", "logreg")
    } | {("iris", "erbp"), ("iris", "dfa")}
    assert res["speed"]["infer"] > 0

    # the board section, from a board report like the one `make bitstream` writes
    from bench import hw
    from bench.run import render
    rep_dir = tmp_path / "boards" / "someboard"
    rep_dir.mkdir(parents=True)
    res_ = {k: {"used": 1, "available": 2} for k in ("lut", "ff", "bram", "dsp")}
    res_["spram"] = {"used": 0, "available": 0}
    (rep_dir / "report.json").write_text(json.dumps({
        "board": "someboard", "device": "LFE5U-85F-BG381", "design": "Top",
        "network": {"n_in": 64, "n_hid": 128, "n_out": 10, "synapses": 9472}, "lanes": 2,
        "weight_latency": 3, "resources": res_,
        "clock": {"target_mhz": 75.0, "achieved_mhz": 80.0, "timing_met": True,
                  "goal_mhz": 100.0, "uart_baud": 2_000_000},
        "critical_path": {"ns": 12.5, "from": "top.engine.k", "to": "top.engine.rmem",
                          "steps": [{"at_ns": 3.0, "net": "n", "src": ["hdl/protocol.py:395"]}]},
    }))
    cyc = [{"mode": "erbp", "lanes": 2, "latency": 3, "cycles_per_sample": 80_000.0,
            "events_per_cycle": 1.5},
           {"mode": "erbp", "lanes": 2, "latency": 1, "cycles_per_sample": 1.0,
            "events_per_cycle": 9.0}]
    ice = tmp_path / "boards" / "up5k"
    ice.mkdir()
    (ice / "report.json").write_text((rep_dir / "report.json").read_text().replace(
        '"someboard"', '"up5k"').replace("LFE5U-85F-BG381", "iCE40UP5K-SG48").replace(
        '"spram": {"used": 0, "available": 0}', '"spram": {"used": 3, "available": 4}'))
    rows = hw.board_rows(cyc, {"total": 100}, 500.0, report_dir=tmp_path / "boards")
    # the UP5K's SPRAM holds the DFA memories, not the weights: its bound is its block RAMs'
    assert rows[1]["board"] == "up5k"
    assert rows[1]["port_bound_per_cycle"] == hw.memory_port_bound("ice40", Config()) == 32
    rows = rows[:1]
    (b,) = rows
    assert b["core_samples_per_s"] == pytest.approx(1000.0)       # 80 MHz / 80,000 cycles
    assert b["uart_samples_per_s"] == pytest.approx(2000.0)       # 2 Mbaud / (10 bits * 100)
    assert b["samples_per_s"] == pytest.approx(2000.0 / 3)
    assert b["updates_per_s"] == pytest.approx(1.5 * 80e6)
    assert b["device_over_cpu"] == pytest.approx(2000.0 / 3 / 500.0)
    assert b["port_bound_fraction"] == pytest.approx(1.5 / hw.memory_port_bound(
        "ecp5", Config()))
    res["boards"] = rows
    md = render(res)
    assert "| someboard | 64-128-10 (9,472), 2, 3 |" in md
    assert "80.0 / 75 / 100" in md
    assert "12.5 ns from `top.engine.k` to `top.engine.rmem` through `hdl/protocol.py:395`" in md

    # after `make bitstream`: the board table refreshed from the saved run
    assert bench_main(["--boards-only", "--reports", str(tmp_path / "boards"),
                       "--out", str(tmp_path / "res")]) == 0
    assert "| someboard | 64-128-10 (9,472), 2, 3 |" in (tmp_path / "res.md").read_text()
    saved = json.loads((tmp_path / "res.json").read_text())
    assert saved["boards"][0]["board"] == "someboard" and saved["runs"] == res["runs"]
    assert bench_main(["--boards-only", "--out", str(tmp_path / "nothing")]) == 2


def test_bench_copies_its_table_into_the_readme(tmp_path):
    from bench.run import update_readme
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- bench-table -->\nold\n<!-- /bench-table -->\nrest\n")
    update_readme("# Benchmark results\n\nnew table\n\n## Speed\nrow", readme)
    text = readme.read_text()
    assert "old" not in text and "new table" in text and "### Speed" in text
    assert text.startswith("intro\n") and text.endswith("rest\n")
