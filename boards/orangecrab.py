"""OrangeCrab r0.2 with an LFE5U-25F: an MNIST-sized 784-96-10 (76,224 synapses), P = 2.

* Clock: the 48 MHz oscillator (A9) through an ``EHXPLLL``; default 100 MHz
  (48 x 25 / 12).
* Host link: the OrangeCrab has no USB-serial chip (its USB port is wired to the FPGA for
  the DFU bootloader), so the UART is on the Feather header where Feather boards put it:
  **pin "0" (N17) is the FPGA's RX, pin "1" (M18) its TX**, 3.3 V levels. Connect a 3.3 V
  USB-serial adapter: adapter TX -> pin 0, adapter RX -> pin 1, GND -> GND. 100 MHz /
  2 Mbaud: 50 cycles a bit (the adapter must support 2 Mbaud, e.g. FT232H/FT2232H/CP2102N;
  otherwise build with a lower ``--baud``).
* LEDs: the RGB LED's green element lit while the core is busy.
* Programming: press the button while plugging in USB (DFU bootloader), then
  ``openFPGALoader -b orangecrab --dfu build/boards/orangecrab-25f/top.bit`` (the file
  is loaded to flash by the bootloader).
"""

from amaranth.build import Attrs
from amaranth_boards.orangecrab_r0_2 import OrangeCrabR0_2_25FPlatform
from amaranth_boards.resources import UARTResource

from .board import Board, uart_and_busy_led
from .memory import ecp5_memory
from .pll import ecp5_clock, ecp5_pll_params

__all__ = ["BOARD", "OrangeCrabPlatform"]


class OrangeCrabPlatform(OrangeCrabR0_2_25FPlatform):
    """The amaranth-boards OrangeCrab with the Feather-header UART, and without the
    ``dfu-suffix`` step (not installable with pip; openFPGALoader loads the plain
    bitstream over DFU)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_resources([
            UARTResource(1, rx="0", tx="1", conn=("io", 0),
                         attrs=Attrs(IO_TYPE="LVCMOS33", PULLMODE="UP")),
        ])

    @property
    def required_tools(self):
        return [t for t in super().required_tools if t != "dfu-suffix"]

    @property
    def command_templates(self):
        return [c for c in super().command_templates if "dfu-suffix" not in c]


BOARD = Board(
    name="orangecrab-25f",
    platform=OrangeCrabPlatform,
    family="ecp5",
    freq_mhz=100.0,
    goal_mhz=100.0,
    arch=dict(n_in=784, n_hid=96, n_out=10, timesteps=64),
    lanes=2,
    clock=ecp5_clock("clk"),
    pll_hz=lambda f: ecp5_pll_params(48e6, f).f_out,
    pins=uart_and_busy_led(1, ("rgb_led", 0), "g"),
    memory=lambda: ecp5_memory,
    weight_latency=3,
    loader=["-b", "orangecrab", "--dfu"],
    bitstream="bit",
    resources={"lut": 24288, "ff": 24288, "bram": 56, "dsp": 28},
    notes="UART on the Feather header: pin 0 (N17) = FPGA RX, pin 1 (M18) = FPGA TX, "
          "3.3 V USB-serial adapter; green LED = busy",
)
