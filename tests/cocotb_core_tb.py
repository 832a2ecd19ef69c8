"""cocotb testbench: the Verilog of :class:`hdl.core.Core` against the golden model.

Run by ``tests/test_cocotb_core.py`` through ``cocotb_tools.runner`` (not collected by pytest
itself: the file name does not start with ``test_``). It drives the core exactly like
:class:`hdl.testing.CoreDriver` (registers, weight writes, presentations with the trace port
captured every cycle, weight read-back) and compares, after every sample, spikes, V and U of
every neuron at every step, the output counts, the prediction, all weights, the sample
counter and the cycle counts with :class:`sim.golden.GoldenModel` (``trace=True``).

Parameters come from environment variables set by the pytest function:

``SNN_COCOTB_CFG``      the configuration, JSON of ``Config.to_dict()``
``SNN_COCOTB_LANES``    ``P``
``SNN_COCOTB_MODES``    comma-separated modes, sample ``i`` uses ``modes[i % len(modes)]``
``SNN_COCOTB_SAMPLES``  number of presentations
``SNN_COCOTB_SEED``     seed of the weights, samples and labels
``SNN_COCOTB_LATENCY``  the core's ``weight_latency`` (default 1)

The ``trace`` port appears as ``trace_o``: the test wraps the core because ``trace`` clashes
with Verilator's ``Vtop::trace``. Drive and sample on the falling edge (the design is clocked on the rising edge): values
read at a falling edge are the settled outputs of the previous rising edge, values written
there are stable before the next one; this mirrors ``ctx.set`` / ``await ctx.tick()`` /
``ctx.get`` of the Amaranth testbench.
"""

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from hdl.core import (MODE_NAMES, _nblocks, cmd_layout, cycles_per_step, presentation_cycles,
                      reg_values, regs_layout, result_layout, trace_layout)
from hdl.testing import Trace
from spec.config import Config
from spec.fixed import encode
from sim.golden import GoldenModel
from amaranth.hdl import signed
from amaranth.lib import data

from tests.test_hdl_core import random_weights, sample

FIELDS = ("s_hid", "v_hid", "u_hid", "s_out", "v_out", "u_out")


def _u(sig):
    """Unsigned value of a port (1-bit ports read as ``Logic``, wider ones as ``LogicArray``;
    signed fields are decoded from the raw bits with the Amaranth layouts)."""
    v = sig.value
    return v.to_unsigned() if hasattr(v, "to_unsigned") else int(v)


def params():
    d = json.loads(os.environ["SNN_COCOTB_CFG"])
    cfg = Config.from_dict(d)
    P = int(os.environ["SNN_COCOTB_LANES"])
    modes = os.environ.get("SNN_COCOTB_MODES", "infer,erbp,dfa").split(",")
    n = int(os.environ.get("SNN_COCOTB_SAMPLES", "3"))
    seed = int(os.environ.get("SNN_COCOTB_SEED", "0"))
    latency = int(os.environ.get("SNN_COCOTB_LATENCY", "1"))
    return cfg, P, modes, n, seed, latency


