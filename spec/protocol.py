"""Host side of the link protocol (``docs/protocol.md``): framing, CRC and payload codecs.

Pure functions, no I/O: :mod:`sw.driver` adds the transport, timeouts and retries, and the
RTL tests use the same codec to check the device against the spec.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

import numpy as np

from .packing import layer_shape, layer_words, pack_rows, unpack_rows, words_per_row
from .registers import NAMES
from .registers import REGISTERS as _REGISTER_MAP
from .rules import mode_number

__all__ = ["END", "ESC", "VERSION", "MAGIC", "Op", "Status", "REGISTERS", "ProtocolError",
           "Reply", "crc16", "slip_encode", "SlipDecoder", "request", "reply_frame",
           "parse_reply", "reg_range", "identify_payload", "parse_identify",
           "present_payload", "parse_present", "present_reply_payload", "COUNTERS",
           "parse_counters", "layer_words", "words_per_row", "pack_words", "unpack_words",
           "input_bytes", "weight_bytes", "default_max_frame"]

END, ESC, ESC_END, ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD
VERSION = 1
MAGIC = b"SNNL"


class Op(enum.IntEnum):
    IDENTIFY = 0x01
    READ_REGS = 0x02
    WRITE_REG = 0x03
    PRESENT = 0x04
    READ_W = 0x05
    WRITE_W = 0x06
    READ_COUNTERS = 0x07
    WRITE_COUNTER = 0x08


class Status(enum.IntEnum):
    OK = 0
    BAD_CRC = 1
    BAD_LENGTH = 2
    BAD_OP = 3
    BAD_ARG = 4
    OVERFLOW = 5
    BAD_FRAMING = 6


#: Statuses that a resend of the same request may cure (the frame was damaged in transit).
RETRYABLE = frozenset({Status.BAD_CRC, Status.OVERFLOW, Status.BAD_FRAMING})

#: Runtime register names in protocol index order (``spec.registers``).
REGISTERS = NAMES

COUNTERS = ("sample_counter", "presentations", "events", "busy_cycles", "frames_ok",
            "frames_rejected", "uart_errors")
_COUNTERS_FMT = "<IIQQIII"


class ProtocolError(Exception):
    """A frame that does not follow ``docs/protocol.md``."""


@dataclass(frozen=True)
class Reply:
    seq: int
    op: int
    status: Status
    payload: bytes


# ---- CRC and SLIP --------------------------------------------------------------------------
def _crc_table():
    table = []
    for b in range(256):
        c = b << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        table.append(c & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final XOR)."""
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[((crc >> 8) ^ b) & 0xFF]
    return crc


def slip_encode(frame: bytes) -> bytes:
    """``END``, the escaped frame, ``END``."""
    out = bytearray([END])
    for b in frame:
        if b == END:
            out += bytes([ESC, ESC_END])
        elif b == ESC:
            out += bytes([ESC, ESC_ESC])
        else:
            out.append(b)
    out.append(END)
    return bytes(out)


