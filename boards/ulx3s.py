"""ULX3S with an LFE5U-85F: an MNIST-sized network, 784-256-10 (203,264 synapses), P = 4.

* Clock: the 25 MHz oscillator (G2) through an ``EHXPLLL``; default 75 MHz.
* Host link: the FTDI FT231X (``uart`` 0: FPGA RX M1, TX L4), the board's USB port
  (``/dev/ttyUSB0``). 75 MHz / 2 Mbaud: 37 cycles a bit (+1.4 %); --baud 3000000 gives exactly 25.
* LEDs: LED 0 (B2) lit while the core is busy.
* Programming: ``openFPGALoader -b ulx3s build/boards/ulx3s-85f/top.bit`` (SRAM).
"""

from amaranth_boards.ulx3s import ULX3S_85F_Platform

from .board import Board, uart_and_busy_led
from .memory import ecp5_memory
from .pll import ecp5_clock, ecp5_pll_params

__all__ = ["BOARD"]

BOARD = Board(
    name="ulx3s-85f",
    platform=ULX3S_85F_Platform,
    family="ecp5",
    freq_mhz=75.0,
    goal_mhz=100.0,
    arch=dict(n_in=784, n_hid=256, n_out=10, timesteps=64),
    lanes=4,
    clock=ecp5_clock("clk25"),
    pll_hz=lambda f: ecp5_pll_params(25e6, f).f_out,
    pins=uart_and_busy_led(0, ("led", 0)),
    memory=lambda: ecp5_memory,
    weight_latency=3,
    loader=["-b", "ulx3s"],
    bitstream="bit",
    resources={"lut": 83640, "ff": 83640, "bram": 208, "dsp": 156},
    notes="UART on the FTDI (M1/L4, /dev/ttyUSB0); LED 0 = busy",
)
