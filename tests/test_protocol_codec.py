"""The host codec of docs/protocol.md (sw/protocol.py): CRC, SLIP, payloads."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spec import protocol as pr
from spec.config import Config


def test_crc_check_value():
    # the catalogue check value of CRC-16/CCITT-FALSE
    assert pr.crc16(b"123456789") == 0x29B1
    assert pr.crc16(b"") == 0xFFFF


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=5),
       st.integers(1, 7))
def test_slip_round_trip_any_chunking(frames, chunk):
    wire = b"".join(pr.slip_encode(f) for f in frames)
    assert wire.count(bytes([pr.END])) == 2 * len(frames)
    dec = pr.SlipDecoder()
    got = []
    for i in range(0, len(wire), chunk):
        got += dec.feed(wire[i:i + chunk])
    assert got == frames


def test_slip_bad_escape_and_resync():
    dec = pr.SlipDecoder()
    got = dec.feed(bytes([pr.END, 1, pr.ESC, 0x55, 2, pr.END]) + pr.slip_encode(b"\xc0ok"))
    assert got == [None, b"\xc0ok"]


def test_request_reply_and_errors():
    wire = pr.request(7, pr.Op.IDENTIFY)
    frame = pr.SlipDecoder().feed(wire)[0]
    assert frame[:2] == bytes([7, 1])
    assert pr.crc16(frame[:-2]) == int.from_bytes(frame[-2:], "little")
    rep = pr.parse_reply(pr.reply_frame(7, pr.Op.PRESENT, pr.Status.OK, b"abc"))
    assert (rep.seq, rep.op, rep.status, rep.payload) == (7, pr.Op.PRESENT, pr.Status.OK, b"abc")
    bad = bytearray(pr.reply_frame(7, pr.Op.PRESENT, pr.Status.OK, b"abc"))
    bad[3] ^= 1
    with pytest.raises(pr.ProtocolError, match="CRC"):
        pr.parse_reply(bytes(bad))
    with pytest.raises(pr.ProtocolError, match="at least 5"):
        pr.parse_reply(b"\x01\x81")
    with pytest.raises(pr.ProtocolError, match="escape"):
        pr.parse_reply(None)
    with pytest.raises(pr.ProtocolError, match="payload"):
        pr.parse_reply(pr.reply_frame(1, 2, pr.Status.BAD_ARG, b"x"))


@pytest.mark.parametrize("lanes", [1, 3, 4])
def test_weight_words_round_trip(lanes):
    cfg = Config(n_in=5, n_hid=7, n_out=3, w_bits=6, init_std_hid=8, init_mean_hid=0,
                 init_std_out=8)
    rng = np.random.default_rng(lanes)
    for layer, shape in ((0, (5, 7)), (1, (7, 3))):
        w = rng.integers(cfg.w_min, cfg.w_max + 1, shape)
        data = pr.pack_words(cfg, lanes, layer, w)
        assert len(data) == pr.layer_words(cfg, lanes, layer) * lanes
        np.testing.assert_array_equal(pr.unpack_words(cfg, lanes, layer, data), w)
    with pytest.raises(ValueError, match="outside"):
        pr.pack_words(cfg, lanes, 0, np.full((5, 7), cfg.w_max + 1))
    with pytest.raises(ValueError, match="shape"):
        pr.pack_words(cfg, lanes, 0, np.zeros((7, 5)))


def test_word_layout_matches_core_packing():
    # word i*NB1 + b holds W1[i, b*P : b*P+P], lane 0 first (hdl/core.py docstring)
    cfg = Config(n_in=2, n_hid=3, n_out=2)
    w = np.array([[1, 2, 3], [4, 5, 6]])
    assert list(pr.pack_words(cfg, 2, 0, w)) == [1, 2, 3, 0, 4, 5, 6, 0]


def test_wide_weights_and_inputs_use_two_bytes():
    cfg = Config(n_in=3, n_hid=2, n_out=2, w_bits=12, in_bits=10)
    assert pr.weight_bytes(cfg) == 2 and pr.input_bytes(cfg) == 2
    w = np.array([[-2048, 2047], [5, -5], [0, 1]])
    np.testing.assert_array_equal(pr.unpack_words(cfg, 1, 0, pr.pack_words(cfg, 1, 0, w)), w)
    assert pr.present_payload(cfg, "dfa", 1, [1023, 0, 256]) == bytes([2, 1, 0xFF, 3, 0, 0, 0, 1])


def test_identify_present_counters_round_trip():
    cfg = Config()
    ident = pr.parse_identify(pr.identify_payload(cfg, 4, 256, 12_000_000, 12))
    assert ident["n_hid"] == cfg.n_hid and ident["lanes"] == 4 and ident["n_regs"] == 17
    with pytest.raises(pr.ProtocolError, match="magic"):
        pr.parse_identify(b"XXXX" + pr.identify_payload(cfg, 1, 256, 1, 4)[4:])
    counts = np.arange(cfg.n_out) * 3
    p = pr.parse_present(cfg, pr.present_reply_payload(cfg, 4, counts, 12345, 678))
    assert p["pred"] == 4 and list(p["counts"]) == list(counts)
    assert (p["cycles"], p["events"]) == (12345, 678)
    with pytest.raises(pr.ProtocolError, match="expected"):
        pr.parse_present(cfg, b"\x00" * 3)
    c = pr.parse_counters(bytes(range(36)))
    assert c["sample_counter"] == int.from_bytes(bytes(range(4)), "little")
    assert c["uart_errors"] == int.from_bytes(bytes(range(32, 36)), "little")


def test_register_ranges_and_values():
    cfg = Config()
    assert len(pr.REGISTERS) == 17
    from hdl.core import regs_layout
    assert tuple(regs_layout(cfg).members) == pr.REGISTERS
    vals = pr.register_values(cfg)
    for i, v in enumerate(vals):
        lo, hi = pr.reg_range(cfg, i)
        assert lo <= v <= hi, pr.REGISTERS[i]
    assert pr.reg_range(cfg, 0) == (1, (1 << 15) - 1)
    assert pr.reg_range(cfg, 12) == (-(1 << 15), (1 << 15) - 1)
    assert pr.default_max_frame(cfg) == 256
    assert pr.default_max_frame(Config(n_in=784, n_hid=16, n_out=10)) == 1024
