# amaranth: UnusedElaboratable=no
"""The link protocol engine (``hdl/protocol.py``) against ``docs/protocol.md``.

Requests are built and replies parsed with the host codec (``sw/protocol.py``). Every reply's
wire bytes are also compared with those of :class:`sim.device.DeviceModel`, the protocol's
executable specification (``PRESENT`` through the golden model ``sim/golden.py``), so that the
fuzz tests can check any sequence of frames: weights, registers and counters may only change
through good frames, and the model knows which.
"""

import struct
import time

import numpy as np
import pytest
from amaranth.sim import Simulator

from hdl.core import presentation_cycles, synaptic_events
from hdl.protocol import ProtocolEngine, default_max_frame
from sim.device import DeviceModel
from sim.golden import GoldenModel
from spec import protocol as pr
from spec.config import Config
from spec.fixed import encode
from spec.protocol import END, ESC, Op, Status
from tests.support import random_weights, stress_config


def small_cfg(**over):
    """The core tests' stress configuration with wider states and 4 steps (fast to simulate)."""
    return stress_config(**{"state_bits": 8, "timesteps": 4, **over})


CLK_HZ, DIVISOR = 12_000_000, 6


# ---- simulation harness ----------------------------------------------------------------------
def frame_of(wire):
    """The reply frame in a reply's wire bytes (``None`` for no reply)."""
    if wire is None:
        return None
    frames = pr.SlipDecoder().feed(wire)
    assert len(frames) == 1 and frames[0] is not None, f"not one reply frame: {wire!r}"
    return frames[0]


class Link:
    """The host end of the engine's byte streams inside an async testbench; ``model`` is
    fed what the engine receives while idle."""

    def __init__(self, dut, ctx, model, tx_ready=None):
        self.dut, self.ctx, self.model = dut, ctx, model
        self.tx_ready = tx_ready          # None: always ready; else a callable -> bool
        self.cycles = 0
        self.errors = []

    async def tick(self):
        await self.ctx.tick()
        self.cycles += 1

    async def wait_idle(self, limit=100_000):
        for _ in range(limit):
            if not self.ctx.get(self.dut.busy):
                return
            await self.tick()
        raise AssertionError("the engine stayed busy")

    async def send(self, data, error_at=()):
        """One byte per cycle; ``error_at``: indices at which an rx_error pulse replaces the
        byte."""
        ctx, dut = self.ctx, self.dut
        for i, b in enumerate(data):
            if i in error_at:
                ctx.set(dut.rx_error, 1)
            else:
                ctx.set(dut.rx.valid, 1)
                ctx.set(dut.rx.payload, b)
            await self.tick()
            ctx.set(dut.rx.valid, 0)
            ctx.set(dut.rx_error, 0)

    async def receive(self, limit=50_000):
        """The wire bytes of the next reply (up to the END that closes a frame), or None if no
        byte comes within ``limit`` cycles."""
        ctx, dut = self.ctx, self.dut
        dec = pr.SlipDecoder()
        wire = bytearray()
        for _ in range(limit):
            ready = True if self.tx_ready is None else self.tx_ready()
            ctx.set(dut.tx.ready, ready)
            if ready and ctx.get(dut.tx.valid):
                wire.append(ctx.get(dut.tx.payload))
                if dec.feed(wire[-1:]):
                    await self.tick()
                    ctx.set(dut.tx.ready, 0)
                    return bytes(wire)
            await self.tick()
        assert not wire, "reply cut short"
        return None

    async def quiet(self, cycles=60):
        """No reply starts within ``cycles``."""
        for _ in range(cycles):
            if self.ctx.get(self.dut.tx.valid):
                return False
            await self.tick()
        return True

    async def transact(self, wire, what="", error_at=None):
        """Send ``wire``; every END-terminated part is checked against the model (the reply's
        wire bytes, or silence). ``error_at``: index of a byte of ``wire`` that is replaced by
        a UART error pulse. Returns the replies (decoded frames)."""
        replies = []
        start = 0
        for i, b in enumerate(wire):
            if b != END:
                continue
            part = wire[start:i + 1]
            if error_at is not None and start <= error_at < i:
                j = error_at - start
                await self.send(part[:j])
                await self.send(b"\x00", error_at=(0,))
                await self.send(part[j + 1:])
                assert self.model.feed(part[:j]) == b""
                self.model.line_error()
                want = self.model.feed(part[j + 1:])
            else:
                await self.send(part)
                want = self.model.feed(part)
            start = i + 1
            if want:
                got = await self.receive()
                if got != want:
                    self.errors.append(f"{what}: reply {got!r}, expected {want!r}")
                replies.append(frame_of(got))
            elif not await self.quiet():
                self.errors.append(f"{what}: a reply to {part!r}, expected none")
                await self.receive()
        if start < len(wire):
            await self.send(wire[start:])
            assert self.model.feed(wire[start:]) == b""
        return replies

    async def call(self, seq, op, payload=b"", what=None):
        (frame,) = await self.transact(pr.request(seq, op, payload), what or f"op {op:#x}")
        return pr.parse_reply(frame)


def simulate(dut, body):
    """Run ``body(link)`` against ``dut``; returns the link (cycles, errors)."""
    box = {}

    async def tb(ctx):
        link = box["link"] = Link(dut, ctx, dut._model)
        await link.wait_idle()               # the counters are cleared after reset
        await body(link)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return box["link"]


def make(cfg=None, lanes=1, max_frame=None, latency=1):
    cfg = cfg or small_cfg()
    dut = ProtocolEngine(cfg, lanes, max_frame=max_frame, clk_hz=CLK_HZ, divisor=DIVISOR,
                         weight_latency=latency)
    dut._model = DeviceModel(cfg, lanes, clk_hz=CLK_HZ, divisor=DIVISOR,
                             max_frame=dut.max_frame, weight_latency=latency)
    return dut, dut._model


