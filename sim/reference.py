"""A second, deliberately naive implementation of ``docs/spec.md`` (sections 3-7).

Written from the text of the specification only, to cross-check the vectorised golden model
(``sim/golden.py``). Everything here is plain Python integers and scalar loops; the synaptic
events of a step are processed one at a time, in natural order or in an order shuffled by a
caller-supplied ``random.Random``. NumPy is used nowhere in the arithmetic (inputs that
happen to be NumPy arrays are converted to nested lists of ``int`` on entry).

Nothing in this module imports ``spec.fixed`` or ``sim.golden``.
"""

from __future__ import annotations

from fractions import Fraction

from spec.rules import MODE_NAMES as MODES

__all__ = ["ref_hash32", "ref_key", "ref_feedback", "ref_dither", "ref_phase_step",
           "ref_encode", "ref_present"]

M32 = 0xFFFFFFFF


# ---- section 3: random streams ----------------------------------------------------------------

def ref_hash32(x: int) -> int:
    """Spec 3: the 32-bit mixing function, every operation modulo 2^32."""
    x = int(x) & M32
    x = (x + 0x9E3779B9) & M32
    x = x ^ (x >> 16)
    x = (x + (x << 10)) & M32
    x = x ^ (x >> 6)
    x = (x + (x << 3)) & M32
    x = x ^ (x >> 11)
    x = (x + (x << 15)) & M32
    x = x ^ (x >> 16)
    x = (x + (x << 7)) & M32
    x = x ^ (x >> 13)
    return x


def ref_key(cfg, domain: int) -> int:
    """Spec 3: key(domain) = hash32(hash32(seed) ^ domain)."""
    return ref_hash32(ref_hash32(cfg.seed) ^ domain)


def ref_feedback_raw(cfg, j, k) -> int:
    """Spec 3: +1 if bit (k mod 32) of hash32(key(1) ^ j ^ ((k >> 5) << 16)) is 1, else -1."""
    h = ref_hash32(ref_key(cfg, 1) ^ int(j) ^ ((int(k) >> 5) << 16))
    return 1 if (h >> (int(k) % 32)) & 1 else -1


def ref_feedback(cfg, j, k) -> int:
    """Spec 3: B[j, k], the raw entry, except that a constant row (n_out >= 2) has its entry
    k = 0 negated."""
    raw = ref_feedback_raw(cfg, j, k)
    if int(k) != 0 or cfg.n_out < 2:
        return raw
    row = {ref_feedback_raw(cfg, j, kk) for kk in range(cfg.n_out)}
    return -raw if len(row) == 1 else raw


def ref_dither(cfg, g, n, s) -> int:
    """Spec 3: the top ``s`` bits of (hash32(key(2) ^ g) + n * 0x9E3779B9) mod 2^32."""
    s = int(s)
    if s == 0:
        return 0
    x = (ref_hash32(ref_key(cfg, 2) ^ (int(g) & M32)) + int(n) * 0x9E3779B9) & M32
    return x >> (32 - s)


# ---- section 2: integer helpers ---------------------------------------------------------------

def _sat(x, lo, hi, counter=None, name=None):
    if x < lo:
        if counter is not None:
            counter[name] += 1
            counter[name + "_lo"] += 1
        return lo
    if x > hi:
        if counter is not None:
            counter[name] += 1
            counter[name + "_hi"] += 1
        return hi
    return x


def _leak(x, k):
    return x - (x >> k)          # Python's >> on int is an arithmetic (floor) shift


def _sround(v, s, r):
    return (v + r) >> s


# ---- section 4: encoder -----------------------------------------------------------------------

