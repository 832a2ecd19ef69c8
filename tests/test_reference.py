"""Cross-check of the golden model (sim/golden.py) against the naive scalar reference
(sim/reference.py), both implementations of docs/spec.md.

The reference is the "expected" side of every comparison, the golden model the "got" side.

Two divergences this file once pinned were fixed in the golden model (the encoder's phase
step for in_bits other than 8, and the target train in DFA/inference traces); the tests at the
end keep them fixed.
"""

from __future__ import annotations

import random
from functools import cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.golden import GoldenModel
from sim.reference import (
    ref_dither,
    ref_encode,
    ref_feedback,
    ref_hash32,
    ref_phase_step,
    ref_present,
)
from spec.config import Config

TRACE_FIELDS = ("s_in", "s_hid", "v_hid", "u_hid", "s_out", "v_out", "u_out", "target")
M32 = 0xFFFFFFFF
#: in_bits values the broad comparisons draw from.
SAFE_IN_BITS = list(range(1, 13))
SKIP_DFA_TARGET = False


# ---- helpers -----------------------------------------------------------------------------------

def _diff_2d(name, expected, got, out):
    exp = np.asarray(expected, dtype=np.int64)
    g = np.asarray(got)
    if exp.shape != g.shape:
        out.append((name, "shape", exp.shape, g.shape))
        return
    g = g.astype(np.int64)
    for idx in zip(*np.nonzero(exp != g)):
        idx = tuple(int(v) for v in idx)
        out.append((name, idx, int(exp[idx]), int(g[idx])))


def compare(ref: dict, pres, model, mode, where=""):
    """Every field of one presentation; raise with a readable summary on any mismatch."""
    diffs = []
    tr = pres.trace
    assert tr is not None
    for f in TRACE_FIELDS:
        if f == "target" and mode == "dfa" and SKIP_DFA_TARGET:
            continue
        _diff_2d(f, ref[f], getattr(tr, f), diffs)          # index = (step, neuron)
    _diff_2d("counts", ref["counts"], pres.counts, diffs)
    if int(pres.pred) != ref["pred"]:
        diffs.append(("pred", (), ref["pred"], int(pres.pred)))
    _diff_2d("w1", ref["w1"], model.w1, diffs)                # index = (pre, post)
    _diff_2d("w2", ref["w2"], model.w2, diffs)
    if int(model.sample_counter) != ref["sample_counter"]:
        diffs.append(("sample_counter", (), ref["sample_counter"], int(model.sample_counter)))
    if mode == "dfa":
        _diff_2d("dfa u_hid", ref["u_hid_err"], pres.u_hid, diffs)
        _diff_2d("dfa u_out", ref["u_out_err"], pres.u_out, diffs)
    if diffs:
        lines = [f"{len(diffs)} differing entries {where}; first ones "
                 "(field, (step, neuron) or (pre, post), expected=reference, got=golden):"]
        lines += [f"  {d[0]:>14} {d[1]}: expected {d[2]}, got {d[3]}" for d in diffs[:12]]
        raise AssertionError("\n".join(lines))


