# amaranth: UnusedElaboratable=no
"""The UART of ``hdl/uart.py`` in the Amaranth simulator: exact transmitter waveforms,
receiver latency, loopback, framing errors, glitches, breaks, overrun and the baud mismatch
the receiver accepts (against the bounds documented in the module)."""

import numpy as np
import pytest
from amaranth.hdl import Module

from hdl.testing import run_sim
from hdl.uart import UARTRx, UARTTx
from spec.link import MAX_BAUD_ERROR, divisor_for

PATTERNS = [0x00, 0xFF, 0x55, 0xAA, 0x01, 0x80, 0x7F, 0xFE]


def rx_latency(divisor):
    """Cycles from the start edge at the pin to the byte on ``stream`` (module docstring)."""
    return divisor // 2 + 9 * divisor + 3


def rx_bounds(divisor):
    """The documented range of sender baud / receiver baud that is always read correctly:
    ``[lo, hi)``."""
    h = divisor // 2
    return 9 * divisor / (9 * divisor + h), 10 * divisor / (9 * divisor + h + 1)


def frame_bits(byte, stop=1):
    return [0] + [(byte >> i) & 1 for i in range(8)] + [stop]


def waveform(segments, phase=0.0):
    """Per-cycle line levels for ``segments`` = [(level, duration in cycles)], durations
    possibly fractional: cycle ``t`` sees the level at time ``t + phase``."""
    ends = np.cumsum([d for _, d in segments])
    levels = [lv for lv, _ in segments]
    n = int(np.ceil(ends[-1] - phase))
    idx = np.searchsorted(ends, np.arange(n) + phase, side="right")
    return [levels[i] for i in idx if i < len(levels)]


def frames(data, bit, gaps=None, stops=None):
    """Segments of 8N1 frames with bits of ``bit`` cycles; ``gaps[i]`` idle cycles before
    frame ``i`` (default none: back to back), ``stops[i]`` its stop bit level."""
    segs = []
    for i, b in enumerate(data):
        if gaps is not None and gaps[i]:
            segs.append((1, gaps[i]))
        segs += [(lv, bit) for lv in frame_bits(b, 1 if stops is None else stops[i])]
    return segs


class RxLog:
    def __init__(self):
        self.data, self.at, self.frame_errors, self.overruns = [], [], [], []


def run_rx(levels, divisor, *, tail=None, ready=None, name="uart-rx"):
    """Drive ``rx`` with ``levels`` (one per cycle, then idle for ``tail`` cycles) and log
    the transfers on ``stream`` (consumer always ready unless ``ready(t)`` says otherwise)
    and the error pulses, each with its cycle."""
    dut = UARTRx(divisor)
    log = RxLog()
    tail = 12 * divisor if tail is None else tail

    async def tb(ctx):
        for t in range(len(levels) + tail):
            ctx.set(dut.rx, levels[t] if t < len(levels) else 1)
            rdy = 1 if ready is None else ready(t)
            ctx.set(dut.stream.ready, rdy)
            if rdy and ctx.get(dut.stream.valid):
                log.data.append(ctx.get(dut.stream.payload))
                log.at.append(t)
            if ctx.get(dut.frame_error):
                log.frame_errors.append(t)
            if ctx.get(dut.overrun):
                log.overruns.append(t)
            await ctx.tick()

    run_sim(dut, tb, name=name)
    return log


# --- parameters ------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [UARTRx, UARTTx])
@pytest.mark.parametrize("bad", [3, 0, -16, 16.5, "16", None])
def test_divisor_rejected(cls, bad):
    with pytest.raises(ValueError, match="divisor"):
        cls(bad)


def test_divisor_accepted():
    assert UARTRx(4).divisor == 4 and UARTTx(np.int64(16)).divisor == 16


def test_divisor_for():
    assert divisor_for(12_000_000, 115_200) == 104          # 12e6 / 104 = 115385 (+0.16 %)
    assert divisor_for(48_000_000, 3_000_000) == 16
    assert divisor_for(25_000_000, 1_000_000) == 25
    assert divisor_for(100, 25) == 4
    b = 1000
    assert divisor_for(4 * b * (1 + 0.99 * MAX_BAUD_ERROR), b) == 4     # just within 2 %
    assert divisor_for(4 * b * (1 - 0.99 * MAX_BAUD_ERROR), b) == 4
    with pytest.raises(ValueError, match="within 2%"):
        divisor_for(4 * b * (1 + 1.05 * MAX_BAUD_ERROR), b)
    with pytest.raises(ValueError, match="within 2%"):
        divisor_for(10_000_000, 2_200_000)                   # 4.55 -> 5: 2 MBd, -9 %
    with pytest.raises(ValueError, match="at least 4"):
        divisor_for(1_000_000, 300_000)                      # 3.3 cycles per bit
    with pytest.raises(ValueError, match="at least 4"):
        divisor_for(1_000_000, 10_000_000)
    for clk, baud in [(0, 9600), (12e6, 0), (-1, 9600), (12e6, -9600)]:
        with pytest.raises(ValueError, match="positive"):
            divisor_for(clk, baud)


