"""The network core: one presentation of ``T`` timesteps in inference, eRBP or DFA mode.

Architecture
------------
``P = lanes`` neurons of a layer are processed per cycle. Every per-neuron memory holds one
*block* of ``P`` consecutive neurons per word (neuron ``j`` is lane ``j % P`` of block
``j // P``), and weight rows are packed the same way: word ``i * NB1 + b`` of W1 holds
``W1[i, b*P : b*P + P]`` (``NB1 = ceil(n_hid / P)``, ``NB2 = ceil(n_out / P)``; lanes past
the end of a layer are padding, never spike, and their weights are ignored).

Memories (all :class:`hdl.mem.WordMemory`: one read port, one write port, one cycle of read
latency, so any of them can be replaced by a board's block RAM):

============  =======================  ====================================================
name          depth                    word
============  =======================  ====================================================
``w1``        ``n_in * NB1``           ``P`` weights
``w2``        ``n_hid * NB2``          ``P`` weights
``ns``        ``NB1 + NB2``            ``P x (V, U)``: the state at the step boundary
``wk``        ``NB1 + NB2``            ``P x (acc, d, gate, spike)``: the step's working set
``fb``        ``NB1``                  ``P x n_out`` bits of the feedback matrix ``B``
``rs_h/o``    ``T * NB1`` / ``T*NB2``  DFA raster: hidden spikes and gates / output gates
``enc``       ``n_in``                 intensity and accumulator (inside the encoder)
``in_list``   ``n_in``                 channel of an input spike of this step
``hid_list``  ``NB1``                  ``(block, P-bit mask)`` of a hidden block with spikes
============  =======================  ====================================================

One timestep is a sequence of phases; each scans blocks with a two-stage pipeline (issue
the reads, then compute and write back the next cycle):

1. ``STEP`` (1 cycle): ``hstep = hash32(key2 ^ g)`` (the per-step half of the dither,
   issued to the pipelined hash two cycles before), the label's target spike, and the
   encoder is started.
2. ``PRE`` (both layers): from the start-of-step ``V0, U0`` compute the gate, the update
   ``d = gate ? sround(U0, shift, r) : 0`` (``r`` the top bits of ``hstep + n * 0x9E3779B9``, per
   lane) and initialise the accumulator to the leaked ``V0 - (V0 >> leak_v)``. Summing the
   weights into an accumulator that already holds the leaked state and saturating once at
   the end equals ``sat(leak(V0) + I)`` because the accumulator is wide. The encoder scans
   its ``n_in`` channels in parallel with this phase, appending the channel of every spike
   to the input spike list (a memory of ``n_in`` words and a counter).
3. ``INT_H``: for each input spike (in list order: lowest index first) and each block
   ``b``: read ``W1[i, b]`` and ``acc[b]``, add, and in a learning mode write back
   ``sat_w(w + d)``: the read-modify-write of spec 6.2 on the same pass.
4. ``FIRE_H``: saturate, compare, reset; every block with a spike is appended to the hidden
   spike list as ``(block, P-bit mask)``; ``INT_O`` takes the mask's spikes lowest lane first.
5. ``INT_O``, ``FIRE_O``: the same for the output layer; output spikes are counted.
6. ``ERR`` (1 cycle): ``e = tgt - s_out`` and the centered error ``ec`` (eRBP only).
7. ``UPD`` (both layers): ``U`` gets the leak and the error (through ``B`` for hidden
   neurons), and ``(V, U)`` is written to the state memory; this is where the trace port
   reports the end-of-step state.

Cycle count
-----------
``docs/cycles.md`` gives the formulas (one forward step costs
``12 + max(NB1 + NB2, n_in) + 2 (NB1 + NB2) + n1(t) NB1 + n2(t) NB2`` cycles with ``n1(t)``
input and ``n2(t)`` hidden spikes; integration dominates). :func:`cycles_per_step`,
:func:`presentation_cycles` and :func:`synaptic_events` evaluate them, and
``tests/test_hdl_core.py`` checks them against the simulated cycle counts of every
presentation.

Hardware notes
--------------
* The two layers share one datapath per lane (only one layer is ever in the second
  stage), so its cost is per lane, not per lane and layer.
* ``ns`` and ``wk`` hold both layers (layer 1 from word ``NB1``): one memory per kind
  saves block RAMs and the layer multiplexer. ``fb`` and the rasters are ``single_port``
  (never usefully read while written), so a board may put them in single-port RAM.
* No memory needs read-before-write: a word read in the cycle it is written is never
  used, except through the transparent ``wk`` (and the encoder's memory), so a board may
  declare read-write collisions undefined (``boards/memory.py``). The host must not read and
  write the weight port in the same cycle.
* The per-lane dither offset ``n * 0x9E3779B9`` is stepped by a register per lane (the PRE
  scans visit neurons in order), not multiplied. The scalar hash (keys, ``B``, the per-step
  half of the dither) is pipelined in two register stages; in IDLE it hashes the seed, so
  **the seed must be stable for two cycles before a command** (then the keys still fit in
  the 3 cycles of ``KEYS`` and the cycle counts are unchanged).
* The prediction is tracked as the output counts grow (no comparator tree over the counts).
* The hidden error projection ``sum_k B[j,k] ec[k]`` is ``2 (n_out S - c esum)`` with ``S``
  the sum of ``e[k]`` over the ``c`` outputs with ``B[j,k] = +1``: no centered errors are
  stored, no negations. It is formed in the first stage (``fb`` is read a cycle ahead) and
  registered, off the second stage's path.
* ``B`` is not regenerated per use: it is hashed once per learning presentation into the
  ``fb`` memory (``n_hid x n_out`` bits), because the hidden error needs a whole row of
  ``B`` per neuron per step (``n_out`` hashes each on the fly).
* Area and clock on the boards: ``boards/`` (``python -m boards.build``) reports them.
  The weight memories need one read and one write per cycle (read-modify-write pipeline),
  so ``w1`` cannot go to the UP5K's single-port SPRAM without halving the integration
  rate.
* The runtime registers are sampled live: hold them stable during a presentation (the
  seed from two cycles before the command).
"""

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from .encoder import Encoder
from .hash import hash32_steps

