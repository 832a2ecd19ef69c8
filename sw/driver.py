"""Driver for the learning core over a byte transport (a serial port or the virtual board).

One request at a time (stop and wait, ``docs/protocol.md``). A request whose reply does
not come within ``timeout`` seconds, or comes back damaged, is sent again with the *same*
sequence number, so the device answers a repeat with its stored reply instead of executing
it twice. After ``retries`` resends the driver gives up with :class:`BoardTimeout`.

A ``BAD_CRC``/``OVERFLOW``/``BAD_FRAMING`` reply with another sequence number answers a frame
cut off before the request (for example by a host that was interrupted): the device receives
the request while it sends that reply and answers it next, so the driver waits up to
``settle`` seconds more for its own reply before it resends.
"""

from __future__ import annotations

import struct
import time

import numpy as np

from spec import link
from spec import protocol as pr
from spec.protocol import Op, Status

__all__ = ["Board", "BoardError", "BoardTimeout", "DeviceRejected", "ConfigMismatch",
           "open_serial"]


class BoardError(RuntimeError):
    """The board cannot be used; the message says which board and why."""


class BoardTimeout(BoardError):
    pass


class DeviceRejected(BoardError):
    """The device answered with a status other than OK that a resend cannot cure."""

    def __init__(self, msg, status):
        super().__init__(msg)
        self.status = status


class ConfigMismatch(BoardError):
    """The bitstream was built for another configuration; ``info`` is the board's identity
    (``spec.protocol.parse_identify``)."""

    def __init__(self, msg, info=None):
        super().__init__(msg)
        self.info = dict(info or {})


def open_serial(port: str, baud: int = link.BAUD, timeout: float = 0.05):
    """A pyserial port, with a one-line error when it cannot be opened."""
    import serial
    try:
        return serial.serial_for_url(port, baudrate=baud, timeout=timeout, write_timeout=5)
    except (serial.SerialException, OSError, ValueError) as e:
        raise BoardError(f"cannot open serial port {port}: {e}") from None


