"""The device side of the serial link: an 8N1 UART receiver and transmitter.

Both run from the ``sync`` clock with an integer ``divisor`` = clock cycles per bit (at
least 4), chosen with :func:`divisor_for`. They talk to the rest of the design through
:mod:`amaranth.lib.stream` byte streams and are kept small so they fit next to a large core
on an iCE40UP5K: Yosys ``synth_ice40 -noabc`` (an upper bound) gives 52 LUT4 + 34 flip-flops
for ``UARTRx(104)`` (115200 baud at 12 MHz) and 37 LUT4 + 20 flip-flops for ``UARTTx(104)``.

Frame: the line idles high; a frame is a start bit (0), eight data bits LSB first and one
stop bit (1).

Receiver timing
---------------
``rx`` goes through a two-flop synchroniser; ``c`` below is the first cycle in which the
synchronised line is seen low after having been high (the falling edge of the start bit,
two to three cycles after the pin). With ``h = divisor // 2`` the receiver samples

* the start bit again at ``c + h`` (mid-bit): still low, or the frame is dropped as a
  glitch (so any low pulse of at most ``h`` cycles, in particular any pulse shorter than
  half a bit, is not a start bit);
* data bit ``k`` (0..7) at ``c + h + (k + 1) * divisor``;
* the stop bit at ``c + h + 9 * divisor``. If it is 1 the byte appears on ``stream`` the next
  cycle, that is ``h + 9 * divisor + 3`` cycles after the falling edge reached the pin
  (with the edge on a clock edge); if it is 0 ``frame_error`` pulses instead and the byte
  is dropped. The receiver looks for the next falling edge from the cycle after the stop
  sample, so back-to-back frames (from a slightly fast sender) are caught.

A new start bit needs a falling edge, so after a framing error caused by a break (the line
held low) nothing more happens until the line has been high for at least one cycle.

Tolerance. Let the sender's bit last ``L = r * divisor`` cycles and let ``d`` in ``[0, 1)``
be the delay from the start edge at the pin to the next clock edge (it is where the edge
falls between clock edges; metastability of the first flop only moves it by that cycle).
Bit ``k`` is read correctly iff ``k L <= h + k divisor + d < (k + 1) L``; the stop bit
(``k = 9``) is the binding one, so a whole frame is read correctly for every ``d`` iff the
sender's baud rate divided by the receiver's lies in ::

    [ 9 divisor / (9 divisor + h),  10 divisor / (9 divisor + h + 1) )

=========  ===================  ======================
divisor    slow sender down to  fast sender up to
=========  ===================  ======================
4          -5.26 %              +2.56 %
5          -4.26 %              +4.17 %
8          -5.26 %              +3.90 %
16         -5.26 %              +4.58 %
large      -5.26 %              +5.26 %
=========  ===================  ======================

This budget is shared by the two ends: it must cover the other end's clock error plus the
quantisation of both divisors (:func:`divisor_for` allows up to 2 %), so prefer divisors of
8 or more, where it is about +-4 %. ``tests/test_hdl_uart.py`` checks these bounds with
fractional bit lengths; a sweep in steps of 0.25 % found exactly these edges.

Transmitter timing
------------------
A byte is accepted (``stream.valid`` and ``stream.ready``) in cycle ``t``; ``tx`` is then 0
during cycles ``t + 1 .. t + divisor`` (start bit), data bit ``k`` during the following
``divisor`` cycles and 1 (stop bit) during cycles ``t + 9 divisor + 1 .. t + 10 divisor``.
``stream.ready`` is high when idle and in the last cycle of the stop bit, so a stream of
bytes goes out back to back with exactly one stop bit between them.
"""

import operator

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from spec.link import MIN_DIVISOR

__all__ = ["UARTRx", "UARTTx"]

