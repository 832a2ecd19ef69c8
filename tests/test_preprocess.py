"""Host preprocessing (sim/preprocess.py, docs/spec.md section 9.1): the global encoding is
today's quantisation bit for bit, the others match their definitions on hand-computed
cases, fitting sees the training split only, checkpoints carry the fitted parameters and
the command line trains with ON/OFF pairs (n_in = 2F)."""

import json

import numpy as np
import pytest

from sim.data import DataError, load_dataset, quantise
from sim.golden import init_weights
from sim.preprocess import Preprocess, PreprocessError
from spec.config import Config, ConfigError
from sw.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from sw.cli import main


def _npz(path, x_tr, y_tr, x_te, y_te):
    np.savez(path, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    return path


def _dense(seed=0, n_tr=120, n_te=40, f=6, c=3):
    """Centred blobs: the class is in the signs of the features."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.5, (c, f))
    def make(n):
        y = rng.integers(0, c, n)
        return centres[y] + rng.normal(0, 0.5, (n, f)), y
    return make(n_tr) + make(n_te)


# ---- "global": today's codes, exactly ---------------------------------------------------------
def test_global_is_todays_quantisation_on_digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x_tr, x_te, _, _ = train_test_split(d.data, d.target, test_size=0.2, random_state=0,
                                        stratify=d.target)
    ds = load_dataset("digits")
    assert ds.preprocess.kind == "global" and ds.n_features == 64
    lo, hi = x_tr.min(), x_tr.max()
    np.testing.assert_array_equal(ds.x_train, quantise(x_tr, lo, hi, 8))
    np.testing.assert_array_equal(ds.x_test, quantise(x_te, lo, hi, 8))
    assert ds.x_train.dtype == np.uint8


@pytest.mark.parametrize("in_bits", [1, 4, 8, 12])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int16])
def test_global_is_todays_quantisation_on_a_random_npz(tmp_path, in_bits, dtype):
    rng = np.random.default_rng(in_bits)
    x_tr = (rng.normal(0, 40, (200, 7)) - 3).astype(dtype)
    x_te = (rng.normal(0, 60, (50, 7)) + 5).astype(dtype)   # beyond the training range: clipped
    y_tr, y_te = rng.integers(0, 3, 200), rng.integers(0, 3, 50)
    ds = load_dataset(_npz(tmp_path / "r.npz", x_tr, y_tr, x_te, y_te), in_bits)
    lo, hi = x_tr.min(), x_tr.max()
    np.testing.assert_array_equal(ds.x_train, quantise(x_tr, lo, hi, in_bits))
    np.testing.assert_array_equal(ds.x_test, quantise(x_te, lo, hi, in_bits))
    assert ds.x_train.dtype == quantise(x_tr, lo, hi, in_bits).dtype
    pre = Preprocess.fit(x_tr, "global", in_bits)
    assert pre == ds.preprocess and pre.n_channels == 7


# ---- the other encodings against their definitions ------------------------------------------
X_SMALL = np.array([[0, 10], [1, 20], [2, 30], [3, 40], [4, 50]], dtype=float)


def test_onoff_matches_the_hand_computed_definition():
    pre = Preprocess.fit(X_SMALL, "onoff", 8)
    # centre = median; scale = 99th percentile of |x - c| (linear interpolation)
    np.testing.assert_array_equal(pre.offset, [2, 30])
    np.testing.assert_array_equal(pre.scale, [2, 20])
    x = np.array([[0, 10], [3, 35], [2, 30], [10, 29], [1.99, 30.0]])
    # v = (x - c) * 255 / s; ON = clip(floor(v + .5), 0, 255), OFF the same of -v
    want = np.array([[0, 0, 255, 255],          # v = -255, -255
                     [128, 64, 0, 0],           # v = 127.5, 63.75
                     [0, 0, 0, 0],              # at the centre
                     [255, 0, 0, 13],           # v = 1020 (clipped), -12.75
                     [0, 0, 1, 0]])             # v = -1.275
    got = pre.transform(x)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.uint8 and pre.n_channels == 4
    np.testing.assert_array_equal(pre.transform(x[1]), want[1])   # one sample


def test_onoff_scale_falls_back_to_the_maximum_and_constant_features_give_zero():
    x = np.zeros((201, 3))
    x[0, 0] = 5.0          # 99th percentile of |x - 0| is 0: the scale is the maximum
    x[:, 1] = 7.0          # constant
    x[:, 2] = np.arange(201) - 100.0
    pre = Preprocess.fit(x, "onoff", 4)
    assert pre.scale[0] == 5.0 and pre.scale[1] == 0.0
    got = pre.transform(np.array([[5.0, 9.0, 0.0], [-2.5, -1.0, 0.0]]))
    np.testing.assert_array_equal(got, [[15, 0, 0, 0, 0, 0], [0, 0, 0, 8, 0, 0]])


def test_rate_is_a_per_feature_min_max():
    pre = Preprocess.fit(X_SMALL, "rate", 8)
    np.testing.assert_array_equal(pre.offset, [0, 10])
    np.testing.assert_array_equal(pre.scale, [4, 40])
    got = pre.transform(np.array([[2, 10], [1, 50], [5, 15], [-1, 30]]))
    # q = clip(floor((x - lo) * 255 / (hi - lo) + 0.5), 0, 255)
    np.testing.assert_array_equal(got, [[128, 0], [64, 255], [255, 32], [0, 128]])
    const = Preprocess.fit(np.ones((4, 2)), "rate", 8)
    np.testing.assert_array_equal(const.transform(np.array([[1.0, 3.0]])), [[0, 0]])


@pytest.mark.parametrize("kind", ["global", "rate", "onoff"])
def test_fit_sees_the_training_split_only(tmp_path, kind):
    x_tr, y_tr, x_te, y_te = _dense()
    a = load_dataset(_npz(tmp_path / "a.npz", x_tr, y_tr, x_te, y_te), encoding=kind)
    b = load_dataset(_npz(tmp_path / "b.npz", x_tr, y_tr, 100 * x_te + 7, y_te), encoding=kind)
    c = load_dataset(tmp_path / "a.npz", encoding=kind, limit_train=10)
    assert a.preprocess == b.preprocess == c.preprocess == Preprocess.fit(x_tr, kind, 8)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(c.x_train, a.x_train[:10])
    assert a.n_features == (12 if kind == "onoff" else 6)
    # a given (stored) preprocessing is applied as it is, not refitted
    d = load_dataset(tmp_path / "b.npz", encoding=kind, preprocess=a.preprocess)
    np.testing.assert_array_equal(d.x_test, a.preprocess.transform(100 * x_te + 7))


# ---- bad input --------------------------------------------------------------------------------
def test_bad_inputs_give_clear_errors(tmp_path):
    x = X_SMALL.copy()
    x[2, 1] = np.nan
    with pytest.raises(PreprocessError, match="non-finite"):
        Preprocess.fit(x, "onoff")
    pre = Preprocess.fit(X_SMALL, "onoff")
    with pytest.raises(PreprocessError, match="non-finite"):
        pre.transform(x)
    with pytest.raises(PreprocessError, match="3 features, the preprocessing was fitted on 2"):
        pre.transform(np.zeros((1, 3)))
    with pytest.raises(PreprocessError, match="2-D"):
        Preprocess.fit(np.zeros((2, 2, 2)), "rate")
    with pytest.raises(PreprocessError, match="empty"):
        Preprocess.fit(np.zeros((0, 2)), "rate")
    with pytest.raises(PreprocessError, match="unknown encoding 'zscore'"):
        Preprocess.fit(X_SMALL, "zscore")
    with pytest.raises(PreprocessError, match="offset must have shape"):
        Preprocess.from_dict({**pre.to_dict(), "offset": [1.0]})
    with pytest.raises(PreprocessError, match="lacks scale"):
        Preprocess.from_dict({k: v for k, v in pre.to_dict().items() if k != "scale"})
    x_tr, y_tr, x_te, y_te = _dense()
    x_tr[3, 0] = np.nan
    with pytest.raises(DataError, match="x_train contains non-finite"):
        load_dataset(_npz(tmp_path / "nan.npz", x_tr, y_tr, x_te, y_te), encoding="onoff")
    with pytest.raises(DataError, match="encoding='rate'"):
        load_dataset("digits", encoding="onoff",
                     preprocess=Preprocess.fit(np.zeros((2, 64)), "rate"))
    with pytest.raises(DataError, match="fitted on 2 features"):
        load_dataset("digits", preprocess=Preprocess.fit(X_SMALL, "global"))
    with pytest.raises(ConfigError, match="encoding must be one of"):
        Config(encoding="zscore")
    assert Config().with_overrides(["encoding=onoff"]).encoding == "onoff"


# ---- checkpoints --------------------------------------------------------------------------------
def test_checkpoint_round_trip_of_the_preprocessing(tmp_path):
    x = np.random.default_rng(3).normal(0.1, 1 / 3, (50, 4))   # parameters with long mantissas
    pre = Preprocess.fit(x, "onoff", 8)
    cfg = Config(n_in=8, n_hid=16, n_out=3, encoding="onoff")
    w1, w2 = init_weights(cfg, 1)
    p = save_checkpoint(tmp_path / "ck.npz", Checkpoint(cfg, w1, w2, 5, 1, {}, pre))
    ck = load_checkpoint(p)
    assert ck.preprocess == pre and ck.cfg.encoding == "onoff"
    np.testing.assert_array_equal(ck.preprocess.transform(x), pre.transform(x))
    # the parameters are under the checksum
    with np.load(p) as z:
        parts = dict(z)
    header = json.loads(str(parts["header"]))
    header["preprocess"]["offset"][0] += 1e-9
    parts["header"] = np.array(json.dumps(header))
    np.savez(tmp_path / "bad.npz", **parts)
    with pytest.raises(CheckpointError, match="checksum"):
        load_checkpoint(tmp_path / "bad.npz")
    with pytest.raises(CheckpointError, match="does not match the configuration"):
        save_checkpoint(tmp_path / "x.npz", Checkpoint(cfg.replace(encoding="rate"), w1, w2,
                                                       preprocess=pre))
    # a checkpoint without preprocessing (written before it was stored) still loads
    old = save_checkpoint(tmp_path / "old.npz", Checkpoint(Config(n_hid=16), *init_weights(
        Config(n_hid=16), 1)))
    assert load_checkpoint(old).preprocess is None


# ---- command line -------------------------------------------------------------------------------
def test_cli_trains_with_onoff_pairs_and_resumes_with_the_stored_preprocessing(capsys, tmp_path):
    x_tr, y_tr, x_te, y_te = _dense(f=6)
    data = _npz(tmp_path / "dense.npz", x_tr, y_tr, x_te, y_te)
    common = ["--dataset", str(data), "--set", "n_hid=16", "--limit-train", "60", "--probe",
              "4", "--quiet"]
    assert main(["train", *common, "--set", "encoding=onoff", "--epochs", "1", "--json",
                 str(tmp_path / "r.json"), "--checkpoint", str(tmp_path / "ck.npz")]) == 0
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["config"]["n_in"] == 12 and r["config"]["encoding"] == "onoff"
    ck = load_checkpoint(tmp_path / "ck.npz")
    assert ck.preprocess == Preprocess.fit(x_tr, "onoff", 8) and ck.w1.shape == (12, 16)

    # resuming on other data of the same shape applies the stored parameters, not a refit
    other = _npz(tmp_path / "other.npz", 3 * x_tr + 1, y_tr, x_te, y_te)
    assert main(["train", *common, "--dataset", str(other), "--resume", str(tmp_path / "ck.npz"),
                 "--epochs", "1", "--checkpoint", str(tmp_path / "ck2.npz")]) == 0
    assert load_checkpoint(tmp_path / "ck2.npz").preprocess == ck.preprocess
    capsys.readouterr()
    assert main(["train", *common, "--resume", str(tmp_path / "ck.npz"), "--set",
                 "encoding=rate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot change the input encoding") and "'onoff'" in err

    # the float backend sees the same codes (2F inputs)
    assert main(["train", *common, "--set", "encoding=onoff", "--backend", "float", "--epochs",
                 "1", "--json", str(tmp_path / "f.json")]) == 0
    assert json.loads((tmp_path / "f.json").read_text())["config"]["n_in"] == 12

    x_bad = x_tr.copy()
    x_bad[0, 0] = np.inf
    bad = _npz(tmp_path / "bad.npz", x_bad, y_tr, x_te, y_te)
    capsys.readouterr()
    assert main(["train", "--dataset", str(bad), "--set", "encoding=onoff"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "non-finite" in err[0]


def test_cli_config_shows_the_encoding(capsys):
    assert main(["config", "--set", "encoding=onoff"]) == 0
    assert any(line.split()[:2] == ["encoding", "onoff"]
               for line in capsys.readouterr().out.splitlines())