# --- transmitter -----------------------------------------------------------------------

@pytest.mark.parametrize("divisor", [4, 5, 16])
def test_tx_bit_timing(divisor):
    """Exact ``tx`` waveform: idle high, then frames back to back (start bit, LSB first, one
    stop bit of exactly ``divisor`` cycles), a pause, one more frame; ``ready`` only when
    idle or in the last cycle of a stop bit."""
    rng = np.random.default_rng(divisor)
    burst = PATTERNS[:3] + [int(b) for b in rng.integers(0, 256, 5)]
    late = 0x3C
    start, pause = 7, 23
    dut = UARTTx(divisor)
    tx, ready, accepted = [], [], []
    late_at = start + len(burst) * 10 * divisor + pause
    total = late_at + 11 * divisor + 5

    async def tb(ctx):
        queue = list(burst)
        for t in range(total):
            if t == late_at:
                queue.append(late)
            valid = bool(queue) and t >= start
            ctx.set(dut.stream.valid, valid)
            ctx.set(dut.stream.payload, queue[0] if valid else 0)
            tx.append(ctx.get(dut.tx))
            ready.append(ctx.get(dut.stream.ready))
            if valid and ready[-1]:
                accepted.append(t)
                queue.pop(0)
            await ctx.tick()

    run_sim(dut, tb, name=f"uart-tx-{divisor}")
    frame = 10 * divisor
    assert accepted == [start + i * frame for i in range(len(burst))] + [late_at]
    expect = [1] * (start + 1)
    for b in burst:
        expect += [lv for lv in frame_bits(b) for _ in range(divisor)]
    expect += [1] * (late_at - len(expect) + 1)
    expect += [lv for lv in frame_bits(late) for _ in range(divisor)]
    expect += [1] * (total - len(expect))
    assert tx == expect
    busy = set()
    for a in accepted:
        busy.update(range(a + 1, a + frame))      # ready is low, except the last stop cycle
    assert [t for t in range(total) if ready[t] == (t in busy)] == []


# --- receiver --------------------------------------------------------------------------

@pytest.mark.parametrize("divisor", [4, 5, 16])
def test_rx_exact_timing(divisor):
    """Ideal frames (with and without idle between them): every byte, at exactly the
    documented latency after its start edge."""
    rng = np.random.default_rng(100 + divisor)
    data = PATTERNS + [int(b) for b in rng.integers(0, 256, 8)]
    gaps = [5] + [int(g) for g in rng.choice([0, 0, 1, 3 * divisor], len(data) - 1)]
    levels = waveform(frames(data, divisor, gaps))
    starts = [sum(gaps[:i + 1]) + 10 * divisor * i for i in range(len(data))]
    assert all(levels[s - 1] == 1 and levels[s] == 0 for s in starts)
    log = run_rx(levels, divisor, name=f"uart-rx-{divisor}")
    assert log.data == data
    assert log.frame_errors == [] and log.overruns == []
    assert log.at == [s + rx_latency(divisor) for s in starts]


@pytest.mark.parametrize("divisor", [4, 5, 7, 16])
def test_loopback(divisor):
    """UARTTx -> UARTRx: random bytes back to back arrive intact, each a fixed number of
    cycles after it was accepted, and the link never stalls the transmitter."""
    rng = np.random.default_rng(200 + divisor)
    data = PATTERNS + [int(b) for b in rng.integers(0, 256, 24)]
    m = Module()
    m.submodules.tx = tx = UARTTx(divisor)
    m.submodules.rx = rx = UARTRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    sent, got, errors = [], [], []

    async def tb(ctx):
        queue = list(data)
        ctx.set(rx.stream.ready, 1)
        for t in range((len(data) + 2) * 10 * divisor):
            ctx.set(tx.stream.valid, bool(queue))
            ctx.set(tx.stream.payload, queue[0] if queue else 0)
            if queue and ctx.get(tx.stream.ready):
                sent.append(t)
                queue.pop(0)
            if ctx.get(rx.stream.valid):
                got.append((t, ctx.get(rx.stream.payload)))
            if ctx.get(rx.frame_error) or ctx.get(rx.overrun):
                errors.append(t)
            await ctx.tick()

    run_sim(m, tb, name=f"uart-loop-{divisor}")
    assert [b for _, b in got] == data
    assert errors == []
    assert sent == [sent[0] + 10 * divisor * i for i in range(len(data))]
    assert [t for t, _ in got] == [s + 1 + rx_latency(divisor) for s in sent]


@pytest.mark.parametrize("divisor", [4, 16])
def test_rx_framing_error(divisor):
    """A stop bit of 0: one ``frame_error`` pulse, at the cycle the byte would have
    appeared, and no byte; the next good byte (after one bit of idle line) is received."""
    data = [0x5A, 0xA5, 0x3C, 0xC3]
    stops = [1, 0, 1, 1]
    gaps = [3, 0, divisor, 0]
    levels = waveform(frames(data, divisor, gaps, stops))
    log = run_rx(levels, divisor, name=f"uart-ferr-{divisor}")
    assert log.data == [0x5A, 0x3C, 0xC3]
    bad_start = 3 + 10 * divisor
    assert log.frame_errors == [bad_start + rx_latency(divisor)]
    assert log.overruns == []


