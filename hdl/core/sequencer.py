"""The sequencer: stage S0 of the block pipeline, the state machine of a presentation.

It issues at most one block a cycle (the token of :mod:`hdl.core.pipeline`) and drives the
scalar hash, the feedback source's fill, the spike lists' read pointer, the error registers
and the readout's scan; it holds the presentation's control registers (mode, label, step,
global step ``g``, keys, the target encoder, the sample counter). It waits for the pipeline
only where it needs its results: ``INT_O`` takes the hidden list and ``ERR`` the output
spikes once the last ``FIRE`` block is in Y (``drained``), and after the last step ``END``
waits ``L`` cycles. The phases a learning rule needs follow from :data:`hdl.core.rules.RULES`.

The per-layer states are generated from the layer list (:mod:`spec.layers`), named by the
layer's suffix (``PRE_H``, ``PRE_O``, ``INT_H``, ...); what differs between the layers
follows from their position in the list: the last ``PRE`` waits for the encoder and
restarts the lists, a ``FIRE`` followed by another layer's ``INT`` waits for ``drained``
and restarts the lists, the last ``FIRE`` waits for ``drained`` before ``ERR``, the last
``UPD`` ends the step; the first layer integrates the input spike list, a later one the
hidden spike list. The datapath holds two layers (the token's ``layer`` is one bit, one
hidden spike list), so the sequencer accepts only that list (:func:`check_layers`).
"""

from types import SimpleNamespace

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from spec.cycles import MAX_WEIGHT_LATENCY
from spec.layers import INPUT, PREVIOUS, Layer, chain

from .arith import cmul, ffs
from .layouts import Mode, nblocks
from .lists import hidden_entry
from .pipeline import OP_DFAU, OP_FIRE, OP_INT, OP_PRE, OP_UPD, token_layout
from .projection import error_width
from .rules import RULES
from .scalar_hash import HASH_LATENCY
from .signature import ParamSignature, check_int

__all__ = ["MAX_WEIGHT_LATENCY", "Sequencer", "check_layers"]


def check_layers(layers, n_in, n_hid, n_out):
    """The layer list as a tuple if the sequencer can drive it, else ValueError: the
    datapath's two layers, input -> hidden -> output (``n_in -> n_hid -> n_out``), the first
    fed by the input spike list, the second by the hidden spike list."""
    layers = tuple(layers)
    if not all(isinstance(layer, Layer) for layer in layers):
        raise TypeError(f"layers must be spec.layers.Layer objects, not {layers!r}")
    if len(layers) != 2:
        raise ValueError(f"the sequencer drives two layers (input -> hidden -> output: the "
                         f"datapath's layer number is one bit), not {len(layers)}")
    sizes = (n_in, n_hid, n_out)
    for i, layer in enumerate(layers):
        want = (i, sizes[i], sizes[i + 1], INPUT if i == 0 else PREVIOUS)
        got = (layer.index, layer.n_pre, layer.n_post, layer.source)
        if got != want:
            raise ValueError(f"layer {i} ({layer.name}) must have (index, n_pre, n_post, "
                             f"source) = {want}, not {got}")
    if layers[0].name == layers[1].name:
        raise ValueError(f"the layers' names are their states' suffixes: they must be "
                         f"distinct, not {layers[0].name!r} twice")
    return layers


