"""The neuron lanes: stages X and X2 of the block pipeline, one datapath per lane.

Only one layer is ever in flight, so the layer's memory words are multiplexed into a single
set of lane datapaths (leak shifters, dither rounding, saturation, error projection) instead
of building one per layer. The lanes own the per-block memories read from ``q[L]``:

* ``ns`` (``NB1 + NB2`` words of ``P x (V, U)``): the state at the step boundary;
* ``wk`` (``P x (acc, gate, spike)``): the step's working set, read-modify-written by every
  integration (X forwards its own last write, the only one a read can miss);
* ``dm`` (``P x d``): the step's weight update of every neuron, written once per step (PRE,
  in stage X2), read by INT; no read-modify-write.

Per operation (stage X computes, X2 writes back):

* PRE: the gate (:mod:`hdl.core.rules`), ``d = gate ? sround(U0, shift, r) : 0`` and the
  accumulator initialised to the leaked ``V0 - (V0 >> leak_v)``;
* INT: ``acc += w`` (and, learning, the weight's update goes to stage W);
* FIRE: saturate, compare, reset; the spikes and gates go to stage Y (``fire``);
* UPD / DFAU: ``U`` takes the leak and the error projection; ``(V, U)`` is written to
  ``ns`` and reported on ``trace`` (UPD).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..mem import WordMemory
from .arith import sat
from .layouts import nblocks, trace_layout
from .pipeline import OP_DFAU, OP_FIRE, OP_INT, OP_PRE, OP_UPD, token_layout
from .rules import RULES
from .signature import ParamSignature, check_int

__all__ = ["NeuronLanes", "acc_bits", "fire_layout"]


def acc_bits(n_in, n_hid, state_bits, w_bits):
    """Accumulator width: leak(V0) + fan_in weights never overflows (spec 2, I_j); one width
    for both layers because they share the datapath."""
    return max(state_bits, w_bits + max(n_in, n_hid).bit_length()) + 1


def fire_layout(n_blocks, lanes):
    """Stage Y: a ``FIRE`` block's spikes and gates."""
    return data.StructLayout({"valid": 1, "layer": 1, "block": range(max(n_blocks, 2)),
                              "s": lanes, "g": lanes})


