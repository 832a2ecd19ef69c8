"""The real top level (core + protocol + UART), compiled with Verilator behind a pty, driven by
the host driver over pyserial, against the golden model and the protocol model.

- training over the virtual board gives weights identical to the golden model's;
- a fuzz run sends random and damaged frames and checks every reply byte against
  ``sim.device.DeviceModel`` (so weights, registers and counters change only through good
  frames, and exactly as the spec says). ``SNN_FUZZ_FRAMES=N`` sets the number of frames.
"""

import os
import time

import numpy as np
import pytest

from sim.device import DeviceModel
from sim.golden import GoldenModel, init_weights
from spec import protocol as pr
from spec.config import Config
from tests.support import DRIVER_CFG

pytest.importorskip("serial")
virtual = pytest.importorskip("sw.virtual")

FUZZ_FRAMES = int(os.environ.get("SNN_FUZZ_FRAMES", "10000"))

# the driver tests' small network, shorter (fast presentations in the fuzz run)
SMALL = DRIVER_CFG.replace(n_in=10, timesteps=6)


def start(cfg, lanes):
    try:
        return virtual.start_virtual_board(cfg, lanes=lanes)
    except virtual.VirtualBoardError as e:
        if "not installed" in str(e) or "cannot import" in str(e):
            pytest.skip(str(e))
        raise


def test_training_over_the_virtual_board_equals_golden_model():
    from sw.backend import make_backend
    cfg = Config()
    from sim.data import load_dataset
    ds = load_dataset("digits")
    w1, w2 = init_weights(cfg, 0)
    gold = GoldenModel(cfg, w1, w2)
    with make_backend("virtual", cfg, lanes=4) as be:
        be.write_weights(w1, w2)
        for i in range(24):
            x, y = ds.x_train[i], int(ds.y_train[i])
            mode = ("erbp", "dfa", "infer")[i % 3]
            counts, pred = be.present(x, y, mode)
            res = gold.present(x, y, mode=mode)
            assert list(counts) == list(res.counts) and pred == res.pred, (i, mode)
        r1, r2 = be.read_weights()
        c = be.counters()
    assert (r1 != w1).any(), "nothing was learned"
    np.testing.assert_array_equal(r1, gold.w1)
    np.testing.assert_array_equal(r2, gold.w2)
    assert c["sample_counter"] == gold.sample_counter == 16
    assert c["presentations"] == 24


def _frames(rng, cfg, lanes, model):
    """Random traffic: valid requests, damaged valid requests, random bytes."""
    w_words = [pr.layer_words(cfg, lanes, L) for L in (0, 1)]
    wb = lanes * pr.weight_bytes(cfg)
    seq = 0
    while True:
        seq = (seq + 1) & 0xFF
        kind = rng.random()
        op = int(rng.choice([1, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9]))
        if op == 3:
            payload = bytes([int(rng.integers(0, 19))]) + \
                int(rng.integers(-40000, 40000)).to_bytes(4, "little", signed=True)
        elif op == 4:
            payload = bytes([int(rng.integers(0, 4)), int(rng.integers(0, cfg.n_out + 1))]) + \
                rng.integers(0, 1 << cfg.in_bits, cfg.n_in).astype(np.uint8).tobytes()
        elif op == 5:
            L = int(rng.integers(0, 2))
            payload = bytes([L]) + int(rng.integers(0, w_words[L] + 2)).to_bytes(2, "little") + \
                int(rng.integers(0, 6)).to_bytes(2, "little")
        elif op == 6:
            L = int(rng.integers(0, 2))
            n = int(rng.integers(1, 5))
            payload = bytes([L]) + int(rng.integers(0, w_words[L] + 1)).to_bytes(2, "little") + \
                rng.integers(cfg.w_min - 2, cfg.w_max + 3, n * wb).astype(np.int8).tobytes()
        elif op == 8:
            payload = int(rng.integers(0, 2**32)).to_bytes(4, "little")
        else:
            payload = b"" if rng.random() < 0.9 else bytes([7])
        wire = bytearray(pr.request(seq, op, payload))
        if kind < 0.35:
            pass                                   # valid request
        elif kind < 0.45:
            # sent twice: the repeat must be answered from the stored reply
            yield bytes(wire)
        elif kind < 0.75:                           # damaged in transit
            for _ in range(int(rng.integers(1, 3))):
                if len(wire) < 3:
                    break
                i = int(rng.integers(1, len(wire) - 1))
                r = rng.random()
                if r < 0.6:
                    wire[i] ^= 1 << int(rng.integers(0, 8))
                elif r < 0.8:
                    del wire[i:]                   # truncated (then END)
                    wire.append(pr.END)
                else:
                    wire[i:i] = bytes([pr.ESC, int(rng.integers(0, 256))])
        elif kind < 0.9:                           # random bytes
            wire = bytearray(rng.integers(0, 256, int(rng.integers(1, 40)), dtype=np.uint8))
            wire.append(pr.END)
        else:                                      # too long
            wire = bytearray([pr.END]) + bytearray(
                rng.integers(0, 0xC0, model.max_frame + int(rng.integers(1, 30)),
                             dtype=np.uint8)) + bytearray([pr.END])
        # One frame per write: the device discards what arrives while it executes a frame,
        # which the model does not; so no END inside (a damaged byte may have become one).
        wire[1:-1] = bytes(0x00 if b == pr.END else b for b in wire[1:-1])
        yield bytes(wire)


