"""The shared checker (``tests.support.compare_presentation``) and the stall generators of
``hdl.testing``: a faithful report is all differences, the first one first, and none for a
faithful copy (the RTL tests rely on it to fail, and to fail legibly)."""

import itertools

import numpy as np
import pytest

from hdl.core import cycles_per_step, presentation_cycles, synaptic_events
from hdl.testing import Presentation, Trace, random_stalls
from sim.golden import GoldenModel
from spec.fixed import encode
from tests.support import (
    Mismatch,
    Scoreboard,
    compare_presentation,
    format_mismatches,
    random_weights,
    samples,
    stress_config,
)


def golden_and_copy(mode="erbp", lanes=2, latency=1):
    """A golden presentation and a core report that copies it exactly."""
    cfg = stress_config()
    rng = np.random.default_rng(7)
    gold = GoldenModel(cfg, *random_weights(cfg, rng))
    (x,), (label,) = samples(cfg, rng, 1)
    res = gold.present(x, label, mode=mode, trace=True)
    tr = Trace(cfg)
    for f in ("s_hid", "v_hid", "u_hid", "s_out", "v_out", "u_out"):
        getattr(tr, f)[:] = getattr(res.trace, f)
    tr.seen[:] = [-(-cfg.n_hid // lanes), -(-cfg.n_out // lanes)]
    s_in, s_hid = encode(cfg, x).sum(1), res.trace.s_hid.sum(1)
    steps = [cycles_per_step(cfg, lanes, int(a), int(b), latency) for a, b in zip(s_in, s_hid)]
    rtl = Presentation(tr, res.counts.copy(), int(res.pred),
                       presentation_cycles(cfg, lanes, mode, s_in, s_hid, latency), steps,
                       synaptic_events(cfg, mode, s_in, s_hid))
    kw = {"mode": mode, "x": x, "lanes": lanes, "latency": latency,
          "weights": (gold.w1.copy(), gold.w2.copy()), "sample_counter": gold.sample_counter}
    return gold, res, rtl, kw


@pytest.mark.parametrize("mode", ["infer", "erbp", "dfa"])
def test_faithful_copy_has_no_differences(mode):
    gold, res, rtl, kw = golden_and_copy(mode)
    assert compare_presentation(0, gold, res, rtl, **kw) == []


def test_first_difference_is_named():
    gold, res, rtl, kw = golden_and_copy()
    rtl.trace.u_out[5, 2] += 1
    rtl.trace.v_hid[6, 0] -= 3
    rtl.trace.v_hid[2, 4] += 1
    d = compare_presentation(3, gold, res, rtl, **kw)
    assert d[0] == Mismatch(3, 2, 4, "v_hid", int(res.trace.v_hid[2, 4]),
                            int(res.trace.v_hid[2, 4]) + 1)
    assert [(m.step, m.field) for m in d] == [(2, "v_hid"), (5, "u_out"), (6, "v_hid")]
    msg = format_mismatches(d, context={3: "erbp"}, limit=2)
    assert msg.startswith("3 difference(s) from the golden model in 1 sample(s) [3]")
    assert f"sample 3, step 2, neuron 4, v_hid: expected {res.trace.v_hid[2, 4]}" in msg
    assert "[erbp]" in msg and "step 6" not in msg      # only the first two


def test_everything_else_is_compared():
    gold, res, rtl, kw = golden_and_copy("dfa")
    rtl.counts[1] += 1
    rtl.pred = (rtl.pred + 1) % len(rtl.counts)
    rtl.cycles += 1
    rtl.step_cycles[3] += 1
    rtl.events -= 1
    rtl.trace.seen[4, 1] = 0
    kw["weights"][1][1, 2] += 1
    kw["sample_counter"] += 1
    padding = [np.zeros((1, 1), np.int64), np.array([[0, 5]])]
    d = compare_presentation(0, gold, res, rtl, padding=padding, **kw)
    assert {m.field for m in d} == {"counts", "pred", "cycles", "step cycles",
                                    "synaptic events", "trace blocks", "W2",
                                    "W2 padding lane", "sample counter"}
    assert Mismatch(0, None, (1, 2), "W2", int(gold.w2[1, 2]), int(gold.w2[1, 2]) + 1) in d
    assert Mismatch(0, 3, None, "step cycles", rtl.step_cycles[3] - 1, rtl.step_cycles[3]) in d


def test_scoreboard_raises_with_the_report():
    gold, res, rtl, kw = golden_and_copy()
    board = Scoreboard("P=2, L=1")
    board.add(0, "erbp", compare_presentation(0, gold, res, rtl, **kw))
    board.check()
    rtl.trace.s_hid[1, 1] ^= 1
    board.add(1, "infer", compare_presentation(1, gold, res, rtl, **kw))
    with pytest.raises(AssertionError, match=r"P=2, L=1: 1 difference\(s\) .*\n  sample 1, "
                                             r"step 1, neuron 1, s_hid: .* \[infer\]"):
        board.check()


def test_stall_generators_are_seeded():
    def take(g):
        return list(itertools.islice(g, 200))

    assert take(random_stalls("a", 0.25)) == take(random_stalls("a", 0.25))
    assert take(random_stalls("a", 0.25)) != take(random_stalls("b", 0.25))
    assert 20 < sum(take(random_stalls(3, 0.25))) < 80
    assert not any(take(random_stalls(3, 0.0)))
