"""Strong float references: what a well-trained network of the spiking network's size reaches.

:mod:`sim.floatref` mimics the device's schedule (online SGD, sigmoid, raw codes) and is a
weak reference on dense data. The networks here are trained the way one would train a
float network to get the most out of it, so that "within N points of float" compares the
on-chip rules with a well-trained network of the same size:

* :func:`train_strong`: one hidden layer ``n_in -> n_hid -> n_out`` with biases, tanh
  hidden units, softmax cross-entropy, inputs standardised with the training set's
  per-feature mean and standard deviation, Adam, minibatches of 32, a fixed number of epochs
  with a cosine learning-rate schedule and a small L2 penalty; learned with backpropagation
  (``"bp"``) or direct feedback alignment (``"dfa"``, a fixed random feedback matrix that
  is never learned);
* :func:`train_logreg`: a multinomial logistic regression (scikit-learn) on the same
  standardised inputs, the linear baseline.

All train on the quantised codes the spiking model sees (a :class:`sim.data.Dataset`'s
``x_train``/``x_test``) and are deterministic given a seed. NumPy only, except the
logistic regression (scikit-learn).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["StrongResult", "RULES", "standardise", "init_params", "gradients", "train_strong",
           "train_logreg", "dfa_feedback"]

RULES = ("bp", "dfa")


@dataclass
class StrongResult:
    """Outcome of :func:`train_strong` or :func:`train_logreg`.

    Attributes
    ----------
    rule : str
        ``"bp"``, ``"dfa"`` or ``"logreg"``.
    test_accuracy, train_accuracy : float
        Final accuracy, fraction in 0..1.
    epochs : int
        Passes over the training set (for the logistic regression: the solver's iterations).
    params : dict
        Final parameters (``w1 (n_in, n_hid), b1, w2 (n_hid, n_out), b2``; for the logistic
        regression ``w (n_in, n_out), b``), in the standardised input space.
    feedback : ndarray or None
        DFA's fixed feedback matrix ``(n_hid, n_out)``; None otherwise.
    """

    rule: str
    test_accuracy: float
    train_accuracy: float
    epochs: int
    params: dict = field(default_factory=dict, repr=False)
    feedback: np.ndarray | None = field(default=None, repr=False)


def standardise(x_train, x_test) -> tuple[np.ndarray, np.ndarray]:
    """Both sets standardised with the training set's per-feature mean and standard deviation
    (a feature constant in training is only centred)."""
    xtr = np.asarray(x_train, dtype=np.float64)
    xte = np.asarray(x_test, dtype=np.float64)
    mu = xtr.mean(axis=0)
    sd = xtr.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return (xtr - mu) / sd, (xte - mu) / sd


def init_params(n_in: int, n_hid: int, n_out: int, rng: np.random.Generator) -> dict:
    """Glorot-uniform weights, zero biases."""
    def glorot(a, b):
        lim = np.sqrt(6.0 / (a + b))
        return rng.uniform(-lim, lim, size=(a, b))
    return {"w1": glorot(n_in, n_hid), "b1": np.zeros(n_hid),
            "w2": glorot(n_hid, n_out), "b2": np.zeros(n_out)}


def dfa_feedback(n_hid: int, n_out: int, rng: np.random.Generator) -> np.ndarray:
    """A random feedback matrix ``(n_hid, n_out)``, normal with std ``1/sqrt(n_out)``."""
    return rng.standard_normal((n_hid, n_out)) / np.sqrt(n_out)


def _forward(p, x):
    h = np.tanh(x @ p["w1"] + p["b1"])
    z = h @ p["w2"] + p["b2"]
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return h, e / e.sum(axis=1, keepdims=True)


def gradients(params: dict, x: np.ndarray, y: np.ndarray, rule: str = "bp",
              feedback: np.ndarray | None = None, l2: float = 0.0) -> dict:
    """The update directions of one minibatch (mean cross-entropy, plus ``l2/2 |w|^2``).

    For ``"bp"`` the true gradient; for ``"dfa"`` the output layer's gradient is the same
    and the hidden delta is ``(e @ feedback.T) * (1 - h**2)`` with ``e = softmax - onehot``.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, not {rule!r}")
    h, prob = _forward(params, x)
    e = prob
    e[np.arange(len(y)), y] -= 1.0
    e /= len(y)
    back = params["w2"] if rule == "bp" else feedback
    if back is None:
        raise ValueError("rule 'dfa' needs a feedback matrix")
    dh = (e @ back.T) * (1.0 - h * h)
    return {"w1": x.T @ dh + l2 * params["w1"], "b1": dh.sum(axis=0),
            "w2": h.T @ e + l2 * params["w2"], "b2": e.sum(axis=0)}


def _accuracy(p, x, y) -> float:
    return float(np.mean(np.argmax(_forward(p, x)[1], axis=1) == y)) if len(y) else float("nan")


def _check(x_train, y_train, x_test, y_test):
    ytr = np.asarray(y_train, dtype=np.int64)
    yte = np.asarray(y_test, dtype=np.int64)
    xtr, xte = standardise(x_train, x_test)
    if xtr.ndim != 2 or xte.ndim != 2 or xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"x_train and x_test must be (N, n_in) with equal n_in, got "
                         f"{xtr.shape} and {xte.shape}")
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise ValueError("x and y lengths differ")
    return xtr, ytr, xte, yte


