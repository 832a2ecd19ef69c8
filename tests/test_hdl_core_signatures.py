"""The core's component signatures: equality, repr, parameter checks, and the rule set."""

import pytest
from amaranth.hdl import Const, signed, unsigned
from amaranth.lib import data

from hdl.core import Mode
from hdl.core.dither import Dither
from hdl.core.feedback import FeedbackPort, HashedFeedback, feedback_layout
from hdl.core.projection import ErrorProjection
from hdl.core.readout import Readout
from hdl.core.rules import DFA, ERBP, RULES, RuleSet
from spec.rules import RULES as SPEC_RULES


def test_signatures_compare_by_parameters():
    a = Readout.Signature(n_out=3, timesteps=4, lanes=2, n_blocks=3)
    assert a == Readout.Signature(n_out=3, timesteps=4, lanes=2, n_blocks=3)
    assert a != Readout.Signature(n_out=3, timesteps=5, lanes=2, n_blocks=3)
    assert repr(a) == "Readout.Signature(n_out=3, timesteps=4, lanes=2, n_blocks=3)"
    assert a.lanes == 2
    assert Dither.Signature(lanes=2, n_hid=5) != FeedbackPort.Signature(lanes=2, n_hid=5,
                                                                        n_out=3)
    fb = HashedFeedback.Signature(lanes=2, n_hid=5, n_out=3)
    assert fb.members["read"].signature == FeedbackPort.Signature(lanes=2, n_hid=5,
                                                                  n_out=3).flip()


@pytest.mark.parametrize("make,exc", [
    (lambda: Dither.Signature(lanes=0, n_hid=3), ValueError),
    (lambda: Dither.Signature(lanes=1.5, n_hid=3), TypeError),
    (lambda: Readout.Signature(n_out=0, timesteps=4, lanes=1, n_blocks=1), ValueError),
    (lambda: ErrorProjection.Signature(n_out=2, lanes=1, timesteps=4, state_bits=1,
                                       n_blocks=1), ValueError),
])
def test_bad_parameters(make, exc):
    with pytest.raises(exc):
        make()


def _projection(b_bits):
    return ErrorProjection.Signature(n_out=3, lanes=2, timesteps=4, state_bits=8, n_blocks=3,
                                     b_bits=b_bits)


@pytest.mark.parametrize("b_bits", [1, 2, 3, 4])
def test_feedback_shapes_match(b_bits):
    """The feedback port's data and the projection's ``b_row`` have one layout: a bit per
    entry (a sign) for ``b_bits = 1``, else ``n_out`` signed entries per lane."""
    port = FeedbackPort.Signature(lanes=2, n_hid=5, n_out=3, b_bits=b_bits)
    want = (data.ArrayLayout(unsigned(3), 2) if b_bits == 1 else
            data.ArrayLayout(data.ArrayLayout(signed(b_bits), 3), 2))
    assert feedback_layout(3, 2, b_bits) == want
    assert port.members["data"].shape == want
    assert _projection(b_bits).members["b_row"].shape == want
    assert port.b_bits == b_bits == _projection(b_bits).b_bits
    assert (port == FeedbackPort.Signature(lanes=2, n_hid=5, n_out=3)) == (b_bits == 1)


def test_hashed_feedback_is_a_sign_source():
    read = HashedFeedback.Signature(lanes=2, n_hid=5, n_out=3).members["read"].signature
    assert read.b_bits == 1
    assert read.members["data"].shape == _projection(1).members["b_row"].shape


@pytest.mark.parametrize("b_bits,exc", [(0, ValueError), (-2, ValueError),
                                        (1.0, TypeError), (True, TypeError)])
def test_bad_b_bits(b_bits, exc):
    msg = "b_bits must be"
    with pytest.raises(exc, match=msg):
        FeedbackPort.Signature(lanes=2, n_hid=5, n_out=3, b_bits=b_bits)
    with pytest.raises(exc, match=msg):
        _projection(b_bits)


def test_rule_set():
    assert [r.mode for r in RULES.rules] == [Mode.ERBP, Mode.DFA]
    assert RULES.forward == [ERBP] and RULES.replay == [DFA]
    with pytest.raises(ValueError):
        RuleSet(ERBP, ERBP)
    # every rule of spec.rules has its hardware, with the mode and shifts spec.rules gives
    with pytest.raises(ValueError, match="no hardware for the rules \\['dfa'\\]"):
        RuleSet(ERBP)
    for hw in RULES.rules:
        rule = SPEC_RULES[hw.name]
        assert (hw.mode.value, hw.error, hw.shift) == (rule.mode, rule.error,
                                                       (rule.shift_hid, rule.shift_out))
    # the choices come down to the mode and the replay flag
    assert RULES.modes_with("error", "step") == [Mode.ERBP]
    assert RULES.modes_with("phase", "replay") == [Mode.DFA]
    assert isinstance(RULES.lane_gate(Const(1), Const(0), Const(1)).shape().width, int)
