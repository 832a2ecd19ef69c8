"""A flashed board and the host on their defaults talk to each other: every default of the
link comes from ``spec.link``, and every board's clock divides its baud rate."""

import inspect

import pytest

from boards.build import BOARDS, build_parser, prepare
from hdl.top import Top
from sim.device import DeviceModel
from spec import link
from sw import backend, driver, virtual
from sw.cli import build_parser as host_parser


def _default(fn, name):
    return inspect.signature(fn).parameters[name].default


def test_host_defaults_are_the_link_defaults():
    host = host_parser().parse_args(["train"])
    assert host.baud == link.BAUD
    assert _default(driver.open_serial, "baud") == link.BAUD
    assert _default(backend.make_backend, "baud") == link.BAUD


def test_board_builds_use_the_hosts_baud_rate():
    assert build_parser().parse_args(["--board", "icebreaker"]).baud == link.BAUD
    assert _default(prepare, "baud") == link.BAUD


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_board_clock_gives_the_hosts_baud_rate(name):
    board = BOARDS[name]
    clk = board.pll_hz(board.freq_mhz * 1e6)
    divisor = link.divisor_for(clk, link.BAUD)
    assert abs(link.baud_of(clk, divisor) / link.BAUD - 1) <= link.MAX_BAUD_ERROR


def test_one_divisor_for_the_top_level_the_model_and_the_virtual_board():
    assert _default(Top, "divisor") == link.DIVISOR
    assert _default(Top, "clk_hz") == link.CLK_HZ
    assert _default(DeviceModel, "divisor") == link.DIVISOR
    assert _default(DeviceModel, "clk_hz") == link.CLK_HZ
    assert virtual.DEFAULT_DIVISOR == link.DIVISOR
    assert link.baud_of(link.CLK_HZ, link.DIVISOR) == link.BAUD
