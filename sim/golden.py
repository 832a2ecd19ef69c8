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

from dataclasses import dataclass, field

import numpy as np

from spec.config import MODES, Config, ConfigError
from spec.fixed import MASK32, center_error, dither, encode, feedback_matrix, target_train

__all__ = ["GoldenModel", "Presentation", "Trace", "UpdateStats", "init_weights"]


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


@dataclass
class Trace:
    """Per-timestep state of one presentation; each array has shape ``(T, n)``. States are
    the values at the end of each timestep (after integration, firing, reset and error)."""
    s_in: np.ndarray
    s_hid: np.ndarray
    v_hid: np.ndarray
    u_hid: np.ndarray
    s_out: np.ndarray
    v_out: np.ndarray
    u_out: np.ndarray
    target: np.ndarray


@dataclass
class UpdateStats:
    """Counts of gated synaptic events (gate open on a presynaptic spike) and of those whose
    rounded update was zero, per layer. A layer whose updates are almost all zero has
    silently stopped learning (learning-rate shift too large)."""
    gated_hid: int = 0
    zero_hid: int = 0
    gated_out: int = 0
    zero_out: int = 0

    def add(self, other: "UpdateStats") -> None:
        self.gated_hid += other.gated_hid
        self.zero_hid += other.zero_hid
        self.gated_out += other.gated_out
        self.zero_out += other.zero_out

    @property
    def zero_fraction_hid(self) -> float:
        return self.zero_hid / self.gated_hid if self.gated_hid else float("nan")

    @property
    def zero_fraction_out(self) -> float:
        return self.zero_out / self.gated_out if self.gated_out else float("nan")


def exact_float(bound: int):
    """The cheapest float type whose matrix products are exact integers when every partial
    sum is at most ``bound`` in magnitude (float32 holds integers up to 2**24)."""
    return np.float32 if bound < (1 << 24) else np.float64


