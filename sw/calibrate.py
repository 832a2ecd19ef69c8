"""Host-side threshold calibration for data the defaults were not tuned on.

The default thresholds suit the digits network (64 inputs of 8-bit pixels). A user's data
may have 5 features or 784, dense or sparse: the hidden input current scales with that, and
a fixed threshold leaves the hidden layer silent or saturated. :func:`calibrate_hidden`
bisects ``theta_hid`` (on the golden model, with the initial weights, in inference) until
the hidden layer fires at a target rate, and scales the hidden boxcar bounds by the same
factor so that the gate keeps its place relative to the threshold. Only runtime registers
change; the result is printed and stored in the checkpoint's configuration.

Training moves the hidden rate away from its calibrated value (on dense data it drifts from
0.10 to about 0.26). With ``Config.recalibrate = "epoch"`` the training loop measures the rate
after each epoch on the same calibration samples, with the weights read back from the backend,
and calls :func:`recalibrate` (the same bisection, from the current thresholds) when it left
``target * (1 ± RECALIBRATION_BAND)``.
"""

from __future__ import annotations

import numpy as np

from sim.golden import GoldenModel
from spec.config import Config

__all__ = ["hidden_rate", "calibrate_hidden", "calibrate_start", "calibration_samples",
           "recalibrate", "in_band", "CALIBRATION_SAMPLES", "RECALIBRATION_BAND"]

#: Training samples the start-of-run calibration looks at.
CALIBRATION_SAMPLES = 256
#: Relative band around the target rate inside which the per-epoch recalibration leaves the
#: thresholds alone.
RECALIBRATION_BAND = 0.3


def hidden_rate(cfg: Config, w1: np.ndarray, X: np.ndarray) -> float:
    """Mean hidden spikes per neuron per step over samples ``X`` (inference, golden model)."""
    m = GoldenModel(cfg, w1, np.zeros((cfg.n_hid, cfg.n_out), np.int32))
    _, hid = m.infer_batch(X, hidden=True)
    return float(hid.sum()) / (len(X) * cfg.n_hid * cfg.timesteps)


def calibrate_hidden(cfg: Config, w1: np.ndarray, X: np.ndarray,
                     target: float = 0.1) -> tuple[Config, float]:
    """Return ``(cfg with theta_hid, bmin_hid, bmax_hid rescaled, achieved rate)``."""
    lo, hi = 1, cfg.s_max
    for _ in range(20):
        mid = (lo + hi) // 2
        if hidden_rate(cfg.replace(theta_hid=mid), w1, X) > target:
            lo = mid + 1
        else:
            hi = mid
        if lo >= hi:
            break
    theta = max(1, lo)
    k = theta / cfg.theta_hid
    bmin = int(np.clip(round(cfg.bmin_hid * k), cfg.s_min, cfg.s_max))
    bmax = int(np.clip(round(cfg.bmax_hid * k), cfg.s_min, cfg.s_max))
    if bmax <= bmin:
        bmax = bmin + 1
    new = cfg.replace(theta_hid=theta, bmin_hid=bmin, bmax_hid=bmax)
    return new, hidden_rate(new, w1, X)


def calibrate_start(cfg: Config, w1: np.ndarray, x_train: np.ndarray, seed: int,
                    target: float = 0.1) -> tuple[Config, float]:
    """The calibration ``python -m sw train`` applies before training (``--calibrate``):
    :func:`calibrate_hidden` on :data:`CALIBRATION_SAMPLES` training samples drawn with
    ``default_rng(seed)``."""
    return calibrate_hidden(cfg, w1, calibration_samples(x_train, seed), target)


def calibration_samples(x_train: np.ndarray, seed: int) -> np.ndarray:
    """The fixed calibration subset: :data:`CALIBRATION_SAMPLES` training samples drawn with
    ``default_rng(seed)`` (the start-of-run calibration and every recalibration)."""
    pick = np.random.default_rng(seed).permutation(len(x_train))[:CALIBRATION_SAMPLES]
    return x_train[pick]


def in_band(rate: float, target: float, band: float = RECALIBRATION_BAND) -> bool:
    return target * (1 - band) <= rate <= target * (1 + band)


def recalibrate(cfg: Config, w1: np.ndarray, X: np.ndarray, target: float = 0.1,
                band: float = RECALIBRATION_BAND) -> tuple[Config, float, float]:
    """The per-epoch check: ``(cfg', rate before, rate after)``. ``cfg'`` is ``cfg`` itself
    while the hidden rate on ``X`` (the calibration samples) is within ``target * (1 ±
    band)``, else :func:`calibrate_hidden`'s result from the current thresholds (the boxcar
    bounds rescaled with ``theta_hid``)."""
    rate = hidden_rate(cfg, w1, X)
    if in_band(rate, target, band):
        return cfg, rate, rate
    new, after = calibrate_hidden(cfg, w1, X, target)
    return new, rate, after
