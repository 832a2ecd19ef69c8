"""The per-epoch recalibration of the hidden threshold (``Config.recalibrate``, issue 13):
off changes nothing, epoch keeps the hidden rate in its band on a dense task where it drifts
out, the backend's registers change, a resume continues from the recalibrated thresholds."""

import json

import numpy as np
import pytest

from sim.data import load_dataset
from sim.golden import init_weights
from spec.config import Config, ConfigError
from sw.backend import GoldenBackend
from sw.calibrate import (
    RECALIBRATION_BAND,
    calibrate_start,
    calibration_samples,
    hidden_rate,
    in_band,
)
from sw.checkpoint import load_checkpoint
from sw.cli import main
from sw.train import train

TARGET = 0.1


@pytest.fixture(scope="module")
def dense_npz(tmp_path_factory):
    """Three Gaussian classes in 8 dense, centred features (ON/OFF encoding)."""
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 1, (3, 8))
    y = rng.integers(0, 3, 200)
    x = centers[y] + rng.normal(0, 1.0, (200, 8))
    p = tmp_path_factory.mktemp("dense") / "dense.npz"
    np.savez(p, x_train=x[:160], y_train=y[:160], x_test=x[160:], y_test=y[160:])
    return p


def _run(path, recalibrate, epochs=3):
    # a fast hidden learning rate (lr_shift_hid 8, no decay) makes the rate drift in an epoch
    cfg = Config(n_hid=32, timesteps=32, encoding="onoff", lr_shift_hid=8, lr_decay_epochs=(),
                 recalibrate=recalibrate)
    ds = load_dataset(str(path), cfg.in_bits, encoding="onoff")
    cfg = cfg.replace(n_in=ds.n_features, n_out=ds.n_classes)
    w1, w2 = init_weights(cfg, 0)
    cfg, _ = calibrate_start(cfg, w1, ds.x_train, 0, TARGET)
    be = GoldenBackend(cfg)
    be.write_weights(w1, w2)
    res = train(be, ds, cfg, "erbp", epochs, 0, progress=False, probe=0, target_rate=TARGET)
    return res, be, ds


def test_off_is_todays_training(dense_npz):
    """recalibrate=off: the same weights bit for bit as a configuration without the field's
    effect, and the thresholds never change."""
    res, be, ds = _run(dense_npz, "off", epochs=2)
    cfg = res.cfg
    assert all(not h.recalibrated and h.theta_hid == cfg.theta_hid for h in res.history)
    assert all(h.calibration_rate != h.calibration_rate for h in res.history)  # nan: not measured
    # today's loop: register writes of the schedule, presentations in epoch order
    from sw.train import epoch_order
    w1, w2 = init_weights(cfg, 0)
    ref = GoldenBackend(cfg)
    ref.write_weights(w1, w2)
    for epoch in range(2):
        ref.set_registers(cfg.registers(epoch))
        for i in epoch_order(0, epoch, len(ds.x_train)):
            ref.present(ds.x_train[i], int(ds.y_train[i]), "erbp")
    for a, b in zip(be.read_weights(), ref.read_weights()):
        np.testing.assert_array_equal(a, b)


def test_epoch_keeps_the_hidden_rate_in_its_band(dense_npz):
    off, be_off, ds = _run(dense_npz, "off")
    on, be, _ = _run(dense_npz, "epoch")
    # without recalibration the rate on the calibration samples drifts out of the band
    x_cal = calibration_samples(ds.x_train, 0)
    drifted = hidden_rate(off.cfg, be_off.read_weights()[0], x_cal)
    assert not in_band(drifted, TARGET), drifted
    assert not in_band(on.history[0].calibration_rate, TARGET)  # the same first epoch
    assert any(h.recalibrated for h in on.history)
    # every epoch starts inside the band: after a recalibration, or because it stayed there
    for h in on.history:
        start = h.recalibrated_rate if h.recalibrated else h.calibration_rate
        assert in_band(start, TARGET), (h.epoch, start)
    # the record of the epoch after a recalibration trained with the new thresholds
    for prev, nxt in zip(on.history, on.history[1:]):
        if prev.recalibrated:
            assert nxt.theta_hid != prev.theta_hid
    # the golden backend holds the recalibrated registers, and result.cfg has them
    assert be.cfg.theta_hid == be.model.cfg.theta_hid == on.cfg.theta_hid
    assert (be.cfg.bmin_hid, be.cfg.bmax_hid) == (on.cfg.bmin_hid, on.cfg.bmax_hid)
    assert on.cfg.theta_hid != on.history[0].theta_hid
    # the boxcar keeps its place relative to the threshold (as calibrate_hidden sets it)
    first = on.history[0]
    k = on.cfg.theta_hid / first.theta_hid
    assert on.cfg.bmax_hid == pytest.approx(first.bmax_hid * k, abs=1 + first.bmax_hid * 0.01)
    # the schedule's learning shifts are still those of the epoch
    assert be.cfg.lr_shift_hid == on.cfg.registers(3)["lr_shift_hid"]
    assert RECALIBRATION_BAND == 0.3


def test_resume_continues_from_the_recalibrated_thresholds(dense_npz, tmp_path, capsys):
    common = ["train", "--dataset", str(dense_npz), "--rule", "erbp", "--seed", "0",
              "--probe", "0", "--set", "n_hid=32", "--set", "timesteps=32",
              "--set", "lr_shift_hid=8", "--set", "lr_decay_epochs="]
    ck = tmp_path / "ck.npz"
    js = tmp_path / "r.json"
    assert main(common + ["--epochs", "2", "--set", "recalibrate=epoch",
                          "--checkpoint", str(ck), "--json", str(js)]) == 0
    out = capsys.readouterr()
    assert "recalibrated theta_hid" in out.out + out.err
    saved = load_checkpoint(ck)
    assert saved.cfg.recalibrate == "epoch"
    r = json.loads(js.read_text())
    assert r["history"][0]["recalibrated"]
    assert saved.cfg.theta_hid != r["history"][0]["theta_hid"]   # recalibrated in the run
    assert r["config"]["theta_hid"] == saved.cfg.theta_hid
    ck2 = tmp_path / "ck2.npz"
    assert main(["train", "--dataset", str(dense_npz), "--rule", "erbp", "--seed", "0",
                 "--probe", "0", "--epochs", "1", "--resume", str(ck), "--checkpoint",
                 str(ck2), "--json", str(js), "--quiet"]) == 0
    r = json.loads(js.read_text())
    first = r["history"][0]
    assert (first["theta_hid"], first["bmin_hid"], first["bmax_hid"]) == \
        (saved.cfg.theta_hid, saved.cfg.bmin_hid, saved.cfg.bmax_hid)
    assert load_checkpoint(ck2).cfg.recalibrate == "epoch"


def test_bad_value_is_a_clear_error(capsys):
    with pytest.raises(ConfigError, match="recalibrate must be one of"):
        Config(recalibrate="sometimes")
    with pytest.raises(ConfigError, match="recalibrate must be one of"):
        Config().with_overrides(["recalibrate=always"])
    code = main(["train", "--set", "recalibrate=always", "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "recalibrate must be one of" in err
    assert Config().with_overrides(["recalibrate=epoch"]).recalibrate == "epoch"
