"""iCEBreaker (iCE40UP5K-SG48): the digits network, 64-128-10, T = 64, P = 1.

* Clock: the 12 MHz oscillator (pin 35) feeds ``SB_PLL40_PAD`` directly; default 30 MHz.
* Host link: the FTDI's second channel (``uart`` 0: FPGA RX pin 6, TX pin 9), the
  iCEBreaker's usual serial port (``/dev/ttyUSB1`` on Linux). 30 MHz / 2 Mbaud = 15 cycles
  a bit.
* LEDs: green (pin 37) lit while the core is busy.
* Memories: the DFA raster and the feedback matrix in SPRAM (``boards.memory``), everything
  else in the 30 block RAMs; ``W1`` (64 kbit) takes 16 of them.
* Programming: ``openFPGALoader -b icebreaker build/boards/icebreaker/top.bin`` (SRAM).
"""

from amaranth_boards.icebreaker import ICEBreakerPlatform

from .board import Board, uart_and_busy_led
from .memory import ICE40Memory
from .pll import ice40_pll_params, ice40_sync_domain

__all__ = ["BOARD"]


def _clock(m, platform, f_hz):
    pad = platform.request("clk12", 0, dir="-")
    return ice40_sync_domain(m, platform, pad, f_hz).f_out


BOARD = Board(
    name="icebreaker",
    platform=ICEBreakerPlatform,
    family="ice40",
    freq_mhz=30.0,
    goal_mhz=48.0,
    arch=dict(n_in=64, n_hid=128, n_out=10, timesteps=64),
    lanes=1,
    clock=_clock,
    pll_hz=lambda f: ice40_pll_params(12e6, f).f_out,
    pins=uart_and_busy_led(0, ("led_g", 0)),
    memory=lambda: ICE40Memory(spram_blocks=4),
    loader=["-b", "icebreaker"],
    bitstream="bin",
    resources={"lut": 5280, "ff": 5280, "bram": 30, "spram": 4, "dsp": 8},
    notes="UART on the FTDI channel B (pins 6/9, /dev/ttyUSB1); green LED = busy",
)
