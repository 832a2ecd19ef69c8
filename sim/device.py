"""Byte-level model of the device side of ``docs/protocol.md``, around the golden model.

``DeviceModel.feed(data)`` takes the bytes the host sends and returns the bytes the device
answers. It is the protocol's executable specification, as :mod:`sim.golden` is the
network's: the RTL's replies to any byte stream (fuzz tests) must equal it, and it doubles
as an in-process board for testing the host driver with injected faults.

Not modelled: timing (bytes that arrive while the real device's receiver is closed are
discarded, ``docs/protocol.md`` section 1; the model's receiver is always open, so feed it
only the bytes the device receives) and UART framing errors (``line_error()`` stands for
one).
"""

from __future__ import annotations

import struct

import numpy as np

from spec import link
from spec import protocol as pr
from spec.cycles import presentation_cycles, synaptic_events
from spec.protocol import Op, Status
from spec.registers import REGISTERS
from spec.rules import MODE_NAMES

from .golden import GoldenModel

__all__ = ["DeviceModel"]


class DeviceModel:
    def __init__(self, cfg, lanes: int = 1, *, clk_hz: int = link.CLK_HZ,
                 divisor: int = link.DIVISOR, max_frame: int | None = None,
                 weight_latency: int = 1):
        self.cfg = cfg
        self.lanes = lanes
        self.weight_latency = weight_latency    # of the core: only the cycle counts see it
        self.clk_hz, self.divisor = clk_hz, divisor
        self.max_frame = max_frame or pr.default_max_frame(cfg)
        z1 = np.zeros((cfg.n_in, cfg.n_hid), np.int64)
        z2 = np.zeros((cfg.n_hid, cfg.n_out), np.int64)
        self.gold = GoldenModel(cfg, z1, z2)
        # word memories, padding lanes included (they are stored and read back)
        self.mem = [np.zeros(pr.layer_words(cfg, lanes, L) * lanes, np.int64) for L in (0, 1)]
        self.regs = pr.register_values(cfg)
        # READ_COUNTERS order; "sample_counter" is the golden model's, copied here when read
        self.counters = dict.fromkeys(pr.COUNTERS, 0)
        self._buf = bytearray()
        self._esc = self._bad = self._over = self._seen = False
        self._last = None  # (seq, crc, reply wire bytes) of the last request answered OK

    # ---- wire ----------------------------------------------------------------------------
    def line_error(self, discarded: bool = False):
        """A UART framing error or overrun: spoils the frame being received, or, if it hit a
        byte the device ``discarded`` while busy, is only counted."""
        self._count("uart_errors")
        if not discarded:
            self._bad = True

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for b in data:
            if b == pr.END:
                if self._seen:  # a frame without a byte is ignored, even with a UART error
                    out += self._frame()
                self._buf.clear()
                self._esc = self._bad = self._over = self._seen = False
                continue
            self._seen = True
            if self._esc:
                self._esc = False
                if b in (pr.ESC_END, pr.ESC_ESC):
                    self._put(pr.END if b == pr.ESC_END else pr.ESC)
                else:
                    self._bad = True
            elif b == pr.ESC:
                self._esc = True
            else:
                self._put(b)
        return bytes(out)

    def _put(self, b):
        if len(self._buf) < self.max_frame:
            self._buf.append(b)
        else:
            self._over = True

    def _count(self, key, n=1):
        bits = 64 if key in ("events", "busy_cycles") else 32
        self.counters[key] = (self.counters[key] + n) & ((1 << bits) - 1)

    def _reply(self, seq, op, status, payload=b""):
        self._count("frames_ok" if status == Status.OK else "frames_rejected")
        return pr.slip_encode(pr.reply_frame(seq, op, status, payload))

    def _frame(self) -> bytes:
        f = bytes(self._buf)
        seq = f[0] if f else 0
        op = f[1] if len(f) > 1 else 0
        if self._bad or self._esc:
            return self._reply(seq, op, Status.BAD_FRAMING)
        if self._over:
            return self._reply(seq, op, Status.OVERFLOW)
        if len(f) < 4:  # too short to be a request: dropped silently
            return b""
        crc = int.from_bytes(f[-2:], "little")
        if pr.crc16(f[:-2]) != crc:
            return self._reply(seq, op, Status.BAD_CRC)
        if self._last is not None and self._last[:2] == (seq, crc):
            self._count("frames_ok")
            return self._last[2]
        status, payload = self._execute(op, f[2:-2])
        if status != Status.OK:  # rejected: the stored request and reply stay
            return self._reply(seq, op, status)
        rep = self._reply(seq, op, status, payload)
        self._last = (seq, crc, rep)
        return rep

    # ---- commands ------------------------------------------------------------------------
    def _execute(self, op, p):
        cfg, lanes = self.cfg, self.lanes
        try:
            op = Op(op)
        except ValueError:
            return Status.BAD_OP, b""
        if op in (Op.IDENTIFY, Op.READ_REGS, Op.READ_COUNTERS) and p:
            return Status.BAD_LENGTH, b""
        if op == Op.IDENTIFY:
            return Status.OK, pr.identify_payload(cfg, lanes, self.max_frame, self.clk_hz,
                                                  self.divisor)
        if op == Op.READ_REGS:
            return Status.OK, b"".join(struct.pack("<I", v & 0xFFFFFFFF) for v in self.regs)
        if op == Op.READ_COUNTERS:
            c = self.counters
            c["sample_counter"] = self.gold.sample_counter
            return Status.OK, struct.pack("<IIQQIII", *(c[k] for k in pr.COUNTERS))
        if op == Op.WRITE_REG:
            if len(p) != 5:
                return Status.BAD_LENGTH, b""
            idx, val = struct.unpack("<Bi", p)
            if idx >= len(pr.REGISTERS):
                return Status.BAD_ARG, b""
            lo, hi = pr.reg_range(cfg, idx)
            if pr.REGISTERS[idx] == "seed":
                val &= 0xFFFFFFFF
            if not lo <= val <= hi:
                return Status.BAD_ARG, b""
            self.regs[idx] = val
            return Status.OK, b""
        if op == Op.WRITE_COUNTER:
            if len(p) != 4:
                return Status.BAD_LENGTH, b""
            self.gold.sample_counter = struct.unpack("<I", p)[0]
            return Status.OK, b""
        if op == Op.PRESENT:
            return self._present(p)
        if op in (Op.READ_W, Op.WRITE_W):
            return self._weights(op, p)
        return Status.BAD_OP, b""  # pragma: no cover (every Op is handled above)

    def _present(self, p):
        cfg = self.cfg
        ib = pr.input_bytes(cfg)
        if len(p) != 2 + ib * cfg.n_in:
            return Status.BAD_LENGTH, b""
        mode, label = p[0], p[1]
        x = np.frombuffer(p[2:], "<u1" if ib == 1 else "<u2").astype(np.int64)
        if mode >= len(MODE_NAMES) or label >= cfg.n_out or x.max(initial=0) >= (1 << cfg.in_bits):
            return Status.BAD_ARG, b""
        regs = {r.config_field: r.decode(v) for r, v in zip(REGISTERS, self.regs)}
        self.gold.set_registers(checked=False, **regs)
        self.gold.set_weights(*self.weights())
        name = MODE_NAMES[mode]
        res = self.gold.present(x, label, mode=name, trace=True)
        s_in, s_hid = res.trace.s_in.sum(1), res.trace.s_hid.sum(1)
        cycles = presentation_cycles(cfg, self.lanes, name, s_in, s_hid, self.weight_latency)
        events = synaptic_events(cfg, name, s_in, s_hid)
        if name != "infer":
            self._store(0, self.gold.w1)
            self._store(1, self.gold.w2)
        self._count("presentations")
        self._count("events", events)
        self._count("busy_cycles", cycles)
        return Status.OK, pr.present_reply_payload(cfg, res.pred, res.counts, cycles, events)

    def _weights(self, op, p):
        cfg, lanes = self.cfg, self.lanes
        wb = pr.weight_bytes(cfg)
        if op == Op.READ_W:
            if len(p) != 5:
                return Status.BAD_LENGTH, b""
            layer, addr, count = struct.unpack("<BHH", p)
            if layer > 1 or count == 0 or addr + count > pr.layer_words(cfg, lanes, layer) \
                    or count * lanes * wb > self.max_frame - 5:
                return Status.BAD_ARG, b""
            w = self.mem[layer][addr * lanes:(addr + count) * lanes]
            return Status.OK, w.astype("<i1" if wb == 1 else "<i2").tobytes()
        if len(p) < 3 + lanes * wb or (len(p) - 3) % (lanes * wb):
            return Status.BAD_LENGTH, b""
        layer, addr = struct.unpack("<BH", p[:3])
        w = np.frombuffer(p[3:], "<i1" if wb == 1 else "<i2").astype(np.int64)
        count = len(w) // lanes
        if layer > 1 or addr + count > pr.layer_words(cfg, lanes, layer) or \
                w.min() < cfg.w_min or w.max() > cfg.w_max:
            return Status.BAD_ARG, b""
        self.mem[layer][addr * lanes:(addr + count) * lanes] = w
        return Status.OK, b""

    # ---- views of the state -------------------------------------------------------------
    @property
    def sample_counter(self) -> int:
        return self.gold.sample_counter

    def words(self, layer: int) -> np.ndarray:
        """Layer ``layer``'s memory as ``(words, lanes)``, padding lanes included (a copy)."""
        return self.mem[layer].reshape(-1, self.lanes).copy()

    def weights(self):
        """``(W1, W2)`` as matrices (padding lanes dropped)."""
        out = []
        for L in (0, 1):
            rows, cols = (self.cfg.n_hid, self.cfg.n_out) if L else (self.cfg.n_in, self.cfg.n_hid)
            nb = pr.words_per_row(self.cfg, self.lanes, L)
            out.append(self.mem[L].reshape(rows, nb * self.lanes)[:, :cols].copy())
        return tuple(out)

    def _store(self, layer, w):
        rows = w.shape[0]
        nb = pr.words_per_row(self.cfg, self.lanes, layer)
        m = self.mem[layer].reshape(rows, nb * self.lanes)
        m[:, :w.shape[1]] = w
