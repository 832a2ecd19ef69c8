"""Golden-model tests: integer primitives against their written definitions, neuron edge
cases, determinism, batch/single agreement, and a short training run."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.golden import GoldenModel, init_weights
from spec.config import Config
from spec.fixed import (
    center_error,
    dither,
    encode,
    encoder_phase,
    feedback_matrix,
    feedback_values,
    hash32,
    project_error,
    sround,
    stream_key,
    target_train,
)

M32 = 0xFFFFFFFF


def spec_hash32(x):
    """hash32 exactly as written in docs/spec.md section 3."""
    x = (x + 0x9E3779B9) & M32
    x ^= x >> 16
    x = (x + (x << 10)) & M32
    x ^= x >> 6
    x = (x + (x << 3)) & M32
    x ^= x >> 11
    x = (x + (x << 15)) & M32
    x ^= x >> 16
    x = (x + (x << 7)) & M32
    x ^= x >> 13
    return x


# ---- random streams ----------------------------------------------------------------------
@given(st.integers(0, M32))
def test_hash32_scalar_and_vector_paths_match_spec(x):
    assert hash32(x) == spec_hash32(x)
    assert int(hash32(np.array([x], np.uint32))[0]) == spec_hash32(x)


def test_hash32_avalanche():
    """Every input bit flips every output bit with probability close to 1/2. (A weaker mix
    once left bit 31 nearly independent of the low input bits, and with it the rows of B.)"""
    x = np.random.default_rng(0).integers(0, 1 << 32, 20000, dtype=np.uint64).astype(np.uint32)
    hx = hash32(x)
    bits = np.arange(32, dtype=np.uint32)
    for ib in range(32):
        d = hx ^ hash32(x ^ np.uint32(1 << ib))
        p = ((d[:, None] >> bits) & 1).mean(0)
        assert np.all(np.abs(p - 0.5) < 0.05), (ib, p.round(3))


def test_feedback_matrix_matches_written_definition():
    cfg = Config(n_hid=17, n_out=5, seed=0xDEADBEEF)
    key = spec_hash32(spec_hash32(cfg.seed) ^ 1)
    want = np.array([[1 if (spec_hash32(key ^ j ^ ((k >> 5) << 16)) >> (k % 32)) & 1 else -1
                      for k in range(5)] for j in range(17)])
    for row in want:
        if len(set(row)) == 1:                  # a constant row: its entry 0 negated
            row[0] = -row[0]
    np.testing.assert_array_equal(feedback_matrix(cfg), want)
    assert stream_key(cfg.seed, 1) == key


@pytest.mark.parametrize("n_out", [2, 3, 4])
def test_every_hidden_neuron_receives_error(n_out):
    """No row of B is constant, so for every hidden neuron some output error projects to a
    nonzero dendrite input (with n_out = 2, half the hashed rows were constant)."""
    for seed in range(5):
        cfg = Config(n_hid=200, n_out=n_out, seed=seed)
        B = feedback_matrix(cfg)
        assert not np.any(np.all(B == B[:, :1], axis=1))
        # the errors of one output at a time: e = unit vectors span every direction
        reached = np.any(project_error(B, np.eye(n_out, dtype=np.int64)) != 0, axis=0)
        assert reached.all(), f"seed {seed}: {np.flatnonzero(~reached)} get no error"
    # for n_out = 2 every row is then (+1, -1) or (-1, +1), both about equally often
    rows = feedback_matrix(Config(n_hid=4000, n_out=2, seed=1))
    assert np.all(rows.sum(axis=1) == 0) and abs(rows[:, 0].mean()) < 0.05


def test_feedback_matrix_wide_rows():
    """n_out > 32: columns 32.. come from a second hash per row, so they differ from 0.."""
    b = feedback_matrix(Config(n_hid=64, n_out=70))
    assert not np.array_equal(b[:, :32], b[:, 32:64])
    assert abs(b.mean()) < 0.1


def test_dither_is_uniform_and_varies_across_neurons_and_steps():
    cfg = Config(seed=3)
    r = dither(cfg, np.arange(4000)[:, None], np.arange(138)[None, :], 6)
    counts = np.bincount(r.ravel(), minlength=64)
    assert counts.min() > 0.9 * counts.mean() and counts.max() < 1.1 * counts.mean()
    assert len(np.unique(r[0])) > 50                 # neurons in one step differ
    assert len(np.unique(r[:, 5])) == 64             # one neuron over steps covers all


def test_feedback_matrix_is_balanced_and_seeded():
    b = feedback_matrix(Config())
    assert set(np.unique(b)) == {-1, 1}
    assert abs(b.mean()) < 0.1
    # rows must vary: a constant row projects the centered error to exactly zero
    assert np.mean(np.all(b == b[:, :1], axis=1)) < 0.02
    # and columns must be nearly uncorrelated (full-rank feedback)
    assert np.abs(np.corrcoef(b.T) - np.eye(b.shape[1])).max() < 0.35
    assert not np.array_equal(b, feedback_matrix(Config(seed=2)))


def test_dither_matches_written_definition():
    cfg = Config(seed=7)
    key = spec_hash32(spec_hash32(7) ^ 2)
    for g, n, s in [(0, 0, 5), (123456, 130, 9), (M32, 3, 1), (99, 4, 16)]:
        want = ((spec_hash32(key ^ g) + n * 0x9E3779B9) & M32) >> (32 - s)
        assert int(dither(cfg, g, n, s)) == want
    assert int(dither(cfg, 5, 5, 0)) == 0


@given(st.integers(-40000, 40000), st.integers(1, 10))
def test_stochastic_rounding_is_unbiased_and_brackets(v, s):
    r = np.arange(1 << s)
    out = sround(v, s, r)
    assert out.sum() == v  # mean over all dithers is exactly v / 2**s
    assert set(np.unique(out)) <= {v >> s, (v >> s) + 1}


def test_center_error_removes_common_mode():
    e = np.array([1, -1, 0, 1, 1])
    ec = center_error(e)
    assert ec.sum() == 0
    np.testing.assert_array_equal(ec, 5 * e - 2)


def test_feedback_values():
    np.testing.assert_array_equal(feedback_values(1), [-1, 1])
    np.testing.assert_array_equal(feedback_values(3), np.arange(-4, 4))
    for bad in (0, -1, 1.0):
        with pytest.raises(ValueError, match="b_bits"):
            feedback_values(bad)


@pytest.mark.parametrize("b_bits", [1, 2, 3, 4])
def test_project_error_matches_written_definition(b_bits):
    """sum_k B[j, k] (n_out e[k] - sum_m e[m]) as written in spec 6.1, for any signed B."""
    rng = np.random.default_rng(b_bits)
    B = rng.choice(feedback_values(b_bits), (6, 5))
    e = rng.integers(-9, 10, (3, 5))            # a batch of errors
    want = [[sum(int(B[j, k]) * (5 * int(x[k]) - int(x.sum())) for k in range(5))
             for j in range(6)] for x in e]
    np.testing.assert_array_equal(project_error(B, e), want)
    np.testing.assert_array_equal(project_error(B, e[0]), want[0])


@pytest.mark.parametrize("n_out", [1, 2, 3, 10, 33])
def test_project_error_is_the_sign_forms_for_pm1(n_out):
    """For B = +-1 the general projection equals today's three forms: the golden DFA
    ``B @ center_error(e)``, the golden eRBP ``(n_out B - rowsum) e`` and the hardware's
    ``2 (n_out S - c esum)`` (S: the sum of e over the c entries +1 of a row)."""
    rng = np.random.default_rng(n_out)
    for T in (1, 16):                           # eRBP errors -1..1, DFA counts -T..T
        B = rng.choice(feedback_values(1), (9, n_out))
        e = rng.integers(-T, T + 1, n_out)
        got = project_error(B, e)
        np.testing.assert_array_equal(got, B @ center_error(e))
        np.testing.assert_array_equal(got, (n_out * B - B.sum(1, keepdims=True)) @ e)
        plus = B > 0
        np.testing.assert_array_equal(
            got, 2 * (n_out * (plus * e).sum(1) - plus.sum(1) * e.sum()))


@pytest.mark.parametrize("seed", [3, 11])
def test_golden_projection_is_project_error(seed):
    """The golden model's own projection (both rules, its hashed +-1 B) is project_error:
    the DFA ``U_hid`` of a sample, and eRBP's ``U_hid`` step by step (spec 6.2)."""
    cfg = Config(n_in=6, n_hid=7, n_out=4, timesteps=8, state_bits=32, seed=seed,
                 theta_hid=200, theta_out=60, target_rate=200, err_shift_hid=1)
    rng = np.random.default_rng(seed)
    w1, w2 = rng.integers(-20, 80, (6, 7)), rng.integers(-30, 90, (7, 4))
    x = rng.integers(0, 256, 6)
    m = GoldenModel(cfg, w1, w2)
    res = m.present(x, 1, mode="dfa")
    e = target_train(cfg, 1).sum(0) - res.counts
    np.testing.assert_array_equal(res.u_hid, project_error(m.feedback, e))
    tr = GoldenModel(cfg, w1, w2).present(x, 1, mode="erbp", trace=True).trace
    u = np.zeros(cfg.n_hid, np.int64)
    for t in range(cfg.timesteps):
        e = tr.target[t].astype(np.int64) - tr.s_out[t]
        u = u - (u >> cfg.leak_u) + (project_error(m.feedback, e) << cfg.err_shift_hid)
        np.testing.assert_array_equal(tr.u_hid[t], u)


