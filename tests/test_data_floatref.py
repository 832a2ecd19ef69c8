"""Tests of the dataset loader (sim.data) and the float reference networks (sim.floatref)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from sim.data import DataError, Dataset, load_dataset, quantise, read_idx
from sim.floatref import bp_hidden_delta, hidden_alignment_deg, train_float


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def _valid_arrays(n_tr=12, n_te=6, n_feat=5):
    rng = np.random.default_rng(0)
    return dict(x_train=rng.normal(size=(n_tr, n_feat)), y_train=np.arange(n_tr) % 3,
                x_test=rng.normal(size=(n_te, n_feat)), y_test=np.arange(n_te) % 3)


# ---- digits ----------------------------------------------------------------------------------

def test_digits_split_sizes_and_values(digits):
    assert digits.x_train.shape == (1437, 64) and digits.x_test.shape == (360, 64)
    assert digits.y_train.shape == (1437,) and digits.y_test.shape == (360,)
    assert digits.y_train.dtype == np.int64
    assert digits.n_features == 64 and digits.n_classes == 10
    assert digits.classes == list(range(10)) and digits.image_shape == (8, 8)
    assert np.issubdtype(digits.x_train.dtype, np.integer)
    for x in (digits.x_train, digits.x_test):
        assert x.min() == 0 and x.max() == 255


def test_digits_quantisation_formula(digits):
    from sklearn.datasets import load_digits

    raw = load_digits().data
    # Training range is 0..16, so a value v becomes floor(v * 255 / 16 + 0.5).
    expected = np.floor(raw * 255 / 16 + 0.5).astype(int)
    got = {tuple(r) for r in np.concatenate([digits.x_train, digits.x_test]).astype(int)}
    assert got == {tuple(r) for r in expected}
    assert set(np.unique(digits.x_train)) == set(np.unique(expected))


def test_digits_stratified(digits):
    all_counts = np.bincount(np.concatenate([digits.y_train, digits.y_test]), minlength=10)
    test_counts = np.bincount(digits.y_test, minlength=10)
    assert np.all(np.abs(test_counts - 0.2 * all_counts) <= 1)


def test_digits_deterministic(digits):
    again = load_dataset("digits")
    for key in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(digits, key), getattr(again, key))


def test_limits_keep_first_samples_with_the_full_range(digits):
    small = load_dataset("digits", limit_train=100, limit_test=7)
    assert len(small.x_train) == 100 and len(small.y_test) == 7
    np.testing.assert_array_equal(small.x_train, digits.x_train[:100])
    np.testing.assert_array_equal(small.y_train, digits.y_train[:100])
    np.testing.assert_array_equal(small.x_test, digits.x_test[:7])
    assert small.n_classes == 10


@pytest.mark.parametrize("in_bits, top, dtype", [(1, 1, np.uint8), (4, 15, np.uint8),
                                                 (12, 4095, np.uint16)])
def test_in_bits(in_bits, top, dtype):
    d = load_dataset("digits", in_bits=in_bits, limit_train=300, limit_test=10)
    assert d.x_train.dtype == dtype
    assert d.x_train.min() == 0 and d.x_train.max() == top


def test_quantise_round_half_up_and_clip():
    x = np.array([-1.0, 0.0, 0.5, 1.5, 2.5, 3.0, 4.0])
    np.testing.assert_array_equal(quantise(x, 0.0, 3.0, 2), [0, 0, 1, 2, 3, 3, 3])
    np.testing.assert_array_equal(quantise(x, 2.0, 2.0, 8), np.zeros(7))


# ---- npz -------------------------------------------------------------------------------------

def test_npz_string_labels_image_shaped_negative_floats(tmp_path):
    x_tr = np.array([[[-3.0, 1.0], [0.0, 2.0]],
                     [[5.0, -1.0], [0.5, 4.0]],
                     [[1.0, 1.0], [1.0, 1.0]]])
    x_te = np.array([[[-10.0, 10.0], [1.0, -3.0]]])
    p = _npz(tmp_path / "d.npz", x_train=x_tr, y_train=np.array(["dog", "cat", "emu"]),
             x_test=x_te, y_test=np.array(["emu"]))
    d = load_dataset(str(p))
    assert d.classes == ["cat", "dog", "emu"]
    np.testing.assert_array_equal(d.y_train, [1, 0, 2])
    np.testing.assert_array_equal(d.y_test, [2])
    assert d.image_shape == (2, 2) and d.x_train.shape == (3, 4) and d.n_features == 4
    # Training range -3..5: the minimum maps to 0, the maximum to 255, test values clip.
    assert d.x_train[0, 0] == 0 and d.x_train[1, 0] == 255
    assert d.x_train[0, 2] == np.floor(3 / 8 * 255 + 0.5)
    np.testing.assert_array_equal(d.x_test[0], [0, 255, np.floor(4 / 8 * 255 + 0.5), 0])


def test_npz_integer_labels_and_feature_square(tmp_path):
    a = _valid_arrays(n_feat=9)
    a["y_train"] = a["y_train"] * 10 - 7  # labels -7, 3, 13
    a["y_test"] = a["y_test"] * 10 - 7
    d = load_dataset(_npz(tmp_path / "d.npz", **a))
    assert d.classes == [-7, 3, 13] and d.image_shape == (3, 3)
    np.testing.assert_array_equal(d.y_train, np.arange(12) % 3)
    a = _valid_arrays(n_feat=10)
    assert load_dataset(_npz(tmp_path / "e.npz", **a)).image_shape is None


def test_npz_full_range_uint8_unchanged(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (50, 16), dtype=np.uint8)
    x[0, :2] = [0, 255]
    d = load_dataset(_npz(tmp_path / "u.npz", x_train=x, y_train=np.arange(50) % 2,
                          x_test=x[:10], y_test=np.arange(10) % 2))
    np.testing.assert_array_equal(d.x_train, x)
    np.testing.assert_array_equal(d.x_test, x[:10])


def test_constant_features_map_to_zero(tmp_path):
    assert not quantise(np.full((4, 3), 3.0), 3.0, 3.0, 8).any()
    a = _valid_arrays()
    a["x_train"][:, 1] = 3.0                      # one constant feature: allowed
    d = load_dataset(_npz(tmp_path / "c.npz", **a))
    assert np.ptp(d.x_train[:, 1]) == 0 and np.ptp(d.x_train[:, 0]) > 0
    a["x_train"][:] = 3.0                         # all constant: an error
    with pytest.raises(DataError, match="every feature of x_train is constant"):
        load_dataset(_npz(tmp_path / "c.npz", **a))


def _with(**changes):
    a = _valid_arrays()
    a.update(changes)
    return {k: v for k, v in a.items() if v is not None}


@pytest.mark.parametrize("arrays, message", [
    (_with(y_test=None, x_test=None), r"missing array\(s\) x_test, y_test"),
    (_with(x_train=np.zeros(12)), r"x_train must be 2-D .* or 3-D"),
    (_with(x_test=np.zeros((6, 1, 1, 5))), r"x_test must be 2-D"),
    (_with(y_train=np.zeros((12, 1), dtype=int)), r"y_train must be 1-D"),
    (_with(y_test=np.arange(5) % 3), r"x_test has 6 samples but y_test has 5"),
    (_with(x_test=np.zeros((6, 4))), r"feature counts differ"),
    (_with(y_train=np.zeros(12, dtype=int)), r"fewer than 2 classes"),
    (_with(x_train=np.where(np.eye(12, 5) > 0, np.nan, 0.0)), r"x_train contains non-finite"),
    (_with(x_test=np.full((6, 5), np.inf)), r"x_test contains non-finite"),
    (_with(y_test=np.array([0, 1, 2, 0, 1, 9])), r"label\(s\) not seen in training: 9"),
    (_with(y_train=np.array(["a", "b"] * 6)), r"label\(s\) not seen in training"),
    (_with(x_train=np.zeros((0, 5)), y_train=np.zeros(0, dtype=int)), r"train set is empty"),
])
def test_npz_errors(tmp_path, arrays, message):
    p = _npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message) as info:
        load_dataset(str(p))
    text = str(info.value)
    assert "\n" not in text and "bad.npz" in text


def test_not_an_npz(tmp_path):
    p = tmp_path / "junk.npz"
    p.write_text("hello")
    with pytest.raises(DataError, match=r"junk\.npz: not a valid \.npz archive"):
        load_dataset(p)
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(DataError, match=r"not a \.npz archive"):
        load_dataset(tmp_path / "one.npy")


def test_missing_paths_and_unknown_spec(tmp_path):
    with pytest.raises(DataError, match=r"nope\.npz: no such file or directory"):
        load_dataset(str(tmp_path / "nope.npz"))
    with pytest.raises(DataError, match=r"mnist_dir: no such file or directory"):
        load_dataset(str(tmp_path / "mnist_dir"))
    with pytest.raises(DataError, match=r"unknown dataset 'digitz'"):
        load_dataset("digitz")
    assert issubclass(DataError, ValueError)


@pytest.mark.parametrize("kwargs", [dict(in_bits=0), dict(in_bits=17), dict(limit_train=0),
                                    dict(limit_test=-1)])
def test_bad_arguments(kwargs):
    with pytest.raises(DataError):
        load_dataset("digits", **kwargs)


# ---- MNIST IDX -------------------------------------------------------------------------------

def _idx_bytes(a: np.ndarray) -> bytes:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i2"): 0x0B, np.dtype(">f4"): 0x0D}
    header = bytes([0, 0, codes[a.dtype], a.ndim])
    header += b"".join(int(s).to_bytes(4, "big") for s in a.shape)
    return header + a.tobytes()


def _write_idx(path, a, gz=False):
    data = _idx_bytes(a)
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


@pytest.fixture
def mnist_dir(tmp_path):
    rng = np.random.default_rng(2)
    x_tr = rng.integers(0, 256, (20, 5, 4), dtype=np.uint8)
    x_tr[0, 0, :2] = [0, 255]
    x_te = rng.integers(0, 256, (7, 5, 4), dtype=np.uint8)
    y_tr = (np.arange(20) % 10).astype(np.uint8)
    y_te = (np.arange(7) % 10).astype(np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte", x_tr, gz=True)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", y_tr, gz=True)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", x_te)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", y_te)
    return tmp_path, (x_tr, y_tr, x_te, y_te)


def test_idx_load_unchanged(mnist_dir):
    path, (x_tr, y_tr, x_te, y_te) = mnist_dir
    d = load_dataset(str(path))
    assert d.image_shape == (5, 4) and d.classes == list(range(10))
    np.testing.assert_array_equal(d.x_train, x_tr.reshape(20, 20))
    np.testing.assert_array_equal(d.x_test, x_te.reshape(7, 20))
    np.testing.assert_array_equal(d.y_train, y_tr)
    np.testing.assert_array_equal(d.y_test, y_te)


def test_read_idx_other_types(tmp_path):
    for a in (np.arange(-6, 6, dtype=">i2").reshape(3, 4), np.linspace(0, 1, 5, dtype=">f4")):
        _write_idx(tmp_path / "a.idx", a)
        got = read_idx(tmp_path / "a.idx")
        np.testing.assert_array_equal(got, a)
        assert got.dtype.isnative


def test_idx_bad_magic(mnist_dir):
    path, _ = mnist_dir
    f = path / "t10k-labels-idx1-ubyte"
    f.write_bytes(b"\x00\x01" + f.read_bytes()[2:])
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte: .*bad magic number"):
        load_dataset(path)


def test_idx_truncated(mnist_dir):
    path, _ = mnist_dir
    f = path / "t10k-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-3])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte: corrupted IDX file "
                                        r"\(truncated"):
        load_dataset(path)


def test_idx_truncated_gzip(mnist_dir):
    path, _ = mnist_dir
    f = path / "train-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[:30])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: cannot read IDX"):
        load_dataset(path)


def test_idx_count_mismatch_and_missing_file(mnist_dir):
    path, (_, _, _, y_te) = mnist_dir
    _write_idx(path / "t10k-labels-idx1-ubyte", y_te[:5])
    with pytest.raises(DataError, match=r"has 7 images but t10k-labels-idx1-ubyte has 5"):
        load_dataset(path)
    (path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match=r"missing MNIST IDX file\(s\) t10k-labels-idx1-ubyte"):
        load_dataset(path)


def test_idx_wrong_dimensions(mnist_dir):
    path, (_, y_tr, _, _) = mnist_dir
    (path / "train-images-idx3-ubyte.gz").unlink()
    _write_idx(path / "train-images-idx3-ubyte", np.zeros((20, 20), dtype=np.uint8))
    with pytest.raises(DataError, match=r"expected a 3-dimensional IDX file"):
        load_dataset(path)


# ---- float reference -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bp5(digits):
    return train_float(digits.x_train, digits.y_train, digits.x_test, digits.y_test, 128,
                       rule="bp", epochs=5, seed=0)


@pytest.fixture(scope="module")
def dfa5(digits):
    return train_float(digits.x_train, digits.y_train, digits.x_test, digits.y_test, 128,
                       rule="dfa", epochs=5, seed=0)


def test_bp_learns_digits(bp5):
    assert len(bp5.test_accuracy) == 5 and len(bp5.train_accuracy) == 5
    assert max(bp5.test_accuracy) > 0.90
    assert bp5.alignment_deg == [0.0] * 5
    assert bp5.w1.shape == (64, 128) and bp5.w2.shape == (128, 10)
    assert bp5.b1.shape == (128,) and bp5.b2.shape == (10,)


def test_dfa_learns_digits_and_aligns(dfa5):
    assert max(dfa5.test_accuracy) > 0.85
    assert all(0.0 <= a <= 180.0 for a in dfa5.alignment_deg)
    assert dfa5.alignment_deg[2] < 90.0
    assert dfa5.alignment_deg[-1] < dfa5.alignment_deg[0]


def test_alignment_angle():
    m = np.random.default_rng(3).normal(size=(6, 4))
    assert hidden_alignment_deg(m, m) == pytest.approx(0.0, abs=1e-5)
    assert hidden_alignment_deg(m, -2 * m) == pytest.approx(180.0, abs=1e-5)
    assert hidden_alignment_deg(np.eye(2), np.fliplr(np.eye(2))) == pytest.approx(90.0)
    assert np.isnan(hidden_alignment_deg(np.zeros((6, 4)), m))


def test_bp_hidden_delta():
    rng = np.random.default_rng(4)
    w2, e, gate = rng.normal(size=(7, 3)), rng.normal(size=(5, 3)), rng.random((5, 7))
    np.testing.assert_allclose(bp_hidden_delta(w2, e[0], gate[0]), (w2 @ e[0]) * gate[0])
    np.testing.assert_allclose(bp_hidden_delta(w2, e, gate)[2], (w2 @ e[2]) * gate[2])


def test_bp_step_is_the_cross_entropy_gradient():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (1, 6))
    y = np.array([2])
    x_te, y_te = rng.integers(0, 256, (4, 6)), np.array([0, 1, 2, 3])
    lr = 1e-3
    init = train_float(x, y, x_te, y_te, 5, epochs=0, seed=7, lr=lr)
    step = train_float(x, y, x_te, y_te, 5, epochs=1, seed=7, lr=lr)

    def loss(w1, b1, w2, b2):
        h = 1 / (1 + np.exp(-(x[0] / 255 @ w1 + b1)))
        z = h @ w2 + b2
        return np.log(np.exp(z).sum()) - z[y[0]]

    params = [init.w1, init.b1, init.w2, init.b2]
    after = [step.w1, step.b1, step.w2, step.b2]
    for k, (p0, p1) in enumerate(zip(params, after)):
        num = np.zeros_like(p0)
        for idx in np.ndindex(p0.shape):
            hi, lo = [q.copy() for q in params], [q.copy() for q in params]
            hi[k][idx] += 1e-6
            lo[k][idx] -= 1e-6
            num[idx] = (loss(*hi) - loss(*lo)) / 2e-6
        np.testing.assert_allclose((p0 - p1) / lr, num, rtol=1e-4, atol=1e-7)


def test_float_options(digits):
    args = (digits.x_train[:200], digits.y_train[:200], digits.x_test, digits.y_test, 16)
    seen = []
    a = train_float(*args, rule="dfa", epochs=3, progress=lambda *r: seen.append(r))
    b = train_float(*args, rule="dfa", epochs=3)
    assert [r[0] for r in seen] == [0, 1, 2]
    assert [r[2] for r in seen] == a.test_accuracy
    np.testing.assert_array_equal(a.w1, b.w1)

    fb = np.where(np.random.default_rng(9).random((16, 10)) < 0.5, -1, 1)
    c = train_float(*args, rule="dfa", epochs=3, feedback=fb)
    assert not np.array_equal(c.w1, a.w1)
    with pytest.raises(ValueError, match="feedback must have shape"):
        train_float(*args, rule="dfa", epochs=1, feedback=fb[:8])
    with pytest.raises(ValueError, match="rule must be one of"):
        train_float(*args, rule="erbp", epochs=1)

    d = train_float(*args, rule="dfa", epochs=3, lr_decay_epoch=2)
    assert d.test_accuracy[:2] == a.test_accuracy[:2]
    assert not np.array_equal(d.w1, a.w1)
