"""The host link's defaults: the one definition of the baud rate, clock and UART divisor.

Every board build (``boards/``), the top level (``hdl.top.Top``), the device model
(``sim.device``), the virtual board (``sw.virtual``) and the host (``python -m sw``, the
driver) take their defaults from here, so a flashed board and the host on their defaults
talk to each other (``tests/test_link_defaults.py`` checks every one of them). A board
reports its clock and divisor in its ``IDENTIFY`` reply; the host compares the baud rate they
give with the one it opened the port at (``sw.driver.Board.identify``).

2 Mbaud: the FT2232H of the iCEBreaker (and most FTDI bridges) derives its rate from 12 MHz
as ``12 MHz / (n + k/8)``, so 2 Mbaud is exact, Linux offers it as a standard rate, and the
FT231X of the ULX3S supports it; every board clock here divides it within 2 %.
"""

from __future__ import annotations

__all__ = ["BAUD", "CLK_HZ", "DIVISOR", "MIN_DIVISOR", "MAX_BAUD_ERROR", "divisor_for",
           "baud_of"]

#: Host link baud rate of every board build and of the host.
BAUD = 2_000_000
#: Clock the top level reports when a build does not give one (the virtual board, models).
CLK_HZ = 12_000_000
#: Fewest clock cycles per bit: the receiver needs a mid-bit sample at least one cycle after
#: the start edge and one cycle to return to the idle state.
MIN_DIVISOR = 4
#: Largest relative baud error :func:`divisor_for` accepts.
MAX_BAUD_ERROR = 0.02


def divisor_for(clk_hz, baud) -> int:
    """The divisor (clock cycles per bit) closest to ``clk_hz / baud``.

    Raises
    ------
    ValueError
        If a frequency is not positive, if the divisor would be below ``MIN_DIVISOR`` (the
        clock is too slow for this baud rate) or if ``clk_hz / divisor`` is more than
        ``MAX_BAUD_ERROR`` (2 %) away from ``baud``.
    """
    if not clk_hz > 0 or not baud > 0:
        raise ValueError(f"clock frequency and baud rate must be positive, not {clk_hz!r} "
                         f"and {baud!r}")
    divisor = max(1, round(clk_hz / baud))
    if divisor < MIN_DIVISOR:
        raise ValueError(f"a {clk_hz} Hz clock is too slow for {baud} baud: "
                         f"{clk_hz / baud:.2f} cycles per bit, the UART needs at least "
                         f"{MIN_DIVISOR}")
    error = clk_hz / divisor / baud - 1
    if abs(error) > MAX_BAUD_ERROR:
        raise ValueError(f"no divisor of a {clk_hz} Hz clock gives {baud} baud within "
                         f"{MAX_BAUD_ERROR:.0%}: the nearest, {divisor}, gives "
                         f"{clk_hz / divisor:.1f} baud ({error:+.2%})")
    return divisor

#: Clock cycles per UART bit at :data:`CLK_HZ` and :data:`BAUD` (6): the default of the top
#: level, the device model and the virtual board.
DIVISOR = divisor_for(CLK_HZ, BAUD)


def baud_of(clk_hz: int, divisor: int) -> float:
    """The baud rate a device with this clock and divisor runs at (from its ``IDENTIFY``)."""
    return clk_hz / divisor