@dataclass
class Presentation:
    counts: np.ndarray          # output spike counts (n_out,)
    hid_counts: np.ndarray      # hidden spike counts (n_hid,)
    pred: int                   # most output spikes, ties to the lowest index
    stats: UpdateStats = field(default_factory=UpdateStats)
    trace: Trace | None = None
    u_hid: np.ndarray | None = None  # DFA: the per-sample hidden error (after the forward phase)
    u_out: np.ndarray | None = None
    #: forward-phase record for the DFA learning phase: hidden spikes, start-of-step V of both
    #: layers, each (T, n)
    forward: tuple | None = field(default=None, repr=False)


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
        if mode == "erbp":
            res = self._present_erbp(s_in, label, trace)
        else:
            res = self._forward(s_in, trace, label)
            if mode == "dfa":
                self._learn_dfa(s_in, label, res)
        if mode != "infer":
            self.sample_counter = (self.sample_counter + 1) & MASK32
        return res

    def _step_base(self) -> int:
        return (self.sample_counter * self._cfg.timesteps) & MASK32

    @staticmethod
    def _fire(c: Config, v, theta):
        s = v >= theta
        if c.reset == "subtract":
            v = np.where(s, v - theta, v)
        else:
            v = np.where(s, 0, v)
        return s, v

    def _forward(self, s_in: np.ndarray, trace: bool, label: int | None) -> Presentation:
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

    def _learn_dfa(self, s_in: np.ndarray, label: int, res: Presentation) -> None:
        """DFA learning phase (spec 6.3): the per-sample output error, projected through B,
        applied on every replayed presynaptic event whose postsynaptic neuron had its boxcar
        open at that step of the forward phase. Each synapse's increments within one phase
        share a sign, so saturating once at the end equals saturating after every event."""
        c = self._cfg
        T = c.timesteps
        s_hid, vh, vo = res.forward
        tgt = target_train(c, label)
        e = tgt.sum(0, dtype=np.int32) - res.counts                        # (n_out,)
        u_out = np.clip(e, c.s_min, c.s_max).astype(np.int32)
        u_hid = np.clip(self._fb @ center_error(e), c.s_min, c.s_max).astype(np.int32)
        res.u_hid, res.u_out = u_hid, u_out
        g1 = (vh > c.bmin_hid) & (vh < c.bmax_hid)                          # (T, n_hid)
        g2 = (vo > c.bmin_out) & (vo < c.bmax_out)                          # (T, n_out)
        steps = self._step_base() + np.arange(T, dtype=np.uint64)[:, None]
        r1 = dither(c, steps, np.arange(c.n_hid), c.dfa_shift_hid)
        r2 = dither(c, steps, c.n_hid + np.arange(c.n_out), c.dfa_shift_out)
        d1 = ((u_hid + r1) >> c.dfa_shift_hid) * g1                         # (T, n_hid)
        d2 = ((u_out + r2) >> c.dfa_shift_out) * g2                         # (T, n_out)
        ev_in = s_in.sum(1, dtype=np.int64)
        ev_hid = s_hid.sum(1, dtype=np.int64)
        res.stats = UpdateStats(
            gated_hid=int(ev_in @ g1.sum(1)), zero_hid=int(ev_in @ (g1 & (d1 == 0)).sum(1)),
            gated_out=int(ev_hid @ g2.sum(1)), zero_out=int(ev_hid @ (g2 & (d2 == 0)).sum(1)))
        # |d| <= 2**(state_bits - 1) >> shift + 1 and at most T events per synapse
        top = max(0, c.state_bits - 1 - min(c.dfa_shift_hid, c.dfa_shift_out))
        ft = exact_float(T * ((1 << top) + 1))
        dw1 = s_in.astype(ft).T @ d1.astype(ft)
        dw2 = s_hid.astype(ft).T @ d2.astype(ft)
        self.w1 = np.clip(self.w1 + dw1.astype(np.int64), c.w_min, c.w_max).astype(np.int32)
        self.w2 = np.clip(self.w2 + dw2.astype(np.int64), c.w_min, c.w_max).astype(np.int32)

    def _present_erbp(self, s_in: np.ndarray, label: int, trace: bool) -> Presentation:
        """eRBP: online learning during the presentation (spec 6.2).

        Gates and updates of both layers come from start-of-step snapshots, so they are
        computed together on one vector of ``n_hid + n_out`` neurons (hidden first)."""
        c = self._cfg
        T, H = c.timesteps, c.n_hid
        tgt = target_train(c, label)
        steps = self._step_base() + np.arange(T, dtype=np.uint64)[:, None]
        r = np.concatenate((dither(c, steps, np.arange(H), c.lr_shift_hid),
                            dither(c, steps, H + np.arange(c.n_out), c.lr_shift_out)), axis=1)
        bmin = np.repeat(np.int32([c.bmin_hid, c.bmin_out]), [H, c.n_out])
        bmax = np.repeat(np.int32([c.bmax_hid, c.bmax_out]), [H, c.n_out])
        lr = np.repeat(np.int32([c.lr_shift_hid, c.lr_shift_out]), [H, c.n_out])
        # Dendrite increment of every neuron for an error e, as one matrix G (rows: hidden then
        # output): hidden rows project the centered error, n_out B e - rowsum(B) sum(e), shifted
        # by err_shift_hid; output rows are e shifted by err_shift_out. Float64 is exact here
        # (|entries| < 2^53), and BLAS makes the per-step product cheap.
        fb = self._fb.astype(np.int64)
        cen = c.n_out * fb - fb.sum(1, keepdims=True)
        G = np.vstack([cen * (1 << c.err_shift_hid),
                       np.eye(c.n_out, dtype=np.int64) * (1 << c.err_shift_out)]).astype(np.float64)
        tgt_f = tgt.astype(np.float64)
        w1, w2 = self.w1, self.w2
        wl, wh, sl, sh = c.w_min, c.w_max, c.s_min, c.s_max
        lv, lu, th1, th2 = c.leak_v, c.leak_u, c.theta_hid, c.theta_out
        subtract = c.reset == "subtract"
        v = np.zeros(H + c.n_out, np.int32)            # [V_hid, V_out]
        u = np.zeros(H + c.n_out, np.int64)            # [U_hid, U_out]
        s_hid = np.zeros((T, H), np.int8)
        s_out = np.zeros((T, c.n_out), np.int8)
        ds = np.zeros((T, H + c.n_out), np.int32)      # gated updates, for the statistics
        gs = np.zeros((T, H + c.n_out), bool)
        in_idx = [row.nonzero()[0] for row in s_in]
        if trace:
            vt = np.zeros((T, H + c.n_out), np.int32)
            ut = np.zeros((T, H + c.n_out), np.int32)
        zero_h = np.zeros(H, np.int32)
        for t in range(T):
            g = (v > bmin) & (v < bmax)
            d = ((u + r[t]) >> lr) * g
            gs[t] = g
            ds[t] = d
            learn = np.count_nonzero(d)
            # hidden layer: one read-modify-write of W1 per input event
            idx = in_idx[t]
            if len(idx):
                rows = w1.take(idx, axis=0)
                i1 = np.add.reduce(rows, 0, dtype=np.int32)
                if learn:
                    rows += d[:H]
                    np.maximum(rows, wl, out=rows)
                    w1[idx] = np.minimum(rows, wh, out=rows)
            else:
                i1 = zero_h
            v1 = v[:H]
            v1 = v1 - (v1 >> lv)
            v1 += i1
            np.maximum(v1, sl, out=v1)
            np.minimum(v1, sh, out=v1)
            s1 = v1 >= th1
            if subtract:
                np.subtract(v1, th1, out=v1, where=s1)
            else:
                v1[s1] = 0
            v[:H] = v1
            s_hid[t] = s1
            # output layer: one read-modify-write of W2 per hidden spike
            hidx = s1.nonzero()[0]
            if len(hidx):
                rows = w2.take(hidx, axis=0)
                i2 = np.add.reduce(rows, 0, dtype=np.int32)
                if learn:
                    rows += d[H:]
                    np.maximum(rows, wl, out=rows)
                    w2[hidx] = np.minimum(rows, wh, out=rows)
                v2 = v[H:]
                v2 = v2 - (v2 >> lv)
                v2 += i2
                np.maximum(v2, sl, out=v2)
                np.minimum(v2, sh, out=v2)
            else:
                v2 = v[H:]
                v2 = v2 - (v2 >> lv)       # no input: the leak cannot leave the range
            s2 = v2 >= th2
            if subtract:
                np.subtract(v2, th2, out=v2, where=s2)
            else:
                v2[s2] = 0
            v[H:] = v2
            s_out[t] = s2
            # error (target minus output) into the dendrites; hidden gets the centered error
            e = tgt_f[t] - s2
            u = u - (u >> lu)
            if np.count_nonzero(e):
                u += (G @ e).astype(np.int64)
                np.maximum(u, sl, out=u)
                np.minimum(u, sh, out=u)
            if trace:
                vt[t], ut[t] = v, u
        counts = s_out.sum(0, dtype=np.int32)
        ev_in = s_in.sum(1, dtype=np.int64)
        ev_hid = s_hid.sum(1, dtype=np.int64)
        gz = gs & (ds == 0)
        st = UpdateStats(gated_hid=int(ev_in @ gs[:, :H].sum(1)),
                         zero_hid=int(ev_in @ gz[:, :H].sum(1)),
                         gated_out=int(ev_hid @ gs[:, H:].sum(1)),
                         zero_out=int(ev_hid @ gz[:, H:].sum(1)))
        res = Presentation(counts=counts, hid_counts=s_hid.sum(0, dtype=np.int32),
                           pred=int(np.argmax(counts)), stats=st)
        if trace:
            res.trace = Trace(s_in=s_in.copy(), s_hid=s_hid, v_hid=vt[:, :H], u_hid=ut[:, :H],
                              s_out=s_out, v_out=vt[:, H:], u_out=ut[:, H:], target=tgt)
        return res

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
