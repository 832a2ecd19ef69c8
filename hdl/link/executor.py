"""The command executor of the host link (``docs/protocol.md``, sections 2 to 4).

One state machine takes a held frame from :class:`hdl.link.receiver.FrameReceiver`, checks
it (framing, overflow, CRC, retransmission), executes the command against the core, writes
the reply payload into the reply buffer and sends the reply as SLIP symbols (to
:class:`hdl.link.slip.SlipEncoder`). See :mod:`hdl.protocol` for the structure and the area
notes.

The buffers and registers are declared in :meth:`Executor._declare`, the logic the states
share in :meth:`Executor._datapath`, and the states a group per command in the other
methods; they share the names through a namespace (``c``).
"""

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spec.protocol import Op, Status
from spec.rules import MODES

from .counters import LinkCounters
from .crc import CRC16
from .receiver import FrameSignature
from .regchain import RegisterChain
from .slip import Symbol

__all__ = ["Executor", "COUNTER_OFFSETS"]

#: Offsets of the RAM-held counters (bytes after ``sample_counter`` in the READ_COUNTERS reply,
#: minus 4): presentations u32, events u64, busy cycles u64, frames_ok u32, frames_rejected u32.
COUNTER_OFFSETS = {"presentations": 0, "events": 4, "busy_cycles": 12, "frames_ok": 20,
                   "frames_rejected": 24}
_N_RAM_COUNTERS = 28


