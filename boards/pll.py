"""Clock generation: PLL parameters for iCE40 (``SB_PLL40_PAD``) and ECP5 (``EHXPLLL``).

The parameter searches follow the documented ranges of the PLLs (the same ones ``icepll``
and ``ecppll`` use); each returns the exact output frequency it achieves, which the build
uses as the timing constraint and the UART divisor's clock.
"""

from dataclasses import dataclass

from amaranth.hdl import ClockDomain, Const, Instance, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

__all__ = ["ICE40PLL", "ECP5PLL", "ice40_pll_params", "ecp5_pll_params", "ecp5_clock",
           "PLLError"]


class PLLError(ValueError):
    """No PLL setting reaches the requested frequency closely enough."""


@dataclass(frozen=True)
class ICE40PLL:
    divr: int
    divf: int
    divq: int
    filter_range: int
    f_in: float
    f_out: float


def ice40_pll_params(f_in: float, f_out: float, tolerance: float = 0.01) -> ICE40PLL:
    """The ``SB_PLL40`` setting (SIMPLE feedback) closest to ``f_out``.

    ``f_out = f_in (DIVF + 1) / ((DIVR + 1) 2**DIVQ)`` with the phase detector at 10..133 MHz,
    the VCO at 533..1066 MHz and the output at 16..275 MHz; ``FILTER_RANGE`` follows the
    phase detector frequency.
    """
    best = None
    for divr in range(16):
        f_pfd = f_in / (divr + 1)
        if not 10e6 <= f_pfd <= 133e6:
            continue
        for divf in range(128):
            f_vco = f_pfd * (divf + 1)
            if not 533e6 <= f_vco <= 1066e6:
                continue
            for divq in range(1, 7):
                f = f_vco / 2 ** divq
                if not 16e6 <= f <= 275e6:
                    continue
                if best is None or abs(f - f_out) < abs(best[0] - f_out):
                    best = (f, divr, divf, divq, f_pfd)
    if best is None or abs(best[0] - f_out) > tolerance * f_out:
        raise PLLError(f"the iCE40 PLL cannot make {f_out / 1e6:g} MHz from "
                       f"{f_in / 1e6:g} MHz (nearest: "
                       f"{best[0] / 1e6 if best else float('nan'):.3f} MHz)")
    f, divr, divf, divq, f_pfd = best
    mhz = f_pfd / 1e6
    filter_range = 1 if mhz < 17 else 2 if mhz < 26 else 3 if mhz < 44 else \
        4 if mhz < 66 else 5 if mhz < 101 else 6
    return ICE40PLL(divr, divf, divq, filter_range, f_in, f)


@dataclass(frozen=True)
class ECP5PLL:
    clki_div: int
    clkfb_div: int
    clkop_div: int
    f_in: float
    f_out: float
    f_vco: float


def ecp5_pll_params(f_in: float, f_out: float, tolerance: float = 0.01) -> ECP5PLL:
    """The ``EHXPLLL`` setting (feedback from CLKOP) closest to ``f_out``.

    ``f_out = f_in CLKFB_DIV / CLKI_DIV``, ``f_vco = f_out CLKOP_DIV`` in 400..800 MHz, the
    phase detector ``f_in / CLKI_DIV`` at 3.125..400 MHz. Among equally close settings the
    highest VCO frequency wins (less jitter).
    """
    best = None
    for clki_div in range(1, 129):
        f_pfd = f_in / clki_div
        if not 3.125e6 <= f_pfd <= 400e6:
            continue
        for clkfb_div in range(1, 81):
            f = f_pfd * clkfb_div
            for clkop_div in range(1, 129):
                f_vco = f * clkop_div
                if not 400e6 <= f_vco <= 800e6:
                    continue
                key = (abs(f - f_out), -f_vco)
                if best is None or key < best[0]:
                    best = (key, clki_div, clkfb_div, clkop_div, f, f_vco)
    if best is None or best[0][0] > tolerance * f_out:
        raise PLLError(f"the ECP5 PLL cannot make {f_out / 1e6:g} MHz from {f_in / 1e6:g} MHz")
    _, clki_div, clkfb_div, clkop_div, f, f_vco = best
    return ECP5PLL(clki_div, clkfb_div, clkop_div, f_in, f, f_vco)