class SlipDecoder:
    """Incremental SLIP decoder: :meth:`feed` returns the frames completed by ``data``
    (``None`` for a frame with an invalid escape); empty frames are dropped."""

    def __init__(self):
        self._buf = bytearray()
        self._esc = False
        self._bad = False

    def feed(self, data: bytes) -> list:
        frames = []
        for b in data:
            if b == END:
                if self._buf or self._bad or self._esc:
                    frames.append(None if (self._bad or self._esc) else bytes(self._buf))
                self._buf.clear()
                self._esc = self._bad = False
            elif self._esc:
                self._esc = False
                if b == ESC_END:
                    self._buf.append(END)
                elif b == ESC_ESC:
                    self._buf.append(ESC)
                else:
                    self._bad = True
            elif b == ESC:
                self._esc = True
            else:
                self._buf.append(b)
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame."""
        return len(self._buf)


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack("<H", crc16(body))


def request(seq: int, op: int, payload: bytes = b"") -> bytes:
    """Wire bytes of a request."""
    return slip_encode(_with_crc(bytes([seq & 0xFF, int(op) & 0xFF]) + bytes(payload)))


def reply_frame(seq: int, op: int, status: int, payload: bytes = b"") -> bytes:
    """A decoded reply frame as the device forms it (for models and tests)."""
    return _with_crc(bytes([seq & 0xFF, (int(op) | 0x80) & 0xFF, int(status)]) + payload)


def parse_reply(frame: bytes | None) -> Reply:
    if frame is None:
        raise ProtocolError("reply with an invalid SLIP escape")
    if len(frame) < 5:
        raise ProtocolError(f"reply of {len(frame)} bytes (at least 5 expected)")
    body, (crc,) = frame[:-2], struct.unpack("<H", frame[-2:])
    if crc16(body) != crc:
        raise ProtocolError(f"reply CRC {crc:#06x}, computed {crc16(body):#06x}")
    if not body[1] & 0x80:
        raise ProtocolError(f"reply op byte {body[1]:#04x} lacks the reply bit 0x80")
    try:
        status = Status(body[2])
    except ValueError:
        raise ProtocolError(f"unknown status {body[2]}") from None
    if status != Status.OK and len(body) > 3:
        raise ProtocolError(f"{status.name} reply with a {len(body) - 3}-byte payload")
    return Reply(body[0], body[1] & 0x7F, status, bytes(body[3:]))


# ---- sizes ---------------------------------------------------------------------------------
def input_bytes(cfg) -> int:
    return 1 if cfg.in_bits <= 8 else 2


def weight_bytes(cfg) -> int:
    return 1 if cfg.w_bits <= 8 else 2


def default_max_frame(cfg) -> int:
    """The smallest power of two >= 256 that holds a PRESENT request and its reply."""
    need = max(256, 6 + cfg.n_in * input_bytes(cfg), 14 + 2 * cfg.n_out)
    return 1 << (need - 1).bit_length()


# ---- registers -----------------------------------------------------------------------------
def reg_range(cfg, index: int) -> tuple:
    """Inclusive range of register ``index`` (docs/protocol.md, WRITE_REG)."""
    return _REGISTER_MAP[index].range(cfg)


def register_values(cfg, epoch: int = 0) -> list:
    """The register values of ``cfg`` in index order (after its decay schedule at ``epoch``)."""
    regs = cfg.registers(epoch)
    return [r.encode(regs[r.config_field]) for r in _REGISTER_MAP]


# ---- IDENTIFY ------------------------------------------------------------------------------
_IDENT_FMT = "<4sBBHHHBBBHHIHB"


def identify_payload(cfg, lanes, max_frame, clk_hz, divisor) -> bytes:
    return struct.pack(_IDENT_FMT, MAGIC, VERSION, lanes, cfg.n_in, cfg.n_hid, cfg.n_out,
                       cfg.in_bits, cfg.w_bits, cfg.state_bits, cfg.timesteps, max_frame,
                       clk_hz, divisor, len(REGISTERS))


def parse_identify(payload: bytes) -> dict:
    if len(payload) != struct.calcsize(_IDENT_FMT):
        raise ProtocolError(f"IDENTIFY reply of {len(payload)} bytes, expected "
                            f"{struct.calcsize(_IDENT_FMT)}")
    f = struct.unpack(_IDENT_FMT, payload)
    if f[0] != MAGIC:
        raise ProtocolError(f"not an SNN learning core (magic {f[0]!r}, expected {MAGIC!r})")
    keys = ("magic", "version", "lanes", "n_in", "n_hid", "n_out", "in_bits", "w_bits",
            "state_bits", "timesteps", "max_frame", "clk_hz", "divisor", "n_regs")
    return dict(zip(keys, f))


# ---- PRESENT -------------------------------------------------------------------------------
def present_payload(cfg, mode, label: int, x) -> bytes:
    m = mode_number(mode)
    x = np.asarray(x)
    if x.shape != (cfg.n_in,):
        raise ValueError(f"sample has shape {x.shape}, the network needs ({cfg.n_in},)")
    dt = "<u1" if input_bytes(cfg) == 1 else "<u2"
    return bytes([m, int(label)]) + x.astype(dt).tobytes()


def parse_present(cfg, payload: bytes) -> dict:
    n = 9 + 2 * cfg.n_out
    if len(payload) != n:
        raise ProtocolError(f"PRESENT reply of {len(payload)} bytes, expected {n}")
    counts = np.frombuffer(payload, "<u2", cfg.n_out, 1).astype(np.int64)
    cycles, events = struct.unpack("<II", payload[1 + 2 * cfg.n_out:])
    return {"pred": payload[0], "counts": counts, "cycles": cycles, "events": events}


def present_reply_payload(cfg, pred, counts, cycles, events) -> bytes:
    return bytes([pred]) + np.asarray(counts).astype("<u2").tobytes() + \
        struct.pack("<II", cycles & 0xFFFFFFFF, events & 0xFFFFFFFF)


# ---- counters ------------------------------------------------------------------------------
def parse_counters(payload: bytes) -> dict:
    if len(payload) != struct.calcsize(_COUNTERS_FMT):
        raise ProtocolError(f"READ_COUNTERS reply of {len(payload)} bytes, expected "
                            f"{struct.calcsize(_COUNTERS_FMT)}")
    return dict(zip(COUNTERS, struct.unpack(_COUNTERS_FMT, payload)))


# ---- weights -------------------------------------------------------------------------------
def _wdtype(cfg):
    return "<i1" if weight_bytes(cfg) == 1 else "<i2"


def pack_words(cfg, lanes: int, layer: int, w) -> bytes:
    """All words of a layer from its weight matrix (``spec.packing``), as ``WRITE_W`` and
    ``READ_W`` carry them; padding lanes are 0."""
    rows, cols = layer_shape(cfg, layer)
    w = np.asarray(w)
    if w.shape != (rows, cols):
        raise ValueError(f"W{layer + 1} has shape {w.shape}, expected ({rows}, {cols})")
    if w.min(initial=0) < cfg.w_min or w.max(initial=0) > cfg.w_max:
        raise ValueError(f"W{layer + 1} has values outside [{cfg.w_min}, {cfg.w_max}]")
    return pack_rows(w, lanes).astype(_wdtype(cfg)).tobytes()


def unpack_words(cfg, lanes: int, layer: int, data: bytes) -> np.ndarray:
    """Inverse of :func:`pack_words` (padding lanes dropped)."""
    n = layer_words(cfg, lanes, layer) * lanes
    a = np.frombuffer(data, _wdtype(cfg)).astype(np.int64)
    if a.size != n:
        raise ProtocolError(f"W{layer + 1}: {a.size} weights read, expected {n}")
    return unpack_rows(a.reshape(-1, lanes), layer_shape(cfg, layer)[1])
