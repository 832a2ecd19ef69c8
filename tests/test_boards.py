"""Board builds (``boards/``): elaboration, PLL settings, memory placement, the programming
command, and (slow tier) a full iCEBreaker bitstream build with its report."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from boards import build as bb
from boards.memory import (
    BANK_WORDS,
    LUTRAM_WORDS,
    RW_UNDEF_ATTR,
    BankedMemory,
    BoardMemory,
    ICE40Memory,
    SPRAMMemory,
    ecp5_memory,
)
from boards.pll import PLLError, ecp5_pll_params, ice40_pll_params
from hdl.core import Core
from hdl.mem import WordMemory
from spec.config import Config


def _extract(name, tmp_path):
    """Elaborate board ``name`` (the core alone) and write its build plan into ``tmp_path``;
    returns the board and the design's top."""
    board = bb.BOARDS[name]
    _platform, top, plan = bb.prepare(board, bb.board_config(board), standin=True)
    plan.extract(str(tmp_path))
    return board, top


@pytest.mark.parametrize("name", sorted(bb.BOARDS))
def test_board_elaborates_to_a_build_plan(name, tmp_path):
    board, top = _extract(name, tmp_path)
    ys = (tmp_path / "top.ys").read_text()
    assert f"synth_{board.family}" in ys
    assert f"a:{RW_UNDEF_ATTR}" in ys          # collision masks set before synthesis
    sh = (tmp_path / "build_top.sh").read_text()
    assert "--report top.pnr.json" in sh
    # the PLL output carries the timing constraint
    assert abs(top.clk_hz - board.freq_mhz * 1e6) < 0.01 * board.freq_mhz * 1e6
    assert f"--freq {top.clk_hz / 1e6:.3f}" in sh
    assert top.divisor >= 4
    cfg = bb.board_config(board)
    synapses = cfg.n_in * cfg.n_hid + cfg.n_hid * cfg.n_out
    assert synapses >= {"icebreaker": 9472, "ulx3s-85f": 200_000,
                        "orangecrab-25f": 70_000}[name]


def test_icebreaker_uart_pins_and_spram(tmp_path):
    _board, top = _extract("icebreaker", tmp_path)
    pcf = (tmp_path / "top.pcf").read_text()
    assert "uart_0__rx__io 6" in pcf and "uart_0__tx__io 9" in pcf
    il = (tmp_path / "top.il").read_text()
    assert il.count("SB_SPRAM256KA") == 3       # feedback matrix and both rasters
    assert "SB_PLL40_PAD" in il
    assert top.memory.spram_used == 3


def test_orangecrab_uart_on_the_feather_header(tmp_path):
    _extract("orangecrab-25f", tmp_path)
    lpf = (tmp_path / "top.lpf").read_text()
    assert 'SITE "N17"' in lpf and 'SITE "M18"' in lpf
    assert "dfu-suffix" not in (tmp_path / "build_top.sh").read_text()


@pytest.mark.parametrize("f_in,f_out", [(12e6, 30e6), (12e6, 48e6), (12e6, 36e6)])
def test_ice40_pll(f_in, f_out):
    p = ice40_pll_params(f_in, f_out)
    assert p.f_out == pytest.approx(f_in * (p.divf + 1) / ((p.divr + 1) * 2 ** p.divq))
    assert abs(p.f_out - f_out) <= 0.01 * f_out
    assert 10e6 <= f_in / (p.divr + 1) <= 133e6
    assert 533e6 <= f_in / (p.divr + 1) * (p.divf + 1) <= 1066e6


@pytest.mark.parametrize("f_in,f_out", [(25e6, 75e6), (25e6, 100e6), (48e6, 72e6)])
def test_ecp5_pll(f_in, f_out):
    p = ecp5_pll_params(f_in, f_out)
    assert p.f_out == pytest.approx(f_in * p.clkfb_div / p.clki_div)
    assert p.f_out == pytest.approx(f_out)
    assert 400e6 <= p.f_out * p.clkop_div <= 800e6


