"""eRBP in the golden model (``docs/spec.md`` 6.2): the twin of ``spec.rules.RULES["erbp"]``.

Online learning during the presentation: every step the error reaches the dendrites ``U``
(through ``B`` for hidden neurons) and every presynaptic event updates its synapse.
"""

from __future__ import annotations

import numpy as np

from spec.fixed import dither, target_train
from spec.rules import RULES

from ..results import Presentation, Trace, UpdateStats

__all__ = ["ERBP"]


class ERBP:
    """Golden twin of the eRBP rule (error timing ``"step"``)."""

    rule = RULES["erbp"]

    def present(self, model, s_in: np.ndarray, label: int, trace: bool) -> Presentation:
        """eRBP: online learning during the presentation (spec 6.2).

        Gates and updates of both layers come from start-of-step snapshots, so they are
        computed together on one vector of ``n_hid + n_out`` neurons (hidden first)."""
        c = model.cfg
        T, H = c.timesteps, c.n_hid
        tgt = target_train(c, label)
        steps = model.step_base() + np.arange(T, dtype=np.uint64)[:, None]
        r = np.concatenate((dither(c, steps, np.arange(H), c.lr_shift_hid),
                            dither(c, steps, H + np.arange(c.n_out), c.lr_shift_out)), axis=1)
        bmin = np.repeat(np.int32([c.bmin_hid, c.bmin_out]), [H, c.n_out])
        bmax = np.repeat(np.int32([c.bmax_hid, c.bmax_out]), [H, c.n_out])
        lr = np.repeat(np.int32([c.lr_shift_hid, c.lr_shift_out]), [H, c.n_out])
        # Dendrite increment of every neuron for an error e, as one matrix G (rows: hidden then
        # output): hidden rows project the centered error, n_out B e - rowsum(B) sum(e), shifted
        # by err_shift_hid; output rows are e shifted by err_shift_out. Float64 is exact here
        # (|entries| < 2^53), and BLAS makes the per-step product cheap.
        fb = model.feedback.astype(np.int64)
        cen = c.n_out * fb - fb.sum(1, keepdims=True)
        G = np.vstack([cen * (1 << c.err_shift_hid),
                       np.eye(c.n_out, dtype=np.int64) * (1 << c.err_shift_out)]).astype(np.float64)
        tgt_f = tgt.astype(np.float64)
        w1, w2 = model.w1, model.w2
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
