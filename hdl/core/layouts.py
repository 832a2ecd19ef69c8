"""The core's port layouts and the presentation modes (shared with the host and the models)."""

from amaranth.hdl import signed
from amaranth.lib import data, enum

__all__ = ["MODE_NAMES", "Mode", "cmd_layout", "nblocks", "reg_values", "regs_layout",
           "result_layout", "trace_layout"]


class Mode(enum.Enum, shape=2):
    INFER = 0
    ERBP = 1
    DFA = 2


MODE_NAMES = {"infer": Mode.INFER, "erbp": Mode.ERBP, "dfa": Mode.DFA}


def nblocks(n, lanes):
    """Blocks of ``lanes`` neurons that hold ``n`` neurons."""
    return -(-n // lanes)



def regs_layout(cfg) -> data.StructLayout:
    """The runtime registers (fields of kind ``reg`` of :class:`sim.config.Config`).

    ``reset`` becomes the bit ``reset_zero`` (1: set V to 0 on a spike, 0: subtract theta).
    """
    sb = cfg.state_bits
    return data.StructLayout({
        "theta_hid": signed(sb), "theta_out": signed(sb),
        "leak_v": range(sb), "leak_u": range(sb),
        "reset_zero": 1,
        "target_rate": cfg.in_bits,
        "err_shift_out": range(sb - 1), "err_shift_hid": range(sb - 1),
        "lr_shift_hid": range(25), "lr_shift_out": range(25),
        "dfa_shift_hid": range(25), "dfa_shift_out": range(25),
        "bmin_hid": signed(sb), "bmax_hid": signed(sb),
        "bmin_out": signed(sb), "bmax_out": signed(sb),
        "seed": 32,
    })


def reg_values(cfg) -> dict:
    """Register values of ``cfg`` in the form ``ctx.set(core.regs, ...)`` accepts."""
    r = {name: getattr(cfg, name) for name in regs_layout(cfg).members if name != "reset_zero"}
    r["reset_zero"] = int(cfg.reset == "zero")
    return r


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


