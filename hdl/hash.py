"""The 32-bit mixing function of ``docs/spec.md`` section 3, in Amaranth.

``hash32`` is shifts, XORs and additions modulo 2**32 only (no multiplier). It is provided
both as a function that builds the combinational expression (so a core can instantiate as
many copies as it has lanes) and as a small :class:`Hash32` component with an optional
output register.
"""

from amaranth.hdl import Module, Value, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spec.fixed import GOLDEN32, HASH_ROUNDS, HASH_STEPS

__all__ = ["GOLDEN32", "ROUNDS", "STEPS", "hash32", "hash32_steps", "Hash32"]

ROUNDS = HASH_ROUNDS


def _w32(x):
    """Truncate to 32 bits: additions and left shifts grow the width, the spec wraps."""
    return x.as_unsigned()[:32]


#: Number of steps of :func:`hash32_steps`: the first add and xor, then one per round.
STEPS = HASH_STEPS


def hash32_steps(x, start: int = 0, stop: int = STEPS) -> Value:
    """Steps ``start`` to ``stop - 1`` of ``hash32`` (each one 32-bit adder and one xor).

    ``hash32_steps(hash32_steps(x, 0, k), k)`` equals ``hash32(x)`` for any ``k``, so a core
    can put pipeline registers between steps to shorten the five-adder-deep path.
    """
    x = _w32(Value.cast(x))
    for i in range(start, stop):
        if i == 0:
            x = _w32(x + GOLDEN32)
            x = x ^ (x >> 16)
        else:
            left, right = ROUNDS[i - 1]
            x = _w32(x + (x << left))
            x = x ^ (x >> right)
    return x


def hash32(x) -> Value:
    """Combinational ``hash32`` of a 32-bit value (wider values are truncated first).

    Parameters
    ----------
    x : Value-castable
        Input word.

    Returns
    -------
    Value
        ``unsigned(32)`` expression, equal to ``spec.fixed.hash32(x)``.
    """
    return hash32_steps(x)


class Hash32(wiring.Component):
    """``hash32`` as a component.

    Parameters
    ----------
    registered : bool
        If true the output is registered (one cycle of latency), which cuts the ten-adder
        deep path for timing; otherwise it is purely combinational.

    Attributes
    ----------
    i : In(unsigned(32))
    o : Out(unsigned(32))
    """

    i: In(unsigned(32))
    o: Out(unsigned(32))

    def __init__(self, registered: bool = False):
        self._registered = registered
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        domain = m.d.sync if self._registered else m.d.comb
        domain += self.o.eq(hash32(self.i))
        return m