def random_x(cfg, rng):
    x = rng.integers(0, 1 << cfg.in_bits, cfg.n_in)
    x[rng.integers(0, cfg.n_in)] = (1 << cfg.in_bits) - 1
    return x


async def load_weights(link, cfg, P, w1, w2, seq=100):
    for L, w in enumerate((w1, w2)):
        data = pr.pack_words(cfg, P, L, w)
        r = await link.call(seq + L, Op.WRITE_W, struct.pack("<BH", L, 0) + data)
        assert r.status == Status.OK


async def read_weights(link, cfg, P, seq=110):
    out = []
    for L in (0, 1):
        n = pr.layer_words(cfg, P, L)
        r = await link.call(seq + L, Op.READ_W, struct.pack("<BHH", L, 0, n))
        assert r.status == Status.OK, r
        out.append(pr.unpack_words(cfg, P, L, r.payload))
    return out


# ---- tests --------------------------------------------------------------------------------------
def test_default_max_frame_matches_codec():
    for cfg in (Config(), small_cfg(), small_cfg(n_in=300), small_cfg(in_bits=12, n_in=200)):
        assert default_max_frame(cfg) == pr.default_max_frame(cfg)
    with pytest.raises(ValueError, match="max_frame"):
        ProtocolEngine(small_cfg(), max_frame=64)


def test_register_order_is_the_protocol_order():
    from hdl.core import regs_layout
    assert tuple(regs_layout(Config()).members) == pr.REGISTERS


@pytest.mark.parametrize("lanes", [1, 2])
def test_identify_registers_counters(lanes):
    cfg = small_cfg()
    dut, model = make(cfg, lanes)

    async def body(link):
        r = await link.call(1, Op.IDENTIFY)
        info = pr.parse_identify(r.payload)
        assert info == dict(magic=pr.MAGIC, version=1, lanes=lanes, n_in=cfg.n_in,
                            n_hid=cfg.n_hid, n_out=cfg.n_out, in_bits=cfg.in_bits,
                            w_bits=cfg.w_bits, state_bits=cfg.state_bits,
                            timesteps=cfg.timesteps, max_frame=256, clk_hz=CLK_HZ,
                            divisor=DIVISOR, n_regs=17)
        r = await link.call(2, Op.READ_REGS)
        assert list(struct.unpack("<17i", r.payload))[:16] == pr.register_values(cfg)[:16]
        assert struct.unpack("<I", r.payload[-4:])[0] == cfg.seed
        # every register: lowest, highest, one past each end
        seq = 3
        for i, name in enumerate(pr.REGISTERS):
            lo, hi = pr.reg_range(cfg, i)
            fmt = "<BI" if name == "seed" else "<Bi"
            for v, ok in ((lo, True), (hi, True), (lo - 1, False), (hi + 1, False)):
                if name == "seed" and not ok:
                    continue
                r = await link.call(seq, Op.WRITE_REG, struct.pack(fmt, i, v))
                seq += 1
                assert r.status == (Status.OK if ok else Status.BAD_ARG), (name, v)
        for v in (-(1 << 31), 0x7FFFFFFF, 1 << 20, -(1 << 20)):
            r = await link.call(seq, Op.WRITE_REG, struct.pack("<Bi", 0, v))
            seq += 1
            assert r.status == Status.BAD_ARG
        r = await link.call(seq, Op.WRITE_REG, struct.pack("<Bi", 17, 0))
        assert r.status == Status.BAD_ARG
        r = await link.call(seq + 1, Op.WRITE_REG, struct.pack("<Bi", 255, 0))
        assert r.status == Status.BAD_ARG
        for op, n in ((Op.WRITE_REG, 4), (Op.WRITE_REG, 6), (Op.READ_REGS, 1),
                      (Op.IDENTIFY, 3), (Op.READ_COUNTERS, 2), (Op.WRITE_COUNTER, 3),
                      (Op.WRITE_COUNTER, 5), (Op.READ_W, 4), (Op.READ_W, 6),
                      (Op.PRESENT, 2 + cfg.n_in - 1), (Op.PRESENT, 2 + cfg.n_in + 1),
                      (Op.WRITE_W, 3), (Op.WRITE_W, 2)):
            r = await link.call(seq + 2, op, bytes(range(n)))
            seq += 1
            assert r.status == Status.BAD_LENGTH, (op, n)
        for op in (0, 9, 0x7F, 0x80, 0xFF):
            r = await link.call(seq + 2, op, b"")
            seq += 1
            assert r.status == Status.BAD_OP
        r = await link.call(seq + 2, Op.WRITE_COUNTER, struct.pack("<I", 0xDEADBEEF))
        assert r.status == Status.OK
        assert link.ctx.get(dut.core.sample_counter) == 0xDEADBEEF
        r = await link.call(seq + 3, Op.READ_REGS)
        assert r.payload == b"".join(struct.pack("<I", v & 0xFFFFFFFF) for v in model.regs)
        r = await link.call(seq + 4, Op.READ_COUNTERS)
        c = pr.parse_counters(r.payload)
        assert c["sample_counter"] == 0xDEADBEEF and c["uart_errors"] == 0
        assert c["frames_ok"] > 30 and c["frames_rejected"] > 30

    link = simulate(dut, body)
    assert not link.errors, "\n".join(link.errors[:5])


def wide_cfg():
    """Two bytes per input value and per weight on the wire."""
    return small_cfg(in_bits=10, w_bits=10, state_bits=12, target_rate=700, theta_hid=300,
                     theta_out=200, bmin_hid=-300, bmax_hid=400, bmin_out=-400, bmax_out=500)


