"""CRC-16/CCITT-FALSE, a byte per cycle (``docs/protocol.md``, section 2)."""

from amaranth.hdl import Cat, Const, Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["CRC16", "crc16_byte"]


def crc16_byte(crc, byte):
    """One byte of CRC-16/CCITT-FALSE (polynomial 0x1021, MSB first), as combinational
    logic: the value after ``byte`` of a register holding ``crc``."""
    c = crc
    for i in reversed(range(8)):
        fb = c[15] ^ byte[i]
        c = Cat(Const(0, 1), c[:15]) ^ Mux(fb, 0x1021, 0)
    return c


class CRC16(wiring.Component):
    """A CRC-16/CCITT-FALSE register fed a byte per cycle.

    Twin: :func:`spec.protocol.crc16`. ``crc`` equals ``crc16(bytes taken since the last
    start)``.

    Members
    -------
    start : In(1)
        Restart: the register becomes ``0xFFFF`` (``en`` is ignored in that cycle).
    en : In(1)
        Take ``data`` this cycle.
    data : In(8)
    crc : Out(16)
        The CRC of the bytes taken so far.
    """

    start: In(1)
    en: In(1)
    data: In(8)
    crc: Out(16, init=0xFFFF)

    def elaborate(self, platform):
        m = Module()
        with m.If(self.start):
            m.d.sync += self.crc.eq(0xFFFF)
        with m.Elif(self.en):
            m.d.sync += self.crc.eq(crc16_byte(self.crc, self.data))
        return m
