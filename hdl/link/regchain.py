"""The runtime registers as one shift register (``READ_REGS``/``WRITE_REG``)."""

from amaranth.hdl import Cat, Module
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["RegisterChain"]


class RegisterChain(wiring.Component):
    """The core's ``regs`` as a flat shift register, rotated a bit per cycle.

    Reading and writing go through the head: a command shifts the whole chain once (its
    width in cycles), reads every field as it passes ``head`` and substitutes a new value
    while its field passes. This needs no read multiplexer over the ~170 register bits and
    no load multiplexer in front of them. Twin: a list of bits rotated towards index 0.

    Parameters
    ----------
    layout : data.StructLayout
        The register fields (:func:`hdl.core.regs_layout`), field 0 at bit 0.
    init : dict
        Their values after reset.

    Members
    -------
    regs : Out(layout)
        The registers (to the core).
    shift : In(1)
        Rotate by one bit this cycle: bit ``i + 1`` moves to ``i`` and ``din`` enters at the
        top.
    din : In(1)
        The bit that enters (``head`` to rotate unchanged).
    head : Out(1)
        Bit 0.
    """

    def __init__(self, layout: data.StructLayout, init: dict):
        if not isinstance(layout, data.StructLayout):
            raise TypeError(f"layout must be a StructLayout, not {layout!r}")
        self.layout = layout
        super().__init__({"regs": Out(layout, init=init), "shift": In(1), "din": In(1),
                          "head": Out(1)})

    def elaborate(self, platform):
        m = Module()
        cv = self.regs.as_value()
        m.d.comb += self.head.eq(cv[0])
        with m.If(self.shift):
            m.d.sync += cv.eq(Cat(cv[1:], self.din))
        return m