def train_strong(x_train, y_train, x_test, y_test, n_hid: int, rule: str = "bp", *,
                 epochs: int = 60, seed: int = 0, lr: float = 2e-3, batch_size: int = 32,
                 l2: float = 1e-4, n_out: int | None = None,
                 feedback: np.ndarray | None = None) -> StrongResult:
    """Train the strong one-hidden-layer reference.

    Parameters
    ----------
    x_train, x_test : array_like, shape (N, n_in)
        The quantised codes (any numeric features); standardised here with the training
        set's statistics.
    y_train, y_test : array_like, shape (N,)
        Class ids ``0 .. n_out - 1``.
    n_hid : int
        Hidden width (the spiking network's).
    rule : {"bp", "dfa"}
    epochs : int
        Passes over the training set; the Adam step size follows ``lr * (1 + cos(pi t)) / 2``
        over the run (``t`` from 0 to 1), a fixed schedule.
    seed : int
        Seeds ``np.random.default_rng``, which draws, in order, the weights, the DFA feedback
        matrix (drawn for both rules, so both start from the same weights and see the same
        minibatches) and each epoch's sample order.
    lr, batch_size, l2 :
        Adam's step size (betas 0.9, 0.999), the minibatch size, the L2 penalty.
    n_out : int, optional
        Output width; default the largest label plus one.
    feedback : ndarray (n_hid, n_out), optional
        DFA's fixed feedback matrix (e.g. the spiking model's +-1 matrix); drawn from the
        seed if None. It is never updated.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, not {rule!r}")
    if epochs < 1 or batch_size < 1:
        raise ValueError("epochs and batch_size must be at least 1")
    xtr, ytr, xte, yte = _check(x_train, y_train, x_test, y_test)
    n_out = n_out or int(max(ytr.max(), yte.max() if len(yte) else 0)) + 1
    rng = np.random.default_rng(seed)
    p = init_params(xtr.shape[1], n_hid, n_out, rng)
    drawn = dfa_feedback(n_hid, n_out, rng)
    fb = None
    if rule == "dfa":
        fb = drawn if feedback is None else np.asarray(feedback, dtype=np.float64).copy()
        if fb.shape != (n_hid, n_out):
            raise ValueError(f"feedback must have shape ({n_hid}, {n_out}), not {fb.shape}")
        fb.setflags(write=False)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    b1, b2, eps = 0.9, 0.999, 1e-8
    n = len(xtr)
    steps = epochs * -(-n // batch_size)
    t = 0
    for _ in range(epochs):
        order = rng.permutation(n)
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            g = gradients(p, xtr[idx], ytr[idx], rule, fb, l2)
            step = lr * 0.5 * (1.0 + np.cos(np.pi * t / steps))
            t += 1
            for k in p:
                m[k] = b1 * m[k] + (1 - b1) * g[k]
                v[k] = b2 * v[k] + (1 - b2) * g[k] * g[k]
                mh = m[k] / (1 - b1 ** t)
                vh = v[k] / (1 - b2 ** t)
                p[k] -= step * mh / (np.sqrt(vh) + eps)
    return StrongResult(rule=rule, test_accuracy=_accuracy(p, xte, yte),
                        train_accuracy=_accuracy(p, xtr, ytr), epochs=epochs, params=p,
                        feedback=fb)


def train_logreg(x_train, y_train, x_test, y_test, *, max_iter: int = 5000, C: float = 1.0,
                 seed: int = 0) -> StrongResult:
    """Multinomial logistic regression (scikit-learn, lbfgs) on standardised inputs."""
    from sklearn.linear_model import LogisticRegression

    xtr, ytr, xte, yte = _check(x_train, y_train, x_test, y_test)
    clf = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    clf.fit(xtr, ytr)
    te = float(np.mean(clf.predict(xte) == yte)) if len(yte) else float("nan")
    return StrongResult(rule="logreg", test_accuracy=te,
                        train_accuracy=float(np.mean(clf.predict(xtr) == ytr)),
                        epochs=int(np.max(clf.n_iter_)),
                        params={"w": clf.coef_.T.copy(), "b": clf.intercept_.copy()})