def test_pll_out_of_range():
    with pytest.raises(PLLError, match="cannot make"):
        ice40_pll_params(12e6, 300e6)
    with pytest.raises(PLLError, match="cannot make"):
        ecp5_pll_params(25e6, 2e9)


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_ice40_memory_factory_places_single_port_memories_in_spram():
    mem = ICE40Memory(spram_blocks=4)
    a = mem(8, 8192, single_port=True)
    b = mem(8, 8192)                              # needs a read and a write port
    c = mem(40, 100, single_port=True)            # three SPRAMs wide
    d = mem(4, 100, single_port=True)             # no SPRAM left
    assert isinstance(a, SPRAMMemory) and isinstance(c, SPRAMMemory)
    assert isinstance(b, BoardMemory) and isinstance(d, BoardMemory)
    assert mem.spram_used == 4


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_board_memory_simulates_like_word_memory():
    """The board factory only changes the netlist: the core built on it still elaborates and
    keeps every port (the Amaranth-simulated behaviour is that of WordMemory)."""
    core = Core(Config(n_in=4, n_hid=3, n_out=2, timesteps=2), lanes=2, memory=BoardMemory)
    from amaranth.back import rtlil
    assert RW_UNDEF_ATTR in rtlil.convert(core)


@pytest.mark.parametrize("depth,bank_words,latency", [(37, 8, 3), (16, 16, 3), (50, 16, 4)])
def test_banked_memory_reads_like_word_memory(depth, bank_words, latency):
    """The ECP5 boards' banked weight memory and a WordMemory of the same read latency, fed
    the same random reads (one a cycle, with rd_en gaps) and writes (never to the word read
    in the same cycle): the same read data in every cycle."""
    m = Module()
    m.submodules.ref = ref = WordMemory(8, depth, read_latency=latency)
    m.submodules.dut = dut = BankedMemory(8, depth, bank_words=bank_words,
                                          read_latency=latency)
    assert dut.banks == -(-depth // bank_words)
    rng = np.random.default_rng(depth)
    seen = []

    async def tb(ctx):
        for cycle in range(600):
            ra = int(rng.integers(0, depth))
            wa = int(rng.integers(0, depth))
            we = int(rng.random() < 0.5 and wa != ra)
            wd = int(rng.integers(0, 256))
            re = int(rng.random() < 0.9)
            for mem in (ref, dut):
                ctx.set(mem.rd_addr, ra)
                ctx.set(mem.rd_en, re)
                ctx.set(mem.wr_addr, wa)
                ctx.set(mem.wr_en, we)
                ctx.set(mem.wr_data, wd)
            await ctx.tick()
            if cycle > 2 * depth:          # every word written at least once by then, likely
                seen.append((ctx.get(ref.rd_data), ctx.get(dut.rd_data)))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    ref_data, dut_data = zip(*seen)
    assert ref_data == dut_data
    assert len(set(ref_data)) > 20          # the data really varied


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_ecp5_memory_factory():
    deep = ecp5_memory(8, BANK_WORDS * 3, read_latency=3)
    assert isinstance(deep, BankedMemory) and deep.read_latency == 3
    one_cycle = ecp5_memory(8, BANK_WORDS * 3)          # the core's other memories
    assert type(one_cycle) is BoardMemory and one_cycle.read_latency == 1
    small = ecp5_memory(16, LUTRAM_WORDS, transparent=True)
    assert small.memory_attrs() == {"ram_style": "distributed"}
    assert ecp5_memory(16, LUTRAM_WORDS + 1).memory_attrs() == {RW_UNDEF_ATTR: 1}
    with pytest.raises(ValueError, match="read_latency"):
        BankedMemory(8, 100, read_latency=2)


@pytest.mark.parametrize("name,extra", [("icebreaker", ["-b", "icebreaker"]),
                                        ("ulx3s-85f", ["-b", "ulx3s"]),
                                        ("orangecrab-25f", ["-b", "orangecrab", "--dfu"])])
def test_program_command(name, extra, monkeypatch):
    monkeypatch.setenv("OPENFPGALOADER", "ofl")
    cmd = bb.program_command(bb.BOARDS[name], Path("x/top.bit"))
    assert cmd == ["ofl", *extra, "x/top.bit"]


def test_program_without_bitstream(tmp_path):
    with pytest.raises(bb.ProgramError, match="no bitstream"):
        bb.program(bb.BOARDS["icebreaker"], tmp_path / "top.bin")


def test_program_without_board(tmp_path, monkeypatch):
    bit = tmp_path / "top.bin"
    bit.write_bytes(b"\0")
    monkeypatch.setenv("OPENFPGALOADER", "openFPGALoader")

    def no_board(cmd, **kw):
        return subprocess.CompletedProcess(cmd, 1, "", "unable to open ftdi device: -3 "
                                           "(device not found)\nJTAG init failed")
    with pytest.raises(bb.ProgramError, match="plugged in"):
        bb.program(bb.BOARDS["icebreaker"], bit, run=no_board)


def test_program_with_the_real_loader_fails_clearly(tmp_path):
    """Whatever this machine lacks (a board, libusb, the tool), the error says so."""
    bit = tmp_path / "top.bin"
    bit.write_bytes(b"\0")
    with pytest.raises(bb.ProgramError, match="openFPGALoader"):
        bb.program(bb.BOARDS["icebreaker"], bit)


def test_critical_path_names_its_ends_and_sources():
    def step(d, frm=None, to=None, src=()):
        return {"delay": d, "from": frm, "to": to, "sources": list(src)}

    rep = {"critical_paths": [
        {"path": [step(1.0, {"cell": "top.a_SB_DFF_Q"}), step(2.0, to={"cell": "top.b"})]},
        {"path": [step(1.5, {"cell": "top.engine.k_SB_DFFESR_Q_3_D_SB_LUT4_O_LC"}),
                  step(2.0, src=["/x/hdl/protocol.py:395"]),
                  step(0.5, to={"cell": "top.engine.rmem_TRELLIS_FF_Q_7"})]},
    ]}
    assert bb.path_ends(rep) == ("top.engine.k", "top.engine.rmem")
    ns, steps = bb.critical_path(rep)
    assert ns == 4.0 and steps[0][2] == ["hdl/protocol.py:395"]
    assert bb.path_ends({}) == ("", "")


def test_cli_rejects_unknown_board(capsys):
    with pytest.raises(SystemExit):
        bb.main(["--board", "nope"])


def test_icebreaker_full_build(tmp_path):
    """In the fast tier so that a synthesis break cannot land (CI builds it).
    Yosys + nextpnr + icepack for the iCEBreaker (about 2.5 minutes on 2 cores): the whole
    top level (UART, host link engine, the digits network's core) placed and routed in the
    UP5K, a bitstream and a report with every figure, and nextpnr's timing met at the
    board's 30 MHz target (a slower design fails here, as ``make bitstream`` does)."""
    out = tmp_path / "icebreaker"
    board = bb.BOARDS["icebreaker"]
    rep = bb.build(board, bb.board_config(board), out=out, check_timing=False)
    assert json.loads((out / "report.json").read_text()) == rep
    assert rep["network"]["synapses"] == 64 * 128 + 128 * 10
    res = rep["resources"]
    assert 0 < res["bram"]["used"] <= res["bram"]["available"]
    assert 0 < res["spram"]["used"] <= res["spram"]["available"]
    assert 0 < res["logic_cells"]["used"] <= res["logic_cells"]["available"]
    assert res["lut"]["used"] > 0 and res["ff"]["used"] > 0
    assert (out / "top.bin").stat().st_size > 100_000
    assert rep["clock"]["target_mhz"] >= 30.0
    assert rep["clock"]["timing_met"], \
        f"{rep['clock']['achieved_mhz']} MHz < {rep['clock']['target_mhz']} MHz"
    assert rep["clock"]["achieved_mhz"] >= rep["clock"]["target_mhz"]
