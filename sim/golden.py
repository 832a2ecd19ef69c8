"""The NumPy golden model: the executable form of ``docs/spec.md``.

One :class:`GoldenModel` holds the two weight matrices and the sample counter that seeds the
rounding dither. :meth:`GoldenModel.present` runs one sample presentation (``T`` timesteps)
in ``infer``, ``erbp`` or ``dfa`` mode and can return every per-timestep state (spikes, V,
U) for comparison with the RTL. :meth:`GoldenModel.infer_batch` runs inference on many
samples at once, bit-identical to ``present(..., mode="infer")``.

All arithmetic is integer; float matrix products are used only where their result is an
exactly representable integer (sums of at most a few thousand small integers).
"""

from __future__ import annotations

import numpy as np

from spec.config import MODES, Config, ConfigError
from spec.fixed import MASK32, encode, feedback_matrix, target_train

from .results import Presentation, Trace, UpdateStats, exact_float
from .rules import GOLDEN_RULES

__all__ = ["GoldenModel", "Presentation", "Trace", "UpdateStats", "init_weights", "exact_float"]


def init_weights(cfg: Config, seed: int, std_hid: float | None = None,
                 std_out: float | None = None, mean_hid: float | None = None):
    """Host-side initial weights: rounded normal draws (NumPy ``default_rng(seed)``),
    saturated to the weight range. ``std_*`` and ``mean_hid`` are in weight LSBs and default
    to the configuration's ``init_*`` fields; a positive ``mean_hid`` keeps hidden neurons
    from starting silent (inputs are all non-negative)."""
    std_hid = cfg.init_std_hid if std_hid is None else std_hid
    std_out = cfg.init_std_out if std_out is None else std_out
    mean_hid = cfg.init_mean_hid if mean_hid is None else mean_hid
    rng = np.random.default_rng(seed)
    w1 = np.rint(rng.normal(mean_hid, std_hid, (cfg.n_in, cfg.n_hid)))
    w2 = np.rint(rng.normal(0.0, std_out, (cfg.n_hid, cfg.n_out)))
    return (np.clip(w1, cfg.w_min, cfg.w_max).astype(np.int32),
            np.clip(w2, cfg.w_min, cfg.w_max).astype(np.int32))