class NeuronLanes(wiring.Component):
    """``P`` neuron datapaths shared by the two layers, and their state memories.

    Parameters
    ----------
    cfg : spec.config.Config
        The architecture fields (sizes and widths).
    lanes : int
    regs : data.StructLayout
        The runtime registers' layout (:func:`hdl.core.regs_layout`).
    memory : callable
        Memory factory (:class:`hdl.mem.WordMemory` signature).

    Members
    -------
    regs : In(regs)
    replay, learn : In(1)
        The DFA learning phase; weights are rewritten by INT.
    qL, x : In(token)
        The blocks in ``q[L]`` (addresses; the stage-ahead selections) and in X.
    rs_hid_g, rs_out_g : In(lanes)
        The raster's gates of the block in X (the DFA learning phase's gates).
    dither : In(ArrayLayout(unsigned(32), lanes))
        The dither offsets of the PRE block in X2.
    proj : In(ArrayLayout(signed(state_bits + 1), lanes))
        The error projection of the block in X2 (formed while the block was in X).
    w : In(ArrayLayout(signed(w_bits), lanes))
        The weights of the block in X.
    x_pre, pre_done, pre_last_hid : Out(1)
        A PRE block in X; in X2 (and whether it is the last hidden block).
    w_update : Out(1)
        The block in X is a learning integration: stage W writes ``w + d``.
    d : Out(ArrayLayout(signed(state_bits), lanes))
        The updates ``d`` of the block in X.
    syn_events : Out(range(lanes + 1))
    trace : Out(trace_layout)
    fire : Out(fire_layout)
        Stage Y: the spikes and gates of a FIRE block.
    """

    class Signature(ParamSignature):
        def __init__(self, *, lanes, n_in, n_hid, n_out, timesteps, state_bits, w_bits, regs):
            for name, v in (("lanes", lanes), ("n_in", n_in), ("n_hid", n_hid),
                            ("n_out", n_out), ("timesteps", timesteps)):
                check_int(name, v, 1)
            check_int("state_bits", state_bits, 2)
            check_int("w_bits", w_bits, 2)
            P, sb = lanes, state_bits
            nb = max(nblocks(n_hid, P), nblocks(n_out, P))
            tok = token_layout(n_in, n_hid, n_out, timesteps, P)
            trace = data.StructLayout({
                "valid": 1, "layer": 1, "t": range(max(timesteps, 2)), "block": range(max(nb, 2)),
                "v": data.ArrayLayout(signed(sb), P), "u": data.ArrayLayout(signed(sb), P),
                "s": P,
            })
            super().__init__({
                "regs": In(regs), "replay": In(1), "learn": In(1),
                "qL": In(tok), "x": In(tok),
                "rs_hid_g": In(P), "rs_out_g": In(P),
                "dither": In(data.ArrayLayout(unsigned(32), P)),
                "proj": In(data.ArrayLayout(signed(sb + 1), P)),
                "w": In(data.ArrayLayout(signed(w_bits), P)),
                "x_pre": Out(1), "pre_done": Out(1), "pre_last_hid": Out(1),
                "w_update": Out(1), "d": Out(data.ArrayLayout(signed(sb), P)),
                "syn_events": Out(range(P + 1)), "trace": Out(trace),
                "fire": Out(fire_layout(nb, P)),
            }, lanes=lanes, n_in=n_in, n_hid=n_hid, n_out=n_out, timesteps=timesteps,
                state_bits=state_bits, w_bits=w_bits, regs=regs)

    def __init__(self, cfg, *, lanes, regs, memory=WordMemory):
        self._memory = memory
        super().__init__(self.Signature(lanes=lanes, n_in=cfg.n_in, n_hid=cfg.n_hid,
                                        n_out=cfg.n_out, timesteps=cfg.timesteps,
                                        state_bits=cfg.state_bits, w_bits=cfg.w_bits,
                                        regs=regs))
        assert trace_layout(cfg, lanes) == self.trace.shape()

    def elaborate(self, platform):
        m = Module()
        sig = self.signature
        P, sb, n_hid, n_out = sig.lanes, sig.state_bits, sig.n_hid, sig.n_out
        nb1, nb2 = nblocks(n_hid, P), nblocks(n_out, P)
        smin, smax = -(1 << (sb - 1)), (1 << (sb - 1)) - 1
        regs, qL, xs, mem = self.regs, self.qL, self.x, self._memory
        tok = token_layout(sig.n_in, n_hid, n_out, sig.timesteps, P)

        nsword = data.ArrayLayout(data.StructLayout({"v": signed(sb), "u": signed(sb)}), P)
        aw = acc_bits(sig.n_in, n_hid, sb, sig.w_bits)
        wkword = data.ArrayLayout(data.StructLayout({"acc": signed(aw), "g": 1, "s": 1}), P)
        dword = data.ArrayLayout(signed(sb), P)
        # One state and one working memory for both layers (layer 1 from word NB1 on): only
        # one layer is ever in the pipeline, and one memory saves block RAMs and a multiplexer.
        m.submodules.ns = ns = mem(nsword, nb1 + nb2)
        # Not transparent: stage X forwards its own last write (below), the only one a read
        # can miss (with one block the read-modify-write revisits an address every cycle).
        m.submodules.wk = wk = mem(wkword, nb1 + nb2)
        m.submodules.dm = dm = mem(dword, nb1 + nb2)
        for nm in (ns, wk, dm):
            m.d.comb += nm.rd_addr.eq(qL.saddr)

        # ---- selected a stage ahead (from q[L]) --------------------------------------------
        # U0 << (32 - s) is formed as a multiply by a power of two (a board's multiplier
        # blocks, not a barrel shifter): with k = 32 - s - 8 in 0..24, U0 * 2**(k mod 16) is a
        # state_bits x 16 product (16 x 16 by default), placed at bit 8 (k < 16) or 24
        # (k >= 16); |U0| < 2**(sb - 1) and 32 - s <= 32, so it fits signed(sb + 32)
        s_sel = RULES.update_shift(regs, qL.layer, self.replay)
        k8 = (24 - s_sel)[:5]
        pow2 = Signal(16)             # 2**(k mod 16)
        hi16 = Signal()               # k >= 16
        m.d.sync += [pow2.eq(Const(1, 16) << k8[:4]), hi16.eq(k8[4])]
        # the leak shifter's input (PRE: V, else U) and amount; x >> k is
        # (x * 2**(sb - 1 - k)) >> (sb - 1) for 0 <= k < sb: a multiply by a power of two
        # (a board's multiplier block) instead of a barrel shifter
        lk_v = Signal()
        lk_pow = Signal(sb)
        m.d.sync += [lk_v.eq(qL.op == OP_PRE),
                     lk_pow.eq(Const(1 << (sb - 1), sb)
                               >> Mux(qL.op == OP_PRE, regs.leak_v, regs.leak_u))]
        theta, bmin, bmax = (Signal(signed(sb), name=n) for n in ("theta", "bmin", "bmax"))
        m.d.sync += [theta.eq(Mux(qL.layer, regs.theta_out, regs.theta_hid)),
                     bmin.eq(Mux(qL.layer, regs.bmin_out, regs.bmin_hid)),
                     bmax.eq(Mux(qL.layer, regs.bmax_out, regs.bmax_hid))]

        # ---- stage X -----------------------------------------------------------------------
        xv = xs.valid
        x2 = Signal(tok)                                  # stage X2 (valid: UPD, DFAU)
        x_pre = xv & (xs.op == OP_PRE)
        x2_pre = Signal()                                 # a PRE block in stage X2
        m.d.sync += x2_pre.eq(x_pre)
        m.d.comb += [self.x_pre.eq(x_pre), self.pre_done.eq(x2_pre),
                     self.pre_last_hid.eq(~x2.layer & (x2.b == nb1 - 1))]
        # the leak x - (x >> k) of V0 (PRE) or U0 (UPD): shifted in X, subtracted in X2
        x2_lkin = Signal(data.ArrayLayout(signed(sb), P))
        x2_lksh = Signal(data.ArrayLayout(signed(sb), P))
        x2_g = Signal(P)                                  # PRE: the gate
        x2_v = Signal(data.ArrayLayout(signed(sb), P))    # V at the end of the step
        x2_s = Signal(P)
        x2_sh = Signal(data.ArrayLayout(signed(sb + 32), P))  # PRE: U0 << (32 - shift)
        x2_dok = Signal(P)                                # PRE: the lane learns
        x2_fire = Signal()                                # FIRE: a block in X2
        x2_fv = Signal(data.ArrayLayout(signed(sb), P))   # FIRE: sat(acc)
        x2_fvr = Signal(data.ArrayLayout(signed(sb), P))  # FIRE: its value after a spike
        x2_fs = Signal(P)                                 # FIRE: its spikes
        m.d.sync += x2_fire.eq(xv & (xs.op == OP_FIRE))
        m.d.sync += [x2.eq(xs), x2.valid.eq(xv & ((xs.op == OP_UPD) | (xs.op == OP_DFAU)))]
        wkw = Signal(wkword)
        wk_we, x_wwe = Signal(), Signal()
        # (PRE and FIRE write from X2: no INT block is in X then, nor reads a word they write)
        wkw2 = Signal(wkword)
        with m.If(x2_pre | x2_fire):
            m.d.comb += [wk.wr_addr.eq(x2.saddr), wk.wr_data.eq(wkw2), wk.wr_en.eq(1)]
        with m.Else():
            m.d.comb += [wk.wr_addr.eq(xs.saddr), wk.wr_data.eq(wkw), wk.wr_en.eq(xv & wk_we)]
        # the word this block read was written by the block before it in the same cycle:
        # take that write instead (read-after-write forwarding)
        # (decided a stage ahead: the block in q[L] reads what the block in X writes)
        fw_sel = Signal()
        fw_data = Signal(wkword)
        x_writes_wk = xv & (xs.op == OP_INT)
        m.d.sync += [fw_sel.eq(x_writes_wk & (xs.saddr == qL.saddr)), fw_data.eq(wkw)]
        nsd, wkd, wd = ns.rd_data, Signal(wkword), self.w
        m.d.comb += [wkd.eq(Mux(fw_sel, fw_data.as_value(), wk.rd_data.as_value())),
                     self.d.eq(dm.rd_data), self.w_update.eq(xv & x_wwe)]

        last_b = Mux(xs.layer, nb2 - 1, nb1 - 1)
        spikes, gates, oks = [], [], []
        for l in range(P):
            # lanes past the end of a layer (its last block only) are padding
            pad_h = l >= n_hid - (nb1 - 1) * P
            pad_o = l >= n_out - (nb2 - 1) * P
            lane_ok = ~(Mux(xs.layer, pad_o, pad_h) & (xs.b == last_b))
            oks.append(lane_ok)
            v0 = Mux(xs.first, 0, nsd[l].v)
            u0 = Mux(xs.first, 0, nsd[l].u)
            # one leak shifter per lane: PRE leaks V, UPD leaks U
            lk_in = Mux(lk_v, v0, u0)
            v = sat(wkd[l].acc, smin, smax)
            s = (v >= theta) & lane_ok
            spikes.append(s)
            gates.append(wkd[l].g)
            m.d.sync += [x2_lkin[l].eq(lk_in), x2_lksh[l].eq((lk_in * lk_pow) >> (sb - 1)),
                         x2_v[l].eq(wkd[l].acc), x2_s[l].eq(wkd[l].s),
                         x2_fv[l].eq(v), x2_fvr[l].eq(Mux(regs.reset_zero, 0, v - theta)),
                         x2_fs[l].eq(s)]
            # PRE's update d = sround(U0, s, r) = (U0 + r) >> s with r = x >> (32 - s) is
            # floor((U0 2**(32 - s) + x) / 2**32): the shift here, the add in X2
            gate_rs = Mux(xs.layer, self.rs_out_g[l], self.rs_hid_g[l])
            gate = RULES.lane_gate(self.replay, (bmin < v0) & (v0 < bmax), gate_rs)
            prod = u0 * pow2
            m.d.sync += [x2_sh[l].eq(Mux(hi16, prod << 24, prod << 8)),
                         x2_g[l].eq(Mux(xs.op == OP_PRE, gate, wkd[l].g)),
                         # padding lanes learn nothing: their weights stay as written
                         x2_dok[l].eq(self.learn & gate & lane_ok)]
            with m.If(xs.op == OP_INT):
                m.d.comb += [wk_we.eq(1), wkw[l].acc.eq(wkd[l].acc + wd[l]),
                             wkw[l].g.eq(wkd[l].g), x_wwe.eq(self.learn)]
        # synaptic events: one per real (not padding) lane of every integration
        with m.If(xv & (xs.op == OP_INT)):
            m.d.comb += self.syn_events.eq(sum(oks))

        # ---- stage X2: the end-of-step state (UPD; DFAU sets U only, V is not used again) ---
        # (ns is never read back sooner: its next reader is the following PRE scan)
        tr = self.trace
        nsw = Signal(nsword)
        upd = x2.op == OP_UPD
        for l in range(P):
            lk = x2_lkin[l] - x2_lksh[l]
            with m.If(x2_fire):                # FIRE: reset, keep the gate, record the spike
                m.d.comb += [wkw2[l].acc.eq(Mux(x2_fs[l], x2_fvr[l], x2_fv[l])),
                             wkw2[l].g.eq(x2_g[l]), wkw2[l].s.eq(x2_fs[l])]
            with m.Else():                     # PRE: the leaked V0 and the gate
                m.d.comb += [wkw2[l].acc.eq(lk), wkw2[l].g.eq(x2_g[l])]
            un = sat(Mux(upd, lk, 0) + self.proj[l], smin, smax)
            m.d.comb += [nsw[l].v.eq(Mux(upd, x2_v[l], 0)), nsw[l].u.eq(un),
                         tr.v[l].eq(x2_v[l]), tr.u[l].eq(un), tr.s[l].eq(x2_s[l])]
        m.d.comb += [ns.wr_addr.eq(x2.saddr), ns.wr_data.eq(nsw), ns.wr_en.eq(x2.valid)]
        # PRE: d (the dither offset steps as X2 finishes a block)
        dw = Signal(dword)
        for l in range(P):
            dd = (x2_sh[l] + self.dither[l])[32:32 + sb]
            m.d.comb += dw[l].eq(Mux(x2_dok[l], dd, 0))
        m.d.comb += [dm.wr_addr.eq(x2.saddr), dm.wr_data.eq(dw), dm.wr_en.eq(x2_pre)]
        with m.If(x2.valid & upd):
            m.d.comb += [tr.valid.eq(1), tr.layer.eq(x2.layer), tr.t.eq(x2.t),
                         tr.block.eq(x2.b)]

        # ---- stage Y: what FIRE's spikes change outside the lanes ----------------------------
        y = self.fire
        m.d.sync += [y.valid.eq(xv & (xs.op == OP_FIRE)), y.layer.eq(xs.layer),
                     y.block.eq(xs.b), y.s.eq(Cat(*spikes)), y.g.eq(Cat(*gates))]
        return m
