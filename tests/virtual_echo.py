"""Tiny top levels with the virtual board's port list (``clk``, ``rst``, ``rx``, ``tx``, ``busy``)
for testing ``sw/virtual.py`` and ``sw/virtual_board.cpp`` without the real top level.

* :class:`WireEcho`: ``tx`` is ``rx`` delayed by one register, ``busy`` is 0. A loopback of the
  line is a UART echo at any baud rate.
* :class:`UartEcho`: a real 8N1 receiver and transmitter at ``divisor`` cycles per bit; each
  received byte is held for ``delay`` cycles with ``busy`` high ("computing"), then sent back
  as ``byte ^ 0x5A``. One byte at a time: a byte arriving while busy is dropped. It checks the
  harness's frame timing (a wrong divisor garbles it) and that the harness keeps clocking
  while ``busy`` is high with no line activity.
* :class:`ProjectUartEcho`: the project's own ``hdl.uart`` receiver and transmitter joined by
  a FIFO (back-to-back frames both ways); ``busy`` while bytes are queued or going out.
"""

from amaranth import Module, Signal
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["WireEcho", "UartEcho", "ProjectUartEcho", "echo_verilog"]

XOR = 0x5A


class _Ports(wiring.Component):
    rx: In(1, init=1)
    tx: Out(1, init=1)
    busy: Out(1)


class WireEcho(_Ports):
    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.tx.eq(self.rx)
        return m


class UartEcho(_Ports):
    def __init__(self, divisor, delay=1000):
        if divisor < 4:
            raise ValueError(f"divisor must be at least 4, not {divisor}")
        self.divisor, self.delay = divisor, delay
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        d, h = self.divisor, self.divisor // 2

        sync1 = Signal(init=1)
        line = Signal(init=1)
        prev = Signal(init=1)
        m.d.sync += [sync1.eq(self.rx), line.eq(sync1), prev.eq(line)]

        # receiver
        r_cnt = Signal(range(d + 1))
        r_bit = Signal(range(10))
        r_sh = Signal(8)
        got = Signal()
        m.d.sync += got.eq(0)
        with m.FSM(name="rx"):
            with m.State("IDLE"):
                with m.If(prev & ~line):
                    m.d.sync += r_cnt.eq(h - 1)
                    m.next = "START"
            with m.State("START"):
                m.d.sync += r_cnt.eq(r_cnt - 1)
                with m.If(r_cnt == 0):
                    with m.If(line):
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [r_cnt.eq(d - 1), r_bit.eq(0)]
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.sync += r_cnt.eq(r_cnt - 1)
                with m.If(r_cnt == 0):
                    m.d.sync += [r_cnt.eq(d - 1), r_sh.eq(r_sh >> 1 | line << 7),
                                 r_bit.eq(r_bit + 1)]
                    with m.If(r_bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.sync += r_cnt.eq(r_cnt - 1)
                with m.If(r_cnt == 0):
                    m.d.sync += got.eq(line)
                    m.next = "IDLE"

        # "computation" then transmitter
        hold = Signal(8)
        wait = Signal(range(self.delay + 1))
        t_cnt = Signal(range(d + 1))
        t_sh = Signal(10)
        t_bit = Signal(range(11))
        with m.FSM(name="tx"):
            with m.State("IDLE"):
                with m.If(got):
                    m.d.sync += [hold.eq(r_sh ^ XOR), wait.eq(self.delay)]
                    m.next = "WAIT"
            with m.State("WAIT"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 0):
                    m.d.sync += [t_sh.eq(hold << 1 | 1 << 9), t_bit.eq(0), t_cnt.eq(0)]
                    m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += t_cnt.eq(t_cnt - 1)
                with m.If(t_cnt == 0):
                    m.d.sync += [self.tx.eq(t_sh[0]), t_sh.eq(t_sh >> 1), t_cnt.eq(d - 1),
                                 t_bit.eq(t_bit + 1)]
                    with m.If(t_bit == 10):
                        m.d.sync += self.tx.eq(1)
                        m.next = "IDLE"
        return m


class ProjectUartEcho(_Ports):
    def __init__(self, divisor, depth=64):
        self.divisor, self.depth = divisor, depth
        super().__init__()

    def elaborate(self, platform):
        from amaranth.lib.fifo import SyncFIFOBuffered

        from hdl.uart import UARTRx, UARTTx
        m = Module()
        m.submodules.urx = urx = UARTRx(self.divisor)
        m.submodules.utx = utx = UARTTx(self.divisor)
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=8, depth=self.depth)
        m.d.comb += [
            urx.rx.eq(self.rx), self.tx.eq(utx.tx),
            fifo.w_data.eq(urx.stream.payload), fifo.w_en.eq(urx.stream.valid),
            urx.stream.ready.eq(fifo.w_rdy),
            utx.stream.payload.eq(fifo.r_data), utx.stream.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(utx.stream.ready),
            self.busy.eq(fifo.r_rdy | ~utx.stream.ready),
        ]
        return m


def echo_verilog(kind="wire", divisor=8, delay=1000, name="echo_top"):
    """Verilog of one of the echo tops (``kind``: wire, uart, project), with the port list of
    the virtual board."""
    top = {"wire": lambda: WireEcho(), "uart": lambda: UartEcho(divisor, delay),
           "project": lambda: ProjectUartEcho(divisor)}[kind]()
    return verilog.convert(top, name=name)
