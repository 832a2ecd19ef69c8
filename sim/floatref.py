"""Floating-point reference networks of the same size as the spiking network.

A two-layer perceptron ``n_in -> n_hid -> n_out`` (sigmoid hidden layer, softmax output,
cross-entropy loss) trained online, one sample at a time like the device, with plain SGD and
either backpropagation (``"bp"``) or direct feedback alignment (``"dfa"``). It gives the
accuracy a float network reaches on the same data, sizes and schedule as the spiking run, and
for DFA how well its hidden-layer updates align with the true gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["FloatResult", "train_float", "hidden_alignment_deg", "bp_hidden_delta", "RULES"]

RULES = ("bp", "dfa")

#: Alignment is measured on every ALIGN_EVERY-th sample of an epoch.
ALIGN_EVERY = 10


@dataclass
class FloatResult:
    """Outcome of :func:`train_float`.

    Attributes
    ----------
    rule : str
        ``"bp"`` or ``"dfa"``.
    train_accuracy, test_accuracy : list of float
        Accuracy (fraction in 0..1) after each epoch, evaluated without learning.
    alignment_deg : list of float
        Per epoch, the mean angle in degrees between the hidden-layer update the rule made
        and the backpropagation gradient for the same sample and weights (0.0 for ``"bp"``).
    w1, w2, b1, b2 : ndarray
        Final parameters: ``w1`` is ``(n_in, n_hid)``, ``w2`` is ``(n_hid, n_out)``.
    """

    rule: str
    train_accuracy: list[float]
    test_accuracy: list[float]
    alignment_deg: list[float]
    w1: np.ndarray
    w2: np.ndarray
    b1: np.ndarray
    b2: np.ndarray


def bp_hidden_delta(w2: np.ndarray, e: np.ndarray, gate: np.ndarray) -> np.ndarray:
    """Backpropagated hidden delta ``(w2 @ e) * gate``.

    Parameters
    ----------
    w2 : ndarray, shape (n_hid, n_out)
        Output weights.
    e : ndarray, shape (n_out,) or (B, n_out)
        Output error (gradient of the loss with respect to the output pre-activations).
    gate : ndarray, shape (n_hid,) or (B, n_hid)
        Derivative of the hidden nonlinearity (or the spiking model's surrogate for it).
    """
    return (np.asarray(e) @ np.asarray(w2).T) * gate


def hidden_alignment_deg(dw_rule: np.ndarray, dw_bp: np.ndarray) -> float:
    """Angle in degrees between two update matrices of the same shape, taken as flat vectors.

    Returns nan if either is all zero.
    """
    a = np.asarray(dw_rule, dtype=np.float64).ravel()
    b = np.asarray(dw_bp, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"update shapes differ: {np.shape(dw_rule)} vs {np.shape(dw_bp)}")
    return float(_angles_deg(a[None], b[None])[0])


def train_float(x_train, y_train, x_test, y_test, n_hid: int, rule: str = "bp",
                epochs: int = 20, seed: int = 0, lr: float = 0.05, in_bits: int = 8,
                feedback: np.ndarray | None = None, lr_decay_epoch: int | None = None,
                progress: Callable[[int, float, float], None] | None = None) -> FloatResult:
    """Train a float network online (batch size 1) with plain SGD.

    Parameters
    ----------
    x_train, x_test : array_like, shape (N, n_in)
        Input codes ``0 .. 2**in_bits - 1``; the network sees ``x / (2**in_bits - 1)``.
    y_train, y_test : array_like, shape (N,)
        Class ids ``0 .. n_out - 1``.
    n_hid : int
        Hidden layer width.
    rule : {"bp", "dfa"}
        Backpropagation, or direct feedback alignment: hidden delta
        ``(B e) * h (1 - h) / sqrt(n_out)`` with ``e = softmax - onehot``. Dividing the
        ``+-1`` matrix by ``sqrt(n_out)`` keeps ``B e`` about as large as ``e`` itself
        whatever the number of classes, so the hidden learning rate need not be retuned.
    epochs : int
        Passes over the training set.
    seed : int
        Seeds ``np.random.default_rng``, which draws, in order, ``w1`` and ``w2`` (normal,
        std ``1/sqrt(fan_in)``; biases start at zero), a ``+-1`` feedback matrix (drawn even
        when unused, so both rules with one seed start from the same weights and see the same
        sample orders) and a fresh sample order each epoch.
    lr : float
        SGD step size for all parameters.
    in_bits : int
        Width of the input codes.
    feedback : ndarray, shape (n_hid, n_out), optional
        Fixed ``+-1`` matrix ``B`` for DFA (pass the spiking model's); drawn from the seed if
        None. Its width sets ``n_out``; otherwise ``n_out`` is the largest label plus one.
    lr_decay_epoch : int, optional
        Halve ``lr`` from this (0-based) epoch on.
    progress : callable, optional
        Called as ``progress(epoch, train_acc, test_acc)`` after each epoch.

    Returns
    -------
    FloatResult
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, not {rule!r}")
    scale = 1.0 / ((1 << in_bits) - 1)
    xtr = np.asarray(x_train, dtype=np.float64) * scale
    xte = np.asarray(x_test, dtype=np.float64) * scale
    ytr = np.asarray(y_train, dtype=np.int64)
    yte = np.asarray(y_test, dtype=np.int64)
    if xtr.ndim != 2 or xte.ndim != 2 or xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"x_train and x_test must be (N, n_in) with equal n_in, got "
                         f"{xtr.shape} and {xte.shape}")
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise ValueError("x and y lengths differ")
    n_in = xtr.shape[1]
    n_out = int(max(ytr.max(), yte.max())) + 1 if feedback is None else feedback.shape[1]
    if feedback is not None and feedback.shape != (n_hid, n_out):
        raise ValueError(f"feedback must have shape (n_hid, n_out) = ({n_hid}, {n_out}), "
                         f"got {feedback.shape}")
    if ytr.min() < 0 or max(ytr.max(), yte.max()) >= n_out:
        raise ValueError(f"labels must be in 0..{n_out - 1}")

    rng = np.random.default_rng(seed)
    w1 = rng.normal(0.0, 1.0 / np.sqrt(n_in), (n_in, n_hid))
    w2 = rng.normal(0.0, 1.0 / np.sqrt(n_hid), (n_hid, n_out))
    b1 = np.zeros(n_hid)
    b2 = np.zeros(n_out)
    drawn = rng.choice(np.array([-1.0, 1.0]), size=(n_hid, n_out))
    fb = drawn if feedback is None else np.asarray(feedback, dtype=np.float64)
    fb_t = fb.T / np.sqrt(n_out)  # (n_out, n_hid): e @ fb_t == (B e) / sqrt(n_out)
    dfa = rule == "dfa"

    res = FloatResult(rule, [], [], [], w1, w2, b1, b2)
    for epoch in range(epochs):
        step = lr if lr_decay_epoch is None or epoch < lr_decay_epoch else lr / 2
        order = rng.permutation(len(xtr))
        probe = order[::ALIGN_EVERY]
        d_rule = np.empty((len(probe), n_hid))
        d_bp = np.empty((len(probe), n_hid))
        for n, i in enumerate(order):
            x = xtr[i]
            h = _sigmoid(x @ w1 + b1)
            z = h @ w2 + b2
            p = np.exp(z - z.max())
            e = p / p.sum()
            e[ytr[i]] -= 1.0
            gate = h * (1.0 - h)
            d1 = (e @ fb_t) * gate if dfa else bp_hidden_delta(w2, e, gate)
            if dfa and n % ALIGN_EVERY == 0:
                d_rule[n // ALIGN_EVERY] = d1
                d_bp[n // ALIGN_EVERY] = bp_hidden_delta(w2, e, gate)
            w2 -= step * np.outer(h, e)
            b2 -= step * e
            w1 -= step * np.outer(x, d1)
            b1 -= step * d1
        if dfa:
            # The updates are outer(x, d): their angle is the angle between the deltas
            # unless x is all zero, when both updates vanish.
            ang = _angles_deg(d_rule, d_bp)
            ang[~xtr[probe].any(axis=1)] = np.nan
            res.alignment_deg.append(float(np.nanmean(ang)) if np.isfinite(ang).any()
                                     else float("nan"))
        else:
            res.alignment_deg.append(0.0)
        res.train_accuracy.append(_accuracy(xtr, ytr, w1, b1, w2, b2))
        res.test_accuracy.append(_accuracy(xte, yte, w1, b1, w2, b2))
        if progress is not None:
            progress(epoch, res.train_accuracy[-1], res.test_accuracy[-1])
    return res


def _accuracy(x, y, w1, b1, w2, b2) -> float:
    h = _sigmoid(x @ w1 + b1)
    return float(np.mean(np.argmax(h @ w2 + b2, axis=1) == y))


def _sigmoid(a):
    return 0.5 + 0.5 * np.tanh(0.5 * a)  # no overflow for large |a|, unlike 1 / (1 + exp(-a))


def _angles_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise angle in degrees between ``a`` and ``b``; nan where either row is zero."""
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.einsum("ij,ij->i", a, b) / (na * nb)
    cos = np.where((na > 0) & (nb > 0), np.clip(cos, -1.0, 1.0), np.nan)
    return np.degrees(np.arccos(cos))