class Board:
    """The device behind ``transport`` (an object with pyserial's ``read``, ``write``,
    ``in_waiting``; its ``timeout`` should be short, the driver keeps its own deadline)."""

    def __init__(self, transport, *, name: str | None = None, timeout: float = 2.0,
                 retries: int = 3, seq: int | None = None, settle: float = 0.1):
        self.t = transport
        self.name = name or getattr(transport, "port", None) or "board"
        self.timeout = timeout
        self.settle = settle
        self.retries = retries
        self._seq = (seq if seq is not None else int(time.monotonic_ns() >> 10)) & 0xFF
        self._dec = pr.SlipDecoder()
        self.info: dict | None = None
        self.stats = {"requests": 0, "resends": 0, "stale_replies": 0, "damaged_replies": 0,
                      "foreign_errors": 0}

    # ---- transport ---------------------------------------------------------------------
    def transact(self, op: Op, payload: bytes = b"") -> bytes:
        """Send one request, return the OK reply's payload."""
        self._seq = (self._seq + 1) & 0xFF
        seq = self._seq
        wire = pr.request(seq, op, payload)
        self.stats["requests"] += 1
        why = "no reply"
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats["resends"] += 1
            try:
                self.t.write(wire)
            except Exception as e:  # pyserial raises SerialException/OSError subclasses
                raise BoardError(f"cannot write to {self.name}: {e}") from None
            rep, why = self._await(seq, op)
            if rep is None:
                continue
            if rep.status == Status.OK:
                return rep.payload
            if rep.status in pr.RETRYABLE:
                why = f"device reported {rep.status.name}"
                continue
            raise DeviceRejected(f"{self.name} rejected {op.name} with {rep.status.name} "
                                 f"(a malformed request; resending will not help)", rep.status)
        raise BoardTimeout(f"no reply from board on {self.name} after {self.retries + 1} "
                           f"tries ({op.name}: {why}; is the board programmed, the port right "
                           f"and the baud rate the build's? Every board builds for "
                           f"{link.BAUD} baud unless built with --baud)")

    def _await(self, seq, op):
        """(reply, None) for our reply; (None, reason) to resend."""
        deadline = time.monotonic() + self.timeout
        why = f"no reply within {self.timeout:g} s"
        while time.monotonic() < deadline:
            try:
                data = self.t.read(max(1, getattr(self.t, "in_waiting", 0) or 0))
            except Exception as e:
                raise BoardError(f"cannot read from {self.name}: {e}") from None
            for frame in self._dec.feed(data):
                try:
                    rep = pr.parse_reply(frame)
                except pr.ProtocolError as e:
                    self.stats["damaged_replies"] += 1
                    return None, f"damaged reply ({e})"
                if rep.seq == seq and rep.op == op:
                    return rep, None
                if rep.status in pr.RETRYABLE:
                    # a damaged frame with another seq: a frame cut off before ours (the
                    # device receives ours while it sends this reply, so ours is answered
                    # next), or ours with a damaged seq byte (then nothing else comes):
                    # wait a little for our reply before resending
                    self.stats["foreign_errors"] += 1
                    why = f"device reported {rep.status.name}"
                    deadline = min(deadline, time.monotonic() + self.settle)
                    continue
                self.stats["stale_replies"] += 1
        return None, why

    # ---- commands ----------------------------------------------------------------------
    def identify(self) -> dict:
        """The board's identity (``spec.protocol.parse_identify``) plus ``baud``, the rate its
        clock and divisor give."""
        self.info = pr.parse_identify(self.transact(Op.IDENTIFY))
        self.info["baud"] = link.baud_of(self.info["clk_hz"], self.info["divisor"])
        return self.info

    def check_config(self, cfg, lanes: int | None = None) -> dict:
        """Identify the board and compare its build configuration with ``cfg``."""
        info = self.identify()
        diffs = [f"{k} board {info[k]}, config {getattr(cfg, k)}"
                 for k in ("n_in", "n_hid", "n_out", "in_bits", "w_bits", "state_bits",
                           "timesteps") if info[k] != getattr(cfg, k)]
        if lanes is not None and info["lanes"] != lanes:
            diffs.append(f"lanes board {info['lanes']}, expected {lanes}")
        if info["version"] != pr.VERSION:
            diffs.append(f"protocol version board {info['version']}, host {pr.VERSION}")
        if diffs:
            raise ConfigMismatch(f"bitstream configuration does not match: {'; '.join(diffs)}",
                                 info)
        return info

    def _need_info(self):
        if self.info is None:
            self.identify()
        return self.info

    def read_registers(self) -> dict:
        data = self.transact(Op.READ_REGS)
        if len(data) != 4 * len(pr.REGISTERS):
            raise pr.ProtocolError(f"READ_REGS reply of {len(data)} bytes")
        vals = struct.unpack(f"<{len(pr.REGISTERS)}i", data)
        out = dict(zip(pr.REGISTERS, vals))
        out["seed"] &= 0xFFFFFFFF
        return out

    def write_register(self, name: str, value: int, cfg=None) -> None:
        idx = pr.REGISTERS.index(name)
        if cfg is not None:
            lo, hi = pr.reg_range(cfg, idx)
            if not lo <= int(value) <= hi:
                raise ValueError(f"register {name} = {value} is outside {lo}..{hi}")
        v = int(value)
        if name == "seed":
            v = struct.unpack("<i", struct.pack("<I", v & 0xFFFFFFFF))[0]
        self.transact(Op.WRITE_REG, struct.pack("<Bi", idx, v))

    def present(self, cfg, x, label: int, mode: str) -> dict:
        return pr.parse_present(cfg, self.transact(Op.PRESENT,
                                                   pr.present_payload(cfg, mode, label, x)))

    def read_counters(self) -> dict:
        return pr.parse_counters(self.transact(Op.READ_COUNTERS))

    def write_counter(self, value: int) -> None:
        self.transact(Op.WRITE_COUNTER, struct.pack("<I", int(value) & 0xFFFFFFFF))

    def _chunk_words(self, cfg):
        info = self._need_info()
        per_word = info["lanes"] * pr.weight_bytes(cfg)
        return info["lanes"], max(1, (info["max_frame"] - 5 - 3) // per_word)

    def read_layer(self, cfg, layer: int) -> np.ndarray:
        lanes, chunk = self._chunk_words(cfg)
        total = pr.layer_words(cfg, lanes, layer)
        data = bytearray()
        for addr in range(0, total, chunk):
            n = min(chunk, total - addr)
            data += self.transact(Op.READ_W, struct.pack("<BHH", layer, addr, n))
        return pr.unpack_words(cfg, lanes, layer, bytes(data))

    def write_layer(self, cfg, layer: int, w) -> None:
        lanes, chunk = self._chunk_words(cfg)
        data = pr.pack_words(cfg, lanes, layer, w)
        per_word = lanes * pr.weight_bytes(cfg)
        total = len(data) // per_word
        for addr in range(0, total, chunk):
            n = min(chunk, total - addr)
            self.transact(Op.WRITE_W, struct.pack("<BH", layer, addr)
                          + data[addr * per_word:(addr + n) * per_word])

    def read_weights(self, cfg):
        return self.read_layer(cfg, 0), self.read_layer(cfg, 1)

    def write_weights(self, cfg, w1, w2, verify: bool = True) -> None:
        """Write both layers; with ``verify`` read them back and compare."""
        self.write_layer(cfg, 0, w1)
        self.write_layer(cfg, 1, w2)
        if verify:
            r1, r2 = self.read_weights(cfg)
            for name, a, b in (("W1", w1, r1), ("W2", w2, r2)):
                bad = int(np.sum(np.asarray(a) != b))
                if bad:
                    raise BoardError(f"{self.name}: {bad} weights of {name} read back differ "
                                     "from those written")

    def close(self):
        close = getattr(self.t, "close", None)
        if close is not None:
            close()