class Sequencer(wiring.Component):
    """The presentation's state machine (27 states; see :mod:`hdl.core`).

    Parameters
    ----------
    n_in, n_hid, n_out, timesteps, in_bits, lanes : int
        The architecture (``cfg``) and ``P``.
    latency : int
        The weight memories' read latency ``L``.
    layers : tuple of spec.layers.Layer, optional
        The layer list the per-layer states are generated from (default: the chain
        ``n_in -> n_hid -> n_out``, ``spec.layers.chain``); :func:`check_layers` says which
        lists the datapath can drive (ValueError otherwise).

    Members
    -------
    seed, target_rate : In
        Runtime registers the sequencer uses.
    cmd : In(stream.Signature(cmd layout))
        Start a presentation (accepted in IDLE).
    result_valid : Out(1); result_ready : In(1)
        The result handshake (DONE).
    counter_we, counter_wdata : In; sample_counter : Out(32)
        The sample counter (learning presentations so far).
    w_layer, w_addr : In
        The host's weight port: what S0 forwards while not issuing.
    issue : Out(token)
        S0: the block issued this cycle.
    drained : In(1)
        No block before stage Y.
    enc_start, enc_first : Out(1); enc_busy : In(1)
        Start the encoder's scan of a step.
    in_avail, in_entry, hid_avail, hid_entry : In; list_reset, list_restart, list_take : Out
        The spike lists.
    h_in : Out(32); h_q : In(32)
        The scalar hash.
    fb_start, fb_issue, fb_fill, key1, k, fb_addr : Out; fb_h_in, fb_rows_issued, fb_done : In
        The feedback source (its fill; its read address, ahead of the projection). ``k``
        also selects the readout's count; ``k_next : Out`` is the value ``k`` takes in the
        next cycle (the readout registers that count).
    phi_start : Out(1)
        The dither takes ``hstep = h_q`` (the step begins).
    e_load, e_in, e_set, e_set_k, e_set_value, e_sum : Out
        The error registers (per step, per sample, their sum before a ``UPD`` scan).
    count : In; count_clear, arg : Out
        The readout (``k`` selects ``count`` and is the ARG scan's index).
    s_out : In
        The output spikes of the step (ERR).
    mode, replay, learn : Out
        The presentation's mode, the DFA learning phase, weights rewritten by INT.
    base_h, base_o : Out
        The rasters' rows of the step.
    busy, step_done : Out(1)
    """

    class Signature(ParamSignature):
        def __init__(self, *, n_in, n_hid, n_out, timesteps, in_bits, lanes):
            for name, v in (("n_in", n_in), ("n_hid", n_hid), ("n_out", n_out),
                            ("timesteps", timesteps), ("in_bits", in_bits), ("lanes", lanes)):
                check_int(name, v, 1)
            P, T = lanes, timesteps
            nb1, nb2 = nblocks(n_hid, P), nblocks(n_out, P)
            ew = error_width(T)
            words = max(n_in * nb1, n_hid * nb2)
            kr = range(max(n_out, 2))
            cmd = data.StructLayout({"mode": Mode, "label": kr})
            super().__init__({
                "seed": In(32), "target_rate": In(in_bits),
                "cmd": In(stream.Signature(cmd)),
                "result_valid": Out(1), "result_ready": In(1),
                "counter_we": In(1), "counter_wdata": In(32), "sample_counter": Out(32),
                "w_layer": In(1), "w_addr": In(range(words)),
                "issue": Out(token_layout(n_in, n_hid, n_out, T, P)), "drained": In(1),
                "enc_start": Out(1), "enc_first": Out(1), "enc_busy": In(1),
                "in_avail": In(1), "in_entry": In(unsigned(max(n_in, 2).bit_length())),
                "hid_avail": In(1), "hid_entry": In(hidden_entry(nb1, P)),
                "list_reset": Out(1), "list_restart": Out(1), "list_take": Out(1),
                "h_in": Out(32), "h_q": In(32),
                "fb_start": Out(1), "fb_issue": Out(1), "fb_fill": Out(1), "key1": Out(32),
                "k": Out(kr), "k_next": Out(kr), "fb_addr": Out(range(max(nb1, 1))),
                "fb_h_in": In(32), "fb_rows_issued": In(1), "fb_done": In(1),
                "phi_start": Out(1),
                "e_load": Out(1), "e_in": Out(data.ArrayLayout(signed(ew), n_out)),
                "e_set": Out(1), "e_set_k": Out(kr), "e_set_value": Out(signed(ew)),
                "e_sum": Out(1),
                "count": In(range(T + 1)), "count_clear": Out(1), "arg": Out(1),
                "s_out": In(nb2 * P),
                "mode": Out(Mode), "replay": Out(1), "learn": Out(1),
                "base_h": Out(range(T * nb1 + 1)), "base_o": Out(range(T * nb2 + 1)),
                "busy": Out(1), "step_done": Out(1),
            }, n_in=n_in, n_hid=n_hid, n_out=n_out, timesteps=timesteps, in_bits=in_bits,
                lanes=lanes)

    def __init__(self, *, n_in, n_hid, n_out, timesteps, in_bits, lanes, latency, layers=None):
        check_int("latency", latency, 1)
        self.latency = latency
        super().__init__(self.Signature(n_in=n_in, n_hid=n_hid, n_out=n_out,
                                        timesteps=timesteps, in_bits=in_bits, lanes=lanes))
        if layers is None:
            layers = chain((n_in, n_hid, n_out))
        #: The layers, in order (:mod:`spec.layers`).
        self.layers = check_layers(layers, n_in, n_hid, n_out)
        # blocks of each layer (NB1, NB2), by layer index
        self._nb = tuple(layer.blocks(lanes) for layer in self.layers)

    def elaborate(self, platform):
        m = Module()
        r = self._registers(m)
        with m.FSM(name="seq") as fsm:
            self._setup_states(m, r)
            self._step_states(m, r)
            self._end_states(m, r)
            self._replay_states(m, r)
        # one-hot on the boards (Yosys re-encodes it; the reset sets it, the init value is
        # ignored): shallower next-state logic for the sequencer's 27 states
        fsm.state.attrs["fsm_encoding"] = "one-hot"
        return m

    def _registers(self, m):
        """The control registers (and the defaults of what the states drive)."""
        sig = self.signature
        P, T, n_in, n_out, L = sig.lanes, sig.timesteps, sig.n_in, sig.n_out, self.latency
        nb1, nb2 = self._nb            # the datapath's two layers (check_layers)
        self._consts = {"P": P, "T": T, "n_out": n_out, "L": L, "H": HASH_LATENCY,
                        "in_bits": sig.in_bits}
        r = SimpleNamespace(
            mode=Signal(Mode), label=Signal(range(max(n_out, 2))),
            dfa_learn=Signal(),                     # DFA learning phase (replay)
            t=Signal(range(max(T, 2))),
            g=Signal(32),                           # global step (spec 3)
            base=Signal(32),                        # sample_counter * T mod 2**32
            counter=Signal(32), key1=Signal(32), key2=Signal(32), h0=Signal(32),
            tacc=Signal(sig.in_bits),               # target encoder accumulator (phase 0)
            tgt=Signal(),                           # the label neuron's target spike
            tgt_cnt=Signal(range(T + 1)),
            first=Signal(),                         # t == 0 of a forward pass: V0 = U0 = 0
            b=Signal(range(max(nb1, nb2, 2) + 1)),  # the block to issue
            cur=Signal(range(max(n_in, nb1 * P, 2))),   # the presynaptic neuron integrated
            cur_valid=Signal(), int_first=Signal(),
            cur_blk=Signal(range(max(nb1, 2))),     # block of the hidden entry being taken
            cur_mask=Signal(P),                     # its spikes not yet taken
            # per layer: t * NB of the layer, its raster row of this step
            rbase=[Signal(range(T * nb + 1)) for nb in self._nb],
            idle=Signal(), upd_h_issue=Signal(),    # an UPD or DFAU block of layer 0 issued
            kc=Signal(range(max(3 * HASH_LATENCY, MAX_WEIGHT_LATENCY + 1))),
            kk=Signal(range(max(n_out, 2))),
            kk_next=Signal(range(max(n_out, 2))),   # kk's next value (the states set it)
            enc_busy_q=Signal(),
        )
        r.s0, r.h_in, r.h_q = self.issue, self.h_in, self.h_q
        # kk is set through kk_next, so the readout can register the count of kk's next value
        m.d.comb += r.kk_next.eq(r.kk)
        m.d.sync += r.kk.eq(r.kk_next)
        r.take, r.lst_restart, r.list_reset = self.list_take, self.list_restart, self.list_reset
        r.fb_issue, r.phi_start, r.drained = self.fb_issue, self.phi_start, self.drained
        r.load_e, r.e_in, r.upd_next, r.s_out = self.e_load, self.e_in, self.e_sum, self.s_out
        r.fb_h_in = Mux(self.fb_rows_issued, r.key2 ^ r.g, self.fb_h_in)
        # encoder spikes are listed a cycle late: enc_busy covers that cycle
        m.d.sync += r.enc_busy_q.eq(self.enc_busy)
        r.enc_busy = self.enc_busy | r.enc_busy_q
        # (the hash's input is the seed unless a state says otherwise: KEYS starts from
        # hash32(seed), issued with the command)
        m.d.comb += self.h_in.eq(self.seed)
        # Not issuing, S0 forwards the host weight port: a host read is the X-stage weight
        # data L + 1 cycles later.
        s0, b = r.s0, r.b
        m.d.comb += [s0.b.eq(b), s0.first.eq(r.first), s0.t.eq(r.t), s0.layer.eq(self.w_layer),
                     s0.waddr.eq(self.w_addr), s0.saddr.eq(Mux(s0.layer, nb1 + b, b))]
        # The feedback rows feed a three-stage projection pipeline that ends in q[L]: they
        # are read in stage L - 3, which for L < 3 is ahead of S0 (the UPD scans visit blocks
        # in consecutive cycles from block 0, so the block 3 - L ahead, or the first ones in
        # the cycles before the scan).
        ahead = 3 - L
        if ahead > 0:
            m.d.comb += self.fb_addr.eq(Mux(r.upd_h_issue, b + ahead,
                                            Mux(r.upd_next, ahead - 1, 0)))
        else:
            m.d.comb += self.fb_addr.eq(b)
        m.d.comb += [self.sample_counter.eq(r.counter), self.busy.eq(~r.idle),
                     self.mode.eq(r.mode), self.replay.eq(r.dfa_learn),
                     self.learn.eq(RULES.learns(r.mode, r.dfa_learn)),
                     self.key1.eq(r.key1), self.k.eq(r.kk), self.k_next.eq(r.kk_next),
                     self.base_h.eq(r.rbase[0]), self.base_o.eq(r.rbase[1])]
        return r

    def _const(self, names):
        return [self._consts[n] for n in names.split()]

    def _with_next(self):
        """``(layer, next layer)`` for every layer in order; the last one's next is None."""
        return zip(self.layers, self.layers[1:] + (None,))

    def _next_rows(self, r):
        """Every layer's raster row base moves on to the next step."""
        return [rb.eq(rb + nb) for rb, nb in zip(r.rbase, self._nb)]

    def _restart_lists(self, m, r):
        """The next ``INT`` starts from the head of the spike lists."""
        m.d.sync += r.int_first.eq(1)
        m.d.comb += r.lst_restart.eq(1)

    def _issue(self, m, r, op, layer, waddr=None):
        """S0 issues a block of ``layer`` (a :class:`spec.layers.Layer`) for ``op``."""
        m.d.comb += [r.s0.valid.eq(1), r.s0.op.eq(op), r.s0.layer.eq(layer.index)]
        if waddr is not None:
            m.d.comb += r.s0.waddr.eq(waddr)
        if op in (OP_UPD, OP_DFAU) and layer.index == 0:
            m.d.comb += r.upd_h_issue.eq(1)

    def _integrate(self, m, r, layer, next_state):
        """One read-modify-write per (presynaptic spike, block) of ``layer``; the spikes come
        from its source's list in order: the input spike list for the first layer, the
        hidden spike list for a later one (an entry's mask lowest lane first)."""
        P, nb = self._consts["P"], self._nb[layer.index]
        with m.If(r.int_first | (r.cur_valid & (r.b == nb - 1))):
            m.d.sync += [r.b.eq(0), r.int_first.eq(0)]
            rest = Signal(P, name=f"rest{layer.index}")
            m.d.comb += rest.eq(Mux(r.int_first, 0, r.cur_mask))
            if layer.source == INPUT:
                self._take_input(m, r)
            else:
                self._take_hidden(m, r, rest)
        with m.If(r.cur_valid):
            self._issue(m, r, OP_INT, layer, cmul(r.cur, nb) + r.b)
            with m.If(r.b != nb - 1):
                m.d.sync += r.b.eq(r.b + 1)
        with m.If(~r.int_first & ~r.cur_valid):
            m.d.sync += [r.b.eq(0)]
            m.next = next_state

    def _take_input(self, m, r):
        """The next presynaptic spike is the input spike list's next channel, if any."""
        with m.If(self.in_avail):
            m.d.comb += r.take.eq(1)
            m.d.sync += [r.cur.eq(self.in_entry), r.cur_valid.eq(1)]
        with m.Else():
            m.d.sync += r.cur_valid.eq(0)

    def _take_hidden(self, m, r, rest):
        """The next presynaptic spike is the next of the hidden entry being taken (``rest``:
        its spikes not yet taken), else the first of the hidden list's next entry, if any."""
        P, ent = self._consts["P"], self.hid_entry
        with m.If(rest.any()):
            # the next spike of the entry being taken
            pos = ffs(rest)
            m.d.sync += [r.cur.eq(cmul(r.cur_blk, P) + pos), r.cur_valid.eq(1),
                         r.cur_mask.eq(rest & ~(Const(1, P) << pos)[:P])]
        with m.Elif(self.hid_avail):
            pos = ffs(ent.mask)
            m.d.comb += r.take.eq(1)
            m.d.sync += [r.cur.eq(cmul(ent.block, P) + pos), r.cur_valid.eq(1),
                         r.cur_blk.eq(ent.block),
                         r.cur_mask.eq(ent.mask & ~(Const(1, P) << pos)[:P])]
        with m.Else():
            m.d.sync += r.cur_valid.eq(0)

    def _scan(self, m, r, op, layer, next_state, extra=None):
        """Issue ``op`` for every block of ``layer`` in turn, then (once ``extra`` holds) go
        to ``next_state``."""
        nb = self._nb[layer.index]
        with m.If(r.b < nb):
            self._issue(m, r, op, layer)
            m.d.sync += r.b.eq(r.b + 1)
        with m.Else():
            cond = Const(1) if extra is None else extra
            with m.If(cond):
                m.d.sync += r.b.eq(0)
                m.next = next_state

    # What the hash is given during a step: the next step's hstep (g is the next step's
    # by then; after the forward phase of DFA, the first learning step's, g = base). A step
    # is longer than HASH_LATENCY cycles, so the next STEP always finds its hash ready.
    def _next_step_hash(self, m, r, learning=False):
        T = self._consts["T"]
        if learning:
            m.d.comb += r.h_in.eq(r.key2 ^ r.g)
        else:
            last = (r.t == T - 1) & RULES.has_replay(r.mode)
            m.d.comb += r.h_in.eq(r.key2 ^ Mux(last, r.base, r.g))

    def _setup_states(self, m, r):
        """IDLE, and the keys and the feedback matrix of a learning presentation."""
        T, n_out, H = self._const("T n_out H")
        with m.State("IDLE"):
            m.d.comb += [r.idle.eq(1), self.cmd.ready.eq(1)]
            with m.If(self.counter_we):
                # base = counter * T mod 2**32; T is a constant, so this is a few adders
                m.d.sync += [r.counter.eq(self.counter_wdata),
                             r.base.eq(cmul(self.counter_wdata, T)[:32])]
            with m.If(self.cmd.valid):
                # (the hash's input is the seed here: KEYS starts from hash32(seed))
                m.d.comb += self.fb_start.eq(1)
                m.d.sync += [r.mode.eq(self.cmd.payload.mode), r.label.eq(self.cmd.payload.label),
                             r.t.eq(0), r.g.eq(r.base), r.tacc.eq(0), r.tgt_cnt.eq(0),
                             r.first.eq(1), r.dfa_learn.eq(0), r.b.eq(0), r.kc.eq(0),
                             *[rb.eq(0) for rb in r.rbase]]
                m.d.comb += r.kk_next.eq(0)
                m.d.comb += self.count_clear.eq(1)
                with m.If(self.cmd.payload.mode == Mode.INFER):
                    m.next = "STEP"
                with m.Else():
                    m.next = "KEYS"

        with m.State("KEYS"):
            # key(domain) = hash32(hash32(seed) ^ domain): hash32(seed) was issued with the
            # command, key1 and key2 are issued when it appears; then the feedback-matrix
            # hashes are issued from the cycle key1 appears (row 0 takes it at once), H
            # cycles ahead of FB (3H - 1 cycles)
            m.d.sync += r.kc.eq(r.kc + 1)
            with m.If(r.kc == H - 1):
                m.d.comb += r.h_in.eq(r.h_q ^ 1)
                m.d.sync += r.h0.eq(r.h_q)
            with m.If(r.kc == H):
                m.d.comb += r.h_in.eq(r.h0 ^ 2)
            with m.If(r.kc == 2 * H - 1):
                m.d.comb += [r.h_in.eq(r.h_q), r.fb_issue.eq(1)]
                m.d.sync += r.key1.eq(r.h_q)
            with m.If(r.kc >= 2 * H):
                m.d.comb += [r.h_in.eq(r.fb_h_in), r.fb_issue.eq(1)]
            with m.If(r.kc == 2 * H):
                m.d.sync += r.key2.eq(r.h_q)
            with m.If(r.kc == 3 * H - 2):
                m.next = "FB"

        with m.State("FB"):
            # B[j, k] = bit (k mod 32) of hash32(key1 ^ j ^ ((k >> 5) << 16)): one bit a
            # cycle, shifted into the P-row word of the feedback RAM; issued H bits ahead,
            # the last H issues are the first step's hash
            m.d.comb += [r.fb_issue.eq(1), r.h_in.eq(r.fb_h_in)]
            m.d.comb += self.fb_fill.eq(1)
            m.d.comb += r.kk_next.eq(r.kk + 1)
            with m.If(r.kk == n_out - 1):
                m.d.comb += r.kk_next.eq(0)
            with m.If(self.fb_done):
                m.next = "STEP"

    def _step_states(self, m, r):
        """One forward timestep: STEP, then PRE of every layer, INT and FIRE of every layer,
        ERR, UPD of every layer."""
        first = self.layers[0].name
        in_bits, n_out = self._const("in_bits n_out")
        with m.State("STEP"):
            m.d.comb += [self.enc_start.eq(1), self.enc_first.eq(r.t == 0), r.phi_start.eq(1),
                         r.list_reset.eq(1)]
            tsum = r.tacc + self.target_rate
            m.d.sync += [r.tacc.eq(tsum[:in_bits]), r.tgt.eq(tsum[in_bits])]
            with m.If(tsum[in_bits]):
                m.d.sync += r.tgt_cnt.eq(r.tgt_cnt + 1)
            # hstep is taken (phi_start): g becomes the next step's
            m.d.sync += r.g.eq(r.g + 1)
            m.next = f"PRE_{first}"

        self._pre_states(m, r)
        self._forward_states(m, r)

        with m.State("ERR"):
            self._next_step_hash(m, r)
            # e[k] = tgt[k] - s_out[k] (eRBP only; 0 leaves U at 0 otherwise)
            m.d.comb += r.load_e.eq(1)
            for k in range(n_out):
                e_k = (r.tgt & (r.label == k)) - r.s_out[k]
                m.d.comb += r.e_in[k].eq(Mux(RULES.step_error(r.mode), e_k, 0))
            m.next = "ERR2"
        with m.State("ERR2"):
            # the projection's first stage takes the errors loaded in ERR
            self._next_step_hash(m, r)
            m.d.comb += r.upd_next.eq(1)
            m.next = f"UPD_{first}"

        self._update_states(m, r)

    def _pre_states(self, m, r, prefix="", learning=False):
        """PRE of every layer in turn (``L_PRE`` in the DFA learning phase: ``prefix="L_"``);
        the last one also waits for the encoder's last spike and restarts the lists for the
        first layer's INT."""
        for layer, nxt in self._with_next():
            with m.State(f"{prefix}PRE_{layer.name}"):
                self._next_step_hash(m, r, learning=learning)
                if nxt is not None:
                    self._scan(m, r, OP_PRE, layer, f"{prefix}PRE_{nxt.name}")
                else:
                    self._restart_lists(m, r)
                    self._scan(m, r, OP_PRE, layer, f"{prefix}INT_{self.layers[0].name}",
                               extra=~r.enc_busy)

    def _forward_states(self, m, r):
        """INT and FIRE of every layer in turn. A FIRE followed by another layer's INT waits
        for ``drained`` (that INT takes the spike list FIRE's stage Y appends to) and
        restarts the lists; the last FIRE waits for ``drained`` too (ERR takes the output
        spikes)."""
        for layer, nxt in self._with_next():
            with m.State(f"INT_{layer.name}"):
                self._next_step_hash(m, r)
                self._integrate(m, r, layer, f"FIRE_{layer.name}")
            with m.State(f"FIRE_{layer.name}"):
                self._next_step_hash(m, r)
                if nxt is not None:
                    self._restart_lists(m, r)
                    # the next INT takes this layer's spike list: wait until the last block
                    # is in stage Y
                    self._scan(m, r, OP_FIRE, layer, f"INT_{nxt.name}", extra=r.drained)
                else:
                    # ERR takes the output spikes
                    self._scan(m, r, OP_FIRE, layer, "ERR", extra=r.drained)

    def _update_states(self, m, r):
        """UPD of every layer in turn; the last one ends the step."""
        for layer, nxt in self._with_next():
            with m.State(f"UPD_{layer.name}"):
                self._next_step_hash(m, r)
                if nxt is not None:
                    self._scan(m, r, OP_UPD, layer, f"UPD_{nxt.name}")
                else:
                    self._last_update(m, r, layer)

    def _last_update(self, m, r, layer):
        """The last layer's UPD scan, then the end of the step (the step counter, every
        layer's raster row): the next step, or END after the last."""
        T = self._consts["T"]
        with m.If(r.b == self._nb[layer.index]):
            m.d.comb += self.step_done.eq(1)
            m.d.sync += [r.t.eq(r.t + 1), r.first.eq(0), r.b.eq(0), *self._next_rows(r)]
            with m.If(r.t == T - 1):
                m.d.sync += r.kc.eq(0)
                m.next = "END"
            with m.Else():
                m.next = "STEP"
        with m.Else():
            self._issue(m, r, OP_UPD, layer)
            m.d.sync += r.b.eq(r.b + 1)

    def _end_states(self, m, r):
        """After the last step: END, the prediction (ARG), the result (DONE)."""
        T, n_out, L = self._const("T n_out L")
        with m.State("END"):
            # L cycles: every block issued before is then past stage X (and every weight
            # write past stage W by the time ARG is done), whatever the last pass was
            m.d.comb += r.h_in.eq(r.key2 ^ r.base)       # DFA_E is next, or nothing
            m.d.sync += r.kc.eq(r.kc + 1)
            with m.If(r.kc == L - 1):
                with m.If(RULES.has_replay(r.mode) & ~r.dfa_learn):
                    m.d.comb += r.kk_next.eq(0)
                    m.next = "DFA_E"
                with m.Else():
                    m.d.comb += r.kk_next.eq(0)
                    m.next = "ARG"

        with m.State("ARG"):
            # the prediction: the lowest index of the largest count, one count a cycle
            m.d.comb += self.arg.eq(1)
            m.d.comb += r.kk_next.eq(r.kk + 1)
            with m.If(r.kk == n_out - 1):
                m.next = "DONE"

        with m.State("DONE"):
            m.d.comb += self.result_valid.eq(1)
            with m.If(self.result_ready):
                with m.If(r.mode != Mode.INFER):
                    m.d.sync += [r.counter.eq(r.counter + 1), r.base.eq(r.base + T)]
                m.next = "IDLE"

    def _replay_states(self, m, r):
        """DFA: the error from the counts, then the learning phase replays the raster."""
        T, n_out = self._const("T n_out")
        first = self.layers[0].name
        with m.State("DFA_E"):
            # E[k] = target count - output count (spec 6.3), one k a cycle (once per
            # presentation: one subtractor instead of n_out)
            m.d.comb += r.h_in.eq(r.key2 ^ r.base)
            m.d.comb += [self.e_set.eq(1), self.e_set_k.eq(r.kk),
                         self.e_set_value.eq(Mux(r.label == r.kk, r.tgt_cnt, 0) - self.count)]
            m.d.comb += r.kk_next.eq(r.kk + 1)
            with m.If(r.kk == n_out - 1):
                m.d.comb += r.kk_next.eq(0)
                m.d.sync += [r.t.eq(0), r.g.eq(r.base), r.dfa_learn.eq(1),
                             *[rb.eq(0) for rb in r.rbase]]
                m.next = "DFA_E2"
        with m.State("DFA_E2"):
            m.d.comb += [r.h_in.eq(r.key2 ^ r.g), r.upd_next.eq(1)]
            m.next = f"DFA_U{first}"
        for layer, nxt in self._with_next():
            with m.State(f"DFA_U{layer.name}"):
                m.d.comb += r.h_in.eq(r.key2 ^ r.g)
                self._scan(m, r, OP_DFAU, layer,
                           "L_STEP" if nxt is None else f"DFA_U{nxt.name}")
        with m.State("L_STEP"):
            m.d.comb += [self.enc_start.eq(1), self.enc_first.eq(r.t == 0), r.phi_start.eq(1),
                         r.list_reset.eq(1)]
            m.d.sync += r.g.eq(r.g + 1)
            m.next = f"L_PRE_{first}"
        self._pre_states(m, r, prefix="L_", learning=True)
        self._learning_int_states(m, r)
        with m.State("L_NEXT"):
            self._next_step_hash(m, r, learning=True)
            m.d.sync += [r.t.eq(r.t + 1), *self._next_rows(r), r.b.eq(0), r.kc.eq(0)]
            with m.If(r.t == T - 1):
                m.next = "END"
            with m.Else():
                m.next = "L_STEP"

    def _learning_int_states(self, m, r):
        """L_INT of every layer in turn (the DFA learning phase: no FIRE, the hidden spikes
        are replayed from the raster); an L_INT followed by another layer's restarts the
        lists when it is done, the last one goes to L_NEXT."""
        for layer, nxt in self._with_next():
            with m.State(f"L_INT_{layer.name}"):
                self._next_step_hash(m, r, learning=True)
                if nxt is not None:
                    # the next L_INT takes the hidden list the first layer's L_PRE blocks
                    # replay in stage X: with L <= 3 they are there before its first cycle
                    # (the last L_PRE and this state take at least three cycles)
                    with m.If(~r.int_first & ~r.cur_valid):
                        self._restart_lists(m, r)
                self._integrate(m, r, layer, "L_NEXT" if nxt is None else f"L_INT_{nxt.name}")
