"""The device side of the host link (``docs/protocol.md``): SLIP framing, CRC-16, the command
set and the network core behind it.

:class:`ProtocolEngine` sits between a UART receiver's byte stream and a UART transmitter's
byte stream and contains the :class:`hdl.core.Core`. It is built for area, not speed: the link
delivers one byte every ``10 * divisor`` cycles, so everything is done a byte (or a bit) per
cycle by one state machine, and wide data lives in block RAM rather than in flip-flops.

Structure
---------
The engine composes components of :mod:`hdl.link` (one file each) and only wires them::

    rx -> SlipDecoder -> FrameReceiver -> Executor -> SlipEncoder -> tx
                                             |
                                            Core

* :class:`hdl.link.slip.SlipDecoder` / :class:`hdl.link.slip.SlipEncoder`: SLIP as
  ``lib.stream`` components (wire bytes to symbols: a data byte, ``END``, an invalid escape;
  and back).
* :class:`hdl.link.receiver.FrameReceiver` (open unless it holds a frame the executor still
  needs): decoded bytes into the *frame buffer* (``max_frame`` bytes of block RAM) and the
  CRC a byte at a time (:class:`hdl.link.crc.CRC16`). The last two bytes are held back in a
  two-byte delay line, so that at the frame's ``END`` the CRC register covers everything but
  them and is compared with them directly. A complete frame is *held* until the executor
  releases it: right after its checks if it is answered without executing (an error or a
  replay), else when its execution ends; bytes that arrive while a frame is held are
  discarded up to and including the next ``END``. So the receiver takes the next request
  while a reply is sent (``docs/protocol.md``, section 1).
* :class:`hdl.link.executor.Executor` (one FSM). A frame is acted upon only after its
  ``END``: framing error, overflow and CRC are checked first, then a repeated (``seq``, CRC)
  is answered from the stored reply, and only then is the command decoded. Every command
  validates its whole request before it changes anything (``WRITE_W`` reads all its words
  twice: a checking pass, then a writing pass; ``READ_W`` checks its last word before it
  reads the first). The reply payload is written to the *reply buffer* (block RAM); only a
  request answered ``OK`` replaces the stored request and reply. The same FSM sends the
  reply: ``END``, header, payload and CRC (its own :class:`hdl.link.crc.CRC16`: the
  receiver's may be busy with the next frame then), ``END``, as symbols to the encoder. It
  contains :class:`hdl.link.regchain.RegisterChain` (the core's registers) and
  :class:`hdl.link.counters.LinkCounters` (this presentation's cycles and events, the UART
  errors).

Area notes
----------
* The 17 runtime registers (the core's ``regs`` port) are one flat shift register in the
  order of :func:`hdl.core.regs_layout`. ``READ_REGS`` and ``WRITE_REG`` rotate it once,
  a bit per cycle (about 550 cycles): reading formats each field as an ``i32`` into the reply
  buffer, writing substitutes the new value while its field passes the head. This needs no
  read multiplexer over the ~170 register bits and no load multiplexer in front of them.
  The registers only move while the core is idle (a command runs only then).
* The counters of ``READ_COUNTERS`` other than ``sample_counter`` (the core's) and
  ``uart_errors`` live in the reply buffer's RAM, above the reply area, and are updated by a
  byte-serial adder: ``frames_ok``/``frames_rejected`` once per reply, the presentation
  count and the two 64-bit totals (synaptic events, busy cycles) once per ``PRESENT`` from
  the presentation's own 32-bit cycle and event counters (which the ``PRESENT`` reply needs
  anyway). After a reset the FSM first clears them.
* ``IDENTIFY``'s 26 constant bytes are initial contents of the same RAM, so ``IDENTIFY`` and
  ``READ_COUNTERS`` are one copy loop.
* Two CRC units (one per direction) instead of one shared: +39 LUT4 and +16 flip-flops
  (``synth_ice40 -noflatten``: each ``CRC16`` is 39 LUT4, 16 FF). Sharing it again would
  close the receiver while a reply is sent, which ``docs/protocol.md`` (section 1) rules out:
  the request that follows a damaged frame arrives then. The held-frame scheme costs ``t_seq``
  and ``t_op`` (16 FF); it saves the stored status (every stored reply is ``OK``) and the
  per-word bound check of ``READ_W`` (its last word is checked once, before the first).

Yosys ``synth_ice40 -noflatten`` of the default configuration (64-128-10), the engine without
the core, before the split into :mod:`hdl.link`: P = 1: 1141 LUT4, 675 flip-flops (173 of
them the registers), 2 EBR; with the five protocol fixes of issue 12 (two CRC units): 1207
LUT4, 707 FF. The full iCEBreaker build (flattened, ``-dsp -dff``) went from 4036 LUT4 /
1916 FF / 32.0 MHz to 4077 / 1948 / 31.8 MHz with the fixes and the split (+1.0 % / +1.7 %).
The largest parts are the multiplexer in front of the reply buffer (~210 LUT4: the
core's ``n_out`` spike counts, the per-presentation cycle and event counters, the sample
counter and ``uart_errors`` read a byte at a time), the state machine (~100), the three
32-bit counters (~100) and the weight address with its bound check (~50). Yosys keeps
Amaranth FSMs binary on iCE40 (their state register has an initial value); a one-hot
version of this one measured ~40 LUT4 larger.
"""