def _sync_domain(m, platform, f_hz):
    """The ``sync`` domain, held in reset until the PLL locks; returns ``(clock, locked)``
    for the PLL to drive.

    The clock is constrained with nextpnr's ``--freq`` (``boards.build``), not with
    ``platform.add_clock_constraint``: Amaranth names the constrained net after one of its
    many aliases deep in the hierarchy, which Yosys's flattening does not keep.
    """
    cd = ClockDomain("sync")
    m.domains.sync = cd
    locked = Signal(name="pll_locked")
    m.submodules.reset_sync = ResetSynchronizer(~locked, domain="sync")
    return cd.clk, locked


def ice40_sync_domain(m, platform, pad, f_out):
    """Drive ``sync`` from an ``SB_PLL40_PAD`` on the clock pad ``pad`` (a raw ``dir="-"``
    port; the pad feeds the PLL directly, so it must be a PLL-capable input). Returns the
    :class:`ICE40PLL` setting."""
    clk_res = platform.default_clk_constraint
    p = ice40_pll_params(clk_res.frequency, f_out)
    clk, locked = _sync_domain(m, platform, p.f_out)
    m.submodules.pll = Instance(
        "SB_PLL40_PAD",
        p_FEEDBACK_PATH="SIMPLE",
        p_DIVR=Const(p.divr, 4), p_DIVF=Const(p.divf, 7), p_DIVQ=Const(p.divq, 3),
        p_FILTER_RANGE=Const(p.filter_range, 3),
        i_PACKAGEPIN=pad.io, i_RESETB=Const(1, 1), i_BYPASS=Const(0, 1),
        o_PLLOUTGLOBAL=clk, o_LOCK=locked,
    )
    return p


def ecp5_sync_domain(m, platform, clk_in, f_out):
    """Drive ``sync`` from an ``EHXPLLL`` fed by ``clk_in`` (the board oscillator, through
    its input buffer). Returns the :class:`ECP5PLL` setting."""
    p = ecp5_pll_params(platform.default_clk_constraint.frequency, f_out)
    clk, locked = _sync_domain(m, platform, p.f_out)
    m.submodules.pll = Instance(
        "EHXPLLL",
        a_FREQUENCY_PIN_CLKI=str(p.f_in / 1e6),
        a_FREQUENCY_PIN_CLKOP=str(p.f_out / 1e6),
        a_ICP_CURRENT="12", a_LPF_RESISTOR="8",
        a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
        p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
        p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA",
        p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=p.clkop_div, p_CLKOP_CPHASE=p.clkop_div - 1,
        p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=p.clkfb_div,
        p_CLKI_DIV=p.clki_div,
        i_CLKI=clk_in, i_CLKFB=clk, i_RST=Const(0, 1), i_STDBY=Const(0, 1),
        i_PHASESEL0=Const(0, 1), i_PHASESEL1=Const(0, 1), i_PHASEDIR=Const(1, 1),
        i_PHASESTEP=Const(1, 1), i_PHASELOADREG=Const(1, 1), i_PLLWAKESYNC=Const(0, 1),
        i_ENCLKOP=Const(0, 1),
        o_CLKOP=clk, o_LOCK=locked,
    )
    return p


def ecp5_clock(resource):
    """A :class:`boards.board.Board` ``clock``: the platform's oscillator ``resource`` through
    an ``EHXPLLL`` (:func:`ecp5_sync_domain`)."""
    def clock(m, platform, f_hz):
        m.submodules.clk_buf = clk = io.Buffer("i", platform.request(resource, 0, dir="-"))
        return ecp5_sync_domain(m, platform, clk.i, f_hz).f_out
    return clock
