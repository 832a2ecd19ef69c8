"""The SLIP stream components (``hdl/link/slip.py``) against their Python twins
(``spec.protocol.SlipDecoder``, ``spec.protocol.slip_encode``), with random data and stalls."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hdl.link.slip import END, ESC, ESC_END, ESC_ESC, SlipDecoder, SlipEncoder
from spec import protocol as pr


def test_constants_are_the_protocol_constants():
    assert (END, ESC, ESC_END, ESC_ESC) == (pr.END, pr.ESC, pr.ESC_END, pr.ESC_ESC)


def wire_bytes(rng, n):
    """Random wire bytes, rich in END, ESC and escape codes."""
    pool = np.array([END, ESC, ESC_END, ESC_ESC, 0x41, 0x00, 0xFF])
    b = rng.integers(0, 256, n)
    pick = rng.random(n) < 0.4
    b[pick] = rng.choice(pool, int(pick.sum()))
    return bytes(b.astype(np.uint8))


def rtl_decode(wire, rng, stall=0.3):
    """The decoder's symbols for ``wire``, with random gaps on the input and on o.ready."""
    dut = SlipDecoder()
    out = []

    async def tb(ctx):
        i = 0
        while i < len(wire):
            valid = rng.random() > stall
            ctx.set(dut.i.valid, valid)
            ctx.set(dut.i.payload, wire[i])
            ctx.set(dut.o.ready, rng.random() > stall)
            await ctx.delay(1e-7)
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                p = ctx.get(dut.o.payload)
                out.append((p.data, p.end, p.bad, p.esc))
            if valid and ctx.get(dut.i.ready):
                i += 1
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return out


def frames_of(symbols):
    """Frames as spec.protocol.SlipDecoder forms them from the symbols."""
    frames, buf, bad, seen = [], bytearray(), False, False
    for data, end, b, esc in symbols:
        if end:
            if seen:
                frames.append(None if (bad or b) else bytes(buf))
            buf, bad, seen = bytearray(), False, False
        else:
            seen = True
            if b:
                bad = True
            elif not esc:
                buf.append(data)
    return frames


@pytest.mark.parametrize("seed", range(4))
def test_decoder_matches_sw_decoder(seed):
    rng = np.random.default_rng(seed)
    wire = wire_bytes(rng, 600) + bytes([END])
    symbols = rtl_decode(wire, rng)
    assert frames_of(symbols) == pr.SlipDecoder().feed(wire)
    # one symbol per byte; END is always a boundary
    assert len(symbols) == len(wire) and sum(s[1] for s in symbols) == wire.count(END)


def test_decoder_hand_written():
    rng = np.random.default_rng(9)
    wire = bytes([END, 1, ESC, ESC_END, ESC, ESC_ESC, 2, END, ESC, 0x41, END, ESC, END])
    assert [s[1:] if s[1] | s[2] | s[3] else s for s in rtl_decode(wire, rng, stall=0)] == [
        (1, 0, 0), (1, 0, 0, 0), (0, 0, 1), (END, 0, 0, 0), (0, 0, 1), (ESC, 0, 0, 0),
        (2, 0, 0, 0), (1, 0, 0), (0, 0, 1), (0, 1, 0), (1, 0, 0), (0, 0, 1), (1, 1, 0)]


def rtl_encode(frames, rng, stall=0.3):
    """The wire bytes for ``frames``, each given as end, data bytes, end."""
    dut = SlipEncoder()
    syms = [s for f in frames for s in [(0, 1)] + [(b, 0) for b in f] + [(0, 1)]]
    out = bytearray()

    async def tb(ctx):
        i = 0
        prev = None
        while i < len(syms):
            # a stream source may not withdraw or change a symbol it offers
            valid = prev is not None or rng.random() > stall
            ctx.set(dut.i.valid, valid)
            ctx.set(dut.i.payload, {"data": syms[i][0], "end": syms[i][1], "bad": 0,
                                    "esc": 0})
            ctx.set(dut.o.ready, rng.random() > stall)
            await ctx.delay(1e-7)
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                out.append(ctx.get(dut.o.payload))
            assert ctx.get(dut.o.valid) == valid
            if valid and ctx.get(dut.i.ready):
                i += 1
                prev = None
            elif valid:
                prev = syms[i]
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return bytes(out)


@pytest.mark.parametrize("seed", range(4))
def test_encoder_matches_slip_encode(seed):
    rng = np.random.default_rng(10 + seed)
    frames = [wire_bytes(rng, int(rng.integers(0, 40))) for _ in range(12)]
    assert rtl_encode(frames, rng) == b"".join(pr.slip_encode(f) for f in frames)


def test_encoder_then_decoder_round_trip():
    rng = np.random.default_rng(20)
    frames = [wire_bytes(rng, int(rng.integers(1, 30))) for _ in range(8)]
    wire = rtl_encode(frames, rng)
    assert frames_of(rtl_decode(wire, rng)) == frames
