"""DFA in the golden model (``docs/spec.md`` 6.3): the twin of ``spec.rules.RULES["dfa"]``.

A forward phase without learning, then the error of the spike counts is projected through
``B`` once and applied in a learning phase that replays every presynaptic event.
"""

from __future__ import annotations

import numpy as np

from spec.fixed import center_error, dither, target_train
from spec.rules import RULES

from ..results import Presentation, UpdateStats, exact_float

__all__ = ["DFA"]


class DFA:
    """Golden twin of the DFA rule (error timing ``"sample"``)."""

    rule = RULES["dfa"]

    def present(self, model, s_in: np.ndarray, label: int, trace: bool) -> Presentation:
        res = model.forward(s_in, trace, label)
        self.learn(model, s_in, label, res)
        return res

    def learn(self, model, s_in: np.ndarray, label: int, res: Presentation) -> None:
        """DFA learning phase (spec 6.3): the per-sample output error, projected through B,
        applied on every replayed presynaptic event whose postsynaptic neuron had its boxcar
        open at that step of the forward phase. Each synapse's increments within one phase
        share a sign, so saturating once at the end equals saturating after every event."""
        c = model.cfg
        T = c.timesteps
        s_hid, vh, vo = res.forward
        tgt = target_train(c, label)
        e = tgt.sum(0, dtype=np.int32) - res.counts                        # (n_out,)
        u_out = np.clip(e, c.s_min, c.s_max).astype(np.int32)
        u_hid = np.clip(model.feedback @ center_error(e), c.s_min, c.s_max).astype(np.int32)
        res.u_hid, res.u_out = u_hid, u_out
        g1 = (vh > c.bmin_hid) & (vh < c.bmax_hid)                          # (T, n_hid)
        g2 = (vo > c.bmin_out) & (vo < c.bmax_out)                          # (T, n_out)
        steps = model.step_base() + np.arange(T, dtype=np.uint64)[:, None]
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
        model.w1 = np.clip(model.w1 + dw1.astype(np.int64), c.w_min, c.w_max).astype(np.int32)
        model.w2 = np.clip(model.w2 + dw2.astype(np.int64), c.w_min, c.w_max).astype(np.int32)
