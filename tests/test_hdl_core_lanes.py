"""The neuron lanes against a Python twin of the neuron arithmetic of ``docs/spec.md``.

The test plays the sequencer and the pipeline: it issues blocks into ``q[L]`` (the token
reaches X a cycle later) in the order of the sequencer's phases, with random gaps inside a
phase and the sequencer's shortest gaps (two cycles) between phases, and feeds each block
its side inputs where the lanes take them: the weights ``w`` and the raster's gates with the
block in X, the dither offsets (``hash32(key ^ g) + n * 0x9E3779B9``, spec 3) and the error
projection ``proj`` with the block in X2; in every other cycle those inputs carry random
values. Per presentation the registers are random (within their ranges, spec 12):

* forward presentations (inference, eRBP, DFA's forward phase): every step ``PRE_H PRE_O``,
  ``INT_H`` (up to ``n_in`` events, each a scan of the hidden blocks with random weights),
  ``FIRE_H``, ``INT_O`` (up to ``n_hid`` events), ``FIRE_O``, ``UPD_H UPD_O``; the first
  step with the token's ``first`` set (``V0 = U0 = 0`` whatever ``ns`` holds);
* DFA's learning phase: ``DFAU_H DFAU_O``, then steps of ``PRE`` (the raster's gates) and
  ``INT`` of both layers.

The twin (per real neuron): PRE forms the gate (``bmin < V0 < bmax`` of the layer, or the
raster's gate in the replay), ``d = sround(U0, shift, r)`` if learning and the gate is open,
else 0 (the shift of the rule and layer from ``spec.rules``, ``r`` the top ``shift`` bits of
the dither, ``spec.fixed.dither``), and ``acc = V0 - (V0 >> leak_v)``; INT adds the weight;
FIRE saturates to ``state_bits``, fires at ``V >= theta`` and resets (subtract or zero);
UPD sets ``U = sat(U0 - (U0 >> leak_u) + proj)`` and stores ``(V, U)``; DFAU sets
``U = sat(proj)``, ``V = 0``. Checked every cycle, bit for bit: ``x_pre``, ``pre_done``,
``pre_last_hid``, ``w_update``, ``syn_events`` and ``d`` (the block in X), the FIRE blocks
in stage Y (``fire``: spikes and gates), and the UPD blocks' ``trace`` (``V``, ``U``, spikes);
padding lanes must never spike and never learn (``d = 0``); their ``V``, ``U`` and gates are
not specified and not compared. Lanes ``P = 1, 2, 4``, ``state_bits`` 6 to 24; the schedule
asserts it went through spikes and silences, both resets, ``V`` saturated both ways, ``U``
saturated, open and shut gates of both kinds and non-zero updates.

``state_bits`` 17 and 24 (``Config`` accepts up to 32) check the update's width.

Covered only by the whole-core tests (``tests/test_hdl_core.py``): the sequencer's actual
schedule (this test keeps to its ordering rules: a block that reads a word is issued at
least three cycles after the PRE or FIRE block that writes it in X2, and no INT block is in
X while a PRE or FIRE block is in X2; closer issue is outside the lanes' contract) and the
other components' inputs (the weights from ``Synapses`` with latency ``L``, the dither from
``Dither``, the projection from ``ErrorProjection``, the gates from ``Raster``), i.e. that
what is fed here is what the core feeds. Not observable at the lanes' ports, so not checked:
the accumulator of the DFA learning phase and the ``V = 0`` that ``DFAU`` writes (the
learning phase's gate is the raster's and its accumulator is never fired).
"""

from collections import Counter

import numpy as np
import pytest
from amaranth.hdl import Shape
from amaranth.lib import data

from hdl.core.lanes import NeuronLanes
from hdl.core.layouts import regs_layout
from hdl.core.pipeline import OP_DFAU, OP_FIRE, OP_INT, OP_PRE, OP_UPD
from hdl.testing import run_sim
from spec.config import Config
from spec.fixed import DOMAIN_DITHER, GOLDEN32, MASK32, dither, hash32, sat, sround, stream_key
from spec.registers import REGISTERS
from spec.rules import RULES