def random_config(rng: random.Random, **over) -> Config:
    w_bits = rng.randint(3, 8)
    state_bits = rng.randint(w_bits, 12)
    smax = (1 << (state_bits - 1)) - 1
    smin = -smax - 1
    in_bits = rng.choice(SAFE_IN_BITS)

    def bounds():
        if rng.random() < 0.3:                           # wide open gate
            return smin, smax
        a, b = sorted(rng.sample(range(smin, smax + 1), 2))
        return a, b

    bmin_hid, bmax_hid = bounds()
    bmin_out, bmax_out = bounds()
    kw = dict(
        n_in=rng.randint(3, 12), n_hid=rng.randint(2, 9), n_out=rng.randint(2, 5),
        in_bits=in_bits, w_bits=w_bits, state_bits=state_bits,
        timesteps=rng.randint(3, 12),
        theta_hid=rng.randint(1, max(1, smax // rng.choice([1, 4, 16]))),
        theta_out=rng.randint(1, max(1, smax // rng.choice([1, 4, 16]))),
        leak_v=rng.randint(0, state_bits - 1), leak_u=rng.randint(0, state_bits - 1),
        reset=rng.choice(["subtract", "zero"]),
        target_rate=rng.choice([0, (1 << in_bits) - 1, rng.randint(0, (1 << in_bits) - 1)]),
        err_shift_out=rng.randint(0, state_bits - 2), err_shift_hid=rng.randint(0, state_bits - 2),
        lr_shift_hid=rng.randint(0, 24), lr_shift_out=rng.randint(0, 24),
        dfa_shift_hid=rng.randint(0, 24), dfa_shift_out=rng.randint(0, 24),
        bmin_hid=bmin_hid, bmax_hid=bmax_hid, bmin_out=bmin_out, bmax_out=bmax_out,
        seed=rng.choice([0, 1, M32, rng.randint(0, M32)]),
        init_std_hid=0, init_mean_hid=0, init_std_out=0,
    )
    # small learning shifts more often, so that weights actually move and saturate
    for name in ("lr_shift_hid", "lr_shift_out", "dfa_shift_hid", "dfa_shift_out"):
        if rng.random() < 0.6:
            kw[name] = rng.randint(0, 4)
    kw.update(over)
    return Config(**kw)


def random_weights(rng: random.Random, cfg: Config):
    def one():
        r = rng.random()
        if r < 0.1:
            return cfg.w_min
        if r < 0.2:
            return cfg.w_max
        return rng.randint(cfg.w_min, cfg.w_max)
    w1 = np.array([[one() for _ in range(cfg.n_hid)] for _ in range(cfg.n_in)], dtype=np.int64)
    w2 = np.array([[one() for _ in range(cfg.n_out)] for _ in range(cfg.n_hid)], dtype=np.int64)
    return w1, w2


def random_input(rng: random.Random, cfg: Config):
    top = (1 << cfg.in_bits) - 1
    kind = rng.random()
    if kind < 0.1:
        return np.zeros(cfg.n_in, dtype=np.int64)
    if kind < 0.2:
        return np.full(cfg.n_in, top, dtype=np.int64)
    return np.array([rng.choice([0, top, rng.randint(0, top)]) for _ in range(cfg.n_in)],
                    dtype=np.int64)


N_SCENARIOS = 24
N_PRESENTATIONS = 10
SAT_KINDS = tuple(k + sfx for k in ("w", "w_dfa", "v", "u", "u_err")
                  for sfx in ("", "_lo", "_hi"))
LEARN_KINDS = ("w1_erbp", "w2_erbp", "w1_dfa", "w2_dfa", "u_hid_erbp", "u_hid_dfa")


def hidden_learning_config(rng: random.Random) -> Config:
    """A random configuration in which the hidden layer actually learns: hidden learning shifts
    small, hidden gate wide, and a seed whose feedback matrix has mostly non-constant rows (a
    constant row projects the centered error to exactly 0; with few outputs, e.g. n_out = 2,
    half the rows are constant by chance)."""
    base = random_config(rng)
    for _ in range(2000):
        seed = rng.randint(0, M32)
        cfg = base.replace(seed=seed)
        rows = [tuple(ref_feedback(cfg, j, k) for k in range(cfg.n_out)) for j in range(cfg.n_hid)]
        if sum(len(set(r)) > 1 for r in rows) * 2 >= cfg.n_hid:
            break
    return cfg.replace(lr_shift_hid=rng.randint(0, 3), dfa_shift_hid=rng.randint(0, 3),
                       err_shift_hid=rng.randint(0, min(4, cfg.state_bits - 2)),
                       bmin_hid=cfg.s_min, bmax_hid=cfg.s_max - rng.choice([0, cfg.s_max // 2]))


@cache
def run_scenario(idx: int, family: str = "random"):
    """One random configuration, one model, several consecutive presentations in mixed
    modes; compares every presentation; returns the configuration, the tally of saturations
    that clipped, and a tally of how much learning happened (changed weights, nonzero hidden
    error)."""
    rng = random.Random(1000 + idx if family == "random" else 5000 + idx)
    cfg = random_config(rng) if family == "random" else hidden_learning_config(rng)
    w1, w2 = random_weights(rng, cfg)
    # start some models just below the 32-bit wrap of the sample counter
    sc = rng.choice([0, rng.randint(0, 1000), M32 - 1, M32])
    model = GoldenModel(cfg, w1.copy(), w2.copy())
    model.sample_counter = sc
    ref_w1, ref_w2, ref_sc = w1.tolist(), w2.tolist(), sc
    modes = ["infer", "erbp", "dfa"] * ((N_PRESENTATIONS + 2) // 3)
    rng.shuffle(modes)
    tally = dict.fromkeys(SAT_KINDS + LEARN_KINDS, 0)
    for p in range(N_PRESENTATIONS):
        mode = modes[p]
        x = random_input(rng, cfg)
        label = rng.randrange(cfg.n_out) if mode != "infer" else None
        ref = ref_present(cfg, ref_w1, ref_w2, ref_sc, x, label, mode=mode)
        pres = model.present(x.copy(), label, mode=mode, trace=True)
        compare(ref, pres, model, mode,
                where=f"({family} scenario {idx}, presentation {p}, mode {mode}, label {label}, "
                      f"x={x.tolist()}, sample_counter before={ref_sc}, cfg={cfg})")
        if mode != "infer":
            tally[f"w1_{mode}"] += int((np.array(ref["w1"]) != np.array(ref_w1)).sum())
            tally[f"w2_{mode}"] += int((np.array(ref["w2"]) != np.array(ref_w2)).sum())
            u = ref["u_hid"] if mode == "erbp" else [ref["u_hid_err"]]
            tally[f"u_hid_{mode}"] += int(np.any(np.array(u) != 0))
        ref_w1, ref_w2, ref_sc = ref["w1"], ref["w2"], ref["sample_counter"]
        for k in SAT_KINDS:
            tally[k] += ref["sat"][k]
    return cfg, tally


ALL_SCENARIOS = [(i, "random") for i in range(N_SCENARIOS)] + \
                [(i, "hidden") for i in range(N_SCENARIOS // 2)]


# ---- the pinned definition of hash32 -----------------------------------------------------------

def test_hash32_literal_values():
    # Stepped through the hash32 of spec section 3 by hand (scratch computation with uint32
    # wraparound, independent of sim/reference.py), x = 0:
    #   + 0x9E3779B9 -> 0x9e3779b9;  ^ x>>16 -> 0x9e37e78e
    #   + x<<10 -> 0x7dd61f8e;       ^ x>>6  -> 0x7c2147f0
    #   + x<<3  -> 0x5d2b8770;       ^ x>>11 -> 0x5d202200
    #   + x<<15 -> 0x6e202200;       ^ x>>16 -> 0x6e204c20
    #   + x<<7  -> 0x7e465c20;       ^ x>>13 -> 0x7e45ae12
    # x = 1:
    #   0x9e3779ba, 0x9e37e78d, 0x7dd61b8d, 0x7c2143e3, 0x5d2b62fb, 0x5d20c797,
    #   0xc0ec4797, 0xc0ec877b, 0x373044fb, 0x3731fd79
    assert ref_hash32(0) == 0x7E45AE12 == 2118495762
    assert ref_hash32(1) == 0x3731FD79 == 926023033
    assert ref_hash32(0xFFFFFFFF) == 0x14D0BADB == 349223643
    assert ref_hash32(12345) == 0x08D80C55 == 148376661
    for v in (0, 1, 7, 0xDEADBEEF, M32):
        assert 0 <= ref_hash32(v) <= M32


def test_feedback_and_dither_shapes():
    cfg = Config(seed=12345)
    vals = {ref_feedback(cfg, j, k) for j in range(16) for k in range(10)}
    assert vals == {-1, 1}
    assert ref_dither(cfg, 5, 3, 0) == 0
    for s in (1, 4, 9, 24):
        rs = [ref_dither(cfg, g, n, s) for g in range(20) for n in range(5)]
        assert all(0 <= r < (1 << s) for r in rs)
    # key(1)/key(2) separation and the definition through hash32
    h = (ref_hash32(ref_hash32(ref_hash32(12345) ^ 2) ^ 7) + 3 * 0x9E3779B9) & M32
    assert ref_dither(cfg, 7, 3, 5) == h >> 27


def test_feedback_matches_golden():
    for seed in (0, 1, 0xFFFFFFFF, 987654321):
        cfg = Config(n_in=3, n_hid=17, n_out=6, seed=seed, init_std_hid=0, init_std_out=0)
        fb = np.asarray(GoldenModel(cfg).feedback)
        exp = [[ref_feedback(cfg, j, k) for k in range(cfg.n_out)] for j in range(cfg.n_hid)]
        assert fb.tolist() == exp, f"seed {seed}"


def test_encoder_literal_and_closed_form():
    assert ref_phase_step(8) == 159
    for b in range(1, 17):
        P = ref_phase_step(b)
        assert P % 2 == 1 and abs(P - 0.618 * 2 ** b) <= 1
    for b in (1, 3, 8):
        mod = 1 << b
        P = ref_phase_step(b)
        for i in range(6):
            p = (i * P) % mod
            for xv in (0, 1, mod // 2, mod - 1):
                s = ref_encode(b, xv, p, 20)
                closed = [(p + (t + 1) * xv) // mod - (p + t * xv) // mod for t in range(20)]
                assert s == closed


# ---- golden vs reference -------------------------------------------------------------------------

@pytest.mark.parametrize("idx,family", ALL_SCENARIOS)
def test_golden_matches_reference(idx, family):
    run_scenario(idx, family)


def test_saturation_and_learning_were_exercised():
    """The comparisons above mean little unless weights and states actually saturated and
    both layers actually learned under both rules."""
    total = {}
    scen_with = {}
    for idx, family in ALL_SCENARIOS:
        _cfg, tally = run_scenario(idx, family)
        for k, v in tally.items():
            total[k] = total.get(k, 0) + v
            scen_with[k] = scen_with.get(k, 0) + (v > 0)
    for k in ("w", "w_dfa", "v", "u", "w_lo", "w_hi", "v_lo", "v_hi", "u_lo", "u_hi",
              "w_dfa_lo", "w_dfa_hi") + LEARN_KINDS:
        assert scen_with[k] >= 2, f"{k} in fewer than 2 scenarios: {scen_with} {total}"


def test_dfa_per_event_saturation_with_many_hits():
    """DFA learning where the same synapses are pushed past the weight bound many times in
    one presentation (shift 0, wide gates, all inputs firing every step)."""
    rng = random.Random(7)
    hit = 0
    for trial in range(6):
        ib = rng.choice(SAFE_IN_BITS)
        cfg = random_config(rng, in_bits=ib, timesteps=12, n_hid=rng.randint(4, 9),
                            dfa_shift_hid=0, dfa_shift_out=rng.randint(0, 1),
                            bmin_hid=-(1 << 11), bmax_hid=(1 << 11) - 1,
                            bmin_out=-(1 << 11), bmax_out=(1 << 11) - 1,
                            state_bits=12, w_bits=rng.randint(3, 5),
                            target_rate=(1 << ib) - 1,
                            theta_hid=1, theta_out=2047)
        w1, w2 = random_weights(rng, cfg)
        x = np.full(cfg.n_in, (1 << cfg.in_bits) - 1)
        assert cfg.target_rate == x[0]
        model = GoldenModel(cfg, w1.copy(), w2.copy())
        model.sample_counter = trial
        label = rng.randrange(cfg.n_out)
        ref = ref_present(cfg, w1, w2, trial, x, label, mode="dfa")
        pres = model.present(x, label, mode="dfa", trace=True)
        compare(ref, pres, model, "dfa", where=f"(trial {trial}, cfg={cfg})")
        hit += ref["sat"]["w_dfa"] > 0
    assert hit >= 3, f"DFA weights saturated in only {hit} of 6 trials"


def test_wide_words():
    """16-bit weights, 32-bit states: sums far beyond float32 precision."""
    rng = random.Random(99)
    for trial in range(3):
        cfg = random_config(rng, w_bits=16, state_bits=32, n_in=40, n_hid=6,
                            theta_hid=rng.randint(1, 1 << 30), theta_out=rng.randint(1, 1 << 30),
                            bmin_hid=-(1 << 31), bmax_hid=(1 << 31) - 1,
                            bmin_out=-(1 << 31), bmax_out=(1 << 31) - 1,
                            err_shift_out=rng.randint(0, 30), err_shift_hid=rng.randint(0, 30),
                            leak_v=rng.randint(0, 31), leak_u=rng.randint(0, 31))
        w1, w2 = random_weights(rng, cfg)
        model = GoldenModel(cfg, w1.copy(), w2.copy())
        ref_w1, ref_w2, sc = w1.tolist(), w2.tolist(), 0
        for p, mode in enumerate(["erbp", "infer", "dfa", "erbp", "dfa"]):
            x = random_input(rng, cfg)
            label = rng.randrange(cfg.n_out) if mode != "infer" else None
            ref = ref_present(cfg, ref_w1, ref_w2, sc, x, label, mode=mode)
            pres = model.present(x, label, mode=mode, trace=True)
            compare(ref, pres, model, mode, where=f"(trial {trial}, presentation {p}, {mode}, "
                                                  f"cfg={cfg})")
            ref_w1, ref_w2, sc = ref["w1"], ref["w2"], ref["sample_counter"]


def test_reference_does_not_modify_inputs():
    rng = random.Random(3)
    cfg = random_config(rng)
    w1, w2 = random_weights(rng, cfg)
    lw1, lw2 = w1.tolist(), w2.tolist()
    x = random_input(rng, cfg)
    for mode in ("infer", "erbp", "dfa"):
        for a, b in ((w1, w2), (lw1, lw2)):
            before = (np.array(a).copy(), np.array(b).copy(), x.copy())
            ref_present(cfg, a, b, 5, x, 0, mode=mode)
            assert np.array_equal(before[0], a) and np.array_equal(before[1], b)
            assert np.array_equal(before[2], x)


# ---- order independence (spec 8) ---------------------------------------------------------------

def _strip(ref):
    return {k: v for k, v in ref.items() if k != "sat"}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg_seed=st.integers(0, 2 ** 32 - 1), order_seeds=st.lists(st.integers(0, 2 ** 32 - 1),
                                                                   min_size=2, max_size=3),
       mode=st.sampled_from(["infer", "erbp", "dfa"]), sc=st.integers(0, M32),
       hidden=st.booleans())
def test_order_independence(cfg_seed, order_seeds, mode, sc, hidden):
    rng = random.Random(cfg_seed)
    cfg = hidden_learning_config(rng) if hidden else random_config(rng)
    w1, w2 = random_weights(rng, cfg)
    x = random_input(rng, cfg)
    label = rng.randrange(cfg.n_out)
    base = _strip(ref_present(cfg, w1, w2, sc, x, label, mode=mode))
    for s in order_seeds:
        other = _strip(ref_present(cfg, w1, w2, sc, x, label, mode=mode,
                                   order_rng=random.Random(s)))
        assert other == base, f"order seed {s} changed the result ({mode}, {cfg})"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg_seed=st.integers(0, 2 ** 32 - 1), mode=st.sampled_from(["infer", "erbp", "dfa"]),
       sc=st.integers(0, M32), order_seed=st.integers(0, 2 ** 32 - 1), hidden=st.booleans())
def test_golden_matches_shuffled_reference(cfg_seed, mode, sc, order_seed, hidden):
    rng = random.Random(cfg_seed)
    cfg = hidden_learning_config(rng) if hidden else random_config(rng)
    w1, w2 = random_weights(rng, cfg)
    x = random_input(rng, cfg)
    label = rng.randrange(cfg.n_out) if mode != "infer" else None
    ref = ref_present(cfg, w1, w2, sc, x, label, mode=mode, order_rng=random.Random(order_seed))
    model = GoldenModel(cfg, w1.copy(), w2.copy())
    model.sample_counter = sc
    pres = model.present(x, label, mode=mode, trace=True)
    compare(ref, pres, model, mode, where=f"({mode}, sample_counter {sc}, cfg={cfg})")


# ---- regressions of divergences once found between the text and the golden model ----------

@pytest.mark.parametrize("in_bits", [4, 5, 6, 11])
def test_encoder_phase_step_is_nearest_odd(in_bits):
    T = 1 << in_bits                                 # x = 1 fires once, at step 2^b - p - 1
    cfg = Config(n_in=4, n_hid=2, n_out=2, in_bits=in_bits, timesteps=T, target_rate=0,
                 init_std_hid=0, init_mean_hid=0, init_std_out=0)
    x = np.array([1, 1, 3, (1 << in_bits) - 1])
    ref = ref_present(cfg, np.zeros((4, 2), int), np.zeros((2, 2), int), 0, x)
    pres = GoldenModel(cfg).present(x, mode="infer", trace=True)
    compare(ref, pres, GoldenModel(cfg), "infer", where=f"(in_bits {in_bits})")


def test_dfa_trace_records_the_target_train():
    cfg = Config(n_in=2, n_hid=2, n_out=3, in_bits=8, timesteps=8, target_rate=128,
                 init_std_hid=0, init_mean_hid=0, init_std_out=0)
    x = np.array([0, 0])
    ref = ref_present(cfg, np.zeros((2, 2), int), np.zeros((2, 3), int), 0, x, 1, mode="dfa")
    pres = GoldenModel(cfg).present(x, 1, mode="dfa", trace=True)
    assert ref["target"] == np.asarray(pres.trace.target).tolist()


def test_feedback_rows_not_degenerate():
    """Spec 3 (revised): with the longer mix, rows of B are not constant. (The earlier mix made
    ~90% of them constant, and a constant row projects the centered error to exactly 0.)"""
    for seed in (0, 1, 12345):
        cfg = Config(seed=seed)                       # default n_hid=128, n_out=10
        rows = [[ref_feedback(cfg, j, k) for k in range(cfg.n_out)] for j in range(cfg.n_hid)]
        const = sum(len(set(r)) == 1 for r in rows)
        # a fair ±1 coin per entry gives 128 * 2^-9 = 0.25 constant rows on average
        assert const <= 8, f"seed {seed}: {const}/128 hidden rows of B are constant"
        assert abs(sum(map(sum, rows))) / (cfg.n_hid * cfg.n_out) < 0.1


def test_hash32_avalanche_top_bits():
    """Spec 3 states the avalanche property; check it for the bits B and the dither use
    (bit 31, the top bits) against the low input bits (j, k, n, g are small numbers).
    Tolerance 0.05, as the spec states."""
    rng = random.Random(0)
    xs = [rng.getrandbits(32) for _ in range(20000)]      # sigma of p: 0.0035
    hx = [ref_hash32(x) for x in xs]
    for ib in (0, 1, 2, 3, 4, 5, 8, 16, 31):
        d = [h ^ ref_hash32(x ^ (1 << ib)) for x, h in zip(xs, hx)]
        for ob in (31, 30, 29, 28, 24):
            p = sum((v >> ob) & 1 for v in d) / len(d)
            assert abs(p - 0.5) < 0.05, (ib, ob, p)