class GoldenModel:
    """Bit-exact reference of the learning core.

    Parameters
    ----------
    cfg : Config
    w1, w2 : integer arrays ``(n_in, n_hid)`` and ``(n_hid, n_out)``; zeros if omitted.
    """

    def __init__(self, cfg: Config, w1=None, w2=None):
        self._cfg = cfg
        self.w1 = np.zeros((cfg.n_in, cfg.n_hid), np.int32)
        self.w2 = np.zeros((cfg.n_hid, cfg.n_out), np.int32)
        self.set_weights(self.w1 if w1 is None else w1, self.w2 if w2 is None else w2)
        self.sample_counter = 0
        self._fb = feedback_matrix(cfg)

    # ---- configuration ------------------------------------------------------------------
    @property
    def cfg(self) -> Config:
        return self._cfg

    @property
    def feedback(self) -> np.ndarray:
        return self._fb

    def set_registers(self, *, checked: bool = True, **regs) -> None:
        """Rewrite runtime registers (fields of kind ``reg``); architecture is fixed.
        ``checked=False`` skips the cross-field checks, as the device does."""
        kinds = Config.field_kinds()
        fixed = [k for k in regs if kinds.get(k) == "arch"]
        if fixed:
            raise ConfigError(f"not a runtime register: {', '.join(fixed)}")
        self._cfg = self._cfg.replace(**regs) if checked else self._cfg.replace_unchecked(**regs)
        if "seed" in regs:
            self._fb = feedback_matrix(self._cfg)

    def set_weights(self, w1, w2) -> None:
        c = self._cfg
        w1 = np.asarray(w1)
        w2 = np.asarray(w2)
        if w1.shape != (c.n_in, c.n_hid) or w2.shape != (c.n_hid, c.n_out):
            raise ValueError(f"weights must have shapes {(c.n_in, c.n_hid)} and "
                             f"{(c.n_hid, c.n_out)}, got {w1.shape} and {w2.shape}")
        for w in (w1, w2):
            if w.size and (w.min() < c.w_min or w.max() > c.w_max):
                raise ValueError(f"weights must lie in [{c.w_min}, {c.w_max}]")
        self.w1 = w1.astype(np.int32, copy=True)
        self.w2 = w2.astype(np.int32, copy=True)

    # ---- input checks ---------------------------------------------------------------------
    def _check_x(self, x, batch: bool) -> np.ndarray:
        c = self._cfg
        x = np.asarray(x)
        want = 2 if batch else 1
        if x.ndim != want or x.shape[-1] != c.n_in:
            raise ValueError(f"input must have shape {'(B, ' if batch else '('}{c.n_in}), "
                             f"got {x.shape}")
        if not np.issubdtype(x.dtype, np.integer):
            raise ValueError(f"input must be integers in [0, {(1 << c.in_bits) - 1}]")
        if x.size and (x.min() < 0 or x.max() >= (1 << c.in_bits)):
            raise ValueError(f"input values must lie in [0, {(1 << c.in_bits) - 1}]")
        return x.astype(np.int64)

    # ---- one presentation ---------------------------------------------------------------------
    def present(self, x, label: int | None = None, mode: str = "infer",
                trace: bool = False) -> Presentation:
        """Present one sample for ``T`` timesteps. ``label`` is required to learn."""
        c = self._cfg
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        x = self._check_x(x, batch=False)
        if mode != "infer" and label is None:
            raise ValueError(f"a label in 0..{c.n_out - 1} is needed to learn")
        if label is not None:
            if not (0 <= int(label) < c.n_out):
                raise ValueError(f"the label must be in 0..{c.n_out - 1}, not {label}")
            label = int(label)
        s_in = encode(c, x)
        if mode == "infer":
            res = self.forward(s_in, trace, label)
        else:
            res = GOLDEN_RULES[mode].present(self, s_in, label, trace)
        if mode != "infer":
            self.sample_counter = (self.sample_counter + 1) & MASK32
        return res

    def step_base(self) -> int:
        """Global step number of the next presentation's first step (spec 3)."""
        return (self.sample_counter * self._cfg.timesteps) & MASK32

    @staticmethod
    def _fire(c: Config, v, theta):
        s = v >= theta
        if c.reset == "subtract":
            v = np.where(s, v - theta, v)
        else:
            v = np.where(s, 0, v)
        return s, v

    def forward(self, s_in: np.ndarray, trace: bool, label: int | None) -> Presentation:
        """Inference dynamics of one sample (no learning, U stays 0). Also the DFA forward
        phase, for which it keeps the hidden spikes and the start-of-step V of both layers."""
        c = self._cfg
        T = c.timesteps
        out, hid, rec = self._simulate(s_in[None], record=True)
        s_hid, s_out, vh, vo = (a[0] for a in rec)
        res = Presentation(counts=out[0], hid_counts=hid[0], pred=int(np.argmax(out[0])))
        res.forward = (s_hid, vh[:T], vo[:T])
        if trace:
            res.trace = Trace(s_in=s_in.copy(), s_hid=s_hid, v_hid=vh[1:],
                              u_hid=np.zeros((T, c.n_hid), np.int32), s_out=s_out, v_out=vo[1:],
                              u_out=np.zeros((T, c.n_out), np.int32),
                              target=(target_train(c, label) if label is not None
                                      else np.zeros((T, c.n_out), np.int8)))
        return res

    def _simulate(self, s_in: np.ndarray, record: bool = False):
        """Inference dynamics of a batch of spike trains ``(B, T, n_in)``: output and hidden
        spike counts, and with ``record`` the spikes of both layers ``(B, T, n)`` and the V of
        both layers at the start of every step and after the last ``(B, T + 1, n)``."""
        c = self._cfg
        B, T = s_in.shape[0], c.timesteps
        f1 = exact_float(c.n_in << (c.w_bits - 1))
        f2 = exact_float(c.n_hid << (c.w_bits - 1))
        # Input currents of every step at once: the weights do not change in this phase.
        i1 = (s_in.astype(f1) @ self.w1.astype(f1)).astype(np.int64)    # (B, T, n_hid)
        w2f = self.w2.astype(f2)
        v1 = np.zeros((B, c.n_hid), np.int64)
        v2 = np.zeros((B, c.n_out), np.int64)
        out = np.zeros((B, c.n_out), np.int32)
        hid = np.zeros((B, c.n_hid), np.int32)
        if record:
            s_hid = np.zeros((B, T, c.n_hid), np.int8)
            s_out = np.zeros((B, T, c.n_out), np.int8)
            vh = np.zeros((B, T + 1, c.n_hid), np.int32)
            vo = np.zeros((B, T + 1, c.n_out), np.int32)
        for t in range(T):
            v1 = np.clip(v1 - (v1 >> c.leak_v) + i1[:, t], c.s_min, c.s_max)
            s1, v1 = self._fire(c, v1, c.theta_hid)
            hid += s1
            i2 = (s1.astype(f2) @ w2f).astype(np.int64)
            v2 = np.clip(v2 - (v2 >> c.leak_v) + i2, c.s_min, c.s_max)
            s2, v2 = self._fire(c, v2, c.theta_out)
            out += s2
            if record:
                s_hid[:, t], s_out[:, t] = s1, s2
                vh[:, t + 1], vo[:, t + 1] = v1, v2
        return out, hid, ((s_hid, s_out, vh, vo) if record else None)

    # ---- batched inference ------------------------------------------------------------------
    def infer_batch(self, X, batch_size: int = 512, hidden: bool = False):
        """Output spike counts ``(B, n_out)`` for many samples; identical to calling
        ``present(x, mode="infer")`` on each. With ``hidden=True`` also the hidden spike
        counts ``(B, n_hid)``."""
        c = self._cfg
        X = self._check_x(X, batch=True)
        out = np.zeros((len(X), c.n_out), np.int32)
        hid = np.zeros((len(X), c.n_hid), np.int32)
        for b0 in range(0, len(X), batch_size):
            o, h, _ = self._simulate(encode(c, X[b0:b0 + batch_size]))
            out[b0:b0 + len(o)], hid[b0:b0 + len(o)] = o, h
        return (out, hid) if hidden else out

    def predict(self, X) -> np.ndarray:
        """Predicted classes: most output spikes, ties to the lowest index."""
        return np.argmax(self.infer_batch(X), axis=1)
