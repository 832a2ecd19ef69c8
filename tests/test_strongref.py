"""Tests of the strong float references (sim.strongref) and the built-in datasets
(sim.data: wine, breast_cancer, iris, synth-a, synth-b)."""

from __future__ import annotations

import numpy as np
import pytest

from sim.data import BUILTIN, load_dataset
from sim.strongref import (
    dfa_feedback,
    gradients,
    init_params,
    standardise,
    train_logreg,
    train_strong,
)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def synth_b():
    return load_dataset("synth-b")


def _fit(ds, rule, **kw):
    return train_strong(ds.x_train, ds.y_train, ds.x_test, ds.y_test, 128, rule, **kw)


# ---- strong references -----------------------------------------------------------------------
def test_strong_bp_reaches_96_percent_on_digits(digits):
    r = _fit(digits, "bp", epochs=30, seed=0)
    assert r.rule == "bp" and r.epochs == 30 and r.feedback is None
    assert r.test_accuracy >= 0.96, r
    assert r.train_accuracy >= r.test_accuracy


def test_deterministic_for_a_seed(synth_b):
    a = _fit(synth_b, "dfa", epochs=3, seed=5)
    b = _fit(synth_b, "dfa", epochs=3, seed=5)
    c = _fit(synth_b, "dfa", epochs=3, seed=6)
    assert (a.test_accuracy, a.train_accuracy) == (b.test_accuracy, b.train_accuracy)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    np.testing.assert_array_equal(a.feedback, b.feedback)
    assert not np.array_equal(a.params["w1"], c.params["w1"])
    la = train_logreg(synth_b.x_train, synth_b.y_train, synth_b.x_test, synth_b.y_test)
    lb = train_logreg(synth_b.x_train, synth_b.y_train, synth_b.x_test, synth_b.y_test)
    np.testing.assert_array_equal(la.params["w"], lb.params["w"])


def test_strong_networks_beat_logistic_regression_on_a_dense_task(synth_b):
    lr = train_logreg(synth_b.x_train, synth_b.y_train, synth_b.x_test, synth_b.y_test)
    assert lr.rule == "logreg" and lr.epochs >= 1
    for rule in ("bp", "dfa"):
        r = _fit(synth_b, rule, epochs=60, seed=0)
        assert r.test_accuracy > lr.test_accuracy + 0.1, (rule, r, lr)


def test_dfa_feedback_is_fixed_and_its_updates_differ_from_bp(synth_b):
    rng = np.random.default_rng(0)
    fb = dfa_feedback(128, 4, rng)
    r = _fit(synth_b, "dfa", epochs=2, seed=0, feedback=fb)
    np.testing.assert_array_equal(r.feedback, fb)        # never learned
    assert not r.feedback.flags.writeable
    x, _ = standardise(synth_b.x_train[:64], synth_b.x_test)
    y = synth_b.y_train[:64]
    p = init_params(x.shape[1], 128, 4, np.random.default_rng(1))
    g_bp = gradients(p, x, y, "bp")
    g_dfa = gradients(p, x, y, "dfa", fb)
    np.testing.assert_allclose(g_dfa["w2"], g_bp["w2"])  # same output-layer gradient
    np.testing.assert_allclose(g_dfa["b2"], g_bp["b2"])
    assert not np.allclose(g_dfa["w1"], g_bp["w1"])      # hidden updates differ
    # with feedback = w2 DFA is BP
    np.testing.assert_allclose(gradients(p, x, y, "dfa", p["w2"])["w1"], g_bp["w1"])


def test_bp_gradient_matches_finite_differences(synth_b):
    x, _ = standardise(synth_b.x_train[:16], synth_b.x_test)
    y = synth_b.y_train[:16]
    p = init_params(x.shape[1], 8, 4, np.random.default_rng(2))

    def loss(q):
        h = np.tanh(x @ q["w1"] + q["b1"])
        z = h @ q["w2"] + q["b2"]
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]))

    g = gradients(p, x, y, "bp")
    for k, idx in (("w1", (3, 2)), ("b1", (5,)), ("w2", (1, 3)), ("b2", (0,))):
        q = {n: v.copy() for n, v in p.items()}
        q[k][idx] += 1e-6
        r = {n: v.copy() for n, v in p.items()}
        r[k][idx] -= 1e-6
        assert (loss(q) - loss(r)) / 2e-6 == pytest.approx(g[k][idx], rel=1e-4, abs=1e-8)


def test_standardise_uses_training_statistics():
    xtr = np.array([[0.0, 5.0], [2.0, 5.0]])
    a, b = standardise(xtr, np.array([[4.0, 6.0]]))
    np.testing.assert_allclose(a, [[-1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(b, [[3.0, 1.0]])


def test_bad_arguments(synth_b):
    with pytest.raises(ValueError, match="rule"):
        _fit(synth_b, "sgd", epochs=1)
    with pytest.raises(ValueError, match="feedback"):
        _fit(synth_b, "dfa", epochs=1, feedback=np.ones((3, 3)))


# ---- built-in datasets -----------------------------------------------------------------------
@pytest.mark.parametrize("name, n_feat, n_cls, n_tr, n_te", [
    ("wine", 13, 3, 142, 36), ("breast_cancer", 30, 2, 455, 114), ("iris", 4, 3, 120, 30),
    ("synth-a", 40, 10, 2400, 600), ("synth-b", 20, 4, 1600, 400),
])
def test_builtin_datasets(name, n_feat, n_cls, n_tr, n_te):
    d = load_dataset(name)
    assert name in BUILTIN and d.name == name
    assert d.x_train.shape == (n_tr, n_feat) and d.x_test.shape == (n_te, n_feat)
    assert d.n_features == n_feat and d.n_classes == n_cls
    assert d.x_train.dtype == np.uint8 and d.image_shape in (None, (2, 2))
    # stratified: every class in both splits, in the proportions of the whole
    tr, te = np.bincount(d.y_train, minlength=n_cls), np.bincount(d.y_test, minlength=n_cls)
    assert (tr > 0).all() and (te > 0).all()
    np.testing.assert_allclose(tr / n_tr, te / n_te, atol=0.05)
    e = load_dataset(name)                         # deterministic
    np.testing.assert_array_equal(d.x_train, e.x_train)
    np.testing.assert_array_equal(d.y_test, e.y_test)


def test_synthetic_tasks_are_dense():
    from sklearn.datasets import make_classification

    from sim import data
    for name, kw in data._SYNTH.items():
        x, _ = make_classification(**kw)
        assert abs(x.mean()) < 0.5, name                # centred
        assert np.mean(x == 0) < 0.01, name             # not sparse
        d = load_dataset(name)
        assert np.mean(d.x_train == 0) < 0.01, name
