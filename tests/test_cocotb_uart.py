"""The generated Verilog of the UART against an independent UART model, with cocotb 2.x.

The design is a small echo, :class:`UARTEcho`: ``rx`` -> :class:`hdl.uart.UARTRx` ->
``SyncFIFO`` -> :class:`hdl.uart.UARTTx` -> ``tx``, with counters of framing errors and
overruns as outputs. ``tests/cocotb_uart_tb.py`` drives ``rx`` with cocotbext-uart's
``UartSource`` and reads ``tx`` with its ``UartSink`` (a model written without knowledge of
this UART), at the nominal baud rate and mismatched ones, and drives bad frames by hand.

The clock is 100 MHz in simulation and the divisors are small (bits of 70 and 160 ns) so a
run takes seconds; the RTL does not depend on the absolute rates. Builds are cached under
``build/cocotb/`` (``tests/cocotb_util.py``); knobs: ``SNN_COCOTB_UART_BYTES`` bytes per round
trip, ``SNN_WAVES=1``, ``SNN_SIM=icarus``.
"""

import os

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from hdl.uart import UARTRx, UARTTx
from tests import cocotb_util

CLK_NS = 10
DEFAULT_BYTES = 64


class UARTEcho(wiring.Component):
    """Echo every byte received on ``rx`` on ``tx``, through a FIFO of ``depth`` bytes.

    Members
    -------
    rx : In(1, init=1)
    tx : Out(1, init=1)
    frame_errors, overruns : Out(8)
        Counts (modulo 256) of the receiver's ``frame_error`` and ``overrun`` pulses (an
        overrun happens when the FIFO is full).
    """

    rx: In(1, init=1)
    tx: Out(1, init=1)
    frame_errors: Out(8)
    overruns: Out(8)

    def __init__(self, divisor, depth=16):
        self._divisor = divisor
        self._depth = depth
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.rx = rx = UARTRx(self._divisor)
        m.submodules.fifo = fifo = SyncFIFO(width=8, depth=self._depth)
        m.submodules.tx = tx = UARTTx(self._divisor)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx)]
        wiring.connect(m, rx.stream, fifo.w_stream)
        wiring.connect(m, fifo.r_stream, tx.stream)
        with m.If(rx.frame_error):
            m.d.sync += self.frame_errors.eq(self.frame_errors + 1)
        with m.If(rx.overrun):
            m.d.sync += self.overruns.eq(self.overruns + 1)
        return m


_models = {}


def _model(divisor):
    if divisor not in _models:
        text = cocotb_util.verilog(UARTEcho(divisor), name="uart_echo")
        _models[divisor] = cocotb_util.build(text, toplevel="uart_echo",
                                             name=f"uart-echo-d{divisor}")
    return _models[divisor]


def run(divisor, test_filter, seed=0):
    _model(divisor).test("tests.cocotb_uart_tb", test_filter=test_filter, extra_env={
        "SNN_UART_DIVISOR": str(divisor),
        "SNN_UART_CLK_NS": str(CLK_NS),
        "SNN_UART_SEED": str(seed),
        "SNN_UART_BYTES": os.environ.get("SNN_COCOTB_UART_BYTES", str(DEFAULT_BYTES)),
    })


@pytest.mark.parametrize("divisor", [7, 16])
def test_cocotb_uart_roundtrip(divisor):
    """Random bytes (and edge patterns) back to back at the nominal rate, at two divisors
    (one odd): every byte echoed intact, no error counted."""
    run(divisor, r"\.roundtrip$", seed=divisor)


def test_cocotb_uart_baud_within_tolerance():
    """The sender off by about +-2 % and near the documented edges (+3.9 %, -4.8 %): every
    byte echoed intact, no error counted."""
    run(16, r"\.baud_within", seed=1)


def test_cocotb_uart_baud_far_outside():
    """The sender off by about +-15 %: framing errors are counted and the echo differs from
    what was sent (a corrupted stream is not silently passed off as correct)."""
    run(16, r"\.baud_outside", seed=2)


def test_cocotb_uart_framing_error_and_break():
    """A frame with a zero stop bit driven by hand, then a break: each counts one framing
    error and is not echoed; the bytes after them are echoed intact."""
    run(16, r"\.framing_error$", seed=3)
