"""The :class:`Core` component: its interface, and the submodules it composes."""

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..encoder import Encoder
from ..mem import WordMemory
from .arith import cmul as _cmul
from .arith import ffs as _ffs
from .dither import Dither
from .feedback import HashedFeedback
from .lanes import NeuronLanes
from .layouts import Mode, cmd_layout, regs_layout, result_layout, trace_layout
from .layouts import nblocks as _nblocks
from .lists import SpikeLists
from .pipeline import OP_DFAU, OP_FIRE, OP_INT, OP_PRE, OP_UPD, BlockPipeline, token_layout
from .projection import ErrorProjection
from .raster import Raster
from .readout import Readout
from .rules import RULES
from .scalar_hash import HASH_LATENCY, ScalarHash
from .synapses import Synapses

#: Largest supported ``weight_latency``.
MAX_WEIGHT_LATENCY = 3

__all__ = ["MAX_WEIGHT_LATENCY", "Core"]



class Core(wiring.Component):
    """The learning core.

    Parameters
    ----------
    cfg : sim.config.Config
        Only the ``arch`` fields are used at elaboration; everything of kind ``reg`` comes
        from the ``regs`` port at run time.
    lanes : int
        Neurons (and weights) processed per cycle, ``P``.
    memory : callable
        Memory factory with the :class:`hdl.mem.WordMemory` signature.
    weight_latency : int
        Read latency ``L`` (1 to 3) the core asks of the two weight memories; a board with
        deep weight memories registers their blocks and multiplexer with ``L = 3``. Every
        other memory has a latency of one cycle. The cycle counts grow with ``L`` (see
        :func:`cycles_per_step`); the results do not change.

    Attributes
    ----------
    regs : In(regs_layout(cfg))
        Runtime registers; hold them stable during a presentation.
    cmd : In(stream.Signature(cmd_layout(cfg)))
        Start one presentation (mode, label). Accepted only when idle.
    x_in : In(stream.Signature(unsigned(in_bits)))
        The ``n_in`` intensities of the next sample (channel 0 first), only when idle.
    result : Out(stream.Signature(result_layout(cfg)))
        Output spike counts and the predicted class; the core stays busy until taken.
    w_layer, w_addr, w_wdata, w_we, w_re : In
        Host weight port (only when idle): word ``i * NB1 + b`` of layer 0 is
        ``W1[i, b*P : b*P+P]``, word ``j * NB2 + b`` of layer 1 is ``W2[j, b*P : b*P+P]``.
    w_rdata : Out
        The word at ``w_addr`` (``w_layer``) of :attr:`w_read_latency` cycles before.
    busy : Out(1)
    sample_counter : Out(32)
        Learning presentations so far (seeds the dither, spec 3).
    counter_we, counter_wdata : In
        Overwrite the sample counter while idle (resuming training from a checkpoint must
        continue the dither sequence where it stopped).
    trace : Out(trace_layout(cfg, lanes))
        End-of-step ``V``, ``U`` and spikes of one block per valid cycle.
    step_done : Out(1)
        Pulses in the last cycle of every timestep (for cycle counting).
    syn_events : Out(range(P + 1))
        Synaptic events (weights read, and in a learning pass updated) this cycle: the
        number of real lanes of an integration read-modify-write, 0 otherwise.
    """

    def __init__(self, cfg, lanes: int = 1, memory=WordMemory, weight_latency: int = 1):
        if not (isinstance(lanes, int) and lanes >= 1):
            raise ValueError(f"lanes must be an integer >= 1, not {lanes!r}")
        if weight_latency not in range(1, MAX_WEIGHT_LATENCY + 1):
            raise ValueError(f"weight_latency must be 1..{MAX_WEIGHT_LATENCY}, not "
                             f"{weight_latency!r}")
        self.cfg = cfg
        self.lanes = P = lanes
        self.weight_latency = weight_latency
        #: Cycles from ``w_addr`` to ``w_rdata`` on the host weight port.
        self.w_read_latency = weight_latency + 1
        self.nb1 = _nblocks(cfg.n_hid, P)
        self.nb2 = _nblocks(cfg.n_out, P)
        self._memory = memory
        wword = data.ArrayLayout(signed(cfg.w_bits), P)
        self.w_words = (cfg.n_in * self.nb1, cfg.n_hid * self.nb2)
        # one block in flight: what every pipeline stage carries
        self._token = token_layout(cfg.n_in, cfg.n_hid, cfg.n_out, cfg.timesteps, P)
        super().__init__({
            "regs": In(regs_layout(cfg)),
            "cmd": In(stream.Signature(cmd_layout(cfg))),
            "x_in": In(stream.Signature(unsigned(cfg.in_bits))),
            "result": Out(stream.Signature(result_layout(cfg))),
            "w_layer": In(1),
            "w_addr": In(range(max(self.w_words))),
            "w_wdata": In(wword),
            "w_we": In(1),
            "w_re": In(1),
            "w_rdata": Out(wword),
            "busy": Out(1),
            "sample_counter": Out(32),
            "counter_we": In(1),
            "counter_wdata": In(32),
            "trace": Out(trace_layout(cfg, P)),
            "step_done": Out(1),
            "syn_events": Out(range(P + 1)),
        })

    # -----------------------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        cfg, P, nb1, nb2, L = self.cfg, self.lanes, self.nb1, self.nb2, self.weight_latency
        T, sb = cfg.timesteps, cfg.state_bits
        n_in, n_hid, n_out = cfg.n_in, cfg.n_hid, cfg.n_out
        regs = self.regs
        mem = self._memory

        # ---- memories and the units around them ------------------------------------------
        m.submodules.syn = syn = Synapses(cfg, lanes=P, nb1=nb1, nb2=nb2, latency=L, memory=mem)
        m.submodules.fbs = fbs = HashedFeedback(lanes=P, n_hid=n_hid, n_out=n_out, memory=mem)
        fb = fbs.read
        m.submodules.raster = raster = Raster(lanes=P, timesteps=T, nb1=nb1, nb2=nb2,
                                              latency=L, memory=mem)
        m.submodules.enc = enc = Encoder(cfg, memory=mem)

        # ---- control registers -----------------------------------------------------------------
        mode = Signal(Mode)
        label = Signal(range(max(n_out, 2)))
        dfa_learn = Signal()          # DFA learning phase (replay)
        t = Signal(range(max(T, 2)))
        g = Signal(32)                # global step (spec 3)
        base = Signal(32)             # sample_counter * T mod 2**32
        counter = Signal(32)
        key1 = Signal(32)
        key2 = Signal(32)
        h0 = Signal(32)
        tacc = Signal(cfg.in_bits)    # target encoder accumulator (phase 0)
        tgt = Signal()                # target spike of the label neuron in this step
        tgt_cnt = Signal(range(T + 1))
        m.submodules.readout = readout = Readout(n_out=n_out, timesteps=T, lanes=P,
                                                 n_blocks=max(nb1, nb2))
        s_out = readout.s_out
        # Spike lists (spec 8: the order of synaptic events does not matter; these keep the
        # lowest index first anyway). Inputs: the channel of every input spike of the step,
        # written as the encoder emits them. Hidden: (block, P-bit mask) of every block with
        # a spike, written by FIRE_H (or replayed from the raster in the DFA learning phase).
        # A list and a counter instead of a whole-layer bit vector and its priority encoder:
        # the cost no longer grows with the layer's width (784 inputs for MNIST).
        m.submodules.lists = lists = SpikeLists(n_in=n_in, nb1=nb1, lanes=P, memory=mem)
        cur_blk = Signal(range(max(nb1, 2)))         # block of the hidden entry being taken
        cur_mask = Signal(P)                         # its spikes not yet taken
        list_reset = lists.reset                     # a new step: empty both lists
        first = Signal()              # t == 0 of a forward pass: V0 = U0 = 0

        erbp = mode == Mode.ERBP
        learn = RULES.learns(mode, dfa_learn)   # weights are rewritten in INT
        m.d.comb += [self.sample_counter.eq(counter)]

        # error registers (eRBP per step; DFA per sample)
        m.submodules.proj = proj = ErrorProjection(n_out=n_out, lanes=P, timesteps=T,
                                                   state_bits=sb, n_blocks=max(nb1, nb2))
        e_in, load_e = proj.e_in, proj.load

        # ---- scalar hash (keys, feedback matrix, per-step dither half) ------------------------
        # Pipelined in HASH_LATENCY register stages (the input, then one adder step each):
        # ``h_q`` is the hash of the ``h_in`` of HASH_LATENCY cycles before, so every user
        # presents its input that many cycles ahead.
        m.submodules.hash = shash = ScalarHash()
        h_in, h_q = shash.i, shash.o
        m.d.comb += h_in.eq(regs.seed)
        # issue side of the feedback-matrix hashes: row ji, bit ki, HASH_LATENCY ahead of FB
        # (past the last row it issues the first step's hash: the matrix may have fewer bits
        # than the hash has stages)
        fb_issue = fbs.issue
        fb_h_in = Mux(fbs.rows_issued, key2 ^ g, fbs.h_in)

        # ---- the block pipeline ------------------------------------------------------------------
        # S0 (the sequencer) issues at most one block a cycle into q[1]; q[1] addresses the
        # weight memories, q[L] every other per-block memory, so that all the data of a block
        # arrives together in stage X, which computes and writes back ns / wk (the
        # read-modify-write loop of wk stays one cycle long whatever L is). The weight write
        # is registered once more (stage W), spike bookkeeping of FIRE happens in stage Y.
        b = Signal(range(max(nb1, nb2, 2) + 1))
        cur = Signal(range(max(n_in, nb1 * P, 2)))
        cur_valid = Signal()
        int_first = Signal()
        rbase_h = Signal(range(T * nb1 + 1))       # t * NB1: raster row of this step
        rbase_o = Signal(range(T * nb2 + 1))
        idle = Signal()

        tok = self._token
        s0 = Signal(tok)                            # what S0 issues in this cycle
        m.submodules.pipe = pipe = BlockPipeline(token=tok, latency=L)
        m.d.comb += pipe.issue.eq(s0)
        q1, qL, xs, drained = pipe.q1, pipe.qL, pipe.x, pipe.drained
        # Not issuing, S0 forwards the host weight port: a host read is the X-stage weight
        # data (wd) L + 1 cycles later.
        m.d.comb += [s0.b.eq(b), s0.first.eq(first), s0.t.eq(t), s0.layer.eq(self.w_layer),
                     s0.waddr.eq(self.w_addr), s0.saddr.eq(Mux(s0.layer, nb1 + b, b))]

        upd_h_issue = Signal()        # an UPD or DFAU block of layer 0 is issued

        def issue(op, layer, waddr=None):
            m.d.comb += [s0.valid.eq(1), s0.op.eq(op), s0.layer.eq(layer)]
            if waddr is not None:
                m.d.comb += s0.waddr.eq(waddr)
            if op in (OP_UPD, OP_DFAU) and layer == 0:
                m.d.comb += upd_h_issue.eq(1)

        # addresses: the weights and rasters from q[1], every other per-block memory from q[L]
        m.d.comb += syn.rd_addr.eq(q1.waddr)
        m.d.comb += [raster.rd_block.eq(q1.b), raster.base_h.eq(rbase_h),
                     raster.base_o.eq(rbase_o)]
        # fb feeds a three-stage projection pipeline that ends in q[L]: it is read in stage
        # L - 3, which for L < 3 is ahead of S0 (the UPD scans visit blocks in consecutive
        # cycles from block 0, so the block 3 - L ahead, or the first ones in the cycles
        # before the scan).
        ahead = 3 - L
        upd_next = proj.sum           # ERR2, DFA_E2: the UPD scan starts next cycle
        if ahead > 0:
            m.d.comb += fb.addr.eq(Mux(upd_h_issue, b + ahead, Mux(upd_next, ahead - 1, 0)))
        else:
            m.d.comb += fb.addr.eq(b)

        m.submodules.lanes = lanes = NeuronLanes(cfg, lanes=P, regs=regs_layout(cfg), memory=mem)
        m.submodules.dither = dither = Dither(lanes=P, n_hid=n_hid)
        phi_start = dither.start
        m.d.comb += [dither.hstep.eq(h_q), dither.advance.eq(lanes.pre_done),
                     dither.last_hid.eq(lanes.pre_last_hid)]
        m.d.comb += [proj.b_row.eq(fb.data), proj.layer.eq(qL.layer), proj.block.eq(qL.b),
                     proj.err_shift_hid.eq(regs.err_shift_hid),
                     proj.err_shift_out.eq(regs.err_shift_out),
                     proj.unshifted.eq(qL.op == OP_DFAU)]
        m.d.comb += [lanes.regs.eq(regs), lanes.replay.eq(dfa_learn), lanes.learn.eq(learn),
                     lanes.qL.eq(qL), lanes.x.eq(xs),
                     lanes.rs_hid_g.eq(raster.hid.g), lanes.rs_out_g.eq(raster.out_g),
                     lanes.dither.eq(dither.x), lanes.proj.eq(proj.proj),
                     lanes.w.eq(syn.rd_data), syn.rd_layer.eq(xs.layer),
                     self.w_rdata.eq(syn.rd_data), self.trace.eq(lanes.trace),
                     self.syn_events.eq(lanes.syn_events)]

        # stage W: the weight write (learning, or the host's port while idle)
        m.d.comb += [syn.d.eq(lanes.d), syn.upd_en.eq(lanes.w_update), syn.upd_layer.eq(xs.layer),
                     syn.upd_addr.eq(xs.waddr), syn.idle.eq(idle), syn.host_we.eq(self.w_we),
                     syn.host_layer.eq(self.w_layer), syn.host_addr.eq(self.w_addr),
                     syn.host_data.eq(self.w_wdata)]

        # DFA learning phase: the hidden spikes of the step are replayed from the raster
        m.d.comb += [raster.replay.eq(dfa_learn), raster.x_pre.eq(lanes.x_pre),
                     raster.x_layer.eq(xs.layer), raster.x_block.eq(xs.b),
                     lists.replay_valid.eq(raster.replay_valid),
                     lists.replay_block.eq(raster.replay_block),
                     lists.replay_mask.eq(raster.replay_mask)]

        # ---- stage Y: what FIRE's spikes change outside the lane datapaths ----------------------
        y = lanes.fire
        m.d.comb += [readout.spk_valid.eq(y.valid & y.layer), readout.spk_block.eq(y.block),
                     readout.spk.eq(y.s)]
        # blocks arrive in order: a block with spikes is appended to the hidden list
        m.d.comb += [lists.fire_valid.eq(y.valid & ~y.layer & y.s.any()),
                     lists.fire_block.eq(y.block), lists.fire_mask.eq(y.s)]
        # DFA forward phase: record hidden spikes and both layers' gates
        m.d.comb += [raster.wr_en.eq(y.valid & ~dfa_learn & RULES.has_replay(mode)),
                     raster.wr_layer.eq(y.layer), raster.wr_block.eq(y.block),
                     raster.wr_s.eq(y.s), raster.wr_g.eq(y.g)]

        # ---- host ports -------------------------------------------------------------------------
        m.d.comb += [enc.x_in.payload.eq(self.x_in.payload),
                     enc.x_in.valid.eq(self.x_in.valid & idle),
                     self.x_in.ready.eq(enc.x_in.ready & idle)]

        # encoder spikes: the core always accepts them (channel 0 first); spikes are listed,
        # a cycle later (registered: the encoder's RAM and adder are a path of their own);
        # enc_busy covers that cycle
        m.d.comb += enc.spikes.ready.eq(1)
        enc_busy_q = Signal()
        m.d.sync += enc_busy_q.eq(enc.busy)
        enc_busy = enc.busy | enc_busy_q
        m.d.comb += [lists.enc_valid.eq(enc.spikes.valid & enc.spikes.payload.spike),
                     lists.enc_chan.eq(enc.spikes.payload.chan)]

        m.d.comb += [self.result.payload.pred.eq(readout.pred),
                     self.result.payload.counts.eq(readout.counts)]

        # ---- integrate pass (INT_H / INT_O) ------------------------------------------------------
        # The lists are read ahead: the read port shows entry lst_rp (its address is
        # lst_rp, or lst_rp + 1 in the cycle entry lst_rp is taken), so the next spike is
        # ready whenever the current one's last block is issued. lst_rp is 0 in the cycle
        # before an integrate pass (the states before it set int_first).
        take = lists.take
        lst_restart = lists.restart   # the next cycle starts an integrate pass: entry 0

        def integrate(layer, nb, next_state):
            """One read-modify-write per (presynaptic spike, block); the spikes come from the
            layer's list in order (a hidden entry's mask lowest lane first)."""
            with m.If(int_first | (cur_valid & (b == nb - 1))):
                m.d.sync += [b.eq(0), int_first.eq(0)]
                rest = Signal(P, name=f"rest{layer}")
                m.d.comb += rest.eq(Mux(int_first, 0, cur_mask))
                if layer == 0:
                    with m.If(lists.in_avail):
                        m.d.comb += take.eq(1)
                        m.d.sync += [cur.eq(lists.in_entry), cur_valid.eq(1)]
                    with m.Else():
                        m.d.sync += cur_valid.eq(0)
                else:
                    ent = lists.hid_entry
                    with m.If(rest.any()):
                        # the next spike of the entry being taken
                        pos = _ffs(rest)
                        m.d.sync += [cur.eq(_cmul(cur_blk, P) + pos), cur_valid.eq(1),
                                     cur_mask.eq(rest & ~(Const(1, P) << pos)[:P])]
                    with m.Elif(lists.hid_avail):
                        pos = _ffs(ent.mask)
                        m.d.comb += take.eq(1)
                        m.d.sync += [cur.eq(_cmul(ent.block, P) + pos), cur_valid.eq(1),
                                     cur_blk.eq(ent.block),
                                     cur_mask.eq(ent.mask & ~(Const(1, P) << pos)[:P])]
                    with m.Else():
                        m.d.sync += cur_valid.eq(0)
            with m.If(cur_valid):
                issue(OP_INT, layer, _cmul(cur, nb) + b)
                with m.If(b != nb - 1):
                    m.d.sync += b.eq(b + 1)
            with m.If(~int_first & ~cur_valid):
                m.d.sync += [b.eq(0)]
                m.next = next_state

        def scan(op, layer, nb, next_state, extra=None):
            with m.If(b < nb):
                issue(op, layer)
                m.d.sync += b.eq(b + 1)
            with m.Else():
                cond = Const(1) if extra is None else extra
                with m.If(cond):
                    m.d.sync += b.eq(0)
                    m.next = next_state

        # What the hash is given during a step: the next step's hstep (g is the next step's
        # by then; after the forward phase of DFA, the first learning step's, g = base). A step
        # is longer than HASH_LATENCY cycles, so the next STEP always finds its hash ready.
        def next_step_hash(learning=False):
            if learning:
                m.d.comb += h_in.eq(key2 ^ g)
            else:
                m.d.comb += h_in.eq(key2 ^ Mux((t == T - 1) & (mode == Mode.DFA), base, g))

        # ---- sequencer -------------------------------------------------------------------------
        kc = Signal(range(max(3 * HASH_LATENCY, MAX_WEIGHT_LATENCY + 1)))
        kk = Signal(range(max(n_out, 2)))
        m.d.comb += [fbs.key.eq(key1), fbs.h_q.eq(h_q), fbs.k.eq(kk)]
        H = HASH_LATENCY

        with m.FSM(name="seq") as fsm:
            with m.State("IDLE"):
                m.d.comb += [idle.eq(1), self.cmd.ready.eq(1)]
                with m.If(self.counter_we):
                    # base = counter * T mod 2**32; T is a constant, so this is a few adders
                    m.d.sync += [counter.eq(self.counter_wdata),
                                 base.eq(_cmul(self.counter_wdata, T)[:32])]
                with m.If(self.cmd.valid):
                    # (the hash's input is the seed here: KEYS starts from hash32(seed))
                    m.d.comb += fbs.start.eq(1)
                    m.d.sync += [mode.eq(self.cmd.payload.mode), label.eq(self.cmd.payload.label),
                                 t.eq(0), g.eq(base), tacc.eq(0), tgt_cnt.eq(0), first.eq(1),
                                 dfa_learn.eq(0), b.eq(0), kc.eq(0), kk.eq(0), rbase_h.eq(0), rbase_o.eq(0)]
                    m.d.comb += readout.clear.eq(1)
                    with m.If(self.cmd.payload.mode == Mode.INFER):
                        m.next = "STEP"
                    with m.Else():
                        m.next = "KEYS"

            with m.State("KEYS"):
                # key(domain) = hash32(hash32(seed) ^ domain): hash32(seed) was issued with the
                # command, key1 and key2 are issued when it appears; then the feedback-matrix
                # hashes are issued from the cycle key1 appears (row 0 takes it at once), H
                # cycles ahead of FB (3H - 1 cycles)
                m.d.sync += kc.eq(kc + 1)
                with m.If(kc == H - 1):
                    m.d.comb += h_in.eq(h_q ^ 1)
                    m.d.sync += h0.eq(h_q)
                with m.If(kc == H):
                    m.d.comb += h_in.eq(h0 ^ 2)
                with m.If(kc == 2 * H - 1):
                    m.d.comb += [h_in.eq(h_q), fb_issue.eq(1)]
                    m.d.sync += key1.eq(h_q)
                with m.If(kc >= 2 * H):
                    m.d.comb += [h_in.eq(fb_h_in), fb_issue.eq(1)]
                with m.If(kc == 2 * H):
                    m.d.sync += key2.eq(h_q)
                with m.If(kc == 3 * H - 2):
                    m.next = "FB"

            with m.State("FB"):
                # B[j, k] = bit (k mod 32) of hash32(key1 ^ j ^ ((k >> 5) << 16)): one bit a
                # cycle, shifted into the P-row word of the feedback RAM; issued H bits ahead,
                # the last H issues are the first step's hash
                m.d.comb += [fb_issue.eq(1), h_in.eq(fb_h_in)]
                m.d.comb += fbs.fill.eq(1)
                m.d.sync += kk.eq(kk + 1)
                with m.If(kk == n_out - 1):
                    m.d.sync += kk.eq(0)
                with m.If(fbs.done):
                    m.next = "STEP"

            with m.State("STEP"):
                m.d.comb += [enc.start.eq(1), enc.first.eq(t == 0), phi_start.eq(1),
                             list_reset.eq(1)]
                tsum = tacc + regs.target_rate
                m.d.sync += [tacc.eq(tsum[:cfg.in_bits]), tgt.eq(tsum[cfg.in_bits])]
                with m.If(tsum[cfg.in_bits]):
                    m.d.sync += tgt_cnt.eq(tgt_cnt + 1)
                # hstep is taken (phi_start): g becomes the next step's
                m.d.sync += g.eq(g + 1)
                m.next = "PRE_H"

            with m.State("PRE_H"):
                next_step_hash()
                scan(OP_PRE, 0, nb1, "PRE_O")
            with m.State("PRE_O"):
                next_step_hash()
                m.d.sync += int_first.eq(1)
                m.d.comb += lst_restart.eq(1)
                scan(OP_PRE, 1, nb2, "INT_H", extra=~enc_busy)

            with m.State("INT_H"):
                next_step_hash()
                integrate(0, nb1, "FIRE_H")
            with m.State("FIRE_H"):
                next_step_hash()
                m.d.sync += int_first.eq(1)
                m.d.comb += lst_restart.eq(1)
                # INT_O takes the hidden list: wait until the last block is in stage Y
                scan(OP_FIRE, 0, nb1, "INT_O", extra=drained)
            with m.State("INT_O"):
                next_step_hash()
                integrate(1, nb2, "FIRE_O")
            with m.State("FIRE_O"):
                next_step_hash()
                # ERR takes the output spikes
                scan(OP_FIRE, 1, nb2, "ERR", extra=drained)

            with m.State("ERR"):
                next_step_hash()
                # e[k] = tgt[k] - s_out[k] (eRBP only; 0 leaves U at 0 otherwise)
                m.d.comb += load_e.eq(1)
                for k in range(n_out):
                    m.d.comb += e_in[k].eq(Mux(erbp, (tgt & (label == k)) - s_out[k], 0))
                m.next = "ERR2"
            with m.State("ERR2"):
                # the projection's first stage takes the errors loaded in ERR
                next_step_hash()
                m.d.comb += upd_next.eq(1)
                m.next = "UPD_H"

            with m.State("UPD_H"):
                next_step_hash()
                scan(OP_UPD, 0, nb1, "UPD_O")
            with m.State("UPD_O"):
                next_step_hash()
                with m.If(b == nb2):
                    m.d.comb += self.step_done.eq(1)
                    m.d.sync += [t.eq(t + 1), first.eq(0), b.eq(0),
                                 rbase_h.eq(rbase_h + nb1), rbase_o.eq(rbase_o + nb2)]
                    with m.If(t == T - 1):
                        m.d.sync += kc.eq(0)
                        m.next = "END"
                    with m.Else():
                        m.next = "STEP"
                with m.Else():
                    issue(OP_UPD, 1)
                    m.d.sync += b.eq(b + 1)

            with m.State("END"):
                # L cycles: every block issued before is then past stage X (and every weight
                # write past stage W by the time ARG is done), whatever the last pass was
                m.d.comb += h_in.eq(key2 ^ base)       # DFA_E is next, or nothing
                m.d.sync += kc.eq(kc + 1)
                with m.If(kc == L - 1):
                    with m.If((mode == Mode.DFA) & ~dfa_learn):
                        m.d.sync += kk.eq(0)
                        m.next = "DFA_E"
                    with m.Else():
                        m.d.sync += kk.eq(0)
                        m.next = "ARG"

            with m.State("ARG"):
                # the prediction: the lowest index of the largest count, one count a cycle
                m.d.comb += [readout.arg.eq(1), readout.k.eq(kk)]
                m.d.sync += kk.eq(kk + 1)
                with m.If(kk == n_out - 1):
                    m.next = "DONE"

            with m.State("DONE"):
                m.d.comb += self.result.valid.eq(1)
                with m.If(self.result.ready):
                    with m.If(mode != Mode.INFER):
                        m.d.sync += [counter.eq(counter + 1), base.eq(base + T)]
                    m.next = "IDLE"

            # ---- DFA: error from the counts, then the learning phase replays the raster ----
            with m.State("DFA_E"):
                # E[k] = target count - output count (spec 6.3), one k a cycle (once per
                # presentation: one subtractor instead of n_out)
                m.d.comb += h_in.eq(key2 ^ base)
                m.d.comb += [readout.k.eq(kk), proj.set.eq(1), proj.set_k.eq(kk),
                             proj.set_value.eq(Mux(label == kk, tgt_cnt, 0) - readout.count)]
                m.d.sync += kk.eq(kk + 1)
                with m.If(kk == n_out - 1):
                    m.d.sync += [kk.eq(0), t.eq(0), g.eq(base), dfa_learn.eq(1),
                                 rbase_h.eq(0), rbase_o.eq(0)]
                    m.next = "DFA_E2"
            with m.State("DFA_E2"):
                m.d.comb += [h_in.eq(key2 ^ g), upd_next.eq(1)]
                m.next = "DFA_UH"
            with m.State("DFA_UH"):
                m.d.comb += h_in.eq(key2 ^ g)
                scan(OP_DFAU, 0, nb1, "DFA_UO")
            with m.State("DFA_UO"):
                m.d.comb += h_in.eq(key2 ^ g)
                scan(OP_DFAU, 1, nb2, "L_STEP")
            with m.State("L_STEP"):
                m.d.comb += [enc.start.eq(1), enc.first.eq(t == 0), phi_start.eq(1),
                             list_reset.eq(1)]
                m.d.sync += g.eq(g + 1)
                m.next = "L_PRE_H"
            with m.State("L_PRE_H"):
                next_step_hash(learning=True)
                scan(OP_PRE, 0, nb1, "L_PRE_O")
            with m.State("L_PRE_O"):
                next_step_hash(learning=True)
                m.d.sync += int_first.eq(1)
                m.d.comb += lst_restart.eq(1)
                scan(OP_PRE, 1, nb2, "L_INT_H", extra=~enc_busy)
            with m.State("L_INT_H"):
                # L_INT_O takes the list the L_PRE_H blocks replay in stage X: with L <= 3
                # they are there before L_INT_O's first cycle (L_PRE_O and this state take
                # at least three cycles)
                next_step_hash(learning=True)
                with m.If(~int_first & ~cur_valid):
                    m.d.sync += int_first.eq(1)
                    m.d.comb += lst_restart.eq(1)
                integrate(0, nb1, "L_INT_O")
            with m.State("L_INT_O"):
                next_step_hash(learning=True)
                integrate(1, nb2, "L_NEXT")
            with m.State("L_NEXT"):
                next_step_hash(learning=True)
                m.d.sync += [t.eq(t + 1), rbase_h.eq(rbase_h + nb1),
                             rbase_o.eq(rbase_o + nb2), b.eq(0), kc.eq(0)]
                with m.If(t == T - 1):
                    m.next = "END"
                with m.Else():
                    m.next = "L_STEP"

        # one-hot on the boards (Yosys re-encodes it; the reset sets it, the init value is
        # ignored): shallower next-state logic for the sequencer's thirty states
        fsm.state.attrs["fsm_encoding"] = "one-hot"
        m.d.comb += self.busy.eq(~idle)
        return m