class VerilogCoreDriver:
    """:class:`hdl.testing.CoreDriver` for the flattened Verilog ports, in cocotb."""

    def __init__(self, dut, cfg, P, latency=1):
        self.dut, self.cfg, self.P = dut, cfg, P
        self.read_latency = latency + 1       # Core.w_read_latency
        self.nb1, self.nb2 = _nblocks(cfg.n_hid, P), _nblocks(cfg.n_out, P)
        self.L_regs = regs_layout(cfg)
        self.L_cmd = cmd_layout(cfg)
        self.L_res = result_layout(cfg)
        self.L_tr = trace_layout(cfg, P)
        self.L_w = data.ArrayLayout(signed(cfg.w_bits), P)
        assert self.L_tr["valid"].offset == 0

    async def tick(self):
        await FallingEdge(self.dut.clk)

    async def reset(self):
        d = self.dut
        for name in ("cmd__valid", "x_in__valid", "result__ready", "w_we", "w_re",
                     "counter_we", "w_layer", "w_addr", "w_wdata", "x_in__payload",
                     "cmd__payload", "counter_wdata"):
            getattr(d, name).value = 0
        d.rst.value = 1
        for _ in range(3):
            await self.tick()
        d.rst.value = 0
        await self.tick()

    def set_registers(self, cfg):
        self.dut.regs.value = self.L_regs.const(reg_values(cfg)).as_bits()

    def _words(self, w, nb):
        P = self.P
        rows, cols = w.shape
        pad = np.zeros((rows, nb * P), np.int64)
        pad[:, :cols] = w
        return pad.reshape(rows * nb, P)

    async def write_weights(self, w1, w2):
        d = self.dut
        for layer, (w, nb) in enumerate(((w1, self.nb1), (w2, self.nb2))):
            d.w_layer.value = layer
            for addr, word in enumerate(self._words(np.asarray(w), nb)):
                d.w_addr.value = addr
                d.w_wdata.value = self.L_w.const([int(v) for v in word]).as_bits()
                d.w_we.value = 1
                await self.tick()
        d.w_we.value = 0

    async def read_weights(self):
        d, cfg, P = self.dut, self.cfg, self.P
        out = []
        for layer, (rows, cols, nb) in enumerate(((cfg.n_in, cfg.n_hid, self.nb1),
                                                   (cfg.n_hid, cfg.n_out, self.nb2))):
            d.w_layer.value = layer
            d.w_re.value = 1
            words = []
            lat = self.read_latency
            # one address a cycle; the word of address a shows lat cycles later
            for addr in range(rows * nb + lat - 1):
                d.w_addr.value = min(addr, rows * nb - 1)
                await self.tick()
                if addr >= lat - 1:
                    word = self.L_w.from_bits(_u(d.w_rdata))
                    words.append([int(word[l]) for l in range(P)])
            out.append(np.array(words, np.int64).reshape(rows, nb * P)[:, :cols])
        d.w_re.value = 0
        return out

    async def present(self, x, label=0, mode="infer", max_cycles=200_000):
        """Same protocol and return value as ``CoreDriver.present``."""
        d, cfg, P = self.dut, self.cfg, self.P
        for v in x:
            d.x_in__valid.value = 1
            d.x_in__payload.value = int(v)
            await self.tick()
        d.x_in__valid.value = 0
        d.cmd__valid.value = 1
        d.cmd__payload.value = self.L_cmd.const(
            {"mode": MODE_NAMES[mode], "label": int(label)}).as_bits()
        d.result__ready.value = 1
        tr = Trace(cfg)
        cycles = 0
        step_cycles = []
        last_step = 0
        started = False
        for _ in range(max_cycles):
            if started:
                cycles += 1
            elif _u(d.cmd__ready):
                started = True
                cycles = 1
            raw = _u(d.trace_o)
            if raw & 1:
                q = self.L_tr.from_bits(raw)
                t, layer, blk = int(q.t), int(q.layer), int(q.block)
                n = cfg.n_out if layer else cfg.n_hid
                s = int(q.s)
                for l in range(P):
                    j = blk * P + l
                    if j < n:
                        (tr.v_out if layer else tr.v_hid)[t, j] = int(q.v[l])
                        (tr.u_out if layer else tr.u_hid)[t, j] = int(q.u[l])
                        (tr.s_out if layer else tr.s_hid)[t, j] = (s >> l) & 1
                tr.seen[t, layer] += 1
            if _u(d.step_done):
                step_cycles.append(cycles - last_step)
                last_step = cycles
            done = _u(d.result__valid)
            res = self.L_res.from_bits(_u(d.result__payload)) if done else None
            await self.tick()
            d.cmd__valid.value = 0
            if done:
                counts = np.array([int(res.counts[k]) for k in range(cfg.n_out)])
                return tr, counts, int(res.pred), cycles, step_cycles
        raise AssertionError("the core did not finish the presentation")


