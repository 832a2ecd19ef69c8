"""SLIP framing (RFC 1055) as stream components (``docs/protocol.md``, section 1).

Both sides carry *symbols*: a data byte, or a frame boundary (``END``). The decoder also marks
invalid escapes, so that its user can reject the frame; the encoder escapes data bytes and
sends ``END`` for a boundary.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["END", "ESC", "ESC_END", "ESC_ESC", "Symbol", "SlipDecoder", "SlipEncoder"]

END, ESC, ESC_END, ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD


class Symbol(data.StructLayout):
    """A decoded (or to be encoded) SLIP symbol.

    Members
    -------
    data : unsigned(8)
        The data byte (when ``end`` and ``bad`` are 0).
    end : unsigned(1)
        A frame boundary (an ``END`` on the wire).
    bad : unsigned(1)
        Decoder only: an invalid escape. With ``end`` 0, the byte after an ``ESC`` is
        neither ``ESC_END`` nor ``ESC_ESC`` (nor ``END``); with ``end`` 1, an ``ESC`` came
        right before the ``END``.
    esc : unsigned(1)
        Decoder only: the byte is an ``ESC`` that begins an escape (it carries no data).
    """

    def __init__(self):
        super().__init__({"data": 8, "end": 1, "bad": 1, "esc": 1})


class SlipDecoder(wiring.Component):
    """Wire bytes in, symbols out: one symbol per byte.

    A data byte gives a symbol with ``end = bad = esc = 0``; ``END`` a symbol with ``end``;
    an ``ESC`` that begins an escape a symbol with ``esc``, and the byte after it the
    escaped data byte or, if it is invalid, a symbol with ``bad``. ``END`` always ends a
    frame, even after ``ESC``. Twin: :class:`spec.protocol.SlipDecoder` (a frame is the data
    bytes between two ``end`` symbols, invalid if one of them has ``bad``; a frame without a
    symbol is dropped). A user that discards bytes sees every one of them.

    The decoder has no buffer: ``i.ready`` is ``o.ready`` and ``o.valid`` is ``i.valid``
    (behind a UART receiver, which cannot wait, ``o.ready`` is 1).

    Members
    -------
    i : In(stream.Signature(unsigned(8)))
    o : Out(stream.Signature(Symbol()))
    """

    i: In(stream.Signature(8))
    o: Out(stream.Signature(Symbol()))

    def elaborate(self, platform):
        m = Module()
        esc = Signal()                  # the previous byte was an ESC
        b = self.i.payload
        m.d.comb += [self.i.ready.eq(self.o.ready),
                     self.o.payload.data.eq(Mux(esc, Mux(b == ESC_ESC, ESC, END), b))]
        with m.If(b == END):
            m.d.comb += [self.o.payload.end.eq(1), self.o.payload.bad.eq(esc)]
        with m.Elif(esc):
            m.d.comb += self.o.payload.bad.eq((b != ESC_END) & (b != ESC_ESC))
        with m.Else():
            m.d.comb += self.o.payload.esc.eq(b == ESC)
        m.d.comb += self.o.valid.eq(self.i.valid)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += esc.eq((b == ESC) & ~esc)
        return m


class SlipEncoder(wiring.Component):
    """Symbols in, wire bytes out: ``end`` gives ``END``, a data byte ``END``/``ESC`` gives
    ``ESC`` and ``ESC_END``/``ESC_ESC`` (the symbol is taken with the second), any other
    data byte itself (``bad`` and ``esc`` are ignored). Twin: :func:`spec.protocol.slip_encode`
    of a frame sent as ``end``, its bytes, ``end``.

    ``o.valid`` is ``i.valid`` (it never waits on ``o.ready``); ``i.ready`` is ``o.ready``
    except on the first byte of an escape.

    Members
    -------
    i : In(stream.Signature(Symbol()))
    o : Out(stream.Signature(unsigned(8)))
    """

    i: In(stream.Signature(Symbol()))
    o: Out(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        second = Signal()               # the first byte of an escape has been sent
        d = self.i.payload.data
        special = ~self.i.payload.end & ((d == END) | (d == ESC))
        m.d.comb += [
            self.o.valid.eq(self.i.valid),
            self.o.payload.eq(Mux(self.i.payload.end, END,
                                  Mux(special, Mux(second, Mux(d == END, ESC_END, ESC_ESC),
                                                   ESC), d))),
            self.i.ready.eq(self.o.ready & (~special | second)),
        ]
        with m.If(self.o.valid & self.o.ready & special):
            m.d.sync += second.eq(~second)
        return m
