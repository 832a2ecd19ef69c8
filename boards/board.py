"""What a board module describes, and the top-level wrapper every board build uses.

A board module (``boards/icebreaker.py``, ...) is a :class:`Board`: the amaranth-boards
platform, the clock (PLL) and the pins of the host UART and the busy LED, the memory
factory, the network it carries by default and how ``openFPGALoader`` programs it.
:class:`BoardTop` puts the design (``hdl.top.Top``, or :class:`boards.standin.StandInTop`)
on those pins and clock.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from amaranth.hdl import Elaboratable, Module
from amaranth.lib import io

from spec import link

__all__ = ["Board", "BoardTop", "design_class", "uart_and_busy_led"]


@dataclass(frozen=True)
class Board:
    """One supported board.

    Attributes
    ----------
    name : str
        Name on the command line (``--board``).
    platform : callable
        Returns a fresh amaranth-boards platform instance (with any extra resources).
    family : str
        ``"ice40"`` or ``"ecp5"``.
    freq_mhz : float
        Default target clock (the PLL output).
    goal_mhz : float
        The clock the project aims for on this board (reported, not enforced).
    arch : dict
        ``Config`` architecture fields of the default network.
    lanes : int
        Default ``P``.
    clock : callable
        ``clock(m, platform, f_hz) -> achieved f_hz``: creates the ``sync`` domain.
    pll_hz : callable
        ``pll_hz(f_hz) -> achieved f_hz`` without elaborating (for the timing target).
    pins : callable
        ``pins(m, platform, top)``: connects ``top.rx``, ``top.tx``, ``top.busy``.
    memory : callable
        Returns a fresh memory factory for one elaboration.
    weight_latency : int
        The core's weight read latency on this board (``hdl.core.Core``).
    loader : list of str
        ``openFPGALoader`` arguments naming the board (before the bitstream).
    bitstream : str
        Extension of the file to program (``"bin"`` or ``"bit"``).
    resources : dict
        Device totals for the report: ``{"lut": ..., "ff": ..., "bram": ..., ...}``.
    notes : str
        Pins and wiring the user must know (shown by ``--help`` and in the report).
    """

    name: str
    platform: Callable
    family: str
    freq_mhz: float
    goal_mhz: float
    arch: dict
    lanes: int
    clock: Callable
    pll_hz: Callable
    pins: Callable
    memory: Callable
    loader: list
    bitstream: str
    resources: dict = field(default_factory=dict)
    notes: str = ""
    weight_latency: int = 1


def uart_and_busy_led(uart_number, led, led_field=None):
    """The ``pins`` of a :class:`Board`: the top level's ``rx``/``tx`` on the platform's
    ``uart`` resource ``uart_number`` and ``busy`` on LED resource ``led`` (``(name, number)``;
    ``led_field`` picks one colour of a multi-colour LED, e.g. ``"g"``)."""
    def pins(m, platform, top):
        uart = platform.request("uart", uart_number, dir="-")
        ledr = platform.request(*led, dir="-")
        m.submodules.rx_buf = rx = io.Buffer("i", uart.rx)
        m.submodules.tx_buf = tx = io.Buffer("o", uart.tx)
        m.submodules.led_buf = busy = io.Buffer(
            "o", getattr(ledr, led_field) if led_field else ledr)
        m.d.comb += [top.rx.eq(rx.i), tx.o.eq(top.tx), busy.o.eq(top.busy)]
    return pins


def design_class(standin: bool = False):
    """``hdl.top.Top`` if it exists (and ``standin`` is false), else the stand-in."""
    if not standin:
        try:
            from hdl.top import Top
            return Top
        except ImportError:
            pass
    from .standin import StandInTop
    return StandInTop


class BoardTop(Elaboratable):
    """The board's top level: clock, design, pins.

    Parameters
    ----------
    board : Board
    cfg : spec.config.Config
    lanes : int
    freq_hz : float
        Requested clock; the achieved one (after :meth:`elaborate`) is :attr:`clk_hz`.
    baud : int
        Host link baud rate (sets the UART divisor of ``hdl.top.Top``).
    standin : bool
        Build :class:`boards.standin.StandInTop` even if ``hdl.top.Top`` exists.
    """

    def __init__(self, board, cfg, lanes, freq_hz, baud=link.BAUD, standin=False):
        self.board = board
        self.cfg = cfg
        self.lanes = lanes
        self.freq_hz = freq_hz
        self.baud = baud
        self.design = design_class(standin)
        self.clk_hz = None
        self.divisor = None
        self.memory = None

    def elaborate(self, platform):
        m = Module()
        self.clk_hz = self.board.clock(m, platform, self.freq_hz)
        self.divisor = link.divisor_for(self.clk_hz, self.baud)
        self.memory = self.board.memory()
        m.submodules.top = top = self.design(self.cfg, lanes=self.lanes, divisor=self.divisor,
                                             clk_hz=self.clk_hz, memory=self.memory,
                                             weight_latency=self.board.weight_latency)
        self.board.pins(m, platform, top)
        return m