PHI32 = 0x9E3779B9
from .mem import WordMemory

__all__ = ["Core", "Mode", "MODE_NAMES", "regs_layout", "reg_values", "result_layout",
           "trace_layout", "cmd_layout", "cycles_per_step", "presentation_cycles",
           "synaptic_events"]


class Mode(enum.Enum, shape=2):
    INFER = 0
    ERBP = 1
    DFA = 2


MODE_NAMES = {"infer": Mode.INFER, "erbp": Mode.ERBP, "dfa": Mode.DFA}


def _nblocks(n, lanes):
    return -(-n // lanes)


def regs_layout(cfg) -> data.StructLayout:
    """The runtime registers (fields of kind ``reg`` of :class:`sim.config.Config`).

    ``reset`` becomes the bit ``reset_zero`` (1: set V to 0 on a spike, 0: subtract theta).
    """
    sb = cfg.state_bits
    return data.StructLayout({
        "theta_hid": signed(sb), "theta_out": signed(sb),
        "leak_v": range(sb), "leak_u": range(sb),
        "reset_zero": 1,
        "target_rate": cfg.in_bits,
        "err_shift_out": range(sb - 1), "err_shift_hid": range(sb - 1),
        "lr_shift_hid": range(25), "lr_shift_out": range(25),
        "dfa_shift_hid": range(25), "dfa_shift_out": range(25),
        "bmin_hid": signed(sb), "bmax_hid": signed(sb),
        "bmin_out": signed(sb), "bmax_out": signed(sb),
        "seed": 32,
    })


def reg_values(cfg) -> dict:
    """Register values of ``cfg`` in the form ``ctx.set(core.regs, ...)`` accepts."""
    r = {name: getattr(cfg, name) for name in regs_layout(cfg).members if name != "reset_zero"}
    r["reset_zero"] = int(cfg.reset == "zero")
    return r


def cmd_layout(cfg) -> data.StructLayout:
    return data.StructLayout({"mode": Mode, "label": range(max(cfg.n_out, 2))})


def result_layout(cfg) -> data.StructLayout:
    return data.StructLayout({
        "pred": range(max(cfg.n_out, 2)),
        "counts": data.ArrayLayout(range(cfg.timesteps + 1), cfg.n_out),
    })


def trace_layout(cfg, lanes) -> data.StructLayout:
    """One block of end-of-step state, reported during the ``UPD`` phase."""
    sb = cfg.state_bits
    nb = max(_nblocks(cfg.n_hid, lanes), _nblocks(cfg.n_out, lanes))
    return data.StructLayout({
        "valid": 1, "layer": 1, "t": range(max(cfg.timesteps, 2)), "block": range(max(nb, 2)),
        "v": data.ArrayLayout(signed(sb), lanes), "u": data.ArrayLayout(signed(sb), lanes),
        "s": lanes,
    })


def cycles_per_step(cfg, lanes, n1, n2):
    """Cycles of one forward step with ``n1`` input and ``n2`` hidden spikes (see above)."""
    nb1, nb2 = _nblocks(cfg.n_hid, lanes), _nblocks(cfg.n_out, lanes)
    return 12 + max(nb1 + nb2, cfg.n_in) + 2 * (nb1 + nb2) + n1 * nb1 + n2 * nb2


def _cmul(x, c):
    """``x * c`` for a constant ``c >= 0`` as shifts and adds (no multiplier block)."""
    terms = [x << i for i in range(c.bit_length()) if (c >> i) & 1]
    return sum(terms[1:], terms[0]) if terms else Const(0)


def _sat(x, lo, hi):
    """``x`` clamped to ``[lo, hi]``. When that is the whole range of a two's-complement
    width (every use here), overflow is read off the bits above it, not from two comparators
    (carry chains as long as ``x``)."""
    x = Value.cast(x)
    bits = hi.bit_length() + 1
    if lo == -(1 << (bits - 1)) and hi == (1 << (bits - 1)) - 1 and x.shape().signed:
        return x if len(x) <= bits else _shl_sat(x, Const(0, 1), bits)
    return Mux(x < lo, lo, Mux(x > hi, hi, x))


def _shl_sat(x, k, bits):
    """``x << k`` clamped to the range of ``signed(bits)``: overflow is any bit shifted into
    or past the sign position that differs from the sign (a thermometer mask of ``k``)."""
    x = Value.cast(x)
    n = len(x)
    kmax = 2 ** len(Value.cast(k)) - 1
    # bits of x that must equal the sign for x << k to fit: from bits - 1 - k upwards
    mask = Cat(*[Const(1) if bits - 1 - i <= 0 else (k >= bits - 1 - i) for i in range(n)])
    fits = ((x ^ x[-1].replicate(n)) & mask) == 0
    if kmax >= bits:                   # even -1 << k overflows once k >= bits
        fits = fits & ((k < bits) | (x == 0))
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    shifted = (x << k)[:bits].as_signed() if kmax else x[:bits].as_signed()
    return Mux(fits, shifted, Mux(x[-1], lo, hi))


def _leak(x, k):
    """``x - (x >> k)`` with an arithmetic shift (spec 2)."""
    return x - (x >> k)


def _ffs(vec):
    """Index of the lowest set bit of ``vec`` (0 if none): a priority encoder, used on one
    block's ``P``-bit spike mask only (spike lists replace whole-layer vectors)."""
    idx = Const(0, range(max(len(vec), 2)))
    for i in reversed(range(len(vec))):
        idx = Mux(vec[i], i, idx)
    return idx


# Operations of the scan pipeline's second stage.
OP_PRE, OP_INT, OP_FIRE, OP_UPD, OP_DFAU = range(5)


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

    Attributes
    ----------
    regs : In(regs_layout(cfg))
        Runtime registers; hold them stable during a presentation (``seed`` also for two
        cycles before the command).
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
        Word read by ``w_re``, valid the next cycle.
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

    def __init__(self, cfg, lanes: int = 1, memory=WordMemory):
        self.cfg = cfg
        self.lanes = P = lanes
        self.nb1 = _nblocks(cfg.n_hid, P)
        self.nb2 = _nblocks(cfg.n_out, P)
        self._memory = memory
        wword = data.ArrayLayout(signed(cfg.w_bits), P)
        self.w_words = (cfg.n_in * self.nb1, cfg.n_hid * self.nb2)
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
        cfg, P, nb1, nb2 = self.cfg, self.lanes, self.nb1, self.nb2
        T, sb, wb = cfg.timesteps, cfg.state_bits, cfg.w_bits
        n_in, n_hid, n_out = cfg.n_in, cfg.n_hid, cfg.n_out
        smin, smax = cfg.s_min, cfg.s_max
        wmin, wmax = cfg.w_min, cfg.w_max
        regs = self.regs
        mem = self._memory

        # ---- memories ------------------------------------------------------------------------
        wword = data.ArrayLayout(signed(wb), P)
        nsword = data.ArrayLayout(data.StructLayout({"v": signed(sb), "u": signed(sb)}), P)

        # Wide enough that leak(V0) + fan_in weights never overflows (spec 2, I_j); one width
        # for both layers because they share the datapath.
        aw = max(sb, wb + max(n_in, n_hid).bit_length()) + 1
        wkword = data.ArrayLayout(
            data.StructLayout({"acc": signed(aw), "d": signed(sb), "g": 1, "s": 1}), P)

        m.submodules.w1 = w1 = mem(wword, n_in * nb1)
        m.submodules.w2 = w2 = mem(wword, n_hid * nb2)
        # One state and one working memory for both layers (layer 1 from word NB1 on): only
        # one layer is ever in the pipeline, and one memory saves block RAMs and a multiplexer.
        m.submodules.ns = ns = mem(nsword, nb1 + nb2)
        # Transparent: with one block the read-modify-write revisits an address every cycle.
        m.submodules.wk = wk = mem(wkword, nb1 + nb2, transparent=True)
        # Never read (usefully) in a cycle they are written: a single-port RAM will do.
        m.submodules.fb = fb = mem(data.ArrayLayout(unsigned(n_out), P), nb1, single_port=True)
        m.submodules.rs_h = rs_h = mem(data.StructLayout({"s": P, "g": P}), T * nb1,
                                       single_port=True)
        m.submodules.rs_o = rs_o = mem(unsigned(P), T * nb2, single_port=True)
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
        counts = Array(Signal(range(T + 1), name=f"count{k}") for k in range(n_out))
        best = Signal(range(T + 1))              # the largest count so far
        best_k = Signal(range(max(n_out, 2)))    # the lowest index with that count
        s_out = Signal(nb2 * P)
        # Spike lists (spec 8: the order of synaptic events does not matter; these keep the
        # lowest index first anyway). Inputs: the channel of every input spike of the step,
        # written as the encoder emits them. Hidden: (block, P-bit mask) of every block with
        # a spike, written by FIRE_H (or replayed from the raster in the DFA learning phase).
        # A list and a counter instead of a whole-layer bit vector and its priority encoder:
        # the cost no longer grows with the layer's width (784 inputs for MNIST).
        m.submodules.in_list = in_list = mem(unsigned(max(n_in, 2).bit_length()), n_in)
        hl_word = data.StructLayout({"block": range(max(nb1, 2)), "mask": P})
        # transparent: the last FIRE_H block is written in the cycle INT_O reads entry 0
        m.submodules.hid_list = hid_list = mem(hl_word, nb1, transparent=True)
        in_n = Signal(range(n_in + 1))       # entries written this step
        hid_n = Signal(range(nb1 + 1))
        lst_rp = Signal(range(max(n_in, nb1) + 1))   # next list entry to take
        cur_blk = Signal(range(max(nb1, 2)))         # block of the hidden entry being taken
        cur_mask = Signal(P)                         # its spikes not yet taken
        list_reset = Signal()                        # a new step: empty both lists
        first = Signal()              # t == 0 of a forward pass: V0 = U0 = 0

        erbp = mode == Mode.ERBP
        learn = erbp | dfa_learn      # weights are rewritten in INT
        m.d.comb += [self.sample_counter.eq(counter)]

        # error registers (eRBP per step; DFA per sample)
        ew = T.bit_length() + 1     # |e| <= T (DFA: count differences; eRBP: -1..1)
        e = Array(Signal(signed(ew), name=f"e{k}") for k in range(n_out))
        # The centered error ec[k] = n_out e[k] - sum_m e[m] (spec 6.1) is not stored: the
        # hidden projection is formed from e and this sum (see the stage-0 projection).
        esum = Signal(signed(ew + n_out.bit_length()))
        e_in = [Signal(signed(ew), name=f"e_in{k}") for k in range(n_out)]
        load_e = Signal()
        with m.If(load_e):
            m.d.sync += esum.eq(sum(e_in))
            for k in range(n_out):
                m.d.sync += e[k].eq(e_in[k])

        # ---- scalar hash (keys, feedback matrix, per-step dither half) ------------------------
        # Pipelined (steps 0-1, then 2-4, both registered): ``h_q`` is the hash of the ``h_in``
        # of two cycles before, so every user presents its input two cycles ahead. When nothing
        # else needs it the input is the seed, so that in IDLE ``h_q`` is hash32(seed) (the
        # seed must be stable for two cycles before a command) and the keys fit in KEYS.
        h_in = Signal(32)
        h_mid = Signal(32)
        h_q = Signal(32)
        m.d.comb += h_in.eq(regs.seed)
        m.d.sync += [h_mid.eq(hash32_steps(h_in, 0, 2)), h_q.eq(hash32_steps(h_mid, 2))]
        # issue side of the feedback-matrix hashes: row ji, bit ki, two cycles ahead of FB
        ji = Signal(range(nb1 * P + 1))
        ki = Signal(range(max(n_out, 2)))
        fb_issue = Signal()
        with m.If(fb_issue):
            m.d.sync += ki.eq(ki + 1)
            with m.If(ki == n_out - 1):
                m.d.sync += [ki.eq(0), ji.eq(ji + 1)]

        # ---- scan / integrate counters and the pipeline's second stage --------------------------
        b = Signal(range(max(nb1, nb2, 2) + 1))
        cur = Signal(range(max(n_in, nb1 * P, 2)))
        cur_valid = Signal()
        int_first = Signal()
        p1_valid = Signal()
        p1_op = Signal(range(5))
        p1_layer = Signal()
        p1_b = Signal(range(max(nb1, nb2, 2)))
        p1_waddr = Signal(range(max(max(self.w_words), 2)))
        rbase_h = Signal(range(T * nb1 + 1))       # t * NB1: raster row of this step
        rbase_o = Signal(range(T * nb2 + 1))

        m.d.sync += p1_valid.eq(0)

        s0_layer = Signal()           # layer of the block issued in this cycle
        s0_dfau = Signal()            # a DFAU block is issued in this cycle
        upd_h_issue = Signal()        # an UPD or DFAU block of layer 0 is issued

        def issue(op, layer, waddr=0):
            m.d.comb += s0_layer.eq(layer)
            if op == OP_DFAU:
                m.d.comb += s0_dfau.eq(1)
            if op in (OP_UPD, OP_DFAU) and layer == 0:
                m.d.comb += upd_h_issue.eq(1)
            m.d.sync += [p1_valid.eq(1), p1_op.eq(op), p1_layer.eq(layer), p1_b.eq(b),
                         p1_waddr.eq(waddr)]

        # Stage 0 addresses: every per-neuron memory is read at block b, the weight memories
        # at (presynaptic neuron, b), the raster at this step's row. The data of the issuing
        # cycle is used by stage 1 the next cycle, whatever the phase.
        idle = Signal()
        for nm in (ns, wk):
            m.d.comb += nm.rd_addr.eq(Mux(s0_layer, nb1 + b, b))
        # fb is read two cycles ahead (the projection sums its row the cycle before the block
        # is issued): block b + 2 while layer-0 updates are issued, block 1 in the cycle
        # before they start (ERR, DFA_E), block 0 otherwise
        m.d.comb += fb.rd_addr.eq(Mux(upd_h_issue, b + 2, Mux(load_e, 1, 0)))
        m.d.comb += [rs_h.rd_addr.eq(rbase_h + b), rs_o.rd_addr.eq(rbase_o + b)]
        with m.If(idle):
            m.d.comb += [w1.rd_addr.eq(self.w_addr), w2.rd_addr.eq(self.w_addr)]
        with m.Else():
            m.d.comb += [w1.rd_addr.eq(_cmul(cur, nb1) + b), w2.rd_addr.eq(_cmul(cur, nb2) + b)]

        # ---- per-lane dither: r = (hstep + n * 0x9E3779B9) >> (32 - s) ---------------------
        # hstep = hash32(key2 ^ g) is h_q in the STEP cycle.
        lr_h = Mux(dfa_learn, regs.dfa_shift_hid, regs.lr_shift_hid)
        lr_o = Mux(dfa_learn, regs.dfa_shift_out, regs.lr_shift_out)
        shift0 = Mux(s0_layer, lr_o, lr_h)
        shift = Signal(range(25))
        m.d.sync += shift.eq(shift0)
        # n * PHI32 is not multiplied out: r is only used by the PRE scans, which visit the
        # blocks in order (layer 0 from block 0, then layer 1 from block 0), so x itself is a
        # register per lane: hstep + l PHI32 at the step's start, then stepped by P PHI32 as
        # stage 1 finishes each PRE block (to n_hid + l after the last hidden block).
        phi_start = Signal()
        p1_pre = p1_valid & (p1_op == OP_PRE)
        p1_last_h = ~p1_layer & (p1_b == nb1 - 1)
        step_a = P * PHI32 % 2**32
        step_b = (n_hid - (nb1 - 1) * P) * PHI32 % 2**32
        r = []
        for l in range(P):
            xl = Signal(32, name=f"x{l}")
            with m.If(phi_start):
                m.d.sync += xl.eq((h_q + l * PHI32 % 2**32)[:32] if l else h_q)
            with m.Elif(p1_pre):
                m.d.sync += xl.eq((xl + Mux(p1_last_h, step_b, step_a))[:32])
            r.append(xl)

        # ---- error projection, formed in stage 0 and registered ---------------------------------
        # hidden: sum_k B[j, k] ec[k] with ec[k] = n_out e[k] - esum and B = +-1 is
        # 2 (n_out S - c esum), S the sum of e[k] over the c outputs with B[j, k] = +1;
        # output: e[k]. UPD adds it shifted by err_shift, DFAU takes it as it is.
        # S and c are summed the cycle before the issue (from the errors being loaded, in
        # ERR / DFA_E) and registered.
        esh0 = Mux(s0_layer, regs.err_shift_out, regs.err_shift_hid)
        e_next = [Mux(load_e, e_in[k], e[k]) for k in range(n_out)]
        proj_q = []
        for l in range(P):
            bits0 = fb.rd_data[l]
            S = Signal(signed(ew + n_out.bit_length()), name=f"S{l}")
            c = Signal(range(n_out + 1), name=f"c{l}")
            m.d.sync += [S.eq(sum(Mux(bits0[k], e_next[k], 0) for k in range(n_out))),
                         c.eq(sum(bits0[k] for k in range(n_out)))]
            proj_h = (_cmul(S, n_out) - c * esum) << 1
            proj0 = Mux(s0_layer, e[_cmul(b, P) + l], proj_h)
            # Only sat(U + proj) is ever formed, with |U| < 2**(sb-1): clamping proj to
            # sb + 1 bits first changes nothing, and the shift then needs no wide result.
            pq = Signal(signed(sb + 1), name=f"proj{l}")
            m.d.sync += pq.eq(_shl_sat(proj0, Mux(s0_dfau, 0, esh0), sb + 1))
            proj_q.append(pq)

        # ---- stage 1: one datapath per lane, shared by the two layers ---------------------------
        # Only one layer is ever in flight, so the layer's memory words are multiplexed into
        # a single set of lane datapaths (leak shifters, dither rounding, saturation, error
        # projection) instead of building one per layer.
        hid = ~p1_layer
        nsd = Signal(nsword)
        wkd = Signal(wkword)
        wd = Signal(wword)
        m.d.comb += [
            nsd.eq(ns.rd_data), wkd.eq(wk.rd_data),
            wd.eq(Mux(p1_layer, w2.rd_data.as_value(), w1.rd_data.as_value())),
        ]
        nsw = Signal(nsword)
        wkw = Signal(wkword)
        ww = Signal(wword)
        ns_we, wk_we, w_we = Signal(), Signal(), Signal()
        p1_addr = Mux(p1_layer, nb1 + p1_b, p1_b)
        m.d.comb += [ns.wr_addr.eq(p1_addr), ns.wr_data.eq(nsw), ns.wr_en.eq(p1_valid & ns_we),
                     wk.wr_addr.eq(p1_addr), wk.wr_data.eq(wkw), wk.wr_en.eq(p1_valid & wk_we)]
        for L, wm in enumerate((w1, w2)):
            sel = p1_valid & (p1_layer == L)
            with m.If(sel & w_we):
                m.d.comb += [wm.wr_addr.eq(p1_waddr), wm.wr_data.eq(ww), wm.wr_en.eq(1)]

        theta = Mux(p1_layer, regs.theta_out, regs.theta_hid)
        bmin = Mux(p1_layer, regs.bmin_out, regs.bmin_hid)
        bmax = Mux(p1_layer, regs.bmax_out, regs.bmax_hid)
        last_b = Mux(p1_layer, nb2 - 1, nb1 - 1)
        tr = self.trace
        spikes, gates, oks = [], [], []
        for l in range(P):
            # lanes past the end of a layer (its last block only) are padding
            pad_h = l >= n_hid - (nb1 - 1) * P
            pad_o = l >= n_out - (nb2 - 1) * P
            lane_ok = ~(Mux(p1_layer, pad_o, pad_h) & (p1_b == last_b))
            oks.append(lane_ok)
            v0 = Mux(first, 0, nsd[l].v)
            u0 = Mux(first, 0, nsd[l].u)
            gate_rs = Mux(p1_layer, rs_o.rd_data[l], rs_h.rd_data.g[l])
            # one leak shifter per lane: PRE leaks V, UPD leaks U
            lk_v = p1_op == OP_PRE
            lk = _leak(Mux(lk_v, v0, u0), Mux(lk_v, regs.leak_v, regs.leak_u))
            v = _sat(wkd[l].acc, smin, smax)
            s = (v >= theta) & lane_ok
            spikes.append(s)
            gates.append(wkd[l].g)
            with m.Switch(p1_op):
                with m.Case(OP_PRE):
                    gate = Mux(dfa_learn, gate_rs, (bmin < v0) & (v0 < bmax))
                    # sround(U0, s, r) = (U0 + r) >> s with r = x >> (32 - s) is
                    # floor((U0 2**(32 - s) + x) / 2**32): one shifter and one adder
                    dd = ((u0 << (Const(32, 6) - shift)[:6]) + r[l])[32:32 + sb]
                    m.d.comb += [wk_we.eq(1), wkw[l].acc.eq(lk),
                                 # padding lanes learn nothing: their weights stay as written
                                 wkw[l].d.eq(Mux(learn & gate & lane_ok, dd, 0)),
                                 wkw[l].g.eq(gate)]
                with m.Case(OP_INT):
                    m.d.comb += [wk_we.eq(1), wkw[l].acc.eq(wkd[l].acc + wd[l]),
                                 wkw[l].d.eq(wkd[l].d), wkw[l].g.eq(wkd[l].g),
                                 w_we.eq(learn), ww[l].eq(_sat(wd[l] + wkd[l].d, wmin, wmax))]
                with m.Case(OP_FIRE):
                    vr = Mux(regs.reset_zero, 0, v - theta)
                    m.d.comb += [wk_we.eq(1), wkw[l].acc.eq(Mux(s, vr, v)),
                                 wkw[l].d.eq(wkd[l].d), wkw[l].g.eq(wkd[l].g), wkw[l].s.eq(s)]
                with m.Case(OP_UPD):
                    un = _sat(lk + proj_q[l], smin, smax)
                    m.d.comb += [ns_we.eq(1), nsw[l].v.eq(wkd[l].acc), nsw[l].u.eq(un),
                                 tr.v[l].eq(wkd[l].acc), tr.u[l].eq(un), tr.s[l].eq(wkd[l].s)]
                with m.Case(OP_DFAU):
                    m.d.comb += [ns_we.eq(1), nsw[l].u.eq(_sat(proj_q[l], smin, smax))]

        # synaptic events: one per real (not padding) lane of every integration read-modify-write
        with m.If(p1_valid & (p1_op == OP_INT)):
            m.d.comb += self.syn_events.eq(sum(oks))

        sv = Cat(*spikes)
        gv = Cat(*gates)
        with m.If(p1_valid & (p1_op == OP_FIRE)):
            # blocks arrive in order: a block with spikes is appended to the hidden list
            with m.If(hid):
                with m.If(sv.any()):
                    m.d.comb += [hid_list.wr_addr.eq(hid_n), hid_list.wr_data.block.eq(p1_b),
                                 hid_list.wr_data.mask.eq(sv), hid_list.wr_en.eq(1)]
                    m.d.sync += hid_n.eq(hid_n + 1)
            with m.Else():
                m.d.sync += s_out.eq(Cat(s_out[P:], sv) if nb2 > 1 else sv)
                for k in range(n_out):
                    with m.If((p1_b == k // P) & spikes[k % P]):
                        m.d.sync += counts[k].eq(counts[k] + 1)
                # The prediction follows the counts: a neuron whose new count exceeds the
                # best, or equals it with a lower index, becomes the best. Counts only grow by
                # one, so at the end the best is the lowest index of the largest count. The
                # block's lanes are taken in index order.
                bv, bk = best, best_k
                for l in range(P):
                    k = _cmul(p1_b, P) + l
                    c1 = counts[k] + 1
                    better = spikes[l] & ((c1 > bv) | ((c1 == bv) & (k < bk)))
                    bv, bk = Mux(better, c1, bv), Mux(better, k, bk)
                m.d.sync += [best.eq(bv), best_k.eq(bk)]
            # DFA forward phase: record hidden spikes and both layers' gates
            with m.If(~dfa_learn & (mode == Mode.DFA)):
                m.d.comb += [rs_h.wr_addr.eq(rbase_h + p1_b), rs_h.wr_data.s.eq(sv),
                             rs_h.wr_data.g.eq(gv), rs_h.wr_en.eq(hid),
                             rs_o.wr_addr.eq(rbase_o + p1_b), rs_o.wr_data.eq(gv),
                             rs_o.wr_en.eq(p1_layer)]
        with m.If(p1_valid & (p1_op == OP_UPD)):
            m.d.comb += [tr.valid.eq(1), tr.layer.eq(p1_layer), tr.t.eq(t), tr.block.eq(p1_b)]
        # DFA learning phase: the hidden spikes of the step are replayed from the raster
        with m.If(p1_valid & (p1_op == OP_PRE) & dfa_learn & hid & rs_h.rd_data.s.any()):
            m.d.comb += [hid_list.wr_addr.eq(hid_n), hid_list.wr_data.block.eq(p1_b),
                         hid_list.wr_data.mask.eq(rs_h.rd_data.s), hid_list.wr_en.eq(1)]
            m.d.sync += hid_n.eq(hid_n + 1)
        with m.If(list_reset):
            m.d.sync += [in_n.eq(0), hid_n.eq(0)]

        # ---- host ports -------------------------------------------------------------------------
        rlayer = Signal()
        m.d.sync += rlayer.eq(self.w_layer)
        m.d.comb += self.w_rdata.eq(Mux(rlayer, w2.rd_data.as_value(), w1.rd_data.as_value()))
        with m.If(idle & self.w_we):
            with m.If(self.w_layer):
                m.d.comb += [w2.wr_addr.eq(self.w_addr), w2.wr_data.eq(self.w_wdata),
                             w2.wr_en.eq(1)]
            with m.Else():
                m.d.comb += [w1.wr_addr.eq(self.w_addr), w1.wr_data.eq(self.w_wdata),
                             w1.wr_en.eq(1)]
        m.d.comb += [enc.x_in.payload.eq(self.x_in.payload),
                     enc.x_in.valid.eq(self.x_in.valid & idle),
                     self.x_in.ready.eq(enc.x_in.ready & idle)]

        # encoder spikes: the core always accepts them (channel 0 first); spikes are listed
        m.d.comb += enc.spikes.ready.eq(1)
        with m.If(enc.spikes.valid):
            with m.If(enc.spikes.payload.spike):
                m.d.comb += [in_list.wr_addr.eq(in_n),
                             in_list.wr_data.eq(enc.spikes.payload.chan), in_list.wr_en.eq(1)]
                m.d.sync += in_n.eq(in_n + 1)

        # prediction: most spikes, ties to the lowest index; kept up to date as the counts
        # grow (see the output FIRE above), so no comparator tree over all the counts
        m.d.comb += self.result.payload.pred.eq(best_k)
        for k in range(n_out):
            m.d.comb += self.result.payload.counts[k].eq(counts[k])

        # ---- integrate pass (INT_H / INT_O) ------------------------------------------------------
        # The lists are read ahead: the read port shows entry lst_rp (its address is
        # lst_rp, or lst_rp + 1 in the cycle entry lst_rp is taken), so the next spike is
        # ready whenever the current one's last block is issued. lst_rp is 0 in the cycle
        # before an integrate pass (the states before it set int_first).
        take = Signal()
        lst_restart = Signal()        # the next cycle starts an integrate pass: entry 0
        rd_next = Mux(lst_restart, 0, Mux(take, lst_rp + 1, lst_rp))
        m.d.comb += [in_list.rd_addr.eq(rd_next), hid_list.rd_addr.eq(rd_next)]
        m.d.sync += lst_rp.eq(rd_next)

        def integrate(layer, nb, next_state):
            """One read-modify-write per (presynaptic spike, block); the spikes come from the
            layer's list in order (a hidden entry's mask lowest lane first)."""
            with m.If(int_first | (cur_valid & (b == nb - 1))):
                m.d.sync += [b.eq(0), int_first.eq(0)]
                rest = Signal(P, name=f"rest{layer}")
                m.d.comb += rest.eq(Mux(int_first, 0, cur_mask))
                if layer == 0:
                    with m.If(lst_rp < in_n):
                        m.d.comb += take.eq(1)
                        m.d.sync += [cur.eq(in_list.rd_data), cur_valid.eq(1)]
                    with m.Else():
                        m.d.sync += cur_valid.eq(0)
                else:
                    ent = hid_list.rd_data
                    with m.If(rest.any()):
                        # the next spike of the entry being taken
                        pos = _ffs(rest)
                        m.d.sync += [cur.eq(_cmul(cur_blk, P) + pos), cur_valid.eq(1),
                                     cur_mask.eq(rest & ~(Const(1, P) << pos)[:P])]
                    with m.Elif(lst_rp < hid_n):
                        pos = _ffs(ent.mask)
                        m.d.comb += take.eq(1)
                        m.d.sync += [cur.eq(_cmul(ent.block, P) + pos), cur_valid.eq(1),
                                     cur_blk.eq(ent.block),
                                     cur_mask.eq(ent.mask & ~(Const(1, P) << pos)[:P])]
                    with m.Else():
                        m.d.sync += cur_valid.eq(0)
            with m.If(cur_valid):
                issue(OP_INT, layer, cur * nb + b)
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

        # ---- sequencer -------------------------------------------------------------------------
        kc = Signal(2)
        bj = Signal(range(max(nb1, 2)))
        lj = Signal(range(max(P, 2)))
        jj = Signal(range(max(nb1 * P, 2)))
        kk = Signal(range(max(n_out, 2)))
        fb_sr = Signal(P * n_out)

        with m.FSM(name="seq"):
            with m.State("IDLE"):
                m.d.comb += [idle.eq(1), self.cmd.ready.eq(1)]
                with m.If(self.counter_we):
                    # base = counter * T mod 2**32; T is a constant, so this is a few adders
                    m.d.sync += [counter.eq(self.counter_wdata),
                                 base.eq(_cmul(self.counter_wdata, T)[:32])]
                # h0 = hash32(seed); on a command key1 = hash32(h0 ^ 1) is issued at once
                m.d.sync += h0.eq(h_q)
                with m.If(self.cmd.valid):
                    m.d.comb += h_in.eq(h_q ^ 1)
                    m.d.sync += [ji.eq(0), ki.eq(0)]
                    m.d.sync += [mode.eq(self.cmd.payload.mode), label.eq(self.cmd.payload.label),
                                 t.eq(0), g.eq(base), tacc.eq(0), tgt_cnt.eq(0), first.eq(1),
                                 dfa_learn.eq(0), b.eq(0), kc.eq(0), bj.eq(0), lj.eq(0),
                                 jj.eq(0), kk.eq(0), rbase_h.eq(0), rbase_o.eq(0)]
                    m.d.sync += [counts[k].eq(0) for k in range(n_out)]
                    m.d.sync += [best.eq(0), best_k.eq(0)]
                    with m.If(self.cmd.payload.mode == Mode.INFER):
                        m.next = "STEP"
                    with m.Else():
                        m.next = "KEYS"

            with m.State("KEYS"):
                # key(domain) = hash32(hash32(seed) ^ domain): key1 issued in IDLE, key2 here;
                # then the first feedback-matrix hashes are issued (row 0 needs key1 at once)
                m.d.sync += kc.eq(kc + 1)
                with m.Switch(kc):
                    with m.Case(0):
                        m.d.comb += h_in.eq(h0 ^ 2)
                    with m.Case(1):
                        m.d.comb += [h_in.eq(h_q), fb_issue.eq(1)]
                        m.d.sync += key1.eq(h_q)
                    with m.Case(2):
                        m.d.comb += [h_in.eq(key1 ^ ji ^ ((ki >> 5) << 16)), fb_issue.eq(1)]
                        m.d.sync += key2.eq(h_q)
                        m.next = "FB"

            with m.State("FB"):
                # B[j, k] = bit (k mod 32) of hash32(key1 ^ j ^ ((k >> 5) << 16)): one bit a
                # cycle, shifted into the P-row word of the feedback RAM
                # issued two rows ahead; the last two issues are the first step's hash
                m.d.comb += fb_issue.eq(1)
                with m.If(ji == nb1 * P):
                    m.d.comb += h_in.eq(key2 ^ g)
                with m.Else():
                    m.d.comb += h_in.eq(key1 ^ ji ^ ((ki >> 5) << 16))
                bit = h_q.bit_select(kk[:5], 1)
                sr = Cat(fb_sr[1:], bit) if P * n_out > 1 else bit
                m.d.sync += [fb_sr.eq(sr), kk.eq(kk + 1)]
                with m.If(kk == n_out - 1):
                    m.d.sync += [kk.eq(0), jj.eq(jj + 1), lj.eq(lj + 1)]
                    with m.If(lj == P - 1):
                        m.d.comb += [fb.wr_addr.eq(bj), fb.wr_data.eq(sr), fb.wr_en.eq(1)]
                        m.d.sync += [lj.eq(0), bj.eq(bj + 1)]
                        with m.If(bj == nb1 - 1):
                            m.next = "STEP"

            with m.State("STEP"):
                m.d.comb += [enc.start.eq(1), enc.first.eq(t == 0), phi_start.eq(1),
                             list_reset.eq(1)]
                tsum = tacc + regs.target_rate
                m.d.sync += [tacc.eq(tsum[:cfg.in_bits]), tgt.eq(tsum[cfg.in_bits])]
                with m.If(tsum[cfg.in_bits]):
                    m.d.sync += tgt_cnt.eq(tgt_cnt + 1)
                m.next = "PRE_H"

            with m.State("PRE_H"):
                scan(OP_PRE, 0, nb1, "PRE_O")
            with m.State("PRE_O"):
                m.d.sync += int_first.eq(1)
                m.d.comb += lst_restart.eq(1)
                scan(OP_PRE, 1, nb2, "INT_H", extra=~enc.busy)

            with m.State("INT_H"):
                integrate(0, nb1, "FIRE_H")
            with m.State("FIRE_H"):
                m.d.sync += int_first.eq(1)
                m.d.comb += lst_restart.eq(1)
                scan(OP_FIRE, 0, nb1, "INT_O")
            with m.State("INT_O"):
                integrate(1, nb2, "FIRE_O")
            with m.State("FIRE_O"):
                scan(OP_FIRE, 1, nb2, "ERR")

            with m.State("ERR"):
                # e[k] = tgt[k] - s_out[k] (eRBP only; 0 leaves U at 0 otherwise)
                m.d.comb += load_e.eq(1)
                for k in range(n_out):
                    m.d.comb += e_in[k].eq(Mux(erbp, (tgt & (label == k)) - s_out[k], 0))
                # the next step's g, early: UPD_O issues its hash (g is used for nothing else)
                m.d.sync += g.eq(g + 1)
                m.next = "UPD_H"

            with m.State("UPD_H"):
                scan(OP_UPD, 0, nb1, "UPD_O")
            with m.State("UPD_O"):
                m.d.comb += h_in.eq(Mux(t == T - 1, regs.seed, key2 ^ g))
                with m.If(b == nb2):
                    m.d.comb += self.step_done.eq(1)
                    m.d.sync += [t.eq(t + 1), first.eq(0),
                                 rbase_h.eq(rbase_h + nb1), rbase_o.eq(rbase_o + nb2)]
                    with m.If(t == T - 1):
                        with m.If(mode == Mode.DFA):
                            m.d.sync += b.eq(0)
                            m.next = "DFA_E"
                        with m.Else():
                            m.d.sync += b.eq(0)
                            m.next = "DONE"
                    with m.Else():
                        m.d.sync += b.eq(0)
                        m.next = "STEP"
                with m.Else():
                    issue(OP_UPD, 1)
                    m.d.sync += b.eq(b + 1)

            with m.State("DONE"):
                m.d.comb += self.result.valid.eq(1)
                with m.If(self.result.ready):
                    with m.If(mode != Mode.INFER):
                        m.d.sync += [counter.eq(counter + 1), base.eq(base + T)]
                    m.next = "IDLE"

            # ---- DFA: error from the counts, then the learning phase replays the raster ----
            with m.State("DFA_E"):
                # E[k] = target count - output count (spec 6.3)
                m.d.comb += load_e.eq(1)
                for k in range(n_out):
                    m.d.comb += e_in[k].eq(Mux(label == k, tgt_cnt, 0) - counts[k])
                m.d.sync += [t.eq(0), g.eq(base), dfa_learn.eq(1), rbase_h.eq(0),
                             rbase_o.eq(0)]
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
                scan(OP_PRE, 0, nb1, "L_PRE_O")
            with m.State("L_PRE_O"):
                m.d.sync += int_first.eq(1)
                m.d.comb += lst_restart.eq(1)
                scan(OP_PRE, 1, nb2, "L_INT_H", extra=~enc.busy)
            with m.State("L_INT_H"):
                with m.If(~int_first & ~cur_valid):
                    m.d.sync += int_first.eq(1)
                    m.d.comb += lst_restart.eq(1)
                integrate(0, nb1, "L_INT_O")
            with m.State("L_INT_O"):
                m.d.comb += h_in.eq(Mux(t == T - 1, regs.seed, key2 ^ g))
                integrate(1, nb2, "L_NEXT")
            with m.State("L_NEXT"):
                m.d.comb += h_in.eq(Mux(t == T - 1, regs.seed, key2 ^ g))
                m.d.sync += [t.eq(t + 1), rbase_h.eq(rbase_h + nb1),
                             rbase_o.eq(rbase_o + nb2), b.eq(0)]
                with m.If(t == T - 1):
                    m.next = "DONE"
                with m.Else():
                    m.next = "L_STEP"

        m.d.comb += self.busy.eq(~idle)
        return m


def presentation_cycles(cfg, lanes, mode, n1, n2):
    """Cycles of one presentation (see the module docstring); ``n1[t]``, ``n2[t]`` are the
    input and hidden spike counts of each step of the forward pass."""
    nb1, nb2 = _nblocks(cfg.n_hid, lanes), _nblocks(cfg.n_out, lanes)
    T = cfg.timesteps
    c = 2 + sum(cycles_per_step(cfg, lanes, int(n1[t]), int(n2[t])) for t in range(T))
    if mode != "infer":
        c += 3 + nb1 * lanes * cfg.n_out
    if mode == "dfa":
        c += 3 + nb1 + nb2 + sum(8 + max(nb1 + nb2, cfg.n_in) + int(n1[t]) * nb1
                                 + int(n2[t]) * nb2 for t in range(T))
    return c


def synaptic_events(cfg, mode, n1, n2):
    """Synaptic events of one presentation (what ``syn_events`` adds up): every input spike
    reaches ``n_hid`` synapses and every hidden spike ``n_out``; the DFA learning phase
    replays the forward spikes, so DFA counts them twice."""
    ev = int(cfg.n_hid * np.sum(n1) + cfg.n_out * np.sum(n2))
    return 2 * ev if mode == "dfa" else ev