@cocotb.test()
async def core_matches_golden(dut):
    cfg, P, modes, n_samples, seed, latency = params()
    rng = np.random.default_rng(seed)
    w1, w2 = random_weights(cfg, rng)
    gold = GoldenModel(cfg, w1, w2)
    xs = [sample(cfg, rng) for _ in range(n_samples)]
    labels = [int(rng.integers(0, cfg.n_out)) for _ in range(n_samples)]

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    drv = VerilogCoreDriver(dut, cfg, P, latency)
    await drv.reset()
    drv.set_registers(cfg)
    await drv.write_weights(w1, w2)

    diffs = []      # (sample, timestep, neuron, field, expected, got)
    other = []      # everything that is not per-neuron-per-step
    activity = dict(hid_spikes=0, u_nonzero=0, w_changed=0, sat=0)
    for i, (x, label) in enumerate(zip(xs, labels)):
        mode = modes[i % len(modes)]
        tr, counts, pred, cycles, steps = await drv.present(x, label, mode)
        w_before = (gold.w1.copy(), gold.w2.copy())
        res = gold.present(x, label, mode=mode, trace=True)
        tv = res.trace
        where = f"sample {i} ({mode}, P={P}, L={latency})"
        for field in FIELDS:
            a, b = getattr(tv, field), getattr(tr, field)
            for t, j in zip(*np.nonzero(a != b)):
                diffs.append((i, int(t), int(j), field, int(a[t, j]), int(b[t, j])))
        if not (tr.seen == [drv.nb1, drv.nb2]).all():
            other.append(f"{where}: trace blocks per step {tr.seen.tolist()}")
        if not np.array_equal(counts, res.counts) or pred != res.pred:
            other.append(f"{where}: counts {counts.tolist()} pred {pred}, golden "
                         f"{res.counts.tolist()} {res.pred}")
        rw1, rw2 = await drv.read_weights()
        for name, a, b in (("W1", gold.w1, rw1), ("W2", gold.w2, rw2)):
            bad = np.argwhere(a != b)
            if len(bad):
                first = [(int(r), int(c), int(a[r, c]), int(b[r, c])) for r, c in bad[:5]]
                other.append(f"{where}: {len(bad)} {name} differences, first "
                             f"(row, col, expected, got): {first}")
        sc = _u(dut.sample_counter)
        if sc != gold.sample_counter:
            other.append(f"{where}: sample counter {sc}, golden {gold.sample_counter}")
        s_in = encode(cfg, x).sum(1)
        s_hid = tv.s_hid.sum(1)
        want = [cycles_per_step(cfg, P, int(s_in[t]), int(s_hid[t]), latency)
                for t in range(cfg.timesteps)]
        want_total = presentation_cycles(cfg, P, mode, s_in, s_hid, latency)
        if steps[1:] != want[1:] or cycles != want_total:
            other.append(f"{where}: cycles {cycles} steps {steps}, formula {want_total} {want}")
        activity["hid_spikes"] += int(tv.s_hid.sum())
        activity["u_nonzero"] += int((tv.u_hid != 0).sum() + (tv.u_out != 0).sum())
        activity["w_changed"] += int((gold.w1 != w_before[0]).sum()
                                     + (gold.w2 != w_before[1]).sum())
        activity["sat"] += int(np.isin(tv.v_hid, [cfg.s_min, cfg.s_max]).sum()
                               + np.isin(tv.u_hid, [cfg.s_min, cfg.s_max]).sum()
                               + np.isin(tv.u_out, [cfg.s_min, cfg.s_max]).sum()
                               + np.isin(gold.w1, [cfg.w_min, cfg.w_max]).sum())

    dut._log.info("P=%d, %d samples, modes %s: activity %s", P, n_samples, modes, activity)
    out = os.environ.get("SNN_COCOTB_ACTIVITY")
    if out:
        with open(out, "w") as f:
            json.dump(activity, f)
    msg = []
    if diffs:
        msg.append(f"{len(diffs)} trace differences (sample, timestep, neuron, field, "
                   f"expected, got), first: {diffs[:8]}")
    msg += other[:10]
    if len(other) > 10:
        msg.append(f"... and {len(other) - 10} more")
    assert not msg, "\n".join(msg)