#: the sequencer's shortest gap between two phases (e.g. PRE_O's last block to INT_H's first)
PHASE_GAP = 2


def _random_regs(rng, cfg):
    """Random register values in their ranges (``spec.registers``), with thresholds and
    boxcar bounds on the scale the states reach (so that spikes, resets and both states of
    the gate are common) and update shifts mostly below ``state_bits`` (so that ``d`` is
    rarely 0), their range's ends included."""
    smin, smax = cfg.s_min, cfg.s_max
    regs = {}
    for r in REGISTERS:
        lo, hi = r.range(cfg)
        regs[r.name] = int(rng.integers(lo, hi + 1))
    for layer, fan_in in (("hid", cfg.n_in), ("out", cfg.n_hid)):
        scale = max(2, min(smax, fan_in * cfg.w_max // 2))
        regs[f"theta_{layer}"] = int(rng.integers(1, scale + 1)) if rng.random() < 0.8 else \
            int(rng.integers(1, smax + 1))
        u = rng.random()
        if u < 0.2:                                 # the widest box: V0 = smin, smax shut
            lo, hi = smin, smax
        elif u < 0.3:                               # shut
            lo = int(rng.integers(-scale, scale))
            hi = lo + int(rng.integers(0, 2))
        else:
            lo = int(rng.integers(-scale, scale // 2))
            hi = int(rng.integers(lo + 2, scale + 3))
        regs[f"bmin_{layer}"], regs[f"bmax_{layer}"] = lo, min(hi, smax)
    sb = cfg.state_bits
    for rule in RULES.values():
        for name in (rule.shift_hid, rule.shift_out):
            regs[name] = int(rng.choice([0, 24, int(rng.integers(0, 25)),
                                         *rng.integers(0, sb + 1, 3)]))
    return regs


def _pack(layout, value):
    """The bits of ``value`` (a dict for a struct layout, a list for an array layout)."""
    if isinstance(layout, data.ArrayLayout):
        w = Shape.cast(layout.elem_shape).width
        return sum((int(v) & ((1 << w) - 1)) << (i * w) for i, v in enumerate(value))
    return sum((int(value[name]) & ((1 << f.width) - 1)) << f.offset for name, f in layout)


class Schedule:
    """The cycles the test drives (one block or a gap each) and the twin that gives every
    block's expected outputs, computed in issue order (the phases' gaps keep the lanes'
    read-modify-writes in that order)."""

    def __init__(self, rng, cfg, lanes):
        self.rng, self.cfg, self.P = rng, cfg, lanes
        P = lanes
        self.nb = (-(-cfg.n_hid // P), -(-cfg.n_out // P))
        self.n = (cfg.n_hid, cfg.n_out)
        self.sb = cfg.state_bits
        self.cycles = []
        # the twin's memories, per layer and neuron: ns (V, U), the working set, d
        self.V = [np.zeros(n, np.int64) for n in self.n]
        self.U = [np.zeros(n, np.int64) for n in self.n]
        self.acc = [np.zeros(n, np.int64) for n in self.n]
        self.g = [np.zeros(n, np.int64) for n in self.n]
        self.s = [np.zeros(n, np.int64) for n in self.n]
        self.d = [np.zeros(n, np.int64) for n in self.n]
        self.seen = Counter()            # what the twin went through (the test's coverage)
        self.presentations = 0

    # ---- the cycles -------------------------------------------------------------------
    def _noise(self):
        """Side inputs of a cycle: random unless a block needs them."""
        rng, P, sb, cfg = self.rng, self.P, self.sb, self.cfg
        return {
            "w": [int(v) for v in rng.integers(cfg.w_min, cfg.w_max + 1, P)],
            "rs_hid_g": int(rng.integers(0, 1 << P)), "rs_out_g": int(rng.integers(0, 1 << P)),
            "dither": [int(v) for v in rng.integers(0, 1 << 32, P, dtype=np.uint64)],
            "proj": [int(v) for v in rng.integers(-(1 << sb), 1 << sb, P)],
        }

    def _token(self, **fields):
        rng, nb1, nb2 = self.rng, *self.nb
        tok = {"valid": 0, "op": int(rng.integers(0, 5)), "layer": int(rng.integers(0, 2)),
               "b": int(rng.integers(0, max(nb1, nb2, 2))),
               "saddr": int(rng.integers(0, max(nb1 + nb2, 2))),
               "waddr": 0, "first": int(rng.integers(0, 2)),
               "t": int(rng.integers(0, max(self.cfg.timesteps, 2)))}
        tok.update(fields)
        return tok

    def gap(self, n):
        for _ in range(n):
            self.cycles.append({"tok": self._token(), **self.mode, **self._noise()})

    def _block(self, op, layer, b, first, t, **side):
        if self.rng.random() < 0.2:                  # a random gap inside the phase
            self.gap(int(self.rng.integers(1, 3)))
        tok = self._token(valid=1, op=op, layer=layer, b=b, first=first, t=t,
                          saddr=layer * self.nb[0] + b)
        cyc = {"tok": tok, **self.mode, **self._noise(), **side}
        self.cycles.append(cyc)
        return cyc

    # ---- the twin, one block at a time ------------------------------------------------
    def _lanes(self, layer, b):
        """(lane, neuron) of the real lanes of block ``b``."""
        return [(l, b * self.P + l) for l in range(self.P) if b * self.P + l < self.n[layer]]

    def _start(self, layer, j, first):
        return (0, 0) if first else (int(self.V[layer][j]), int(self.U[layer][j]))

    def pre(self, layer, b, first, t, g):
        cfg, regs = self.cfg, self.regs
        replay, learn = self.mode["replay"], self.mode["learn"]
        rule = RULES["dfa" if replay else "erbp"]
        shift = regs[rule.shift_out if layer else rule.shift_hid]
        bmin, bmax = (regs["bmin_out"], regs["bmax_out"]) if layer else \
            (regs["bmin_hid"], regs["bmax_hid"])
        cyc = self._block(OP_PRE, layer, b, first, t)
        key = stream_key(regs["seed"], DOMAIN_DITHER)
        rs = cyc["rs_out_g"] if layer else cyc["rs_hid_g"]
        dcfg = cfg.replace(seed=regs["seed"])
        for l, j in self._lanes(layer, b):
            n = j + (cfg.n_hid if layer else 0)             # spec 3: the neuron number
            cyc["dither"][l] = (int(hash32(key ^ g)) + n * GOLDEN32) & MASK32
            v0, u0 = self._start(layer, j, first)
            gate = (rs >> l) & 1 if replay else int(bmin < v0 < bmax)
            r = int(dither(dcfg, g, n, shift))
            self.d[layer][j] = int(sround(u0, shift, r)) if learn and gate else 0
            self.seen[f"gate {'raster' if replay else 'box'} {gate}"] += 1
            self.seen["d != 0"] += self.d[layer][j] != 0
            self.acc[layer][j] = v0 - (v0 >> regs["leak_v"])
            self.g[layer][j], self.s[layer][j] = gate, 0
        cyc["x"] = {"x_pre": 1, "w_update": 0, "syn_events": 0}
        cyc["y"] = {"pre_done": 1, "pre_last_hid": int(layer == 0 and b == self.nb[0] - 1),
                    "fire": None, "trace": None}

    def integrate(self, layer, b, first, t):
        cyc = self._block(OP_INT, layer, b, first, t)
        lo, hi = self.w_range
        if self.rng.random() < 0.3:                  # the weights' extremes: saturation
            cyc["w"] = [int(v) for v in self.rng.choice([lo, hi], self.P)]
        else:
            cyc["w"] = [int(v) for v in self.rng.integers(lo, hi + 1, self.P)]
        real = self._lanes(layer, b)
        d = [0] * self.P                              # padding lanes learn nothing
        for l, j in real:
            d[l] = int(self.d[layer][j])
            self.acc[layer][j] += cyc["w"][l]
        cyc["x"] = {"x_pre": 0, "w_update": self.mode["learn"], "syn_events": len(real),
                    "d": d}
        cyc["y"] = {"pre_done": 0, "fire": None, "trace": None}

    def fire(self, layer, b, first, t):
        regs, cfg = self.regs, self.cfg
        theta = regs["theta_out"] if layer else regs["theta_hid"]
        cyc = self._block(OP_FIRE, layer, b, first, t)
        s_mask = g_mask = real_mask = 0
        for l, j in self._lanes(layer, b):
            v = int(sat(self.acc[layer][j], cfg.s_min, cfg.s_max))
            s = int(v >= theta)
            if s:
                v = 0 if regs["reset_zero"] else v - theta
            self.seen[f"spike {s}"] += 1
            self.seen[f"reset {regs['reset_zero']}"] += s
            self.seen["V saturates low"] += self.acc[layer][j] < cfg.s_min
            self.seen["V saturates high"] += self.acc[layer][j] > cfg.s_max
            self.acc[layer][j], self.s[layer][j] = v, s
            s_mask |= s << l
            g_mask |= int(self.g[layer][j]) << l
            real_mask |= 1 << l
        cyc["x"] = {"x_pre": 0, "w_update": 0, "syn_events": 0}
        cyc["y"] = {"pre_done": 0, "fire": (layer, b, s_mask, g_mask, real_mask),
                    "trace": None}

    def update(self, layer, b, first, t, dfa=False):
        regs, cfg = self.regs, self.cfg
        cyc = self._block(OP_DFAU if dfa else OP_UPD, layer, b, first, t)
        v_exp, u_exp, s_mask = {}, {}, 0
        for l, j in self._lanes(layer, b):
            _, u0 = self._start(layer, j, first)
            if dfa:        # DFA: U takes the projection as it is; V is not used again
                u = int(sat(cyc["proj"][l], cfg.s_min, cfg.s_max))
                self.V[layer][j] = 0
            else:
                u = int(sat(u0 - (u0 >> regs["leak_u"]) + cyc["proj"][l], cfg.s_min,
                            cfg.s_max))
                self.V[layer][j] = self.acc[layer][j]
            self.U[layer][j] = u
            self.seen["U saturates"] += u in (cfg.s_min, cfg.s_max)
            v_exp[l], u_exp[l] = int(self.V[layer][j]), u
            s_mask |= int(self.s[layer][j]) << l
        cyc["x"] = {"x_pre": 0, "w_update": 0, "syn_events": 0}
        cyc["y"] = {"pre_done": 0, "fire": None,
                    "trace": None if dfa else (layer, t, b, v_exp, u_exp, s_mask)}

    # ---- the phases ----------------------------------------------------------------------
    def step(self, t, first, g, forward=True):
        rng, cfg, nb1, nb2 = self.rng, self.cfg, *self.nb
        for layer, nb in ((0, nb1), (1, nb2)):
            for b in range(nb):
                self.pre(layer, b, first, t, g)
        self.gap(PHASE_GAP + int(rng.integers(0, 2)))
        for layer, nb, fan_in in ((0, nb1, cfg.n_in), (1, nb2, cfg.n_hid)):
            events = fan_in if rng.random() < 0.3 else int(rng.integers(0, fan_in + 1))
            for _ in range(events):
                for b in range(nb):
                    self.integrate(layer, b, first, t)
            self.gap(PHASE_GAP + int(rng.integers(0, 2)))
            if forward:
                for b in range(nb):
                    self.fire(layer, b, first, t)
                self.gap(PHASE_GAP + int(rng.integers(0, 2)))
        if forward:
            for layer, nb in ((0, nb1), (1, nb2)):
                for b in range(nb):
                    self.update(layer, b, first, t)
            self.gap(PHASE_GAP + int(rng.integers(0, 2)))

    def presentation(self, learn, steps, dfa_steps=0):
        """A forward pass of ``steps`` steps, then (``dfa_steps``) DFA's learning phase."""
        rng = self.rng
        self.regs = _random_regs(rng, self.cfg)
        # the weights of the presentation, in turn: mostly excitatory (spikes), of either
        # sign, mostly inhibitory (V saturates at the bottom)
        wmin, wmax = self.cfg.w_min, self.cfg.w_max
        self.w_range = [(-1, wmax), (wmin, wmax), (wmin, 1)][self.presentations % 3]
        self.regs["reset_zero"] = self.presentations % 2       # both resets, in turn
        self.presentations += 1
        self.mode = {"learn": learn, "replay": 0, "regs": self.regs}
        base = int(rng.integers(0, 1 << 32))
        for t in range(steps):
            self.step(t, int(t == 0), (base + t) & MASK32)
        if dfa_steps:
            self.mode = {"learn": 1, "replay": 1, "regs": self.regs}
            self.gap(PHASE_GAP)
            for layer, nb in ((0, self.nb[0]), (1, self.nb[1])):
                for b in range(nb):
                    self.update(layer, b, 0, steps - 1, dfa=True)
            self.gap(PHASE_GAP)
            for t in range(dfa_steps):
                self.step(t, 0, (base + t) & MASK32, forward=False)
        self.gap(PHASE_GAP)


def _check_lanes(lanes, n_in, n_hid, n_out, sb, wb, T, *, v_saturates=True):
    """Five presentations (eRBP; DFA's forward pass and learning phase; inference or eRBP on
    the stale state; eRBP; DFA) through the lanes and the twin, compared every cycle."""
    rng = np.random.default_rng(lanes * 1000 + sb * 10 + n_hid)
    cfg = Config(n_in=n_in, n_hid=n_hid, n_out=n_out, state_bits=sb, w_bits=wb, timesteps=T,
                 theta_hid=1, theta_out=1, bmin_hid=-1, bmax_hid=1, bmin_out=-1, bmax_out=1,
                 err_shift_out=0, err_shift_hid=0, init_std_hid=1, init_mean_hid=1,
                 init_std_out=1)
    P = lanes
    sch = Schedule(rng, cfg, P)
    sch.presentation(learn=1, steps=T)                       # eRBP
    sch.presentation(learn=0, steps=T, dfa_steps=T)          # DFA: forward, then replay
    sch.presentation(learn=int(rng.integers(0, 2)), steps=T)  # first: ns holds stale state
    sch.presentation(learn=1, steps=T)
    sch.presentation(learn=0, steps=T, dfa_steps=T)
    cycles = sch.cycles
    # the schedule went through every case of the arithmetic
    cases = ["spike 0", "spike 1", "reset 0", "reset 1", "U saturates", "gate box 0",
             "gate box 1", "gate raster 0", "gate raster 1", "d != 0"]
    if v_saturates:
        cases += ["V saturates low", "V saturates high"]
    if not all(sch.seen[k] for k in cases):
        pytest.fail(f"the schedule missed some of {cases}: {sch.seen}")
    end = {"tok": sch._token(), **sch.mode, **sch._noise()}
    dut = NeuronLanes(cfg, lanes=P, regs=regs_layout(cfg))
    bad = []

    def at(c):
        return cycles[c] if 0 <= c < len(cycles) else end

    # the inputs' bits, packed once (setting a port's whole value is much faster)
    ports = {"tok": dut.qL, "w": dut.w, "dither": dut.dither, "proj": dut.proj}
    for cyc in [*cycles, end]:
        cyc["raw"] = {k: _pack(port.shape(), cyc[k]) for k, port in ports.items()}

    async def tb(ctx):
        regs = None
        for c in range(len(cycles) + 3):
            cq, cx, cy = at(c), at(c - 1), at(c - 2)     # the blocks in q[L], X, X2 (Y)
            if cq["regs"] is not regs:
                regs = cq["regs"]
                ctx.set(dut.regs, regs)
            ctx.set(dut.learn, cq["learn"])
            ctx.set(dut.replay, cq["replay"])
            ctx.set(dut.qL.as_value(), cq["raw"]["tok"])
            ctx.set(dut.x.as_value(), cx["raw"]["tok"])
            ctx.set(dut.w.as_value(), cx["raw"]["w"])
            ctx.set(dut.rs_hid_g, cx["rs_hid_g"])
            ctx.set(dut.rs_out_g, cx["rs_out_g"])
            ctx.set(dut.dither.as_value(), cy["raw"]["dither"])
            ctx.set(dut.proj.as_value(), cy["raw"]["proj"])
            # stage X
            want = cx.get("x", {"x_pre": 0, "w_update": 0, "syn_events": 0})
            got = {k: ctx.get(getattr(dut, k)) for k in ("x_pre", "w_update", "syn_events")}
            if "d" in want:
                dv = ctx.get(dut.d)
                got["d"] = [dv[l] for l in range(P)]
            if got != want:
                bad.append((c, "X", cx["tok"], got, want))
            # stage X2 and Y
            want = cy.get("y", {"pre_done": 0, "fire": None, "trace": None})
            pre_done = ctx.get(dut.pre_done)
            if pre_done != want["pre_done"] or (
                    pre_done and ctx.get(dut.pre_last_hid) != want["pre_last_hid"]):
                bad.append((c, "pre_done", cy["tok"], pre_done, want))
            f = ctx.get(dut.fire)
            if want["fire"] is None:
                if f.valid:
                    bad.append((c, "fire.valid", cy["tok"]))
            else:
                layer, b, s, g, real = want["fire"]
                got = (f.valid, f.layer, f.block, f.s, f.g & real)
                if got != (1, layer, b, s, g):
                    bad.append((c, "fire", cy["tok"], got, (1, layer, b, s, g)))
            tr = ctx.get(dut.trace)
            if want["trace"] is None:
                if tr.valid:
                    bad.append((c, "trace.valid", cy["tok"]))
            else:
                layer, t, b, v, u, s = want["trace"]
                got = (tr.valid, tr.layer, tr.t, tr.block, {l: tr.v[l] for l in v},
                       {l: tr.u[l] for l in u}, tr.s)
                if got != (1, layer, t, b, v, u, s):
                    bad.append((c, "trace", cy["tok"], got, want["trace"]))
            await ctx.tick()

    run_sim(dut, tb, name=f"lanes{P}")
    assert not bad, (f"{len(bad)} mismatches in {len(cycles)} cycles (cycle, stage, block, "
                     f"rtl, twin), first: {bad[:4]}")


# (fan-ins of twice the state range in weights: V saturates both ways; 16-bit states and
# weights: the widest product U0 << 32 of the update the lanes support)
@pytest.mark.parametrize("lanes,n_in,n_hid,n_out,sb,wb,T", [
    (1, 8, 5, 2, 6, 4, 5), (2, 8, 7, 3, 8, 6, 4), (4, 5, 9, 6, 7, 6, 3),
    (4, 3, 4, 6, 16, 16, 3)])
def test_lanes_match_the_neuron_arithmetic(lanes, n_in, n_hid, n_out, sb, wb, T):
    _check_lanes(lanes, n_in, n_hid, n_out, sb, wb, T)


# states wider than 16 bits: U0 << (32 - shift) needs state_bits + 32 bits (it once had 48)
@pytest.mark.parametrize("sb", [17, 24])
def test_lanes_update_with_states_wider_than_16_bits(sb):
    _check_lanes(2, 3, 4, 3, sb, 16, 3, v_saturates=False)