def ref_phase_step(in_bits: int) -> int:
    """P: the odd integer nearest 0.618 * 2^in_bits (computed exactly with fractions)."""
    y = Fraction(618, 1000) * (1 << in_bits)
    lo = ((y - 1) // 2) * 2 + 1          # the largest odd integer <= y
    hi = lo + 2
    assert lo <= y < hi
    return int(lo) if (y - lo) < (hi - y) else int(hi)   # no ties: 0.618 * 2^b is never even


def ref_encode(in_bits: int, x: int, phase: int, T: int) -> list:
    """The accumulator encoder of spec 4, stepped literally (carry-out of ``in_bits`` bits)."""
    mod = 1 << in_bits
    a = phase % mod
    out = []
    for _t in range(T):
        a = a + x
        if a >= mod:
            out.append(1)
            a -= mod
        else:
            out.append(0)
    return out


# ---- sections 5-7: one presentation -----------------------------------------------------------

def _to_int_list2(w):
    return [[int(v) for v in row] for row in (w.tolist() if hasattr(w, "tolist") else w)]


def ref_present(cfg, w1, w2, sample_counter: int, x, label=None, mode="infer",
                order_rng=None) -> dict:
    """Run one presentation as docs/spec.md sections 3-7 say. Inputs are not modified.

    Returns a dict of plain lists: the per-step end-of-step trace (``s_in, s_hid, v_hid,
    u_hid, s_out, v_out, u_out, target``; lists of ``T`` lists), ``counts``, ``pred``, the
    weights ``w1``, ``w2`` after the presentation, ``sample_counter`` after it, for DFA
    ``u_hid_err`` and ``u_out_err`` (spec 6.3 step 2), and ``sat``: how many times each kind
    of saturation actually clipped a value (diagnostics for the tests).
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    learn = mode != "infer"
    if learn and label is None:
        raise ValueError("label is required to learn")

    n_in, n_hid, n_out, T = cfg.n_in, cfg.n_hid, cfg.n_out, cfg.timesteps
    s_lo, s_hi = cfg.s_min, cfg.s_max
    w_lo, w_hi = cfg.w_min, cfg.w_max
    W1 = _to_int_list2(w1)          # fresh copies: the caller's arrays are never touched
    W2 = _to_int_list2(w2)
    assert len(W1) == n_in and all(len(r) == n_hid for r in W1)
    assert len(W2) == n_hid and all(len(r) == n_out for r in W2)
    xs = [int(v) for v in (x.tolist() if hasattr(x, "tolist") else x)]
    assert len(xs) == n_in
    sc = int(sample_counter) & M32
    sat = {k + sfx: 0 for k in ("w", "v", "u", "u_err", "w_dfa") for sfx in ("", "_lo", "_hi")}

    def shuffled(events):
        if order_rng is not None:
            order_rng.shuffle(events)
        return events

    # spec 3: feedback matrix entries (regenerated per entry; cached only for speed of lookup)
    B = [[ref_feedback(cfg, j, k) for k in range(n_out)] for j in range(n_hid)]

    # spec 4: input spike trains (accumulator with phase p_i = i * P mod 2^in_bits)
    P = ref_phase_step(cfg.in_bits)
    mod = 1 << cfg.in_bits
    trains = [ref_encode(cfg.in_bits, xs[i], (i * P) % mod, T) for i in range(n_in)]
    s_in_all = [[trains[i][t] for i in range(n_in)] for t in range(T)]
    # target spikes: label neuron gets the encoder at target_rate, phase 0; others silent
    tgt_all = [[0] * n_out for _ in range(T)]
    if label is not None:
        c = int(label)
        assert 0 <= c < n_out
        tt = ref_encode(cfg.in_bits, cfg.target_rate, 0, T)
        for t in range(T):
            tgt_all[t][c] = tt[t]

    def g_of(t):
        return (sc * T + t) & M32

    def fire(v, theta):
        if v >= theta:
            return 1, (v - theta if cfg.reset == "subtract" else 0)
        return 0, v

    # state at the start of the presentation
    V_hid = [0] * n_hid
    V_out = [0] * n_out
    U_hid = [0] * n_hid
    U_out = [0] * n_out
    trace = {k: [] for k in ("s_in", "s_hid", "v_hid", "u_hid", "s_out", "v_out", "u_out",
                             "target")}
    counts = [0] * n_out
    # DFA forward-phase records
    rec_s_hid, rec_g_hid, rec_g_out = [], [], []

    erbp = mode == "erbp"
    for t in range(T):
        g = g_of(t)
        s_in = s_in_all[t]
        tgt = tgt_all[t]
        # 1. snapshots
        V0_hid, V0_out = list(V_hid), list(V_out)
        U0_hid, U0_out = list(U_hid), list(U_out)
        # per-neuron, per-step learning quantities (fixed before any event; spec 6.1/6.2)
        if erbp:
            gate_hid = [cfg.bmin_hid < V0_hid[j] < cfg.bmax_hid for j in range(n_hid)]
            gate_out = [cfg.bmin_out < V0_out[k] < cfg.bmax_out for k in range(n_out)]
            d_hid = [_sround(U0_hid[j], cfg.lr_shift_hid,
                             ref_dither(cfg, g, j, cfg.lr_shift_hid)) for j in range(n_hid)]
            d_out = [_sround(U0_out[k], cfg.lr_shift_out,
                             ref_dither(cfg, g, n_hid + k, cfg.lr_shift_out))
                     for k in range(n_out)]
        if mode == "dfa":
            rec_g_hid.append([cfg.bmin_hid < V0_hid[j] < cfg.bmax_hid for j in range(n_hid)])
            rec_g_out.append([cfg.bmin_out < V0_out[k] < cfg.bmax_out for k in range(n_out)])

        # 2. hidden integration, one synaptic event at a time (read-modify-write for eRBP)
        I1 = [0] * n_hid
        events = shuffled([(i, j) for i in range(n_in) if s_in[i] for j in range(n_hid)])
        for i, j in events:
            w = W1[i][j]
            I1[j] += w
            if erbp and gate_hid[j]:
                W1[i][j] = _sat(w + d_hid[j], w_lo, w_hi, sat, "w")
        # 3-4. hidden membrane and firing
        s_hid = [0] * n_hid
        for j in range(n_hid):
            v = _sat(_leak(V0_hid[j], cfg.leak_v) + I1[j], s_lo, s_hi, sat, "v")
            s_hid[j], V_hid[j] = fire(v, cfg.theta_hid)

        # 5. output integration, membrane, firing (hidden spikes of this step)
        I2 = [0] * n_out
        events = shuffled([(j, k) for j in range(n_hid) if s_hid[j] for k in range(n_out)])
        for j, k in events:
            w = W2[j][k]
            I2[k] += w
            if erbp and gate_out[k]:
                W2[j][k] = _sat(w + d_out[k], w_lo, w_hi, sat, "w")
        s_out = [0] * n_out
        for k in range(n_out):
            v = _sat(_leak(V0_out[k], cfg.leak_v) + I2[k], s_lo, s_hi, sat, "v")
            s_out[k], V_out[k] = fire(v, cfg.theta_out)
            counts[k] += s_out[k]

        # 6-7. error and dendrites (eRBP only)
        if erbp:
            e = [tgt[k] - s_out[k] for k in range(n_out)]
            se = sum(e)
            ec = [n_out * e[k] - se for k in range(n_out)]
            for k in range(n_out):
                U_out[k] = _sat(_leak(U0_out[k], cfg.leak_u) + (e[k] << cfg.err_shift_out),
                                s_lo, s_hi, sat, "u")
            for j in range(n_hid):
                proj = sum(B[j][k] * ec[k] for k in range(n_out))
                U_hid[j] = _sat(_leak(U0_hid[j], cfg.leak_u) + (proj << cfg.err_shift_hid),
                                s_lo, s_hi, sat, "u")
        if mode == "dfa":
            rec_s_hid.append(list(s_hid))

        trace["s_in"].append(list(s_in))
        trace["s_hid"].append(list(s_hid))
        trace["v_hid"].append(list(V_hid))
        trace["u_hid"].append(list(U_hid))
        trace["s_out"].append(list(s_out))
        trace["v_out"].append(list(V_out))
        trace["u_out"].append(list(U_out))
        trace["target"].append(list(tgt))

    result = dict(trace)
    # spec 6.3: DFA error and learning phase, event by event with per-event saturation
    if mode == "dfa":
        E = [sum(tgt_all[t][k] for t in range(T)) - counts[k] for k in range(n_out)]
        sE = sum(E)
        u_out_err = [_sat(E[k], s_lo, s_hi, sat, "u_err") for k in range(n_out)]
        u_hid_err = [_sat(sum(B[j][k] * (n_out * E[k] - sE) for k in range(n_out)),
                          s_lo, s_hi, sat, "u_err") for j in range(n_hid)]
        for t in range(T):
            g = g_of(t)
            s_in = s_in_all[t]          # regenerated by the encoder: the same spikes
            s_hid = rec_s_hid[t]        # replayed
            d_hid = [(_sround(u_hid_err[j], cfg.dfa_shift_hid,
                              ref_dither(cfg, g, j, cfg.dfa_shift_hid))
                      if rec_g_hid[t][j] else 0) for j in range(n_hid)]
            d_out = [(_sround(u_out_err[k], cfg.dfa_shift_out,
                              ref_dither(cfg, g, n_hid + k, cfg.dfa_shift_out))
                      if rec_g_out[t][k] else 0) for k in range(n_out)]
            events = [("1", i, j) for i in range(n_in) if s_in[i] for j in range(n_hid)]
            events += [("2", j, k) for j in range(n_hid) if s_hid[j] for k in range(n_out)]
            for layer, a, b in shuffled(events):
                if layer == "1":
                    W1[a][b] = _sat(W1[a][b] + d_hid[b], w_lo, w_hi, sat, "w_dfa")
                else:
                    W2[a][b] = _sat(W2[a][b] + d_out[b], w_lo, w_hi, sat, "w_dfa")
        result["u_hid_err"] = u_hid_err
        result["u_out_err"] = u_out_err

    # spec 7: prediction, ties to the lowest index
    pred = 0
    for k in range(1, n_out):
        if counts[k] > counts[pred]:
            pred = k
    result.update(counts=counts, pred=pred, w1=W1, w2=W2,
                  sample_counter=((sc + 1) & M32) if learn else sc, sat=sat)
    return result