def _check_divisor(divisor):
    try:
        value = operator.index(divisor)
    except TypeError:
        raise ValueError(f"UART divisor must be an integer number of clock cycles per bit, "
                         f"not {divisor!r}") from None
    if value < MIN_DIVISOR:
        raise ValueError(f"UART divisor must be at least {MIN_DIVISOR} clock cycles per bit, "
                         f"not {value}")
    return value


class UARTRx(wiring.Component):
    """8N1 receiver (timing and tolerance: see the module documentation).

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least ``MIN_DIVISOR``.

    Members
    -------
    rx : In(1, init=1)
        The serial line (asynchronous; idle high).
    stream : Out(stream.Signature(unsigned(8)))
        Received bytes. ``valid`` holds until the byte is taken.
    frame_error : Out(1)
        One-cycle pulse when a stop bit reads 0; that byte is not delivered.
    overrun : Out(1)
        One-cycle pulse when a byte completes while the previous one has not been taken
        (``valid`` and not ``ready`` in that cycle); the new byte is dropped, the old one
        stays on ``stream``.
    """

    rx: In(1, init=1)
    stream: Out(stream.Signature(unsigned(8)))
    frame_error: Out(1)
    overrun: Out(1)

    def __init__(self, divisor):
        self._divisor = _check_divisor(divisor)
        super().__init__()

    @property
    def divisor(self) -> int:
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        n = self._divisor

        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1)
        prev = Signal(init=1)
        m.d.sync += prev.eq(line)

        # One down-counter times every sample: it runs free (reloading with a bit time) and
        # the start edge reloads it with a half bit, so a sample is due whenever it is 0.
        timer = Signal(range(n))
        due = timer == 0
        m.d.sync += timer.eq(Mux(due, n - 1, timer - 1))
        bit = Signal(range(8))
        shreg = Signal(8)

        m.d.sync += [self.frame_error.eq(0), self.overrun.eq(0)]
        with m.If(self.stream.ready):
            m.d.sync += self.stream.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(prev & ~line):
                    m.d.sync += timer.eq(n // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(due):
                    with m.If(line):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "DATA"
            with m.State("DATA"):
                with m.If(due):
                    m.d.sync += [shreg.eq(Cat(shreg[1:], line)), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(due):
                    with m.If(~line):
                        m.d.sync += self.frame_error.eq(1)
                    with m.Elif(self.stream.valid & ~self.stream.ready):
                        m.d.sync += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [self.stream.payload.eq(shreg), self.stream.valid.eq(1)]
                    m.next = "IDLE"
        return m


class UARTTx(wiring.Component):
    """8N1 transmitter (timing: see the module documentation).

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least ``MIN_DIVISOR``.

    Members
    -------
    stream : In(stream.Signature(unsigned(8)))
        Bytes to send. ``ready`` does not depend on ``valid``.
    tx : Out(1, init=1)
        The serial line, driven from a flip-flop (idle high).
    """

    stream: In(stream.Signature(unsigned(8)))
    tx: Out(1, init=1)

    def __init__(self, divisor):
        self._divisor = _check_divisor(divisor)
        super().__init__()

    @property
    def divisor(self) -> int:
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        n = self._divisor

        timer = Signal(range(n))     # cycles left in the current bit after this one
        left = Signal(range(10))     # bits left in the frame after the current one
        shreg = Signal(8)            # data bits still to send; 1s shift in (the stop bit)
        idle_next = (timer == 0) & (left == 0)
        m.d.comb += self.stream.ready.eq(idle_next)

        with m.If(self.stream.valid & self.stream.ready):
            m.d.sync += [
                self.tx.eq(0),
                shreg.eq(self.stream.payload),
                timer.eq(n - 1),
                left.eq(9),
            ]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Elif(left != 0):
            m.d.sync += [
                self.tx.eq(shreg[0]),
                shreg.eq(Cat(shreg[1:], 1)),
                timer.eq(n - 1),
                left.eq(left - 1),
            ]
        return m