class Executor(wiring.Component):
    """Checks and executes held frames and sends their replies.

    Parameters
    ----------
    cfg : spec.config.Config
    lanes : int
    max_frame : int
    fields : list of (width, signed, hi or None, positive)
        The register fields' range checks (:meth:`hdl.protocol.ProtocolEngine._field_table`).
    layout : data.StructLayout
        The registers (:func:`hdl.core.regs_layout`).
    reg_init : dict
        Their values after reset.
    ident : bytes
        The IDENTIFY payload.
    core_signature : wiring.Signature
        The core's (:class:`hdl.core.Core`).
    w_words : tuple of int
        Words of each weight layer.
    w_read_latency : int
        The core's weight read latency, in cycles from ``w_re``.

    Members
    -------
    frame : In(FrameSignature(max_frame))
    core : In(core_signature)
        The core, driven from this side.
    tx : Out(stream.Signature(Symbol()))
        The reply.
    rx_error : In(1)
        Counted in ``uart_errors``.
    idle : Out(1)
        Waiting for a frame.
    """

    def __init__(self, cfg, lanes, *, max_frame, fields, layout, reg_init, ident,
                 core_signature, w_words, w_read_latency):
        self.cfg, self.lanes = cfg, lanes
        self.ib = 1 if cfg.in_bits <= 8 else 2
        self.wb = 1 if cfg.w_bits <= 8 else 2
        self.max_frame, self.fields, self.layout = max_frame, fields, layout
        self.reg_init, self.ident = reg_init, bytes(ident)
        self.w_words, self.w_read_latency = tuple(w_words), int(w_read_latency)
        super().__init__({
            "frame": In(FrameSignature(max_frame)),
            "core": In(core_signature),
            "tx": Out(stream.Signature(Symbol())),
            "rx_error": In(1),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        c = self._declare(m)
        self._datapath(c)
        with m.FSM(name="link") as fsm:
            self._frame_states(c)
            self._args_states(c)
            self._copy_regs_states(c)
            self._present_states(c)
            self._weight_states(c)
            self._reply_states(c)
            self._tx_states(c)
        # one-hot on the boards (Yosys re-encodes it; the reset sets it, the init value is
        # ignored): the next-state logic of a forty-state machine is then one OR per state
        fsm.state.attrs["fsm_encoding"] = "one-hot"
        return m

    def _declare(self, m):
        """The buffers, registers and submodules of the executor."""
        cfg, P, ib, wb = self.cfg, self.lanes, self.ib, self.wb
        core = self.core
        MF = self.max_frame
        RB = MF - 5                     # reply payload capacity
        CB = RB                         # RAM counters
        IB = CB + _N_RAM_COUNTERS       # IDENTIFY constants
        ident = self.ident
        WORD = P * wb                   # bytes per weight word
        CMAX = RB // WORD               # most words one READ_W reply holds
        LW = self.w_words
        NF = len(self.fields)

        # ---- buffers -----------------------------------------------------------------------------
        m.submodules.rmem = rmem = Memory(shape=8, depth=IB + len(ident),
                                          init=[0] * IB + list(ident))
        rw = rmem.write_port()
        rr = rmem.read_port()

        # ---- state -------------------------------------------------------------------------------
        idle = self.idle                # the FSM waits for a frame
        frame = self.frame
        f_seq, f_op, rlen = frame.seq, frame.op, frame.length
        held, release = frame.held, frame.release
        # the transmitter's own CRC unit: the receiver's may be busy with the next frame
        m.submodules.tx_crc = tx_crc = CRC16()
        tcrc = tx_crc.crc
        t_seq, t_op = Signal(8), Signal(8)  # the frame being answered (the reply's header)
        enc_i = self.tx

        # executor
        ra = Signal(range(MF))          # frame buffer read address
        last_a = Signal(range(MF))      # address of the last payload byte (plen + 1)
        last_a1 = Signal(range(MF + 1)) # last_a + 1, a cycle later (WW_WE's end test)
        raddr = Signal(range(rmem.depth))
        wp = Signal(range(RB + 1))      # reply write pointer = reply length
        a0 = Signal(8)                  # first payload byte (index, mode, layer)
        v = Signal(32)                  # payload bytes 1..4 (value, label, addr + count)
        status = Signal(3)
        k = Signal(range(max(32, 2 * cfg.n_out)))   # field / counter byte / loop index
        bitcnt = Signal(5)
        gt, err, sign, lastbit, regs_wr, copy_cnt, nz = (Signal(name=n) for n in (
            "gt", "err", "sign", "lastbit", "regs_wr", "copy_cnt", "nz"))
        ob = Signal(8)
        wa = Signal(17)                 # weight word address
        nw = Signal(range(CMAX + 1))    # READ_W words left
        RWAIT = self.w_read_latency - 1  # cycles READ_W waits after RW_WORD
        bw = Signal(range(max(WORD, RWAIT + 1, 2)))  # byte within a weight word
        sreg = Signal(8 * WORD)         # WRITE_W word being assembled
        xlo = Signal(8)
        carry = Signal()

        # stored reply and retransmission
        rep_op, rep_len = Signal(8), Signal(range(RB + 1))   # the stored reply (OK)
        last_seq, last_crc, last_valid = Signal(8), Signal(16), Signal()
        send_err, err_st = Signal(), Signal(3)

        # transmitter
        tphase = Signal(3)
        ti = Signal(range(RB + 1))
        tb = Signal(8)

        # register chain: the core's regs port, rotated a bit at a time
        m.submodules.regchain = chain = RegisterChain(self.layout, self.reg_init)
        m.d.comb += core.regs.eq(chain.regs)

        # this presentation's cycles and synaptic events (cleared when the command is
        # issued), and the UART errors
        m.submodules.counters = cnt = LinkCounters(P)
        pres_clr, pc_inc, pe_inc = cnt.start, cnt.count, Signal()
        m.d.comb += [cnt.events.eq(Mux(pe_inc, core.syn_events, 0)),
                     cnt.rx_error.eq(self.rx_error)]
        pc, pe, uart_errors = cnt.cycles, cnt.syn_events, cnt.uart_errors
        return SimpleNamespace(**locals())

    def _datapath(self, c):
        """The logic shared by the states: addresses, checks, adders."""
        LW, P, RB, WORD, a0, bitcnt, carry = c.LW, c.P, c.RB, c.WORD, c.a0, c.bitcnt, c.carry
        cfg, core, f_op, frame, ib, k = c.cfg, c.core, c.f_op, c.frame, c.ib, c.k
        last_a, last_a1, m, pc, pe, ra = c.last_a, c.last_a1, c.m, c.pc, c.pe, c.ra
        raddr, rep_len, rr, rw, send_err = c.raddr, c.rep_len, c.rr, c.rw, c.send_err
        sreg, status, v, wa, wb, wp, xlo = c.sreg, c.status, c.v, c.wa, c.wb, c.wp, c.xlo
        # ---- shared datapath ---------------------------------------------------------------------
        m.d.comb += [frame.addr.eq(ra), rr.addr.eq(raddr)]
        # the reply buffer's word, registered: every read takes a wait state (*_RD, *_W), so
        # that no path runs from a block RAM's output into arithmetic and back into a RAM
        rrq = Signal(8)
        m.d.sync += rrq.eq(rr.data)
        layer = a0[0]
        m.d.comb += [core.w_layer.eq(layer), core.w_addr.eq(wa)]
        nwords = Mux(layer, LW[1], LW[0])
        # the bound check of wa, registered: READ_W and WRITE_W look at it at least a cycle
        # after wa (or the layer) last changed
        wa_bad = Signal()
        m.d.sync += wa_bad.eq(wa >= nwords)
        byte = frame.data
        m.d.comb += [core.counter_wdata.eq(v), core.cmd.payload.eq(Cat(a0[:2], v[:8]))]
        for l in range(P):
            m.d.comb += core.w_wdata[l].eq(sreg[8 * wb * l:][:cfg.w_bits])
        m.d.comb += core.x_in.payload.eq(byte if ib == 1 else Cat(xlo, byte))

        def reply(value):
            m.d.comb += [rw.addr.eq(wp), rw.data.eq(value), rw.en.eq(1)]
            m.d.sync += wp.eq(wp + 1)

        def fail(code):
            m.d.sync += status.eq(code)
            m.next = "FINISH"

        def length(n):
            return last_a == n + 1

        def zero_from(b, top):
            """Bits ``top..7`` of byte ``b`` are 0."""
            return Const(1) if top >= 8 else b[top:] == 0

        def sign_ok(b, top):
            """Bits ``top..7`` of byte ``b`` all equal (a sign extension)."""
            if top >= 8:
                return Const(1)
            hi = b[top:]
            return (hi == 0) | (hi == (1 << (8 - top)) - 1)

        # field tables, indexed by k
        fw_ = Signal(6)
        fs_ = Signal()
        fhi = Signal()                  # bit bitcnt of the field's upper bound
        fpos = Signal()                 # the field must be > 0
        with m.Switch(k):
            for i, (w, s, hi, pos) in enumerate(self.fields):
                with m.Case(i):
                    m.d.comb += [fw_.eq(w), fs_.eq(s), fpos.eq(pos)]
                    m.d.comb += fhi.eq(1 if hi is None else Const(hi, 32).bit_select(bitcnt, 1))
        inside = bitcnt < fw_
        m.d.sync += last_a1.eq(last_a + 1)
        fpos_q = Signal()               # fpos, a cycle late (WR_DECIDE: k has been a0 since ARGS)
        m.d.sync += fpos_q.eq(fpos)

        # byte-serial adder over the RAM counters: k is the counter byte
        inc = (k == COUNTER_OFFSETS["presentations"]) | (k == COUNTER_OFFSETS["frames_ok"]) | \
            (k == COUNTER_OFFSETS["frames_rejected"])
        first = inc | (k == COUNTER_OFFSETS["events"]) | (k == COUNTER_OFFSETS["busy_cycles"])
        tot_byte = Mux(k[3], pc.word_select(k[:2], 8), pe.word_select(k[:2], 8))
        opb = Mux(inc, 1, Mux((k[2:] == 1) | (k[2:] == 3), tot_byte, 0))
        # registered: k (and the totals) hold through ADD_RD, ADD_W and ADD, so in ADD the
        # operand decoded from k is a cycle old and still right; the adder starts from flops
        opb_q, first_q = Signal(8), Signal()
        m.d.sync += [opb_q.eq(opb), first_q.eq(first)]
        add_sum = rrq + opb_q + Mux(first_q, 0, carry)

        slen = Mux(send_err, 0, rep_len)
        # constant while a reply is sent (set before TX_SOF): registered, off the TX path
        slen_zero, slen_last = Signal(), Signal(range(RB + 1))
        m.d.sync += [slen_zero.eq(slen == 0), slen_last.eq(slen - 1)]

        # DISPATCH's checks of the opcode and the length, registered (f_op and last_a are
        # stable from IDLE on)
        bad_op, bad_len = Signal(), Signal()
        with m.Switch(f_op):
            with m.Case(Op.IDENTIFY, Op.READ_COUNTERS, Op.READ_REGS):
                m.d.comb += bad_len.eq(~length(0))
            with m.Case(Op.WRITE_REG, Op.READ_W):
                m.d.comb += bad_len.eq(~length(5))
            with m.Case(Op.PRESENT):
                m.d.comb += bad_len.eq(~length(2 + cfg.n_in * ib))
            with m.Case(Op.WRITE_W):
                m.d.comb += bad_len.eq(last_a < 1 + 3 + WORD)
            with m.Case(Op.WRITE_COUNTER):
                m.d.comb += bad_len.eq(~length(4))
            with m.Default():
                m.d.comb += bad_op.eq(1)
        dsp_bad_op, dsp_bad_len = Signal(), Signal()
        m.d.sync += [dsp_bad_op.eq(bad_op), dsp_bad_len.eq(bad_len)]

        # a received frame's checks (IDLE to CHECK)
        ck_framing, ck_ovf, ck_crc, ck_replay = (Signal(name=n) for n in (
            "ck_framing", "ck_ovf", "ck_crc", "ck_replay"))
        ck_crc_v = Signal(16)
        c.__dict__.update((n, x) for n, x in locals().items() if n not in ('self', 'c'))

    def _frame_states(self, c):
        """CLEAR, IDLE (a held frame's checks), CHECK and DISPATCH."""
        CB, bitcnt, ck_crc, ck_crc_v = c.CB, c.bitcnt, c.ck_crc, c.ck_crc_v
        ck_framing, ck_ovf, ck_replay = c.ck_framing, c.ck_ovf, c.ck_replay
        copy_cnt, dsp_bad_len, dsp_bad_op = c.copy_cnt, c.dsp_bad_len, c.dsp_bad_op
        err_st, f_op, f_seq, fail, frame = c.err_st, c.f_op, c.f_seq, c.fail, c.frame
        held, idle, k, last_a, last_crc = c.held, c.idle, c.k, c.last_a, c.last_crc
        last_seq, last_valid, m, ra, regs_wr = c.last_seq, c.last_valid, c.m, c.ra, c.regs_wr
        release, rlen, rw, send_err, status = c.release, c.rlen, c.rw, c.send_err, c.status
        t_op, t_seq, wp = c.t_op, c.t_seq, c.wp
        with m.State("CLEAR"):
            # zero the RAM counters after a reset
            m.d.comb += [rw.addr.eq(CB + k), rw.data.eq(0), rw.en.eq(1)]
            m.d.sync += k.eq(k + 1)
            with m.If(k == _N_RAM_COUNTERS - 1):
                m.next = "IDLE"

        with m.State("IDLE"):
            # a frame's checks are registered here and acted upon in CHECK
            m.d.comb += idle.eq(1)
            with m.If(held):
                rcrc = frame.crc_field
                m.d.sync += [last_a.eq(rlen - 3), ra.eq(2), wp.eq(0), status.eq(Status.OK),
                             send_err.eq(1), k.eq(COUNTER_OFFSETS["frames_rejected"]),
                             t_seq.eq(f_seq), t_op.eq(f_op),
                             ck_framing.eq(frame.framing_error), ck_ovf.eq(frame.overflow),
                             ck_crc.eq(frame.crc != rcrc), ck_crc_v.eq(rcrc),
                             ck_replay.eq(last_valid & (f_seq == last_seq) &
                                          (rcrc == last_crc))]
                m.next = "CHECK"

        with m.State("CHECK"):
            # a reply that needs only t_seq, t_op and the stored reply frees the receiver
            m.d.comb += release.eq(ck_framing | ck_ovf | ck_crc | ck_replay)
            with m.If(ck_framing):
                m.d.sync += err_st.eq(Status.BAD_FRAMING)
                m.next = "ADD_RD"
            with m.Elif(ck_ovf):
                m.d.sync += err_st.eq(Status.OVERFLOW)
                m.next = "ADD_RD"
            with m.Elif(ck_crc):
                m.d.sync += err_st.eq(Status.BAD_CRC)
                m.next = "ADD_RD"
            with m.Elif(ck_replay):
                # retransmission: send the stored reply again
                m.d.sync += [send_err.eq(0), k.eq(COUNTER_OFFSETS["frames_ok"])]
                m.next = "ADD_RD"
            with m.Else():
                m.d.sync += [k.eq(0), send_err.eq(0)]
                m.next = "DISPATCH"

        with m.State("DISPATCH"):
            # the opcode and length checks were registered in CHECK (dsp_*)
            with m.If(dsp_bad_op):
                fail(Status.BAD_OP)
            with m.Elif(dsp_bad_len):
                fail(Status.BAD_LENGTH)
            with m.Else():
                with m.Switch(f_op):
                    with m.Case(Op.IDENTIFY, Op.READ_COUNTERS):
                        m.next = "COPY_RD"
                    with m.Case(Op.READ_REGS):
                        m.next = "REGS"
                    with m.Default():
                        m.next = "LOAD_RD"
            m.d.sync += [copy_cnt.eq(f_op == Op.READ_COUNTERS), bitcnt.eq(0),
                         regs_wr.eq(0)]
            with m.If(f_op == Op.WRITE_COUNTER):
                m.d.sync += ra.eq(1)        # the value lands in v either way

    def _args_states(self, c):
        """The first five payload bytes into ``a0`` and ``v``; the argument checks."""
        CMAX, NF, a0, bitcnt, bw, byte = c.CMAX, c.NF, c.a0, c.bitcnt, c.bw, c.byte
        cfg, core, err, f_op, fail, gt = c.cfg, c.core, c.err, c.f_op, c.fail, c.gt
        k, m, nw, nz, ra, v, wa = c.k, c.m, c.nw, c.nz, c.ra, c.v, c.wa
        # -- five payload bytes: a0 = byte 0, v = bytes 1..4 (read past the end: harmless)
        with m.State("LOAD_RD"):
            m.next = "LOAD"
        with m.State("LOAD"):
            m.d.sync += [v.eq(Cat(v[8:], byte)), ra.eq(ra + 1), k.eq(k + 1)]
            with m.If(ra == 2):
                m.d.sync += a0.eq(byte)
            with m.If(k == 4):
                m.next = "ARGS"
            with m.Else():
                m.next = "LOAD_RD"

        with m.State("ARGS"):
            m.d.sync += [bitcnt.eq(0), gt.eq(0), err.eq(0), nz.eq(0), bw.eq(0),
                         wa.eq(v[:16])]
            with m.Switch(f_op):
                with m.Case(Op.WRITE_REG):
                    m.d.sync += k.eq(a0)
                    with m.If(a0 >= NF):
                        fail(Status.BAD_ARG)
                    with m.Else():
                        m.next = "WR_CHECK"
                with m.Case(Op.WRITE_COUNTER):
                    m.d.comb += core.counter_we.eq(1)
                    m.next = "FINISH"
                with m.Case(Op.PRESENT):
                    m.d.sync += ra.eq(4)
                    with m.If((a0 >= len(MODES)) | (v[:8] >= cfg.n_out)):
                        fail(Status.BAD_ARG)
                    with m.Else():
                        m.next = "PV_RD"
                with m.Case(Op.READ_W):
                    m.d.sync += nw.eq(v[16:])
                    count = v[16:]
                    with m.If((a0 > 1) | (count == 0) | (count > CMAX)):
                        fail(Status.BAD_ARG)
                    with m.Else():
                        m.next = "RW_END"
                with m.Case(Op.WRITE_W):
                    m.d.sync += ra.eq(5)
                    m.next = "WW_VAL_RD"

    def _copy_regs_states(self, c):
        """IDENTIFY and READ_COUNTERS (a copy loop), READ_REGS and WRITE_REG."""
        CB, IB, NF, a0, bitcnt, chain = c.CB, c.IB, c.NF, c.a0, c.bitcnt, c.chain
        copy_cnt, core, err, fail, fhi = c.copy_cnt, c.core, c.err, c.fail, c.fhi
        fpos_q, fs_, gt, ident, inside = c.fpos_q, c.fs_, c.gt, c.ident, c.inside
        k, lastbit, m, nz, ob, raddr = c.k, c.lastbit, c.m, c.nz, c.ob, c.raddr
        regs_wr, reply, rrq, sign, uart_errors = c.regs_wr, c.reply, c.rrq, c.sign, c.uart_errors
        v, wp = c.v, c.wp
        # -- IDENTIFY / READ_COUNTERS: copy from the RAM (and two FF counters) --------------
        with m.State("COPY_RD"):
            m.d.comb += raddr.eq(Mux(copy_cnt, CB - 4, IB) + wp)
            m.next = "COPY_W"
        with m.State("COPY_W"):
            m.next = "COPY"
        with m.State("COPY"):
            ff = Mux(wp[5], uart_errors.word_select(wp[:2], 8),
                     core.sample_counter.word_select(wp[:2], 8))
            reply(Mux(copy_cnt & ((wp < 4) | (wp >= 32)), ff, rrq))
            with m.If(wp == Mux(copy_cnt, 35, len(ident) - 1)):
                m.next = "FINISH"
            with m.Else():
                m.next = "COPY_RD"

        # -- READ_REGS / WRITE_REG: rotate the register chain once --------------------------
        with m.State("REGS"):
            out = Mux(inside, chain.head, fs_ & lastbit)
            with m.If(inside):
                m.d.comb += [chain.shift.eq(1),
                             chain.din.eq(Mux(regs_wr & (k == a0), v.bit_select(bitcnt, 1),
                                              chain.head))]
                m.d.sync += lastbit.eq(chain.head)
            m.d.sync += [ob.eq(Cat(ob[1:], out)), bitcnt.eq(bitcnt + 1)]
            with m.If(~regs_wr & (bitcnt[:3] == 7)):
                reply(Cat(ob[1:], out))
            with m.If(bitcnt == 31):
                m.d.sync += k.eq(k + 1)
                with m.If(k == NF - 1):
                    m.next = "FINISH"

        with m.State("WR_CHECK"):
            # fits the field (sign-extended or zero-extended to 32 bits), and <= hi
            b = v.bit_select(bitcnt, 1)
            with m.If(b):
                m.d.sync += nz.eq(1)
            with m.If(inside):
                m.d.sync += sign.eq(fs_ & b)
                with m.If(b != fhi):
                    m.d.sync += gt.eq(b)
            with m.Elif(b != sign):
                m.d.sync += err.eq(1)
            m.d.sync += bitcnt.eq(bitcnt + 1)
            with m.If(bitcnt == 31):
                m.next = "WR_DECIDE"
        with m.State("WR_DECIDE"):
            m.d.sync += [k.eq(0), regs_wr.eq(1)]
            with m.If(gt | err | (fpos_q & (sign | ~nz))):
                fail(Status.BAD_ARG)
            with m.Else():
                m.next = "REGS"

    def _present_states(self, c):
        """PRESENT: check the inputs, feed the core, the reply and its totals."""
        byte, cfg, core, err, fail, ib = c.byte, c.cfg, c.core, c.err, c.fail, c.ib
        k, last_a, m, pc_inc, pe_inc = c.k, c.last_a, c.m, c.pc_inc, c.pe_inc
        pres_clr, ra, reply, tot_byte = c.pres_clr, c.ra, c.reply, c.tot_byte
        xlo, zero_from = c.xlo, c.zero_from
        # -- PRESENT ------------------------------------------------------------------------
        def x_high(b):
            """The byte is the most significant of an input value and fits in_bits."""
            return zero_from(b, cfg.in_bits - 8 * (ib - 1))

        with m.State("PV_RD"):
            m.next = "PV"
        with m.State("PV"):
            m.d.sync += ra.eq(ra + 1)
            is_high = Const(1) if ib == 1 else ra[0]
            with m.If(is_high & ~x_high(byte)):
                m.d.sync += err.eq(1)
            with m.If(ra == last_a):
                m.d.sync += ra.eq(4)
                with m.If(err | (is_high & ~x_high(byte))):
                    fail(Status.BAD_ARG)
                with m.Else():
                    m.next = "PF_RD"
            with m.Else():
                m.next = "PV_RD"
        with m.State("PF_RD"):
            m.next = "PF"
        with m.State("PF"):
            if ib == 1:
                m.d.comb += core.x_in.valid.eq(1)
                advance = core.x_in.ready
            else:
                with m.If(~ra[0]):
                    m.d.sync += xlo.eq(byte)
                m.d.comb += core.x_in.valid.eq(ra[0])
                advance = ~ra[0] | core.x_in.ready
            with m.If(advance):
                m.d.sync += ra.eq(ra + 1)
                with m.If(ra == last_a):
                    m.next = "P_CMD"
                with m.Else():
                    m.next = "PF_RD"
        with m.State("P_CMD"):
            m.d.comb += [core.cmd.valid.eq(1), pres_clr.eq(1)]
            with m.If(core.cmd.ready):
                m.next = "P_RUN"
        with m.State("P_RUN"):
            # cycles as hdl.core.presentation_cycles counts them: the accept cycle and
            # every cycle after it up to the first one with the result (counted here
            # from the cycle after the accept, plus one in P_PRED)
            m.d.comb += [pc_inc.eq(1), pe_inc.eq(1)]
            with m.If(core.result.valid):
                m.next = "P_PRED"
        with m.State("P_PRED"):
            m.d.comb += pc_inc.eq(1)
            reply(core.result.payload.pred)
            m.d.sync += k.eq(0)
            m.next = "P_COUNT"
        with m.State("P_COUNT"):
            cnt = Cat(core.result.payload.counts[k[1:]], Const(0, 16))
            reply(cnt.word_select(k[0], 8))
            m.d.sync += k.eq(k + 1)
            with m.If(k == 2 * cfg.n_out - 1):
                m.d.sync += k.eq(COUNTER_OFFSETS["busy_cycles"])
                m.next = "P_TOTALS"
        with m.State("P_TOTALS"):
            # the bytes of pc (k = 12..15), then of pe (k = 4..7)
            reply(tot_byte)
            m.d.sync += k.eq(k + 1)
            with m.If(k == COUNTER_OFFSETS["busy_cycles"] + 3):
                m.d.sync += k.eq(COUNTER_OFFSETS["events"])
            with m.If(k == COUNTER_OFFSETS["events"] + 3):
                m.d.comb += core.result.ready.eq(1)
                m.d.sync += k.eq(0)
                m.next = "ADD_RD"

    def _weight_states(self, c):
        """READ_W and WRITE_W."""
        P, RWAIT, WORD, a0, bw, byte = c.P, c.RWAIT, c.WORD, c.a0, c.bw, c.byte
        cfg, core, err, fail, last_a = c.cfg, c.core, c.err, c.fail, c.last_a
        last_a1, m, nw, ra, reply, sign_ok = c.last_a1, c.m, c.nw, c.ra, c.reply, c.sign_ok
        sreg, v, wa, wa_bad, wb = c.sreg, c.v, c.wa, c.wa_bad, c.wb
        # -- READ_W -------------------------------------------------------------------------
        # the bound is checked at the last word before any byte of the reply is written
        # (a rejected request leaves the stored reply intact, section 2 of the document)
        with m.State("RW_END"):
            with m.If(nw == 1):
                m.next = "RW_CHECK"     # wa_bad follows wa a cycle late
            with m.Else():
                m.d.sync += [wa.eq(wa + 1), nw.eq(nw - 1)]
        with m.State("RW_CHECK"):
            m.d.sync += [wa.eq(v[:16]), nw.eq(v[16:])]
            with m.If(wa_bad):
                fail(Status.BAD_ARG)
            with m.Else():
                m.next = "RW_WORD"
        with m.State("RW_WORD"):
            m.d.comb += core.w_re.eq(1)
            m.d.sync += bw.eq(1)
            m.next = "RW_WAIT"
        with m.State("RW_WAIT"):
            # wa has been held since the previous word: the core's w_rdata follows it
            # w_read_latency cycles late (bw counts the cycles here)
            m.d.comb += core.w_re.eq(1)
            m.d.sync += bw.eq(bw + 1)
            with m.If(bw >= RWAIT):
                m.d.sync += bw.eq(0)
                m.next = "RW_BYTES"
        with m.State("RW_BYTES"):
            # valid from here on, while wa is held
            lane = bw if wb == 1 else bw[1:]
            wsel = Signal(16)
            with m.Switch(lane):
                for l in range(P):
                    with m.Case(l):
                        m.d.comb += wsel.eq(core.w_rdata[l])
            reply(wsel[:8] if wb == 1 else wsel.word_select(bw[0], 8))
            m.d.sync += bw.eq(bw + 1)
            with m.If(bw == WORD - 1):
                m.d.sync += [wa.eq(wa + 1), nw.eq(nw - 1)]
                with m.If(nw == 1):
                    m.next = "FINISH"
                with m.Else():
                    m.next = "RW_WORD"

        # -- WRITE_W: check every word, then write them -------------------------------------
        with m.State("WW_VAL_RD"):
            m.next = "WW_VAL"
        with m.State("WW_VAL"):
            is_high = Const(1) if wb == 1 else bw[0]
            w_ok = sign_ok(byte, cfg.w_bits - 1 - 8 * (wb - 1))
            bad_now = ((bw == 0) & wa_bad) | (is_high & ~w_ok)
            with m.If(bad_now):
                m.d.sync += err.eq(1)
            m.d.sync += [ra.eq(ra + 1), bw.eq(bw + 1)]
            with m.If(bw == WORD - 1):
                m.d.sync += [bw.eq(0), wa.eq(wa + 1)]
            with m.If(ra == last_a):
                m.d.sync += [ra.eq(5), wa.eq(v[:16]), bw.eq(0)]
                with m.If(bw != WORD - 1):
                    fail(Status.BAD_LENGTH)
                with m.Elif(err | bad_now | (a0 > 1)):
                    fail(Status.BAD_ARG)
                with m.Else():
                    m.next = "WW_RD"
            with m.Else():
                m.next = "WW_VAL_RD"
        with m.State("WW_RD"):
            m.next = "WW"
        with m.State("WW"):
            m.d.sync += [sreg.eq(Cat(sreg[8:], byte) if WORD > 1 else byte),
                         ra.eq(ra + 1), bw.eq(bw + 1)]
            with m.If(bw == WORD - 1):
                m.next = "WW_WE"
            with m.Else():
                m.next = "WW_RD"
        with m.State("WW_WE"):
            m.d.comb += core.w_we.eq(1)
            m.d.sync += [wa.eq(wa + 1), bw.eq(0)]
            with m.If(ra == last_a1):
                m.next = "FINISH"
            with m.Else():
                m.next = "WW_RD"

    def _reply_states(self, c):
        """The stored reply and the byte-serial update of the RAM counters."""
        CB, add_sum, carry, ck_crc_v = c.CB, c.add_sum, c.carry, c.ck_crc_v
        err_st, f_op, f_seq, k, last_crc = c.err_st, c.f_op, c.f_seq, c.k, c.last_crc
        last_seq, last_valid, m, raddr = c.last_seq, c.last_valid, c.m, c.raddr
        release, rep_len, rep_op, rw = c.release, c.rep_len, c.rep_op, c.rw
        send_err, status, ti, tphase = c.send_err, c.status, c.ti, c.tphase
        tx_crc, wp = c.tx_crc, c.wp
        # -- the reply ----------------------------------------------------------------------
        with m.State("FINISH"):
            # only a request that executed replaces the stored one: a rejected request
            # is answered without a payload and leaves the stored reply as it was
            m.d.comb += release.eq(1)
            with m.If(status == Status.OK):
                m.d.sync += [rep_op.eq(f_op), rep_len.eq(wp), last_seq.eq(f_seq),
                             last_crc.eq(ck_crc_v), last_valid.eq(1),
                             k.eq(COUNTER_OFFSETS["frames_ok"])]
            with m.Else():
                m.d.sync += [send_err.eq(1), err_st.eq(status),
                             k.eq(COUNTER_OFFSETS["frames_rejected"])]
            m.next = "ADD_RD"

        # one byte of a counter update: read, add, write back
        with m.State("ADD_RD"):
            m.d.comb += raddr.eq(CB + k)
            m.next = "ADD_W"
        with m.State("ADD_W"):
            m.next = "ADD"
        with m.State("ADD"):
            m.d.comb += [rw.addr.eq(CB + k), rw.data.eq(add_sum[:8]), rw.en.eq(1)]
            m.d.sync += [carry.eq(add_sum[8]), k.eq(k + 1)]
            with m.If(k == COUNTER_OFFSETS["frames_ok"] - 1):
                m.next = "FINISH"           # after PRESENT's totals
            with m.Elif((k == COUNTER_OFFSETS["frames_rejected"] - 1) |
                        (k == _N_RAM_COUNTERS - 1)):
                m.d.sync += [tphase.eq(0), ti.eq(0)]
                m.d.comb += tx_crc.start.eq(1)
                m.next = "TX_SOF"
            with m.Else():
                m.next = "ADD_RD"

    def _tx_states(self, c):
        """The reply, a symbol at a time, to the SLIP encoder."""
        enc_i, err_st, m, raddr, rep_op = c.enc_i, c.err_st, c.m, c.raddr, c.rep_op
        rrq, send_err, slen_last, slen_zero = c.rrq, c.send_err, c.slen_last, c.slen_zero
        t_op, t_seq, tb, tcrc, ti, tphase = c.t_op, c.t_seq, c.tb, c.tcrc, c.ti, c.tphase
        tx_crc = c.tx_crc
        # -- transmitter --------------------------------------------------------------------
        def advance():
            with m.Switch(tphase):
                with m.Case(2):
                    m.d.sync += tphase.eq(Mux(slen_zero, 4, 3))
                with m.Case(3):
                    m.d.sync += ti.eq(ti + 1)
                    with m.If(ti == slen_last):
                        m.d.sync += tphase.eq(4)
                with m.Default():
                    m.d.sync += tphase.eq(tphase + 1)
            with m.If(tphase == 5):
                m.next = "TX_EOF"
            with m.Else():
                m.next = "TX_FETCH"

        with m.State("TX_SOF"):
            m.d.comb += [enc_i.valid.eq(1), enc_i.payload.end.eq(1)]
            with m.If(enc_i.ready):
                m.next = "TX_FETCH"
        with m.State("TX_FETCH"):
            m.d.comb += raddr.eq(ti)
            m.next = "TX_W"
        with m.State("TX_W"):
            m.next = "TX_BYTE0"
        with m.State("TX_BYTE0"):
            tbyte = Signal(8)
            with m.Switch(tphase):
                with m.Case(0):
                    m.d.comb += tbyte.eq(t_seq)
                with m.Case(1):
                    m.d.comb += tbyte.eq(Mux(send_err, t_op, rep_op) | 0x80)
                with m.Case(2):
                    m.d.comb += tbyte.eq(Mux(send_err, err_st, Status.OK))
                with m.Case(3):
                    m.d.comb += tbyte.eq(rrq)
                with m.Case(4):
                    m.d.comb += tbyte.eq(tcrc[:8])
                with m.Default():
                    m.d.comb += tbyte.eq(tcrc[8:])
            m.d.sync += tb.eq(tbyte)
            m.d.comb += tx_crc.data.eq(tbyte)
            with m.If(tphase < 4):
                m.d.comb += tx_crc.en.eq(1)
            m.next = "TX_BYTE"
        with m.State("TX_BYTE"):
            m.d.comb += [enc_i.valid.eq(1), enc_i.payload.data.eq(tb)]
            with m.If(enc_i.ready):
                advance()
        with m.State("TX_EOF"):
            m.d.comb += [enc_i.valid.eq(1), enc_i.payload.end.eq(1)]
            with m.If(enc_i.ready):
                m.next = "IDLE"
