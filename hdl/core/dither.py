"""The per-lane dither offsets ``x = hstep + n * 0x9E3779B9`` (spec 3).

``r = x >> (32 - shift)`` is the rounding dither of neuron ``n`` (its top bits are taken
where ``d`` is formed, in the lane datapath). ``n * PHI32`` is never multiplied out: the PRE
scans visit the neurons in order (layer 0 from block 0, then layer 1 from block 0), so ``x``
is one register per lane, loaded with ``hstep + l PHI32`` at the step's start and stepped by
``P PHI32`` as each PRE block finishes (to ``n_hid + l`` after the last hidden block).
"""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .signature import ParamSignature, check_int

__all__ = ["PHI32", "Dither"]

PHI32 = 0x9E3779B9


class Dither(wiring.Component):
    """Per-lane Weyl-sequence dither registers.

    Parameters
    ----------
    lanes : int
        ``P``.
    n_hid : int
        Hidden neurons: where the output layer's neuron numbers start.

    Members
    -------
    hstep : In(32)
        ``hash32(key ^ g)`` of the step, taken when ``start`` is high.
    start : In(1)
        Load ``x[l] = hstep + l PHI32`` (the step begins, neuron 0 next).
    advance : In(1)
        A PRE block is done: step every lane to the next block's neuron.
    last_hid : In(1)
        With ``advance``: that block was the last hidden one (the output layer follows).
    x : Out(ArrayLayout(unsigned(32), lanes))
        The offsets of the block being visited.
    """

    class Signature(ParamSignature):
        def __init__(self, *, lanes, n_hid):
            check_int("lanes", lanes, 1)
            check_int("n_hid", n_hid, 1)
            super().__init__({
                "hstep": In(32), "start": In(1), "advance": In(1), "last_hid": In(1),
                "x": Out(data.ArrayLayout(unsigned(32), lanes)),
            }, lanes=lanes, n_hid=n_hid)

    def __init__(self, *, lanes, n_hid):
        super().__init__(self.Signature(lanes=lanes, n_hid=n_hid))

    def elaborate(self, platform):
        m = Module()
        P, n_hid = self.signature.lanes, self.signature.n_hid
        nb1 = -(-n_hid // P)
        step_a = P * PHI32 % 2**32
        step_b = (n_hid - (nb1 - 1) * P) * PHI32 % 2**32
        for l in range(P):
            xl = Signal(32, name=f"x{l}")
            with m.If(self.start):
                m.d.sync += xl.eq((self.hstep + l * PHI32 % 2**32)[:32] if l else self.hstep)
            with m.Elif(self.advance):
                m.d.sync += xl.eq((xl + Mux(self.last_hid, step_b, step_a))[:32])
            m.d.comb += self.x[l].eq(xl)
        return m