def test_rx_framing_error_then_back_to_back_frame_is_lost():
    """A zero stop bit followed at once by a start bit: the line never goes high, so there is
    no start edge and that frame is lost (documented: a start bit needs a falling edge)."""
    n = 8
    levels = waveform(frames([0x81, 0x00, 0x42], n, [2, 0, n], [0, 1, 1]))
    log = run_rx(levels, n)
    assert log.data == [0x42]
    assert len(log.frame_errors) == 1


@pytest.mark.parametrize("divisor", [4, 5, 16])
def test_rx_glitch(divisor):
    """Low pulses of up to ``divisor // 2`` cycles (shorter than half a bit for an even
    divisor) are not start bits: no byte, no error; a good byte afterwards is received. One
    cycle longer is a start bit (here of an all-ones byte)."""
    h = divisor // 2
    segs = [(1, 5)]
    for width in (1, h, 1, h):
        segs += [(0, width), (1, 2 * divisor)]
    segs += frames([0x96], divisor)
    log = run_rx(waveform(segs), divisor, name=f"uart-glitch-{divisor}")
    assert log.data == [0x96] and log.frame_errors == [] and log.overruns == []

    log = run_rx(waveform([(1, 5), (0, h + 1), (1, 12 * divisor)]), divisor)
    assert log.data == [0xFF] and log.frame_errors == []


@pytest.mark.parametrize("divisor", [4, 16])
@pytest.mark.parametrize("high", [1, "bit"])
def test_rx_break(divisor, high):
    """The line held low for 30 bit times: exactly one ``frame_error``, no byte, nothing
    more while it stays low; once it has been high (for one cycle or one bit) the next frame
    is received."""
    high = divisor if high == "bit" else high
    t0 = 4
    segs = [(1, t0), (0, 30 * divisor), (1, high)] + frames([0x42, 0x24], divisor)
    log = run_rx(waveform(segs), divisor, name=f"uart-break-{divisor}")
    assert log.frame_errors == [t0 + rx_latency(divisor)]
    assert log.data == [0x42, 0x24]
    assert log.at[0] == t0 + 30 * divisor + high + rx_latency(divisor)
    assert log.overruns == []


def test_rx_overrun():
    """While the consumer is not ready, the first byte stays on the stream and each further
    byte gives one ``overrun`` pulse and is dropped; once taken, reception continues."""
    n = 4
    data = [0x11, 0x22, 0x33, 0x44]
    levels = waveform(frames(data, n, [2, 0, 0, 3 * n]))
    release = 2 + 30 * n + rx_latency(n) + 2       # after the third byte completed

    def dut_ready(t):
        return int(t >= release)

    log = run_rx(levels, n, ready=dut_ready)
    assert log.data == [0x11, 0x44]
    assert log.at[0] == release
    assert log.overruns == [2 + 10 * n * k + rx_latency(n) for k in (1, 2)]
    assert log.frame_errors == []


# --- baud mismatch ---------------------------------------------------------------------

def mismatch_run(divisor, ratio, n_bytes=48, seed=0):
    """Random bytes sent at ``ratio`` times the receiver's baud rate (fractional bit length,
    random phase, mostly back to back). Returns (sent, log)."""
    rng = np.random.default_rng(seed)
    data = PATTERNS + [int(b) for b in rng.integers(0, 256, n_bytes)]
    bit = divisor / ratio
    gaps = [3] + [float(g) for g in rng.choice([0, 0, 0, 0.37 * bit, 2.5 * bit],
                                               len(data) - 1)]
    levels = waveform(frames(data, bit, gaps), phase=float(rng.random()))
    return data, run_rx(levels, divisor, name=f"uart-baud-{divisor}")


@pytest.mark.parametrize("divisor", [4, 5, 16])
@pytest.mark.parametrize("side", [0, 1])
def test_rx_baud_mismatch_within_bounds(divisor, side):
    """Just inside the documented bounds (0.3 % margin) every byte is received."""
    lo, hi = rx_bounds(divisor)
    ratio = lo + 0.003 if side == 0 else hi - 0.003
    data, log = mismatch_run(divisor, ratio, seed=divisor + 10 * side)
    assert log.data == data and log.frame_errors == []


@pytest.mark.parametrize("divisor", [5, 16])
@pytest.mark.parametrize("side", [0, 1])
def test_rx_baud_mismatch_outside_bounds(divisor, side):
    """Well outside the bounds (2 % beyond) the errors show: framing errors are reported and
    the bytes that do come through are not the bytes sent."""
    lo, hi = rx_bounds(divisor)
    ratio = lo - 0.02 if side == 0 else hi + 0.02
    data, log = mismatch_run(divisor, ratio, seed=divisor + 10 * side)
    assert log.frame_errors
    assert log.data != data
