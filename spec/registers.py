"""The runtime register map: the one definition of every register the host may rewrite.

Each :class:`Register` is a protocol index (its position in :data:`REGISTERS`), a name, the
:class:`spec.config.Config` field it carries, a default, an inclusive range that may depend
on the architecture (``state_bits``, ``in_bits``), its signedness and its meaning. Everything
else follows from this table: the ``reg`` fields of ``Config`` and their validation, the
host's register table and ranges (``spec.protocol``), the device model (``sim.device``), the
core's ``regs`` port layout (``hdl.core.regs_layout``: ``width`` bits, signed or not), the
protocol engine's register chain, and the table in ``docs/spec.md`` (``python -m spec.registers
--markdown``; ``tests/test_docs.py`` compares the two).

A learning rule (``spec.rules``) names the registers it owns; a new rule appends its
registers at the end, so the indices of existing ones never change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Register", "REGISTERS", "NAMES", "SHIFT_MAX", "RESET_MODES", "register",
           "markdown_table"]

#: Largest learning-rate shift (the dither is 32 bits, the update at most 8 above it).
SHIFT_MAX = 24
#: Values of ``Config.reset``, in the order the ``reset_zero`` bit encodes them.
RESET_MODES = ("subtract", "zero")


@dataclass(frozen=True)
class Register:
    """One runtime register.

    Attributes
    ----------
    name : str
        Name in the protocol and on the core's ``regs`` port.
    default : int or str
        Default of the ``Config`` field.
    doc : str
        What it does (``docs/spec.md`` defines it in full).
    bounds : callable
        ``bounds(cfg) -> (lo, hi)``, inclusive, from the architecture fields of ``cfg``;
        its docstring states the range in words (for the documents).
    signed : bool
        Stored as a two's-complement integer of :meth:`width` bits.
    field : str or None
        The ``Config`` field, if it differs from ``name``.
    choices : tuple of str
        For a field that is a string: raw value ``i`` stands for ``choices[i]``.
    owner : str or None
        The learning rule that uses it; ``None``: every mode.
    """

    name: str
    default: int | str
    doc: str
    bounds: Callable
    signed: bool = False
    field: str | None = None
    choices: tuple = ()
    owner: str | None = None

    @property
    def config_field(self) -> str:
        return self.field or self.name

    @property
    def index(self) -> int:
        return NAMES.index(self.name)

    def range(self, cfg) -> tuple[int, int]:
        """Inclusive range of the raw value under the architecture of ``cfg``."""
        return self.bounds(cfg)

    def width(self, cfg) -> int:
        """Bits the register needs: enough for its range (plus a sign bit if signed)."""
        lo, hi = self.range(cfg)
        if self.signed:
            return max(hi.bit_length(), (-lo - 1).bit_length() if lo < 0 else 0) + 1
        return max(hi.bit_length(), 1)

    def encode(self, value) -> int:
        """The raw register value of a ``Config`` field value."""
        return self.choices.index(value) if self.choices else int(value)

    def decode(self, raw: int):
        """The ``Config`` field value of a raw register value."""
        return self.choices[raw] if self.choices else int(raw)


def _state(cfg):
    """signed `state_bits`"""
    return -(1 << (cfg.state_bits - 1)), (1 << (cfg.state_bits - 1)) - 1


def _theta(cfg):
    """1 .. `2**(state_bits-1) - 1`"""
    return 1, _state(cfg)[1]


def _leak(cfg):
    """0 .. `state_bits - 1`"""
    return 0, cfg.state_bits - 1


def _err_shift(cfg):
    """0 .. `state_bits - 2`"""
    return 0, cfg.state_bits - 2


def _shift(cfg):
    """0 .. 24"""
    return 0, SHIFT_MAX


def _bit(cfg):
    """0 .. 1"""
    return 0, 1


def _intensity(cfg):
    """0 .. `2**in_bits - 1`"""
    return 0, (1 << cfg.in_bits) - 1


def _u32(cfg):
    """any 32 bits (`u32`)"""
    return 0, 0xFFFFFFFF


#: Every runtime register, in protocol index order (never reorder: it is the wire format).
REGISTERS: tuple[Register, ...] = (
    Register("theta_hid", 2400, "hidden firing threshold (V >= theta fires)", _theta,
             signed=True),
    Register("theta_out", 512, "output firing threshold", _theta, signed=True),
    Register("leak_v", 3, "somatic leak shift k: V <- V - (V >> k) each step (0: no memory)",
             _leak),
    Register("leak_u", 2, "dendritic leak shift: U <- U - (U >> k) each step (0: no memory)",
             _leak),
    Register("reset_zero", "subtract", "after a spike: 'subtract' theta or set V to 'zero' "
             "(register reset_zero: 1 for 'zero')", _bit, field="reset",
             choices=RESET_MODES),
    Register("target_rate", 224, "target spike density of the label neuron, out of "
             "2**in_bits", _intensity),
    Register("err_shift_out", 5, "eRBP: output U gains e << err_shift_out per step", _err_shift,
             owner="erbp"),
    Register("err_shift_hid", 4, "eRBP: hidden U gains (B e) << err_shift_hid per step",
             _err_shift, owner="erbp"),
    Register("lr_shift_hid", 14, "eRBP hidden update d = sround(U, lr_shift_hid, r) (spec 6.2)",
             _shift, owner="erbp"),
    Register("lr_shift_out", 9, "eRBP output update d = sround(U, lr_shift_out, r)", _shift,
             owner="erbp"),
    Register("dfa_shift_hid", 14, "DFA hidden update d = sround(U, dfa_shift_hid, r) "
             "(spec 6.3)", _shift, owner="dfa"),
    Register("dfa_shift_out", 7, "DFA output update d = sround(U, dfa_shift_out, r)", _shift,
             owner="dfa"),
    Register("bmin_hid", 0, "hidden boxcar (both rules): learn only if bmin < V", _state,
             signed=True),
    Register("bmax_hid", 3600, "hidden boxcar (both rules): learn only if V < bmax", _state,
             signed=True),
    Register("bmin_out", -1400, "output boxcar lower bound (exclusive)", _state, signed=True),
    Register("bmax_out", 2800, "output boxcar upper bound (exclusive)", _state, signed=True),
    Register("seed", 1, "32-bit seed of the feedback matrix and the rounding dither",
             _u32),
)

#: Register names in protocol index order.
NAMES: tuple[str, ...] = tuple(r.name for r in REGISTERS)

_BY_NAME = {r.name: r for r in REGISTERS}


def register(name: str) -> Register:
    """The register called ``name`` (``KeyError`` if there is none)."""
    return _BY_NAME[name]


def markdown_table(cfg) -> str:
    """The register table of ``docs/spec.md`` and ``docs/protocol.md`` (``WRITE_REG``); the
    last two columns hold for the architecture of ``cfg``."""
    lines = ["| index | register | `Config` field | range | used by | bits, range (default "
             "network) | meaning |", "|---|---|---|---|---|---|---|"]
    for i, r in enumerate(REGISTERS):
        lo, hi = r.range(cfg)
        bits = f"{'s' if r.signed else 'u'}{r.width(cfg)}"
        lines.append(f"| {i} | `{r.name}` | `{r.config_field}` | {r.bounds.__doc__} | "
                     f"{r.owner or 'all modes'} | {bits}, {lo} .. {hi} | {r.doc} |")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    from .config import Config
    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m spec.registers --markdown   (print the register table of "
                 "docs/spec.md and docs/protocol.md)")
    print(markdown_table(Config()))
