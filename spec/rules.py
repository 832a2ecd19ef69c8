"""The learning rules the core implements: the one definition of the mode set.

A :class:`Rule` says what the rest of the project needs to know of a rule without knowing
the rule: its mode number (the ``mode`` byte of a ``PRESENT`` request and the core's ``cmd``
port), when it forms its error (``"step"``: every timestep during the presentation, as eRBP;
``"sample"``: once from the spike counts, then a learning phase that replays the input, as
DFA), and the two registers that hold its update shifts (hidden, output). The mode enum of the
core, the host's mode table, ``Config``'s list of rules, the golden model's dispatch and the
command line's ``--rule`` choices are all derived from :data:`RULES`.

Adding a rule: a :class:`Rule` here (the next free mode number), its registers at the end of
``spec.registers.REGISTERS`` (``owner`` = the rule), its twin in ``sim/rules.py`` and its
hardware in ``hdl/``; ``docs/architecture.md`` lists the files.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Rule", "RULES", "RULE_NAMES", "INFER", "MODES", "MODE_NAMES", "ERROR_TIMINGS",
           "mode_number", "learning_shifts"]

#: When a rule forms its error.
ERROR_TIMINGS = ("step", "sample")
#: Mode number of inference (no learning).
INFER = 0


@dataclass(frozen=True)
class Rule:
    """One on-chip learning rule.

    Attributes
    ----------
    name : str
        Name on the command line and in configurations.
    mode : int
        Mode number on the wire and on the core's ``cmd`` port (1, 2, ...).
    error : str
        ``"step"`` or ``"sample"`` (see the module docstring).
    shift_hid, shift_out : str
        Registers holding the update shifts ``s`` of ``d = sround(U, s, r)`` per layer.
    doc : str
        One line for help texts.
    """

    name: str
    mode: int
    error: str
    shift_hid: str
    shift_out: str
    doc: str

    def __post_init__(self):
        if self.error not in ERROR_TIMINGS:
            raise ValueError(f"error must be one of {ERROR_TIMINGS}, not {self.error!r}")
        if self.mode <= INFER:
            raise ValueError(f"a rule's mode number must be above {INFER}")


#: The rules, by name, in mode order.
RULES: dict[str, Rule] = {
    "erbp": Rule("erbp", 1, "step", "lr_shift_hid", "lr_shift_out",
                 "event-driven random backpropagation: the error reaches U every step"),
    "dfa": Rule("dfa", 2, "sample", "dfa_shift_hid", "dfa_shift_out",
                "direct feedback alignment: the error of the spike counts, then a replay"),
}
RULE_NAMES: tuple[str, ...] = tuple(RULES)
#: Presentation modes by name: inference, then one per rule.
MODES: dict[str, int] = {"infer": INFER, **{r.name: r.mode for r in RULES.values()}}
MODE_NAMES: tuple[str, ...] = tuple(MODES)

if sorted(MODES.values()) != list(range(len(MODES))):
    raise ValueError("mode numbers must be 0, 1, 2, ... without gaps")


def mode_number(mode) -> int:
    """The mode number of a mode name (or of a number, checked)."""
    if isinstance(mode, str):
        try:
            return MODES[mode]
        except KeyError:
            raise ValueError(f"mode must be one of {MODE_NAMES}, not {mode!r}") from None
    if int(mode) not in MODES.values():
        raise ValueError(f"mode number must be in 0..{len(MODES) - 1}, not {mode!r}")
    return int(mode)


def learning_shifts() -> tuple[str, ...]:
    """Every rule's update-shift registers (the ones the learning-rate schedule raises)."""
    return tuple(n for r in RULES.values() for n in (r.shift_hid, r.shift_out))