def test_fuzz_frames_against_the_protocol_model():
    import serial
    cfg, lanes = SMALL, 2
    model = DeviceModel(cfg, lanes)
    rng = np.random.default_rng(2024)
    with start(cfg, lanes) as vb:
        link = serial.Serial(vb.port, timeout=0.01)
        link.reset_input_buffer()
        # start from the same weights on both (stop and wait: one request, one reply)
        dec = pr.SlipDecoder()

        def exchange(wire, n_replies=1, timeout=10.0):
            link.write(wire)
            frames, deadline = [], time.monotonic() + timeout
            while len(frames) < n_replies and time.monotonic() < deadline:
                frames += dec.feed(link.read(max(1, link.in_waiting)))
            return frames

        w1, w2 = init_weights(cfg, 1)
        for seq, (L, w) in enumerate(((0, w1), (1, w2)), 1):
            wire = pr.request(seq, pr.Op.WRITE_W, bytes([L, 0, 0])
                              + pr.pack_words(cfg, lanes, L, w))
            assert pr.parse_reply(pr.SlipDecoder().feed(model.feed(wire))[0]).status == 0
            assert pr.parse_reply(exchange(wire)[0]).status == 0
        wire = pr.request(3, pr.Op.IDENTIFY)
        want_ident = pr.parse_identify(pr.parse_reply(pr.SlipDecoder().feed(
            model.feed(wire))[0]).payload)
        ident = pr.parse_identify(pr.parse_reply(exchange(wire)[0]).payload)
        # clock and divisor are the build's, not the model's defaults
        model.clk_hz, model.divisor = ident["clk_hz"], ident["divisor"]
        assert {k: v for k, v in ident.items() if k not in ("clk_hz", "divisor")} == \
            {k: v for k, v in want_ident.items() if k not in ("clk_hz", "divisor")}
        mismatches = []
        statuses = {}
        gen = _frames(rng, cfg, lanes, model)
        for n in range(FUZZ_FRAMES):
            wire = next(gen)
            want = model.feed(wire)
            n_want = len(pr.SlipDecoder().feed(want))
            buf = bytearray()
            link.write(wire)
            frames, deadline = [], time.monotonic() + 5
            while len(frames) < n_want and time.monotonic() < deadline:
                chunk = link.read(max(1, link.in_waiting))
                buf += chunk
                frames += dec.feed(chunk)
            for f in pr.SlipDecoder().feed(want):
                statuses[f[2]] = statuses.get(f[2], 0) + 1
            if bytes(buf) != want and pr.SlipDecoder().feed(bytes(buf)) != \
                    pr.SlipDecoder().feed(want):
                mismatches.append((n, wire.hex(), want.hex(), bytes(buf).hex()))
                if len(mismatches) >= 5:
                    break
        # final state: weights and registers read back equal the model's
        from sw.driver import Board
        b = Board(link, name=vb.port, seq=77)
        regs = b.read_registers()
        r1, r2 = b.read_weights(cfg)
        link.close()
    assert not mismatches, "replies differ from the model (frame, sent, model, rtl):\n" + \
        "\n".join(map(str, mismatches))
    assert list(regs.values()) == [v & 0xFFFFFFFF if k == "seed" else v
                                   for k, v in zip(pr.REGISTERS, model.regs)]
    m1, m2 = model.weights()
    np.testing.assert_array_equal(r1, m1)
    np.testing.assert_array_equal(r2, m2)
    # the run exercised every status
    assert set(statuses) >= {int(s) for s in pr.Status}, statuses


def test_host_that_stops_mid_frame_loses_nothing():
    """Half a WRITE_W frame, then silence, then a new session: the weights are unchanged
    and the driver gets its answers (the partial frame is answered BAD_CRC when the next
    frame's leading END closes it, and the driver resends)."""
    import serial

    from sw.driver import Board
    cfg, lanes = SMALL, 2
    with start(cfg, lanes) as vb:
        link = serial.Serial(vb.port, timeout=0.01)
        b = Board(link, name=vb.port, timeout=1.0, seq=10)
        w1, w2 = init_weights(cfg, 3)
        b.write_weights(cfg, w1, w2)
        before = b.read_counters()
        wire = pr.request(99, pr.Op.WRITE_W, bytes([0, 0, 0])
                          + pr.pack_words(cfg, lanes, 0, np.zeros_like(w1)))
        link.write(wire[:len(wire) // 2])     # the host dies here
        time.sleep(0.3)
        link.close()
        link = serial.Serial(vb.port, timeout=0.01)  # a new host
        b = Board(link, name=vb.port, timeout=1.0, seq=200)
        r1, r2 = b.read_weights(cfg)
        after = b.read_counters()
        link.close()
    np.testing.assert_array_equal(r1, w1)
    np.testing.assert_array_equal(r2, w2)
    assert after["frames_rejected"] == before["frames_rejected"] + 1
