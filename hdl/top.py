"""The whole device: UART receiver and transmitter, the link protocol engine and the core.

Its only ports are the serial pins and a busy indicator, so the same top level serves the
boards (``boards/``: ``rx``/``tx`` to the USB-serial bridge, ``busy`` to an LED) and the
virtual board (``sw/virtual.py``: Verilog ports ``clk``, ``rst``, ``rx``, ``tx``, ``busy``).

Link speed
----------
The defaults (``clk_hz``, ``divisor``: 2 Mbaud at 12 MHz) are ``spec.link``'s, shared with the
boards, the device model and the host. Boards that run the core from a PLL pass their own
``clk_hz`` and a divisor from :func:`spec.link.divisor_for`.
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spec import link

from .mem import WordMemory
from .protocol import ProtocolEngine
from .uart import UARTRx, UARTTx

__all__ = ["Top", "DEFAULT_CLK_HZ", "DEFAULT_DIVISOR"]

DEFAULT_CLK_HZ = link.CLK_HZ
DEFAULT_DIVISOR = link.DIVISOR


class Top(wiring.Component):
    """UART, protocol engine and core.

    Parameters
    ----------
    cfg : spec.config.Config
    lanes : int
        ``P`` of the core.
    divisor : int
        Clock cycles per UART bit.
    clk_hz : int
        Frequency of the ``sync`` clock (reported by ``IDENTIFY``).
    memory : callable
        Memory factory of the core (a board's SPRAM/DP16KD wrapper).
    weight_latency : int
        The core's weight read latency (:class:`hdl.core.Core`).
    max_frame : int, optional
        See :class:`hdl.protocol.ProtocolEngine`.

    Members
    -------
    rx : In(1, init=1)
        Serial input (asynchronous, idle high).
    tx : Out(1, init=1)
        Serial output (idle high).
    busy : Out(1)
        Executing a command or sending a reply, up to the last stop bit.
    """

    rx: In(1, init=1)
    tx: Out(1, init=1)
    busy: Out(1)

    def __init__(self, cfg, lanes: int = 1, divisor: int = DEFAULT_DIVISOR,
                 clk_hz: int = DEFAULT_CLK_HZ, memory=WordMemory, max_frame=None,
                 weight_latency: int = 1):
        self.uart_rx = UARTRx(divisor)
        self.uart_tx = UARTTx(divisor)
        self.engine = ProtocolEngine(cfg, lanes, memory=memory, max_frame=max_frame,
                                     weight_latency=weight_latency,
                                     clk_hz=clk_hz, divisor=divisor)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = urx = self.uart_rx
        m.submodules.uart_tx = utx = self.uart_tx
        m.submodules.engine = eng = self.engine
        wiring.connect(m, urx.stream, eng.rx)
        wiring.connect(m, eng.tx, utx.stream)
        m.d.comb += [
            urx.rx.eq(self.rx),
            self.tx.eq(utx.tx),
            eng.rx_error.eq(urx.frame_error | urx.overrun),
            # the transmitter is ready again only in the last cycle of a stop bit
            self.busy.eq(eng.busy | ~utx.stream.ready),
        ]
        return m