import struct

from amaranth.hdl import Module, Shape, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .core import Core, reg_values, regs_layout
from .link.executor import COUNTER_OFFSETS, Executor
from .link.receiver import FrameReceiver
from .link.slip import SlipDecoder, SlipEncoder
from .mem import WordMemory

__all__ = ["ProtocolEngine", "Op", "Status", "VERSION", "MAGIC", "END", "ESC", "ESC_END",
           "ESC_ESC", "default_max_frame", "reg_ranges", "COUNTER_OFFSETS"]

# The protocol's constants are defined once, in the host codec (pure Python, no I/O).
from spec.protocol import (
    END,
    ESC,
    ESC_END,
    ESC_ESC,
    MAGIC,
    REGISTERS,
    VERSION,
    Op,
    Status,
    default_max_frame,
    reg_range,
)


def _bytes_per(bits):
    return 1 if bits <= 8 else 2



def reg_ranges(cfg) -> dict:
    """Inclusive range of every runtime register, as ``docs/protocol.md`` (WRITE_REG) lists
    and the host codec defines them."""
    return {name: reg_range(cfg, i) for i, name in enumerate(REGISTERS)}


class ProtocolEngine(wiring.Component):
    """The link protocol engine with the network core inside.

    Parameters
    ----------
    cfg : spec.config.Config
    lanes : int
        ``P`` of the core.
    memory : callable
        Memory factory of the core (see :class:`hdl.mem.WordMemory`); the engine's own two
        buffers are plain :class:`amaranth.lib.memory.Memory` (one block RAM each on iCE40
        and ECP5 for the default ``max_frame``).
    max_frame : int, optional
        Largest decoded request frame, in bytes (default: :func:`default_max_frame`).
    clk_hz, divisor : int
        Reported by ``IDENTIFY`` only.
    weight_latency : int
        The core's weight read latency (:class:`hdl.core.Core`); ``READ_W`` waits for it.

    Members
    -------
    rx : In(stream.Signature(unsigned(8)))
        Received bytes. ``ready`` is always 1 (a UART receiver cannot wait).
    rx_error : In(1)
        Pulse per UART framing error or overrun.
    tx : Out(stream.Signature(unsigned(8)))
        Bytes to send.
    busy : Out(1)
        Executing a command or sending a reply (received bytes are being discarded).
    """

    def __init__(self, cfg, lanes: int = 1, *, memory=WordMemory, max_frame=None,
                 clk_hz: int = 12_000_000, divisor: int = 6, weight_latency: int = 1):
        self.cfg = cfg
        self.lanes = P = lanes
        self.ib = _bytes_per(cfg.in_bits)
        self.wb = _bytes_per(cfg.w_bits)
        self.max_frame = default_max_frame(cfg) if max_frame is None else int(max_frame)
        need = max(2 + 2 + cfg.n_in * self.ib + 2, 5 + 68, 5 + 9 + 2 * cfg.n_out,
                   5 + P * self.wb)
        if not need <= self.max_frame <= 0xFFFF:
            raise ValueError(f"max_frame must be in {need}..65535 for this configuration, "
                             f"not {self.max_frame}")
        if cfg.n_out > 256:
            raise ValueError("the protocol's u8 label needs n_out <= 256")
        if max(cfg.n_in * -(-cfg.n_hid // P), cfg.n_hid * -(-cfg.n_out // P)) > 0x10000:
            raise ValueError("a weight layer has more than 65536 words (u16 addresses)")
        if not (0 < clk_hz < 1 << 32 and 0 < divisor < 1 << 16):
            raise ValueError(f"clk_hz must fit in u32 and divisor in u16, not {clk_hz}, "
                             f"{divisor}")
        self.clk_hz = int(clk_hz)
        self.divisor = int(divisor)
        self.layout = regs_layout(cfg)
        self._fields = self._field_table()
        self.core = Core(cfg, lanes=lanes, memory=memory, weight_latency=weight_latency)
        super().__init__({
            "rx": In(stream.Signature(unsigned(8))),
            "rx_error": In(1),
            "tx": Out(stream.Signature(unsigned(8))),
            "busy": Out(1),
        })

    def _field_table(self):
        """(width, signed, hi or None, positive) per register, checked against the spec's
        ranges: the range check is then "fits the field", plus ``<= hi`` where the range is
        smaller than the field, plus ``> 0`` for the positive signed fields (thresholds)."""
        ranges = reg_ranges(self.cfg)
        if list(ranges) != list(self.layout.members):
            raise ValueError("hdl.core.regs_layout no longer matches the protocol's register "
                             "table")
        out = []
        for name, field in self.layout:
            w = field.width
            signed = Shape.cast(field.shape).signed
            lo, hi = ranges[name]
            if signed:
                ok = lo in (-(1 << (w - 1)), 1) and hi == (1 << (w - 1)) - 1
            else:
                ok = lo == 0 and hi < (1 << w)
            if not ok or w > 32:
                raise ValueError(f"register {name}: field {field.shape} does not hold exactly "
                                 f"the range {lo}..{hi}")
            out.append((w, signed, None if signed or hi == (1 << w) - 1 else hi,
                        signed and lo == 1))
        return out

    def identify_bytes(self) -> bytes:
        cfg = self.cfg
        return struct.pack("<4sBBHHHBBBHHIHB", MAGIC, VERSION, self.lanes, cfg.n_in, cfg.n_hid,
                           cfg.n_out, cfg.in_bits, cfg.w_bits, cfg.state_bits, cfg.timesteps,
                           self.max_frame, self.clk_hz, self.divisor, len(self._fields))

    # -----------------------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        m.submodules.slip_dec = dec = SlipDecoder()
        m.submodules.receiver = rcv = FrameReceiver(self.max_frame)
        m.submodules.executor = exe = Executor(
            self.cfg, self.lanes, max_frame=self.max_frame, fields=self._fields,
            layout=self.layout, reg_init=reg_values(self.cfg), ident=self.identify_bytes(),
            core_signature=core.signature, w_words=core.w_words,
            w_read_latency=core.w_read_latency)
        m.submodules.slip_enc = enc = SlipEncoder()

        # rx -> SLIP decoder -> frame receiver -> executor -> SLIP encoder -> tx
        wiring.connect(m, wiring.flipped(self.rx), dec.i)
        wiring.connect(m, dec.o, rcv.i)
        wiring.connect(m, rcv.frame, exe.frame)
        wiring.connect(m, exe.tx, enc.i)
        wiring.connect(m, enc.o, wiring.flipped(self.tx))
        # the executor drives the core (commands, inputs, weights, registers)
        wiring.connect(m, exe.core, core)
        m.d.comb += [rcv.rx_error.eq(self.rx_error), exe.rx_error.eq(self.rx_error),
                     self.busy.eq(~exe.idle)]
        return m
