"""Simulation helpers for the cores: run an Amaranth simulation (with an optional VCD dump)
and drive a :class:`hdl.core.Core` from an async testbench (load weights and samples, run a
presentation, collect the per-step trace, read the weights back).

The RTL tests (``tests/test_hdl_*.py``) use these so that a test reads "run RTL, run golden,
compare"; they are kept next to the cores so a virtual board or a bench can reuse them.
"""

import os

import numpy as np
from amaranth.sim import Simulator

from .core import MODE_NAMES, reg_values

__all__ = ["run_sim", "CoreDriver", "Trace"]


def run_sim(dut, testbench, *, name="dut"):
    """Simulate ``dut`` with a 1 MHz ``sync`` clock and one async testbench.

    When the environment variable ``SNN_VCD`` is set, a waveform is written to that path
    (with ``name`` inserted before the extension so several tests do not overwrite each
    other).
    """
    sim = Simulator(dut)
    try:
        sim.add_clock(1e-6)
    except NameError:
        pass  # purely combinational design: no sync domain to clock
    sim.add_testbench(testbench)
    path = os.environ.get("SNN_VCD")
    if path:
        root, ext = os.path.splitext(path)
        with sim.write_vcd(f"{root}-{name}{ext or '.vcd'}"):
            sim.run()
    else:
        sim.run()



class Trace:
    """Per-step state reported by the core's trace port, shaped like ``sim.golden.Trace``."""

    def __init__(self, cfg):
        T = cfg.timesteps
        self.v_hid = np.zeros((T, cfg.n_hid), np.int64)
        self.u_hid = np.zeros((T, cfg.n_hid), np.int64)
        self.s_hid = np.zeros((T, cfg.n_hid), np.int64)
        self.v_out = np.zeros((T, cfg.n_out), np.int64)
        self.u_out = np.zeros((T, cfg.n_out), np.int64)
        self.s_out = np.zeros((T, cfg.n_out), np.int64)
        self.seen = np.zeros((T, 2), np.int64)   # blocks reported per (step, layer)


class CoreDriver:
    """Async helpers driving a :class:`hdl.core.Core` from an Amaranth testbench."""

    def __init__(self, dut):
        self.dut = dut
        self.cfg = dut.cfg
        self.P = dut.lanes

    async def set_registers(self, ctx, cfg):
        ctx.set(self.dut.regs, reg_values(cfg))

    def _words(self, w, nb):
        """Rows of ``w`` packed ``P`` per word (padding lanes 0): word ``row * nb + b``."""
        P = self.P
        rows, cols = w.shape
        pad = np.zeros((rows, nb * P), np.int64)
        pad[:, :cols] = w
        return pad.reshape(rows * nb, P)

    async def write_weights(self, ctx, w1, w2):
        dut = self.dut
        for layer, (w, nb) in enumerate(((w1, dut.nb1), (w2, dut.nb2))):
            ctx.set(dut.w_layer, layer)
            for addr, word in enumerate(self._words(np.asarray(w), nb)):
                ctx.set(dut.w_addr, addr)
                ctx.set(dut.w_wdata, [int(v) for v in word])
                ctx.set(dut.w_we, 1)
                await ctx.tick()
        ctx.set(dut.w_we, 0)

    async def read_weights(self, ctx):
        dut, cfg, P = self.dut, self.cfg, self.P
        out, pads = [], []
        for layer, (rows, cols, nb) in enumerate(((cfg.n_in, cfg.n_hid, dut.nb1),
                                                   (cfg.n_hid, cfg.n_out, dut.nb2))):
            ctx.set(dut.w_layer, layer)
            ctx.set(dut.w_re, 1)
            words = []
            lat = dut.w_read_latency
            # one address a cycle; the word of address a shows lat cycles later
            for addr in range(rows * nb + lat - 1):
                ctx.set(dut.w_addr, min(addr, rows * nb - 1))
                await ctx.tick()
                if addr >= lat - 1:
                    words.append([ctx.get(dut.w_rdata)[l] for l in range(P)])
            full = np.array(words, np.int64).reshape(rows, nb * P)
            out.append(full[:, :cols])
            pads.append(full[:, cols:])
        ctx.set(dut.w_re, 0)
        self.padding = pads  # the padding lanes, for tests that they stay as written
        return out

    async def present(self, ctx, x, label=0, mode="infer", max_cycles=200_000):
        """Load ``x``, run one presentation, collect the trace.

        Returns ``(trace, counts, pred, cycles, step_cycles)`` where ``cycles`` counts from
        the cycle the command is accepted to the cycle the result is taken, inclusive. The
        sum of ``syn_events`` over the presentation is left in ``self.events``.
        """
        dut, cfg, P = self.dut, self.cfg, self.P
        for v in x:
            ctx.set(dut.x_in.valid, 1)
            ctx.set(dut.x_in.payload, int(v))
            await ctx.tick()
        ctx.set(dut.x_in.valid, 0)
        ctx.set(dut.cmd.valid, 1)
        ctx.set(dut.cmd.payload, {"mode": MODE_NAMES[mode], "label": int(label)})
        ctx.set(dut.result.ready, 1)
        tr = Trace(cfg)
        cycles = 0
        step_cycles = []
        last_step = 0
        started = False
        self.events = 0
        for _ in range(max_cycles):
            if started:
                cycles += 1
            elif ctx.get(dut.cmd.ready):
                started = True
                cycles = 1
            q = ctx.get(dut.trace)
            if q.valid:
                t, layer, blk = q.t, q.layer, q.block
                n = cfg.n_out if layer else cfg.n_hid
                for l in range(P):
                    j = blk * P + l
                    if j < n:
                        (tr.v_out if layer else tr.v_hid)[t, j] = q.v[l]
                        (tr.u_out if layer else tr.u_hid)[t, j] = q.u[l]
                        (tr.s_out if layer else tr.s_hid)[t, j] = (q.s >> l) & 1
                tr.seen[t, layer] += 1
            self.events += ctx.get(dut.syn_events)
            if ctx.get(dut.step_done):
                step_cycles.append(cycles - last_step)
                last_step = cycles
            done = ctx.get(dut.result.valid)
            res = ctx.get(dut.result.payload) if done else None
            await ctx.tick()
            ctx.set(dut.cmd.valid, 0)
            if done:
                counts = np.array([res.counts[k] for k in range(cfg.n_out)])
                return tr, counts, int(res.pred), cycles, step_cycles
        raise AssertionError("the core did not finish the presentation")
