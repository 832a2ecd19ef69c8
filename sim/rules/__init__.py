"""The learning rules of the golden model: one twin per ``spec.rules.Rule``.

A twin's ``present(model, s_in, label, trace)`` runs one learning presentation of the spike
trains ``s_in`` on a :class:`sim.golden.GoldenModel` (its weights change in place) and
returns the :class:`sim.results.Presentation`. Adding a rule: ``spec/rules.py``, then a
module here and its entry in :data:`GOLDEN_RULES`.
"""

from spec.rules import RULES

from .dfa import DFA
from .erbp import ERBP

__all__ = ["GOLDEN_RULES", "ERBP", "DFA"]

#: The golden twin of every rule of ``spec.rules``, by name.
GOLDEN_RULES = {twin.rule.name: twin for twin in (ERBP(), DFA())}

if set(GOLDEN_RULES) != set(RULES):
    raise ImportError(f"sim.rules has twins of {sorted(GOLDEN_RULES)}, spec.rules defines "
                      f"{sorted(RULES)}")
