"""The learning rules, as the hardware sees them: what each rule decides, in one place.

A rule declares

* ``mode``: its :class:`~hdl.core.layouts.Mode` (the command that selects it);
* ``phase``: when its weights are rewritten: ``"forward"`` (in the integration of every
  step: eRBP) or ``"replay"`` (in a learning phase after the forward pass that replays its
  raster: DFA), and so which sequencer phases it needs;
* ``error``: ``"step"`` (an error per step, ``ERR``: ``e[k] = target - s_out[k]``) or
  ``"sample"`` (once per presentation from the counts, ``DFA_E``);
* ``gate``: the per-lane gate of its updates: ``"box"`` (``bmin < V0 < bmax`` of the step)
  or ``"raster"`` (the gate recorded by the forward pass);
* ``shift``: the registers holding its update shift ``d = sround(U0, shift, r)`` per layer;
* ``dendrite``: how ``U`` takes the error projection: ``"shifted"`` (``UPD``: leak plus the
  projection shifted by ``err_shift``) or ``"set"`` (``DFAU``: the projection as it is).

:data:`RULES` combines them into the expressions the components use (the sequencer, the
lanes); with today's two rules these are exactly the multiplexers the core always had. The
mode, error timing and shift registers come from :data:`spec.rules.RULES` (the one definition);
the hardware choices (gate, dendrite) are added here. A new rule is a new entry here; the
components consult :data:`RULES` only.
"""

from amaranth.hdl import Mux

from spec.rules import RULES as SPEC_RULES

from .layouts import Mode

__all__ = ["DFA", "ERBP", "RULES", "RuleSet"]


def _hardware(name, *, gate, dendrite, doc):
    """The hardware of the rule ``name`` of :data:`spec.rules.RULES`: its mode, error timing
    and shift registers come from there; ``phase`` follows from the error timing (a
    per-sample error is applied by a replay)."""
    rule = SPEC_RULES[name]
    return type(name.upper(), (), {
        "__doc__": doc, "name": name, "mode": Mode(rule.mode), "error": rule.error,
        "phase": "replay" if rule.error == "sample" else "forward", "gate": gate,
        "shift": (rule.shift_hid, rule.shift_out), "dendrite": dendrite})


ERBP = _hardware("erbp", gate="box", dendrite="shifted",
                 doc="Event-driven random backpropagation (spec 6.2).")
DFA = _hardware("dfa", gate="raster", dendrite="set",
                doc="Direct feedback alignment on the sample's count error (spec 6.3).")


class RuleSet:
    """The rules a core supports, and the expressions their choices come down to.

    The replay signal (``replay``) is the sequencer's "learning phase" flag: at most one
    replay rule and one forward rule are supported by these expressions (the hardware
    has one learning phase and one integration pass to share).
    """

    def __init__(self, *rules):
        self.rules = rules
        self.forward = [r for r in rules if r.phase == "forward"]
        self.replay = [r for r in rules if r.phase == "replay"]
        if len(self.forward) > 1 or len(self.replay) > 1:
            raise ValueError("at most one forward and one replay rule")
        missing = set(SPEC_RULES) - {r.name for r in rules}
        if missing:
            raise ValueError(f"no hardware for the rules {sorted(missing)} of spec.rules")
        for r in rules:
            if r.gate != ("raster" if r.phase == "replay" else "box"):
                raise ValueError(f"{r.__name__}: a {r.phase} rule's gate cannot be {r.gate}")

    def modes_with(self, attr, value):
        return [r.mode for r in self.rules if getattr(r, attr) == value]

    def learns(self, mode, replay):
        """Weights are rewritten by the integration pass."""
        v = replay
        for r in reversed(self.forward):
            v = (mode == r.mode) | v
        return v

    def step_error(self, mode):
        """The presentation has a per-step error (``ERR`` loads it)."""
        return _any(mode, self.modes_with("error", "step"))

    def has_replay(self, mode):
        """The presentation's forward pass is followed by a learning phase (and records its
        raster)."""
        return _any(mode, self.modes_with("phase", "replay"))

    def update_shift(self, regs, out_layer, replay):
        """The shift of ``d`` for a block of layer ``out_layer``."""
        def reg(layer):
            v = getattr(regs, self.forward[0].shift[layer]) if self.forward else 0
            if self.replay:
                v = Mux(replay, getattr(regs, self.replay[0].shift[layer]), v)
            return v
        return Mux(out_layer, reg(1), reg(0))

    def lane_gate(self, replay, box, raster):
        """The per-lane gate of the update: the replay rule's recorded gate, else the box."""
        return Mux(replay, raster, box) if self.replay else box


def _any(mode, modes):
    v = 0
    for md in modes:
        v = (mode == md) if isinstance(v, int) else (v | (mode == md))
    return v


#: The rules of this core.
RULES = RuleSet(ERBP, DFA)
