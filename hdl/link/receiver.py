"""The frame receiver: decoded SLIP symbols into the frame buffer, with the frame's checks
(``docs/protocol.md``, section 1, "The receiver")."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .crc import CRC16
from .slip import Symbol

__all__ = ["FrameSignature", "FrameReceiver"]

#: The shortest request: seq, op and the CRC.
MIN_REQUEST = 4


class FrameSignature(wiring.Signature):
    """A held frame, as the receiver offers it (the user's side is ``flip()``).

    Parameters
    ----------
    max_frame : int
        Frame buffer size in bytes.

    Members
    -------
    held : Out(1)
        A complete frame waits; the members below describe it and stay constant until
        ``release``.
    release : In(1)
        The user is done with the frame: the receiver takes the next one.
    length : Out(range(max_frame + 1))
        Decoded bytes stored (at most ``max_frame``).
    seq, op : Out(8)
        The first and second decoded byte (0 if there is none).
    framing_error : Out(1)
        An invalid escape, a UART error or an overrun in the frame.
    overflow : Out(1)
        More than ``max_frame`` decoded bytes (the rest is not stored).
    crc : Out(16)
        CRC-16 of the stored bytes but the last two (``length >= 4``).
    crc_field : Out(16)
        The last two stored bytes, little-endian.
    addr : In(range(max_frame))
        Frame buffer read address.
    data : Out(8)
        The byte at ``addr`` of the previous cycle.
    """

    def __init__(self, max_frame: int):
        if not isinstance(max_frame, int) or max_frame < MIN_REQUEST:
            raise TypeError(f"max_frame must be an integer >= {MIN_REQUEST}, not {max_frame!r}")
        self._max_frame = max_frame
        super().__init__({
            "held": Out(1), "release": In(1),
            "length": Out(range(max_frame + 1)), "seq": Out(8), "op": Out(8),
            "framing_error": Out(1), "overflow": Out(1), "crc": Out(16), "crc_field": Out(16),
            "addr": In(range(max_frame)), "data": Out(8),
        })

    @property
    def max_frame(self):
        return self._max_frame

    def __eq__(self, other):
        return isinstance(other, FrameSignature) and self.max_frame == other.max_frame

    def __repr__(self):
        return f"FrameSignature({self.max_frame})"


class FrameReceiver(wiring.Component):
    """Assembles frames from decoded symbols and holds a complete one until it is released.

    A frame is *held* at its ``END`` if it is to be answered: it has a framing error and at
    least one byte, or it has :data:`MIN_REQUEST` decoded bytes or more; shorter frames
    are dropped silently, and so is a frame with no byte at all (even with a UART error).
    While a frame is held, every symbol is discarded, and so is every symbol after it up to
    and including the next ``end`` (also if the frame is released in between). The CRC
    register trails the stored bytes by two, so that at the ``END`` it covers everything
    but the CRC field.

    Parameters
    ----------
    max_frame : int

    Members
    -------
    i : In(stream.Signature(Symbol()))
        From :class:`hdl.link.slip.SlipDecoder`; ``ready`` is always 1.
    rx_error : In(1)
        A UART framing error or overrun (a byte lost).
    frame : Out(FrameSignature(max_frame))
    """

    def __init__(self, max_frame: int):
        super().__init__({
            "i": In(stream.Signature(Symbol())),
            "rx_error": In(1),
            "frame": Out(FrameSignature(max_frame)),
        })

    def elaborate(self, platform):
        m = Module()
        f = self.frame
        MF = f.signature.max_frame
        m.submodules.mem = mem = Memory(shape=8, depth=MF, init=[])
        w, r = mem.write_port(), mem.read_port()
        m.submodules.crc = crc = CRC16()

        rlen = f.length
        bad, seen, drop = Signal(), Signal(), Signal()
        d1, d2 = Signal(8), Signal(8)   # last and second-last byte: the CRC field at END
        s = self.i.payload
        store = Signal()
        m.d.comb += [self.i.ready.eq(1), f.framing_error.eq(bad), f.crc.eq(crc.crc),
                     f.crc_field.eq(Cat(d2, d1)), r.addr.eq(f.addr), f.data.eq(r.data),
                     w.addr.eq(rlen), w.data.eq(s.data), crc.data.eq(d2)]

        def clear():
            m.d.sync += [rlen.eq(0), bad.eq(0), f.overflow.eq(0), seen.eq(0), f.seq.eq(0),
                         f.op.eq(0)]

        with m.If(f.release):
            m.d.sync += f.held.eq(0)
            clear()
        with m.If(self.i.valid):
            with m.If(s.end):
                m.d.sync += drop.eq(0)
                with m.If(~f.held):
                    with m.If(seen & (bad | s.bad | (rlen >= MIN_REQUEST))):
                        m.d.sync += [f.held.eq(1), bad.eq(bad | s.bad)]
                    with m.Else():
                        clear()
            with m.Elif(f.held | drop):
                m.d.sync += drop.eq(1)
            with m.Else():
                m.d.sync += seen.eq(1)
                with m.If(s.bad):
                    m.d.sync += bad.eq(1)
                with m.Elif(~s.esc):
                    m.d.comb += store.eq(1)
        with m.If(self.rx_error):
            with m.If(f.held):
                m.d.sync += drop.eq(1)
            with m.Else():
                m.d.sync += bad.eq(1)

        with m.If(store):
            with m.If(rlen == MF):
                m.d.sync += f.overflow.eq(1)
            with m.Else():
                m.d.comb += w.en.eq(1)
                m.d.sync += rlen.eq(rlen + 1)
            m.d.sync += [d1.eq(s.data), d2.eq(d1)]
            m.d.comb += [crc.en.eq(rlen >= 2), crc.start.eq(rlen == 0)]
            with m.If(rlen == 0):
                m.d.sync += f.seq.eq(s.data)
            with m.If(rlen == 1):
                m.d.sync += f.op.eq(s.data)
        return m