@pytest.mark.parametrize("lanes, wide, latency", [(1, False, 1), (2, False, 3), (2, True, 1)])
def test_weights_round_trip_and_bad_arguments(lanes, wide, latency):
    """Also with the ECP5 boards' weight latency (READ_W waits for it)."""
    cfg = wide_cfg() if wide else small_cfg()   # n_hid = 5, n_out = 3: padding with P = 2
    dut, model = make(cfg, lanes, latency=latency)
    rng = np.random.default_rng(lanes)
    wb = pr.weight_bytes(cfg)
    dt = "<i1" if wb == 1 else "<i2"
    n0, n1 = (pr.layer_words(cfg, lanes, L) for L in (0, 1))
    big = 127 if wb == 1 else 32767

    def raw(n, lo=cfg.w_min, hi=cfg.w_max):
        return rng.integers(lo, hi + 1, (n, lanes)).astype(dt).tobytes()

    async def body(link):
        w1, w2 = random_weights(cfg, rng)
        await load_weights(link, cfg, lanes, w1, w2)
        r1, r2 = await read_weights(link, cfg, lanes)
        assert (r1 == w1).all() and (r2 == w2).all()
        # padding lanes are stored and read back; partial reads and writes
        data = raw(n1)
        r = await link.call(1, Op.WRITE_W, struct.pack("<BH", 1, 0) + data)
        assert r.status == Status.OK
        r = await link.call(2, Op.READ_W, struct.pack("<BHH", 1, 0, n1))
        assert r.payload == data
        r = await link.call(3, Op.WRITE_W, struct.pack("<BH", 0, n0 - 2) + raw(2))
        assert r.status == Status.OK
        r = await link.call(4, Op.READ_W, struct.pack("<BHH", 0, n0 - 3, 3))
        assert r.status == Status.OK and len(r.payload) == 3 * lanes * wb
        before = model.words(0), model.words(1)
        seq = 10
        bad = [  # (op, payload, status)
            (Op.WRITE_W, struct.pack("<BH", 2, 0) + raw(1), Status.BAD_ARG),
            (Op.WRITE_W, struct.pack("<BH", 0, n0) + raw(1), Status.BAD_ARG),
            (Op.WRITE_W, struct.pack("<BH", 0, n0 - 1) + raw(2), Status.BAD_ARG),
            (Op.WRITE_W, struct.pack("<BH", 1, 0xFFFF) + raw(1), Status.BAD_ARG),
            (Op.WRITE_W, struct.pack("<BH", 0, 0) + raw(3) + raw(1, cfg.w_max + 1, big),
             Status.BAD_ARG),
            (Op.WRITE_W, struct.pack("<BH", 1, 1) + raw(2) + raw(1, -big - 1, cfg.w_min - 1),
             Status.BAD_ARG),
            (Op.WRITE_W, struct.pack("<BH", 0, 0), Status.BAD_LENGTH),
            (Op.READ_W, struct.pack("<BHH", 0, 0, 0), Status.BAD_ARG),
            (Op.READ_W, struct.pack("<BHH", 2, 0, 1), Status.BAD_ARG),
            (Op.READ_W, struct.pack("<BHH", 1, n1 - 1, 2), Status.BAD_ARG),
            (Op.READ_W, struct.pack("<BHH", 1, n1, 1), Status.BAD_ARG),
            (Op.READ_W, struct.pack("<BHH", 0, 0xFFFF, 0xFFFF), Status.BAD_ARG),
            (Op.READ_W, struct.pack("<BHH", 0, 0, 251 // (lanes * wb) + 1), Status.BAD_ARG),
        ]
        if lanes * wb > 1:      # not a whole number of words
            bad += [(Op.WRITE_W, struct.pack("<BH", 0, 0) + raw(2)[:-1], Status.BAD_LENGTH),
                    (Op.WRITE_W, struct.pack("<BH", 0, 0) + raw(2) + b"\x00", Status.BAD_LENGTH),
                    (Op.WRITE_W, struct.pack("<BH", 9, 0) + b"\x00", Status.BAD_LENGTH)]
        for op, payload, want in bad:
            r = await link.call(seq, op, payload)
            seq += 1
            assert r.status == want, (op, payload.hex(), r.status)
        assert (model.words(0) == before[0]).all() and (model.words(1) == before[1]).all()
        # the largest READ_W
        n = min(n0, 251 // (lanes * wb))
        r = await link.call(seq, Op.READ_W, struct.pack("<BHH", 0, 0, n))
        assert r.status == Status.OK and len(r.payload) == n * lanes * wb
        # every word of both layers as the model has them (checks all the writes above)
        for L in (0, 1):
            r = await link.call(seq + 1 + L, Op.READ_W,
                                struct.pack("<BHH", L, 0, pr.layer_words(cfg, lanes, L)))
            assert r.payload == model.words(L).astype(dt).tobytes()

    link = simulate(dut, body)
    assert not link.errors, "\n".join(link.errors[:5])


@pytest.mark.parametrize("lanes, wide, latency", [(1, False, 1), (2, False, 3), (1, True, 1)])
def test_present_all_modes_against_golden(lanes, wide, latency):
    cfg = wide_cfg() if wide else small_cfg()
    dut, model = make(cfg, lanes, latency=latency)
    rng = np.random.default_rng(10 + lanes)
    w1, w2 = random_weights(cfg, rng)
    gold = GoldenModel(cfg, w1, w2)
    modes = ["infer", "erbp", "dfa", "erbp", "infer", "dfa"]

    async def body(link):
        await load_weights(link, cfg, lanes, w1, w2)
        total_cycles = total_events = 0
        changed = 0
        for i, mode in enumerate(modes):
            x = random_x(cfg, rng)
            label = int(rng.integers(0, cfg.n_out))
            r = await link.call(i, Op.PRESENT, pr.present_payload(cfg, mode, label, x))
            assert r.status == Status.OK
            got = pr.parse_present(cfg, r.payload)
            before = gold.w1.copy(), gold.w2.copy()
            res = gold.present(x, label, mode=mode, trace=True)
            changed += (gold.w1 != before[0]).sum() + (gold.w2 != before[1]).sum()
            assert got["pred"] == res.pred and (got["counts"] == res.counts).all(), mode
            s_in, s_hid = encode(cfg, x).sum(1), res.trace.s_hid.sum(1)
            assert got["cycles"] == presentation_cycles(cfg, lanes, mode, s_in, s_hid,
                                                        latency)
            assert got["events"] == synaptic_events(cfg, mode, s_in, s_hid)
            total_cycles += got["cycles"]
            total_events += got["events"]
            rw1, rw2 = await read_weights(link, cfg, lanes, seq=200 + 2 * i)
            assert (rw1 == gold.w1).all() and (rw2 == gold.w2).all(), f"weights after {mode}"
        assert changed > 0
        r = await link.call(50, Op.READ_COUNTERS)
        c = pr.parse_counters(r.payload)
        assert c["sample_counter"] == gold.sample_counter == 4
        assert c["presentations"] == len(modes)
        assert c["events"] == total_events and c["busy_cycles"] == total_cycles

    link = simulate(dut, body)
    assert not link.errors, "\n".join(link.errors[:5])


@pytest.mark.parametrize("wide", [False, True])
def test_present_bad_arguments_change_nothing(wide):
    cfg = wide_cfg() if wide else small_cfg()
    dut, model = make(cfg, 1)
    rng = np.random.default_rng(3)
    dt = "<u1" if pr.input_bytes(cfg) == 1 else "<u2"

    async def body(link):
        await load_weights(link, cfg, 1, *random_weights(cfg, rng))
        x = random_x(cfg, rng)

        def xs(*pairs):
            y = x.copy()
            for i, v in pairs:
                y[i] = v
            return y.astype(dt).tobytes()

        top = 1 << cfg.in_bits
        for i, payload in enumerate([
                bytes([3, 0]) + xs(), bytes([1, cfg.n_out]) + xs(), bytes([0, 255]) + xs(),
                bytes([1, 0]) + xs((cfg.n_in - 1, top)), bytes([2, 0]) + xs((0, top)),
                bytes([0, 0]) + xs((2, top + 1)),
                bytes([0, 0]) + xs((1, (1 << (8 * pr.input_bytes(cfg))) - 1))]):
            r = await link.call(i, Op.PRESENT, payload)
            assert r.status == Status.BAD_ARG
        r = await link.call(9, Op.READ_COUNTERS)
        c = pr.parse_counters(r.payload)
        assert c["presentations"] == 0 and c["sample_counter"] == 0 and c["events"] == 0
        # a valid presentation after the rejected ones (the encoder was not left half-loaded)
        r = await link.call(10, Op.PRESENT, pr.present_payload(cfg, "erbp", 1, x))
        assert r.status == Status.OK
        await read_weights(link, cfg, 1)

    link = simulate(dut, body)
    assert not link.errors, "\n".join(link.errors[:5])


def test_framing_errors_and_replay():
    cfg = small_cfg()
    dut, model = make(cfg, 2)
    rng = np.random.default_rng(4)

    async def body(link):
        ident = pr.request(1, Op.IDENTIFY)
        # bad CRC, short frames, truncation by END, bad escape, overflow, unknown op
        good = pr.request(5, Op.WRITE_REG, struct.pack("<Bi", 0, 7))
        flipped = bytearray(good)
        flipped[4] ^= 0x10
        cases = [bytes(flipped), bytes([END, 9, END]), bytes([END, 9, 2, END]),
                 bytes([END, 9, 2, 3, END]), good[:5] + bytes([END]),
                 bytes([END, 1, ESC, 0x55, 2, 3, 4, END]), bytes([END, 1, 2, ESC, END]),
                 bytes([END]) + bytes(range(1, 200)) + bytes(range(1, 100)) + bytes([END]),
                 pr.request(6, 0x42), bytes([END, END, END])]
        for wire in cases:
            await link.transact(wire, f"case {wire[:8].hex()}")
        assert model.regs[0] == cfg.theta_hid
        # a frame of exactly max_frame bytes is taken (and rejected for its length: an odd
        # number of bytes with P = 2), one more byte is an overflow
        data = rng.integers(cfg.w_min, cfg.w_max + 1, 256 - 7).astype("<i1").tobytes()
        frame = struct.pack("<BBBH", 8, Op.WRITE_W, 0, 0) + data
        frame += struct.pack("<H", pr.crc16(frame))
        assert len(frame) == 256
        (rep,) = await link.transact(pr.slip_encode(frame))
        assert pr.parse_reply(rep).status == Status.BAD_LENGTH      # 256 bytes: not OVERFLOW
        (rep,) = await link.transact(pr.slip_encode(frame + b"\x01"))
        assert pr.parse_reply(rep).status == Status.OVERFLOW
        # replay: the same seq and CRC are answered from the stored reply, not executed
        x = random_x(cfg, rng)
        learn = pr.request(20, Op.PRESENT, pr.present_payload(cfg, "erbp", 0, x))
        (a,) = await link.transact(learn)
        (b,) = await link.transact(learn)
        assert a == b and model.sample_counter == 1
        assert link.ctx.get(dut.core.sample_counter) == 1
        # a damaged resend in between does not forget the stored reply
        await link.transact(learn[:-3] + bytes([END]))
        await link.transact(bytes(flipped))
        (c,) = await link.transact(learn)
        assert c == a and model.sample_counter == 1
        # same seq, other CRC: executed
        (d,) = await link.transact(pr.request(20, Op.PRESENT,
                                              pr.present_payload(cfg, "erbp", 1, x)))
        assert model.sample_counter == 2 and link.ctx.get(dut.core.sample_counter) == 2
        # a rejected request is replayed as rejected
        badw = pr.request(21, Op.WRITE_REG, struct.pack("<Bi", 40, 0))
        (e,) = await link.transact(badw)
        (f,) = await link.transact(badw)
        assert e == f and pr.parse_reply(e).status == Status.BAD_ARG
        await link.transact(ident)
        r = await link.call(22, Op.READ_COUNTERS)
        c = pr.parse_counters(r.payload)
        assert c["frames_rejected"] == model.counters["frames_rejected"]

    link = simulate(dut, body)
    assert not link.errors, "\n".join(link.errors[:5])


def test_uart_errors_and_bytes_while_busy():
    cfg = small_cfg()
    dut, model = make(cfg, 1)
    rng = np.random.default_rng(5)

    async def body(link):
        # a UART error inside a frame: BAD_FRAMING; between frames (no data byte): silence
        wire = pr.request(1, Op.IDENTIFY)
        await link.send(wire[:3])
        await link.send(b"\x00", error_at=(0,))
        model.feed(wire[:3])
        model.line_error()
        await link.transact(wire[3:], "uart error in a frame")
        await link.send(b"\x00", error_at=(0,))
        model.line_error()
        await link.transact(bytes([END]), "uart error between frames")
        await link.transact(pr.request(2, Op.IDENTIFY))
        # bytes during a presentation are dropped up to and including the next END
        x = random_x(cfg, rng)
        present = pr.request(3, Op.PRESENT, pr.present_payload(cfg, "dfa", 2, x))
        await link.send(present)
        want = model.feed(present)
        for _ in range(20):
            await link.tick()
        assert link.ctx.get(dut.busy)
        await link.send(pr.request(4, Op.WRITE_REG, struct.pack("<Bi", 0, 1)))  # dropped
        await link.send(b"\x01\x02\x03")                                          # dropped..
        # a UART error in a dropped byte is counted and spoils nothing
        assert link.ctx.get(dut.busy)
        await link.send(b"\x00", error_at=(0,))
        model.line_error(discarded=True)
        assert await link.receive() == want
        # ...up to this END; the frame after it is received whole
        await link.send(pr.request(5, Op.WRITE_REG, struct.pack("<Bi", 1, 3)))
        want = model.feed(pr.request(5, Op.WRITE_REG, struct.pack("<Bi", 1, 3))[1:])
        assert await link.receive() == want
        assert pr.parse_reply(frame_of(want)).seq == 5
        assert pr.parse_reply(frame_of(want)).status == Status.OK
        # bytes that arrive while READ_REGS executes are dropped as well (its reply then goes
        # to a slow consumer; a request sent once the reply has begun is received, see
        # test_bytes_while_busy_and_while_replying)
        link.tx_ready = lambda: rng.random() < 0.1
        await link.send(pr.request(6, Op.READ_REGS))
        want = model.feed(pr.request(6, Op.READ_REGS))
        await link.send(pr.request(7, Op.WRITE_REG, struct.pack("<Bi", 0, 2)))  # dropped
        assert await link.receive() == want
        assert model.regs[0] == cfg.theta_hid and model.regs[1] == 3
        link.tx_ready = None
        r = await link.call(8, Op.READ_COUNTERS)
        c = pr.parse_counters(r.payload)
        assert c["uart_errors"] == 3

    link = simulate(dut, body)
    assert not link.errors, "\n".join(link.errors[:5])


# ---- fuzz -------------------------------------------------------------------------------------
def valid_requests(cfg, P, rng):
    """A random well-formed request (some with bad arguments)."""
    n = [pr.layer_words(cfg, P, L) for L in (0, 1)]
    kind = rng.integers(0, 10)
    if kind == 0:
        return Op.IDENTIFY, b""
    if kind == 1:
        return Op.READ_REGS, b""
    if kind == 2:
        i = int(rng.integers(0, 18))
        if i < 17:
            lo, hi = pr.reg_range(cfg, i)
            # any value in range, even one the host's Config refuses (bmin >= bmax): the
            # device only checks ranges, and the model runs the golden model unchecked
            v = int(rng.integers(lo - 2, hi + 3)) & 0xFFFFFFFF
        else:
            v = 0
        return Op.WRITE_REG, struct.pack("<BI", i, v)
    if kind == 3:
        mode = int(rng.choice([0, 1, 2, 2, 3]))
        label = int(rng.integers(0, cfg.n_out + 1))
        x = rng.integers(0, (1 << cfg.in_bits) + (rng.random() < 0.2), cfg.n_in)
        return Op.PRESENT, bytes([mode, label]) + x.astype(np.uint8).tobytes()
    if kind in (4, 5):
        L = int(rng.integers(0, 2))
        addr = int(rng.integers(0, n[L] + 1))
        count = int(rng.integers(0, n[L] - addr + 2))
        return Op.READ_W, struct.pack("<BHH", L, addr, count)
    if kind in (6, 7):
        L = int(rng.integers(0, 2))
        addr = int(rng.integers(0, n[L]))
        count = int(rng.integers(1, n[L] - addr + 2))
        lo, hi = cfg.w_min, cfg.w_max
        if rng.random() < 0.2:
            lo, hi = -128, 127
        data = rng.integers(lo, hi + 1, count * P).astype("<i1").tobytes()
        return Op.WRITE_W, struct.pack("<BH", L, addr) + data
    if kind == 8:
        return Op.READ_COUNTERS, b""
    return Op.WRITE_COUNTER, struct.pack("<I", int(rng.integers(0, 1 << 32)))


def mutate(wire, rng):
    """Damage the wire bytes of a request."""
    w = bytearray(wire)
    how = rng.integers(0, 6)
    if how == 0:      # bit flips
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(1, len(w) - 1))
            w[i] ^= 1 << int(rng.integers(0, 8))
    elif how == 1:    # truncated: END in the middle
        w = w[:int(rng.integers(1, len(w) - 1))] + bytes([END])
    elif how == 2:    # duplicated END, or one dropped
        i = int(rng.integers(0, len(w)))
        w = w[:i] + bytes([END]) + w[i:] if rng.random() < 0.5 else w[:i] + w[i + 1:]
    elif how == 3:    # a byte dropped or inserted
        i = int(rng.integers(1, len(w) - 1))
        w = w[:i] + w[i + 1:] if rng.random() < 0.5 else \
            w[:i] + bytes([int(rng.integers(0, 256))]) + w[i:]
    elif how == 4:    # bad escape
        i = int(rng.integers(1, len(w) - 1))
        w = w[:i] + bytes([ESC, int(rng.integers(0, 256))]) + w[i:]
    else:             # random bytes
        w = bytes([END]) + rng.integers(0, 256, int(rng.integers(1, 40)), np.uint8).tobytes() \
            + bytes([END])
    if w[-1:] != bytes([END]):
        w = bytes(w) + bytes([END])
    return bytes(w)


def run_fuzz(seconds, seed, lanes, cfg=None):
    cfg = cfg or small_cfg()
    dut, model = make(cfg, lanes)
    rng = np.random.default_rng(seed)
    stats = dict(frames=0, ok=0, rejected=0, damaged=0, resent=0)

    async def body(link):
        w1, w2 = random_weights(cfg, rng)
        await load_weights(link, cfg, lanes, w1, w2)
        t0 = time.monotonic()
        seq = 0
        previous = pr.request(0, Op.IDENTIFY)
        while time.monotonic() - t0 < seconds and not link.errors:
            op, payload = valid_requests(cfg, lanes, rng)
            seq = (seq + 1) & 0xFF
            wire = pr.request(seq, op, payload)
            r = rng.random()
            error_at = None
            if r < 0.45:
                wire = mutate(wire, rng)
                stats["damaged"] += 1
            elif r < 0.5:
                error_at = int(rng.integers(1, len(wire) - 1))   # a UART error inside
                stats["damaged"] += 1
            elif r < 0.6:
                wire = previous                     # a retransmission: not executed again
                stats["resent"] += 1
            elif r < 0.65:
                seq = (seq - 1) & 0xFF              # the same seq for another request
                wire = pr.request(seq, op, payload)
            else:
                previous = wire
            replies = await link.transact(wire, f"frame {stats['frames']} {wire.hex()}",
                                          error_at)
            stats["frames"] += 1
            for rep in replies:
                st = pr.parse_reply(rep).status
                stats["ok" if st == Status.OK else "rejected"] += 1
        # the full state, through the device
        w = await read_weights(link, cfg, lanes, seq=0x55)
        assert all((a == b).all() for a, b in zip(w, model.weights()))
        r = await link.call(0x57, Op.READ_REGS)
        assert r.payload == b"".join(struct.pack("<I", v & 0xFFFFFFFF) for v in model.regs)
        await link.call(0x58, Op.READ_COUNTERS)

    link = simulate(dut, body)
    assert not link.errors, "\n".join(link.errors[:3])
    assert stats["ok"] > 0 and stats["rejected"] > 0
    return stats


@pytest.mark.parametrize("lanes", [1, 2])
def test_fuzz(lanes):
    stats = run_fuzz(12, seed=lanes, lanes=lanes)
    print(stats)
    assert stats["frames"] > 50


@pytest.mark.slow
@pytest.mark.parametrize("lanes", [1, 2, 3])
def test_fuzz_long(lanes):
    stats = run_fuzz(300, seed=100 + lanes, lanes=lanes)
    print(stats)


# ---- the top level, through the UART ----------------------------------------------------------
def test_top_ports_in_verilog():
    from amaranth.back import verilog

    from hdl.top import Top
    text = verilog.convert(Top(small_cfg(), lanes=1, divisor=4), name="snn_top")
    head = text[text.index("module snn_top("):]
    head = head[:head.index(");")]
    ports = {p.strip() for p in head[len("module snn_top("):].split(",")}
    assert ports == {"clk", "rst", "rx", "tx", "busy"}


def test_top_end_to_end_through_uart():
    from hdl.top import Top
    cfg = small_cfg()
    div = 6
    dut = Top(cfg, lanes=2, divisor=div)
    model = DeviceModel(cfg, 2, clk_hz=CLK_HZ, divisor=div)
    rng = np.random.default_rng(7)
    x = random_x(cfg, rng)
    w1, w2 = random_weights(cfg, rng)
    requests = [
        pr.request(1, Op.IDENTIFY),
        pr.request(2, Op.WRITE_W, struct.pack("<BH", 1, 0) + pr.pack_words(cfg, 2, 1, w2)),
        pr.request(3, Op.WRITE_REG, struct.pack("<Bi", 1, 7)),
        pr.request(4, Op.PRESENT, pr.present_payload(cfg, "erbp", 1, x)),
        pr.request(4, Op.PRESENT, pr.present_payload(cfg, "erbp", 1, x)),   # replayed
        pr.request(5, Op.READ_COUNTERS),
    ]
    got, wire = [], bytearray()
    state = {"busy_seen": False}

    async def host(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(40)
        for req in requests:
            n = len(got)
            for b in req:
                for bit in [0] + [(b >> i) & 1 for i in range(8)] + [1]:
                    ctx.set(dut.rx, bit)
                    await ctx.tick().repeat(div)
            for _ in range(200_000):
                if len(got) > n:
                    break
                state["busy_seen"] |= bool(ctx.get(dut.busy))
                await ctx.tick()
            assert len(got) == n + 1, "no reply"
        await ctx.tick().repeat(12 * div)
        assert not ctx.get(dut.busy) and ctx.get(dut.tx) == 1
        state["done"] = True

    async def monitor(ctx):
        dec = pr.SlipDecoder()
        while not state.get("done"):
            if ctx.get(dut.tx):
                await ctx.tick()
                continue
            await ctx.tick().repeat(div // 2)
            assert ctx.get(dut.tx) == 0, "start bit"
            b = 0
            for i in range(8):
                await ctx.tick().repeat(div)
                b |= ctx.get(dut.tx) << i
            await ctx.tick().repeat(div)
            assert ctx.get(dut.tx) == 1, "stop bit"
            wire.append(b)
            got.extend(dec.feed(bytes([b])))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(host)
    sim.add_testbench(monitor)
    sim.run()
    assert bytes(wire) == b"".join(model.feed(req) for req in requests)
    assert pr.parse_identify(pr.parse_reply(got[0]).payload)["divisor"] == div
    assert pr.parse_counters(pr.parse_reply(got[-1]).payload)["sample_counter"] == 1
    assert state["busy_seen"]


# ---- where the device, the model and the document once disagreed (issue 12, section 3) ------
async def send_paced(link, data, gap=4):
    """``data`` a byte every ``gap + 1`` cycles (a UART delivers one every ``10 * divisor``)."""
    for b in data:
        await link.send(bytes([b]))
        for _ in range(gap):
            await link.tick()


async def receive_all(link, limit=50_000):
    """The wire bytes of every reply until the line stays quiet."""
    out = bytearray()
    while True:
        got = await link.receive(limit)
        if got is None:
            link.ctx.set(link.dut.tx.ready, 0)
            return bytes(out)
        out += got
        limit = 2_000


def reply_wire(seq, op, status, payload=b""):
    return pr.slip_encode(pr.reply_frame(seq, op, status, payload))


def test_leading_end_flushes_an_interrupted_frame():
    """Stray bytes, then a correct request: the request is answered. Fewer than 4 stray bytes
    get no reply; a longer stray frame its BAD_CRC, while the receiver takes the request."""
    cfg = small_cfg()
    dut, model = make(cfg, 1)
    rng = np.random.default_rng(12)
    # a long request cut off (no byte of it needs an escape)
    long = pr.request(0x33, Op.WRITE_W, bytes(3) + rng.integers(1, 100, 120).astype("u1").tobytes())
    assert END not in long[1:-1] and ESC not in long[1:-1]
    ident_payload = pr.identify_payload(cfg, 1, dut.max_frame, CLK_HZ, DIVISOR)

    async def body(link):
        for n, (stray, answered) in enumerate([(b"\x11\x12\x13", False), (long[:50], True),
                                               (b"\x01", False), (long[:4], False),
                                               (long[1:6], True)]):
            wire = stray + pr.request(0x40 + n, Op.IDENTIFY)
            want = reply_wire(0x40 + n, Op.IDENTIFY, Status.OK, ident_payload)
            if answered:
                want = reply_wire(0x33, Op.WRITE_W, Status.BAD_CRC) + want
            await send_paced(link, wire)
            got = await receive_all(link)
            assert got == want, (n, got.hex(), want.hex())
            assert model.feed(wire) == want, n
        assert model.sample_counter == 0

    link = simulate(dut, body)
    assert not link.errors, "\n".join(link.errors[:5])


def test_invalid_escape_is_answered_bad_framing():
    """Also without a decoded byte: seq is the first decoded byte (0 if none), op the second
    (0 if none) ORed with 0x80."""
    cfg = small_cfg()
    dut, model = make(cfg, 1)
    cases = [(bytes([END, ESC, 0x41, END]), 0, 0), (bytes([END, ESC, END]), 0, 0),
             (bytes([END, 5, ESC, END]), 5, 0), (bytes([END, 5, 4, ESC, 0x41, END]), 5, 4),
             (bytes([END, ESC, 0x41, 5, 4, 3, 2, 1, END]), 5, 4),
             (bytes([END, 7, 3, ESC, ESC, 9, 9, END]), 7, 3)]

    async def body(link):
        for wire, seq, op in cases:
            want = reply_wire(seq, op, Status.BAD_FRAMING)
            assert model.feed(wire) == want, wire.hex()
            await link.send(wire)
            got = await link.receive()
            assert got == want, (wire.hex(), got)
        # a UART error without a byte between two ENDs is still ignored
        await link.send(b"\x00", error_at=(0,))
        model.line_error()
        await link.transact(bytes([END]), "uart error between frames")
        assert model.counters["frames_rejected"] == len(cases)

    link = simulate(dut, body)
    assert not link.errors, "\n".join(link.errors[:5])


def test_bytes_while_busy_and_while_replying():
    """While a command executes every byte is discarded, up to and including the next END;
    bytes after that END are discarded again while it still executes. A request that
    arrives while the reply is being sent is received and answered after it."""
    cfg = small_cfg()
    dut, model = make(cfg, 1)
    rng = np.random.default_rng(13)

    async def body(link):
        present = pr.request(3, Op.PRESENT, pr.present_payload(cfg, "dfa", 2, random_x(cfg, rng)))
        want = model.feed(present)
        await link.send(present)
        for _ in range(20):
            await link.tick()
        for seq in (4, 5, 6):           # three whole requests while the core runs: all lost
            assert link.ctx.get(dut.busy)
            await link.send(pr.request(seq, Op.WRITE_REG, struct.pack("<Bi", 0, seq)))
            await link.tick()
        assert link.ctx.get(dut.busy)
        # a slow consumer: the next request starts while the reply is on the wire
        link.tx_ready = lambda: rng.random() < 0.05
        ctx = link.ctx
        wire = bytearray()
        while not (ctx.get(dut.tx.valid) and link.tx_ready()):
            ctx.set(dut.tx.ready, 0)
            await link.tick()
        ctx.set(dut.tx.ready, 1)
        wire.append(ctx.get(dut.tx.payload))
        await link.tick()
        ctx.set(dut.tx.ready, 0)
        ident = pr.request(7, Op.IDENTIFY)
        await send_paced(link, ident, gap=2)
        wire += await receive_all(link)
        want += model.feed(ident)
        assert bytes(wire) == want
        frames = pr.SlipDecoder().feed(bytes(wire))
        assert [pr.parse_reply(f).seq for f in frames] == [3, 7]
        link.tx_ready = None
        assert model.regs[0] == cfg.theta_hid
        r = await link.call(8, Op.READ_REGS)
        assert struct.unpack("<i", r.payload[:4])[0] == cfg.theta_hid

    link = simulate(dut, body)
    assert not link.errors, "\n".join(link.errors[:5])


def test_rejected_requests_do_not_replace_the_stored_one():
    """A PRESENT resent after a rejected request (BAD_ARG, BAD_OP, BAD_LENGTH) or an oversize
    frame with a valid CRC is answered from the stored reply and trains once; a rejected
    READ_W does not spoil the stored reply."""
    cfg = small_cfg()
    dut, model = make(cfg, 1)
    rng = np.random.default_rng(14)
    n1 = pr.layer_words(cfg, 1, 1)

    async def body(link):
        await load_weights(link, cfg, 1, *random_weights(cfg, rng))
        learn = pr.request(20, Op.PRESENT, pr.present_payload(cfg, "erbp", 1, random_x(cfg, rng)))
        (a,) = await link.transact(learn)
        big = bytes([21, Op.WRITE_W]) + bytes(dut.max_frame)
        rejected = [pr.request(21, Op.WRITE_REG, struct.pack("<Bi", 40, 0)),       # BAD_ARG
                    pr.request(21, 0x42), pr.request(21, Op.IDENTIFY, b"\x00"),
                    pr.slip_encode(big + struct.pack("<H", pr.crc16(big)))]     # OVERFLOW
        for wire in rejected:
            (r,) = await link.transact(wire)
            assert pr.parse_reply(r).status != Status.OK
            (b,) = await link.transact(learn)
            assert b == a
        assert model.sample_counter == 1 and link.ctx.get(dut.core.sample_counter) == 1
        r = await link.call(22, Op.READ_COUNTERS)
        assert pr.parse_counters(r.payload)["presentations"] == 1
        # a READ_W whose second word is past the end is rejected before a byte is read
        read = pr.request(23, Op.READ_W, struct.pack("<BHH", 1, n1 - 3, 3))
        (a,) = await link.transact(read)
        assert pr.parse_reply(a).status == Status.OK
        (r,) = await link.transact(pr.request(24, Op.READ_W, struct.pack("<BHH", 1, n1 - 1, 2)))
        assert pr.parse_reply(r) == pr.Reply(24, Op.READ_W, Status.BAD_ARG, b"")
        (b,) = await link.transact(read)
        assert b == a
        # and a rejected request sent again is checked again, with the same answer
        bad = pr.request(25, Op.PRESENT, pr.present_payload(cfg, "erbp", 7, random_x(cfg, rng)))
        (e,) = await link.transact(bad)
        (f,) = await link.transact(bad)
        assert e == f and pr.parse_reply(e).status == Status.BAD_ARG
        r = await link.call(26, Op.READ_COUNTERS)
        c = pr.parse_counters(r.payload)
        assert c["frames_rejected"] == 7 and c["presentations"] == 1

    link = simulate(dut, body)
    assert not link.errors, "\n".join(link.errors[:5])


def doc_cycles(cfg, P, L, mode, n1, n2):
    """``cycles`` and ``events`` as ``docs/protocol.md`` (section 4, PRESENT) defines them."""
    nb1, nb2 = -(-cfg.n_hid // P), -(-cfg.n_out // P)
    M = max(nb1 + nb2, cfg.n_in + 2)
    step = [15 + 2 * L + M + 2 * (nb1 + nb2) + a * nb1 + b * nb2 for a, b in zip(n1, n2)]
    c = 2 + sum(step) + L + cfg.n_out
    if mode:
        c += 17 + nb1 * P * cfg.n_out
    if mode == 2:
        c += 3 + cfg.n_out + nb1 + nb2 + L + sum(8 + M + a * nb1 + b * nb2
                                                 for a, b in zip(n1, n2))
    e = sum(a * cfg.n_hid + b * cfg.n_out for a, b in zip(n1, n2))
    return c, 2 * e if mode == 2 else e


def test_document_defines_cycles_and_events():
    """The formulas of docs/protocol.md, written out here from the document, equal what the
    device reports (hdl.core's formulas, which the core tests check against the RTL and the
    PRESENT tests above compare byte for byte), and the document's example holds."""
    from pathlib import Path
    text = Path(__file__).resolve().parents[1].joinpath("docs", "protocol.md").read_text()
    assert "hdl/core.py:presentation_cycles" not in text
    for line in ("C_step(t) = 15 + 2 L + M + 2 (NB1 + NB2) + n1(t) NB1 + n2(t) NB2",
                 "cycles    = 2 + sum_t C_step(t) + L + n_out",
                 "+ 17 + NB1 P n_out", "+ 3 + n_out + NB1 + NB2 + L",
                 "+ sum_t (8 + M + n1(t) NB1 + n2(t) NB2)",
                 "events    = sum_t (n1(t) n_hid + n2(t) n_out)"):
        assert line in text, line
    assert "`cycles` = 27597, 28894, 38390" in text and "10063, 11360, 16147" in text
    z = [0] * 64
    assert [doc_cycles(Config(), 1, 1, m, z, z)[0] for m in range(3)] == [27597, 28894, 38390]
    assert [doc_cycles(Config(), 4, 3, m, z, z)[0] for m in range(3)] == [10063, 11360, 16147]
    rng = np.random.default_rng(15)
    for _ in range(200):
        cfg = Config(n_in=int(rng.integers(2, 80)), n_hid=int(rng.integers(2, 140)),
                     n_out=int(rng.integers(2, 12)), timesteps=int(rng.integers(1, 20)))
        P, L, mode = int(rng.integers(1, 9)), int(rng.integers(1, 4)), int(rng.integers(0, 3))
        n1 = rng.integers(0, cfg.n_in + 1, cfg.timesteps)
        n2 = rng.integers(0, cfg.n_hid + 1, cfg.timesteps)
        name = ("infer", "erbp", "dfa")[mode]
        assert doc_cycles(cfg, P, L, mode, list(n1), list(n2)) == (
            presentation_cycles(cfg, P, name, n1, n2, L), synaptic_events(cfg, name, n1, n2))
