"""The core's port layouts and the presentation modes (shared with the host and the models)."""

from amaranth.hdl import signed, unsigned
from amaranth.lib import data, enum

from spec.packing import nblocks
from spec.registers import REGISTERS
from spec.rules import MODES

__all__ = ["MODE_NAMES", "Mode", "cmd_layout", "nblocks", "reg_values", "regs_layout",
           "result_layout", "trace_layout"]


#: The ``mode`` of the ``cmd`` port: inference, then one per learning rule (``spec.rules``).
Mode = enum.Enum("Mode", {name.upper(): n for name, n in MODES.items()}, module=__name__)
MODE_NAMES = {name: Mode(n) for name, n in MODES.items()}


def regs_layout(cfg) -> data.StructLayout:
    """The runtime registers (``spec.registers``, in protocol order), each as wide as its
    range needs: ``reset`` becomes the bit ``reset_zero`` (1: set V to 0 on a spike)."""
    return data.StructLayout({
        r.name: (signed if r.signed else unsigned)(r.width(cfg)) for r in REGISTERS})


def reg_values(cfg) -> dict:
    """Register values of ``cfg`` in the form ``ctx.set(core.regs, ...)`` accepts."""
    return {r.name: r.encode(getattr(cfg, r.config_field)) for r in REGISTERS}


def cmd_layout(cfg) -> data.StructLayout:
    return data.StructLayout({"mode": Mode, "label": range(max(cfg.n_out, 2))})


def result_layout(cfg) -> data.StructLayout:
    return data.StructLayout({
        "pred": range(max(cfg.n_out, 2)),
        "counts": data.ArrayLayout(range(cfg.timesteps + 1), cfg.n_out),
    })


def trace_layout(cfg, lanes) -> data.StructLayout:
    """One block of end-of-step state, reported during the ``UPD`` phase."""
    sb = cfg.state_bits
    nb = max(nblocks(cfg.n_hid, lanes), nblocks(cfg.n_out, lanes))
    return data.StructLayout({
        "valid": 1, "layer": 1, "t": range(max(cfg.timesteps, 2)), "block": range(max(nb, 2)),
        "v": data.ArrayLayout(signed(sb), lanes), "u": data.ArrayLayout(signed(sb), lanes),
        "s": lanes,
    })