# ---- encoder -----------------------------------------------------------------------------
@given(st.integers(1, 12), st.integers(1, 100))
@settings(max_examples=50)
def test_encoder_counts_and_phase(in_bits, T):
    cfg = Config(n_in=9, in_bits=in_bits, timesteps=T, target_rate=0)
    rng = np.random.default_rng(in_bits * 1000 + T)
    x = rng.integers(0, 1 << in_bits, 9)
    x[0], x[1] = 0, (1 << in_bits) - 1
    s = encode(cfg, x)
    assert s.shape == (T, 9) and set(np.unique(s)) <= {0, 1}
    p = encoder_phase(cfg)
    np.testing.assert_array_equal(s.sum(0), (p + T * x) // (1 << in_bits) - p // (1 << in_bits))
    assert s[:, 0].sum() == 0
    # the batch form is the same
    np.testing.assert_array_equal(encode(cfg, np.stack([x, x]))[1], s)


def test_encoder_phase_written_definition():
    cfg = Config(n_in=5)
    np.testing.assert_array_equal(encoder_phase(cfg), [(i * 159) % 256 for i in range(5)])


def test_target_train():
    cfg = Config(timesteps=64, target_rate=128)
    t = target_train(cfg, 3)
    assert t[:, 3].sum() == 32 and t.sum() == 32


# ---- neuron edge cases -------------------------------------------------------------------
def tiny(**kw):
    base = dict(n_in=1, n_hid=1, n_out=2, timesteps=6, in_bits=1, w_bits=8, state_bits=10,
                leak_v=2, theta_hid=100, theta_out=100, target_rate=1, bmin_hid=-100,
                bmax_hid=100, bmin_out=-100, bmax_out=100)
    base.update(kw)
    return Config(**base)


def run_hidden(cfg, w):
    m = GoldenModel(cfg, np.array([[w]]), np.zeros((1, 2), int))
    return m.present(np.array([1]), mode="infer", trace=True).trace


def test_threshold_is_inclusive_and_reset_subtracts():
    # x = 1 with in_bits = 1: the channel spikes on odd steps (phase 0): steps 1, 3, 5
    tr = run_hidden(tiny(theta_hid=50, leak_v=0), 50)   # leak_v = 0: no memory
    np.testing.assert_array_equal(tr.s_in[:, 0], [0, 1, 0, 1, 0, 1])
    np.testing.assert_array_equal(tr.s_hid[:, 0], [0, 1, 0, 1, 0, 1])  # V == theta fires
    np.testing.assert_array_equal(tr.v_hid[:, 0], [0, 0, 0, 0, 0, 0])
    tr = run_hidden(tiny(theta_hid=51, leak_v=0), 50)
    assert tr.s_hid.sum() == 0


def test_leak_sequence_and_reset_modes():
    # V: 0, 0+0+40 -> 40, 40-10=30, 30-7+40=63, 63-15=48, 48-12+40=76
    tr = run_hidden(tiny(theta_hid=70, leak_v=2), 40)
    np.testing.assert_array_equal(tr.v_hid[:, 0], [0, 40, 30, 63, 48, 76 - 70])
    tr = run_hidden(tiny(theta_hid=70, leak_v=2, reset="zero"), 40)
    np.testing.assert_array_equal(tr.v_hid[:, 0], [0, 40, 30, 63, 48, 0])


def test_negative_membrane_leaks_to_zero():
    # V: -100 then leak with shift 1: -100 - (-50) = -50, ... floor semantics
    tr = run_hidden(tiny(theta_hid=70, leak_v=1, timesteps=2), -100)
    assert tr.v_hid[1, 0] == -100
    cfg = tiny(theta_hid=70, leak_v=1, timesteps=8)
    tr = run_hidden(cfg, -3)
    v = 0
    for t in range(8):
        v = v - (v >> 1) + (-3 if t % 2 else 0)
        assert tr.v_hid[t, 0] == v


def test_membrane_saturates():
    cfg = tiny(theta_hid=511, state_bits=10, leak_v=0, timesteps=2, w_bits=10)
    # a current above s_max saturates at 511 (and then fires at theta 511)
    m = GoldenModel(cfg, np.array([[511]]), np.zeros((1, 2), int))
    tr = m.present(np.array([1]), mode="infer", trace=True).trace
    assert tr.s_hid[1, 0] == 1
    m = GoldenModel(cfg, np.array([[-512]]), np.zeros((1, 2), int))
    tr = m.present(np.array([1]), mode="infer", trace=True).trace
    assert tr.v_hid[1, 0] == -512


def test_weights_saturate_at_rails_under_learning():
    # Output 0 (the label) can never reach its threshold, so its error stays positive and
    # keeps pushing its weights, already at w_max, upwards: they must stay at the rail.
    cfg = Config(n_in=4, n_hid=6, n_out=3, timesteps=16, lr_shift_hid=0, lr_shift_out=0,
                 err_shift_out=6, err_shift_hid=6, bmin_hid=-30000, bmax_hid=30000, leak_v=1,
                 bmin_out=-30000, bmax_out=30000, theta_hid=20, theta_out=30000)
    w1 = np.full((4, 6), cfg.w_max)
    w2 = np.array([[cfg.w_max, cfg.w_min, cfg.w_min]] * 6)
    m = GoldenModel(cfg, w1, w2)
    for _ in range(3):
        res = m.present(np.full(4, 255), 0, mode="erbp")
        assert res.hid_counts.sum() > 0 and res.counts.sum() == 0
        assert cfg.w_min <= m.w1.min() and m.w1.max() <= cfg.w_max
        assert cfg.w_min <= m.w2.min() and m.w2.max() <= cfg.w_max
        assert (m.w2[:, 0] == cfg.w_max).all()
    assert (m.w1 != cfg.w_max).any()           # the hidden layer did learn


# ---- whole-model properties ----------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    from sim.data import load_dataset
    return load_dataset("digits")


@pytest.mark.parametrize("rule", ["erbp", "dfa"])
def test_determinism(digits, rule):
    cfg = Config(seed=3)
    outs = []
    for _ in range(2):
        m = GoldenModel(cfg, *init_weights(cfg, 3))
        for x, y in zip(digits.x_train[:30], digits.y_train[:30]):
            m.present(x, int(y), mode=rule)
        outs.append((m.w1.copy(), m.w2.copy(), m.sample_counter))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    assert outs[0][2] == outs[1][2] == 30
    m = GoldenModel(cfg.replace(seed=4), *init_weights(cfg, 3))
    for x, y in zip(digits.x_train[:30], digits.y_train[:30]):
        m.present(x, int(y), mode=rule)
    assert not np.array_equal(m.w1, outs[0][0])  # the seed matters


def test_batch_inference_equals_single_presentations(digits):
    cfg = Config()
    m = GoldenModel(cfg, *init_weights(cfg, 0))
    X = digits.x_test[:40]
    batch = m.infer_batch(X, batch_size=16)
    single = np.stack([m.present(x).counts for x in X])
    np.testing.assert_array_equal(batch, single)
    assert batch.sum() > 0


def test_prediction_ties_go_to_lowest_index():
    cfg = Config(n_in=2, n_hid=2, n_out=3)
    m = GoldenModel(cfg)  # all-zero weights: silent output
    assert m.present(np.array([255, 255])).pred == 0
    assert list(m.predict(np.array([[255, 255]]))) == [0]


def test_inference_does_not_change_state(digits):
    cfg = Config()
    m = GoldenModel(cfg, *init_weights(cfg, 0))
    w1 = m.w1.copy()
    m.present(digits.x_test[0])
    m.infer_batch(digits.x_test[:5])
    np.testing.assert_array_equal(m.w1, w1)
    assert m.sample_counter == 0


def test_bad_inputs_are_refused():
    m = GoldenModel(Config())
    with pytest.raises(ValueError, match="shape"):
        m.present(np.zeros(63, int))
    with pytest.raises(ValueError, match="lie in"):
        m.present(np.full(64, 256))
    with pytest.raises(ValueError, match="label"):
        m.present(np.zeros(64, int), mode="erbp")
    with pytest.raises(ValueError, match="mode"):
        m.present(np.zeros(64, int), 1, mode="hebb")
    with pytest.raises(ValueError, match="weights"):
        m.set_weights(np.full((64, 128), 300), m.w2)


@pytest.mark.parametrize("rule", ["erbp", "dfa"])
def test_short_training_beats_chance(digits, rule):
    """One pass over 600 samples must reach far above the 10 % of chance."""
    cfg = Config(seed=0)
    m = GoldenModel(cfg, *init_weights(cfg, 0))
    for x, y in zip(digits.x_train[:600], digits.y_train[:600]):
        m.present(x, int(y), mode=rule)
    acc = np.mean(m.predict(digits.x_test) == digits.y_test)
    assert acc > 0.6, acc


def test_wide_configurations_stay_exact():
    """Sums beyond float32's 2**24 (16-bit weights, 700 inputs; DFA with shift 0): the
    batched and vectorised paths must still equal the scalar reference."""
    import random

    from sim.reference import ref_present
    cfg = Config(n_in=700, n_hid=5, n_out=3, w_bits=16, state_bits=32, timesteps=6,
                 theta_hid=1 << 28, theta_out=1 << 20, dfa_shift_hid=0, dfa_shift_out=0,
                 bmin_hid=-(1 << 30), bmax_hid=1 << 30, bmin_out=-(1 << 30), bmax_out=1 << 30,
                 target_rate=255)
    rng = np.random.default_rng(0)
    w1 = rng.integers(30000, 32768, (700, 5))
    w2 = rng.integers(-32768, 32768, (5, 3))
    x = np.full(700, 255)
    m = GoldenModel(cfg, w1, w2)
    tr = m.present(x, mode="infer", trace=True).trace
    ref = ref_present(cfg, w1, w2, 0, x)
    np.testing.assert_array_equal(tr.v_hid, np.array(ref["v_hid"]))
    assert tr.v_hid[1].min() > (1 << 24)      # one step's input current alone exceeds 2**24
    np.testing.assert_array_equal(m.infer_batch(x[None])[0], np.array(ref["counts"]))
    ref = ref_present(cfg, w1, w2, 0, x, 1, mode="dfa", order_rng=random.Random(1))
    m.present(x, 1, mode="dfa")
    np.testing.assert_array_equal(m.w1, np.array(ref["w1"]))
    np.testing.assert_array_equal(m.w2, np.array(ref["w2"]))
