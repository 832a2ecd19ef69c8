"""The frame receiver (``hdl/link/receiver.py``) behind the SLIP decoder, against
``spec.protocol.SlipDecoder`` and ``crc16`` and the receiver rules of ``docs/protocol.md``."""

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.sim import Simulator

from hdl.link.receiver import FrameReceiver, FrameSignature
from hdl.link.slip import SlipDecoder
from spec import protocol as pr
from spec.protocol import END, ESC

MF = 32


class Rx(wiring.Component):
    def __init__(self):
        self.dec, self.rcv = SlipDecoder(), FrameReceiver(MF)
        super().__init__({"i": wiring.In(stream.Signature(8)),
                          "rx_error": wiring.In(1),
                          "frame": wiring.Out(FrameSignature(MF))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.dec, m.submodules.rcv = self.dec, self.rcv
        wiring.connect(m, wiring.flipped(self.i), self.dec.i)
        wiring.connect(m, self.dec.o, self.rcv.i)
        wiring.connect(m, self.rcv.frame, wiring.flipped(self.frame))
        m.d.comb += self.rcv.rx_error.eq(self.rx_error)
        return m


def test_signature():
    assert FrameSignature(40) == FrameSignature(40) != FrameSignature(41)
    assert repr(FrameSignature(40)) == "FrameSignature(40)"
    with pytest.raises(TypeError, match="max_frame"):
        FrameSignature(3)


def expected(wire):
    """(framing_error, overflow, stored bytes) of every frame the receiver holds (only the
    first for a frame with a framing error)."""
    out = []
    for f in pr.SlipDecoder().feed(wire):
        if f is None:
            out.append((1, None, None))
        elif len(f) >= 4:
            out.append((0, int(len(f) > MF), f[:MF]))
    return out


def run(wire, rng, hold=2, gap=3):
    """Feed ``wire`` a byte every ``gap + 1`` cycles; release each held frame after ``hold``
    cycles, after reading it out of the buffer."""
    dut = Rx()
    got = []
    state = {"done": False}

    async def source(ctx):
        for b in wire:
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, b)
            await ctx.tick()
            ctx.set(dut.i.valid, 0)
            await ctx.tick().repeat(gap)
        await ctx.tick().repeat(4 * MF + hold + 10)
        state["done"] = True

    async def user(ctx):
        f = dut.frame
        while not state["done"]:
            if not ctx.get(f.held):
                await ctx.tick()
                continue
            n = ctx.get(f.length)
            data = bytearray()
            for a in range(n):
                ctx.set(f.addr, a)
                await ctx.tick()
                data.append(ctx.get(f.data))
            err, ovf = ctx.get(f.framing_error), ctx.get(f.overflow)
            if not err and not ovf:
                assert ctx.get(f.crc) == pr.crc16(bytes(data[:-2]))
                assert ctx.get(f.crc_field) == int.from_bytes(data[-2:], "little")
                assert (ctx.get(f.seq), ctx.get(f.op)) == (data[0], data[1])
            got.append((1, None, None) if err else (0, ovf, bytes(data)))
            await ctx.tick().repeat(hold)
            ctx.set(f.release, 1)
            await ctx.tick()
            ctx.set(f.release, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(source)
    sim.add_testbench(user)
    sim.run()
    return got


def random_wire(rng, n):
    out = bytearray()
    for _ in range(n):
        k = int(rng.integers(0, 4))
        body = rng.integers(0, 256, int(rng.integers(0, 2 * MF))).astype(np.uint8).tobytes()
        if k == 0:
            out += pr.slip_encode(body)
        elif k == 1:
            out += bytes([END]) + body.replace(bytes([END]), b"") + bytes([END])
        elif k == 2:
            out += pr.slip_encode(body)[:-1] + bytes([ESC, 0x41, END])
        else:
            out += body[:3].replace(bytes([END]), b"") + bytes([END])
    return bytes(out)


@pytest.mark.parametrize("seed", range(3))
def test_frames_match_sw_decoder(seed):
    rng = np.random.default_rng(seed)
    wire = random_wire(rng, 25)
    # the user needs up to MF + hold cycles per frame: bytes come slowly enough
    assert run(wire, rng, gap=MF + 6) == expected(wire)


def test_bytes_while_held_are_discarded_up_to_the_next_end():
    rng = np.random.default_rng(7)
    a, b, c = (pr.request(i, 1) for i in (1, 2, 3))
    # a is held for long: b arrives while a is held (lost), so does c's first part after
    # b's END (lost too, up to c's END); d, after the release, is received
    d = pr.request(4, 2)
    got = run(a + b + c + d, rng, hold=len(b + c) * 4 + 2, gap=3)
    assert [g[2] for g in got] == [pr.SlipDecoder().feed(x)[0] for x in (a, d)]
