"""cocotb testbench: the Verilog of ``tests.test_cocotb_uart.UARTEcho`` against cocotbext-uart.

Run by ``tests/test_cocotb_uart.py`` through ``cocotb_tools.runner`` (not collected by pytest
itself). ``rx`` is driven by ``cocotbext.uart.UartSource`` (or by hand for bad frames) and
``tx`` is read by ``cocotbext.uart.UartSink`` at the design's nominal rate.

Parameters (environment, set by the pytest function): ``SNN_UART_DIVISOR`` (clock cycles
per bit), ``SNN_UART_CLK_NS`` (clock period), ``SNN_UART_SEED``, ``SNN_UART_BYTES``.

cocotbext-uart waits ``int(1e9 / baud)`` ns per bit, so a bit time is chosen in whole
nanoseconds and the model is given a baud rate that truncates to it (:func:`baud_for`).
"""

import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Timer
from cocotbext.uart import UartSink, UartSource

PATTERNS = bytes([0x00, 0xFF, 0x55, 0xAA, 0x01, 0x80, 0x7F, 0xFE])


def baud_for(bit_ns):
    """The baud rate for which cocotbext-uart's bit lasts exactly ``bit_ns`` ns."""
    return 1e9 / (bit_ns + 0.5)


class TB:
    def __init__(self, dut, source_bit_ns=None):
        self.dut = dut
        self.divisor = int(os.environ["SNN_UART_DIVISOR"])
        self.clk_ns = int(os.environ["SNN_UART_CLK_NS"])
        self.rng = random.Random(int(os.environ.get("SNN_UART_SEED", "0")))
        self.n_bytes = int(os.environ.get("SNN_UART_BYTES", "64"))
        self.bit_ns = self.divisor * self.clk_ns
        self.source_bit_ns = source_bit_ns or self.bit_ns
        cocotb.start_soon(Clock(dut.clk, self.clk_ns, unit="ns").start())
        self.source = UartSource(dut.rx, baud=baud_for(self.source_bit_ns))
        self.sink = UartSink(dut.tx, baud=baud_for(self.bit_ns))
        self.echoed = bytearray()

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)

    def data(self):
        return PATTERNS + bytes(self.rng.randrange(256) for _ in range(self.n_bytes))

    def count(self, name):
        return getattr(self.dut, name).value.to_unsigned()

    async def drain(self):
        """Wait until the echo has stopped (no new byte for two frames, sink idle) and
        return everything echoed so far."""
        frame = 10 * self.bit_ns
        last = -1
        while True:
            await Timer(2 * frame, unit="ns")
            if self.sink.count() == last and not self.sink.active:
                break
            last = self.sink.count()
        self.echoed += self.sink.read_nowait()
        return bytes(self.echoed)

    async def send(self, data):
        """Send ``data`` with the model (back to back) and return the whole echo so far."""
        await self.source.write(data)
        await self.source.wait()
        return await self.drain()

    async def drive_frame(self, byte, stop):
        """One frame driven by hand on ``rx`` (then the line is left high)."""
        for level in [0] + [(byte >> i) & 1 for i in range(8)] + [stop]:
            self.dut.rx.value = level
            await Timer(self.source_bit_ns, unit="ns")
        self.dut.rx.value = 1


def describe(sent, got):
    diff = [i for i, (a, b) in enumerate(zip(sent, got)) if a != b]
    return (f"sent {len(sent)} bytes, echoed {len(got)}; first differences at "
            f"{diff[:5]}: sent {[hex(sent[i]) for i in diff[:5]]}, "
            f"echoed {[hex(got[i]) for i in diff[:5]]}")


async def check_exact(tb):
    data = tb.data()
    got = await tb.send(data)
    assert got == data, describe(data, got)
    assert tb.count("frame_errors") == 0
    assert tb.count("overruns") == 0


@cocotb.test()
async def roundtrip(dut):
    tb = TB(dut)
    await tb.reset()
    await check_exact(tb)


# Sender bit times for a divisor of 16 at 10 ns (160 ns): +3.9 %, +1.9 %, -1.8 %, -4.8 %
# in baud rate (the receiver accepts -5.3 % .. +4.6 % in theory at this divisor).
@cocotb.test()
@cocotb.parametrize(source_bit_ns=[154, 157, 163, 168])
async def baud_within(dut, source_bit_ns):
    tb = TB(dut, source_bit_ns)
    assert tb.bit_ns == 160, "the bit times above are chosen for 160 ns bits"
    await tb.reset()
    await check_exact(tb)


# +15 % and -15 % in baud rate.
@cocotb.test()
@cocotb.parametrize(source_bit_ns=[139, 188])
async def baud_outside(dut, source_bit_ns):
    tb = TB(dut, source_bit_ns)
    assert tb.bit_ns == 160
    await tb.reset()
    data = tb.data()
    got = await tb.send(data)
    errors = tb.count("frame_errors")
    wrong = sum(a != b for a, b in zip(data, got)) + abs(len(data) - len(got))
    dut._log.info("%d ns bits: %d framing errors, %d of %d bytes lost or wrong", source_bit_ns,
                  errors, wrong, len(data))
    assert got != data
    assert errors > 0, "a 15 % baud error should break stop bits"


@cocotb.test()
async def framing_error(dut):
    tb = TB(dut)
    await tb.reset()
    assert await tb.send(b"\x11") == b"\x11"

    await tb.drive_frame(0xA5, stop=0)                 # stop bit 0: counted, not echoed
    await Timer(2 * tb.bit_ns, unit="ns")
    assert tb.count("frame_errors") == 1
    assert await tb.send(b"\x5a\x3c") == b"\x11\x5a\x3c"

    tb.dut.rx.value = 0                                # a break: 20 bit times low
    await Timer(20 * tb.bit_ns, unit="ns")
    assert tb.count("frame_errors") == 2, "a break is one framing error"
    tb.dut.rx.value = 1
    await Timer(tb.bit_ns, unit="ns")
    assert tb.count("frame_errors") == 2
    assert await tb.send(b"\xc3") == b"\x11\x5a\x3c\xc3"
    assert tb.count("overruns") == 0
