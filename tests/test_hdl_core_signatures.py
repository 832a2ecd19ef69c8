"""The core's component signatures: equality, repr, parameter checks, and the rule set."""

import pytest
from amaranth.hdl import Const

from hdl.core import Mode
from hdl.core.dither import Dither
from hdl.core.feedback import FeedbackPort, HashedFeedback
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
