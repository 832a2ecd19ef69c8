"""Simulation helpers for the cores: run an Amaranth simulation (with an optional VCD dump)
and drive a :class:`hdl.core.Core` through its ports (registers, the host weight port, a
sample on ``x_in``, a command on ``cmd``, the result, the per-step trace, cycle and event
counts), with random idle cycles and back-pressure on its streams.

:class:`CoreDriver` is written against a small adapter (``get``, ``set``, ``tick``), so the
same driver runs in the Amaranth simulator (:class:`AmaranthAdapter`) and on the generated
Verilog under cocotb (``tests.cocotb_util.CocotbAdapter``). Port names are the paths of the
component's signature joined with dots (``"cmd.valid"``); a trailing path inside a port's
data layout reads a field (``"trace.valid"``). Values are ints, or ``data.Const`` for ports
with a data layout (``set`` takes what ``Layout.const`` takes).

Kept next to the cores so that a virtual board or a bench can reuse them.
"""

import os
import random
from dataclasses import dataclass, field

import numpy as np
from amaranth.sim import Simulator

from spec.packing import pack_rows

from .core import MODE_NAMES, reg_values

__all__ = [
    "AmaranthAdapter",
    "CoreDriver",
    "Presentation",
    "Trace",
    "no_stalls",
    "random_stalls",
    "run_sim",
]


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


class AmaranthAdapter:
    """The ports of component ``dut`` in an Amaranth async testbench (``ctx``).

    ``get`` is the settled value after the last ``set`` (``ctx.get``); ``tick`` waits for
    the next active edge of ``sync``.
    """

    def __init__(self, ctx, dut):
        self.ctx = ctx
        self._ports = {".".join(map(str, path)): value
                       for path, _flow, value in dut.signature.flatten(dut)}
        self._cache = {}

    def _resolve(self, name):
        try:
            return self._cache[name]
        except KeyError:
            pass
        if name in self._ports:
            value = self._ports[name]
        else:
            head, _, member = name.rpartition(".")
            if not head:
                raise KeyError(f"no port {name!r}")
            parent = self._resolve(head)
            value = parent[int(member)] if member.isdigit() else getattr(parent, member)
        self._cache[name] = value
        return value

    def get(self, name):
        return self.ctx.get(self._resolve(name))

    def set(self, name, value):
        self.ctx.set(self._resolve(name), value)

    async def tick(self):
        await self.ctx.tick()


def random_stalls(seed, probability=0.25):
    """An endless sequence of booleans, ``True`` with ``probability``, seeded with ``seed``
    (an int or a string): a stall generator (as cocotbext-axi's idle and back-pressure
    generators; ``True`` holds a ``valid`` low or a ``ready`` low for one cycle)."""
    rng = random.Random(seed)
    while True:
        yield rng.random() < probability


def no_stalls():
    while True:
        yield False


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


@dataclass
class Presentation:
    """What the core reported for one presentation.

    ``cycles`` counts from the cycle the command is accepted to the cycle the result is
    taken, inclusive, without the cycles the result waited for ``ready`` (those are
    ``stalls["result"]``), so it is the ``docs/cycles.md`` count under any back-pressure;
    ``step_cycles[t]`` are the cycles from the end of step ``t - 1`` (or the acceptance) to
    the end of step ``t``; ``events`` is the sum of ``syn_events``. ``stalls`` counts the
    idle cycles inserted on ``x_in`` and ``cmd`` (before the presentation) and the cycles
    of back-pressure on a valid ``result``.
    """
    trace: Trace
    counts: np.ndarray
    pred: int
    cycles: int
    step_cycles: list
    events: int
    stalls: dict = field(default_factory=dict)


class CoreDriver:
    """Drive a :class:`hdl.core.Core` through an adapter (``get``, ``set``, ``tick``).

    Parameters
    ----------
    core : hdl.core.Core
        The component driven (for its parameters: ``cfg``, ``lanes``, ``nb1``, ``nb2``,
        ``w_read_latency``); the simulation behind ``io`` may be its Verilog.
    io : AmaranthAdapter or tests.cocotb_util.CocotbAdapter
        ``get(name)``, ``set(name, value)`` and ``async tick()`` on the core's ports.
    idle : iterator of bool, optional
        ``True`` holds ``x_in.valid`` / ``cmd.valid`` low for a cycle (default: never).
    backpressure : iterator of bool, optional
        ``True`` holds ``result.ready`` low for a cycle (default: never).

    Inputs are driven before a ``tick`` and outputs sampled before it: a handshake
    completes at the edge after a cycle whose ``valid`` and ``ready`` were both high (the
    core's ``ready`` signals do not depend on ``valid``).
    """

    def __init__(self, core, io, *, idle=None, backpressure=None):
        self.core, self.io = core, io
        self.cfg, self.P = core.cfg, core.lanes
        self.idle = idle if idle is not None else no_stalls()
        self.backpressure = backpressure if backpressure is not None else no_stalls()
        self.stalls = {"x_in": 0, "cmd": 0, "result": 0}   # over the driver's life
        self.padding = None

    @classmethod
    def with_stalls(cls, core, io, seed, probability=0.25):
        """A driver with seeded random idle cycles and back-pressure (the standard runs)."""
        return cls(core, io, idle=random_stalls(f"{seed}:idle", probability),
                   backpressure=random_stalls(f"{seed}:backpressure", probability))

    def set_registers(self, cfg):
        self.io.set("regs", reg_values(cfg))

    async def set_counter(self, value):
        """Preset the sample counter (resuming from a checkpoint)."""
        io = self.io
        io.set("counter_wdata", value)
        io.set("counter_we", 1)
        await io.tick()
        io.set("counter_we", 0)

    def sample_counter(self):
        return self.io.get("sample_counter")

    def _words(self, w, nb):
        """Rows of ``w`` packed ``P`` per word (``spec.packing``): word ``row * nb + b``."""
        words = pack_rows(w, self.P)
        assert len(words) == w.shape[0] * nb
        return words

    async def write_weights(self, w1, w2):
        io, core = self.io, self.core
        for layer, (w, nb) in enumerate(((w1, core.nb1), (w2, core.nb2))):
            io.set("w_layer", layer)
            for addr, word in enumerate(self._words(np.asarray(w), nb)):
                io.set("w_addr", addr)
                io.set("w_wdata", [int(v) for v in word])
                io.set("w_we", 1)
                await io.tick()
        io.set("w_we", 0)

    async def read_weights(self):
        """``[W1, W2]`` read back through the host port; the padding lanes of each layer's
        last block are left in ``self.padding`` (for tests that they stay as written)."""
        io, core, cfg, P = self.io, self.core, self.cfg, self.P
        out, pads = [], []
        for layer, (rows, cols, nb) in enumerate(((cfg.n_in, cfg.n_hid, core.nb1),
                                                   (cfg.n_hid, cfg.n_out, core.nb2))):
            io.set("w_layer", layer)
            io.set("w_re", 1)
            words = []
            lat = core.w_read_latency
            # one address a cycle; the word of address a shows lat cycles later
            for addr in range(rows * nb + lat - 1):
                io.set("w_addr", min(addr, rows * nb - 1))
                await io.tick()
                if addr >= lat - 1:
                    word = io.get("w_rdata")
                    words.append([word[lane] for lane in range(P)])
            full = np.array(words, np.int64).reshape(rows, nb * P)
            out.append(full[:, :cols])
            pads.append(full[:, cols:])
        io.set("w_re", 0)
        self.padding = pads
        return out

    async def send_sample(self, x, max_cycles=10_000):
        """The intensities ``x`` on ``x_in`` (channel 0 first), with idle cycles."""
        io = self.io
        for v in x:
            io.set("x_in.payload", int(v))
            for _ in range(max_cycles):     # idle cycles, then valid until taken
                if not next(self.idle):
                    break
                io.set("x_in.valid", 0)
                self.stalls["x_in"] += 1
                await io.tick()
            io.set("x_in.valid", 1)
            for _ in range(max_cycles):
                taken = io.get("x_in.ready")
                await io.tick()
                if taken:
                    break
            else:
                raise AssertionError("x_in was not accepted")
        io.set("x_in.valid", 0)

    async def present(self, x, label=0, mode="infer", max_cycles=200_000):
        """Send ``x``, run one presentation, collect the trace: a :class:`Presentation`."""
        io, cfg, P = self.io, self.cfg, self.P
        before = dict(self.stalls)
        await self.send_sample(x)
        io.set("cmd.payload", {"mode": MODE_NAMES[mode], "label": int(label)})
        for _ in range(max_cycles):
            if not next(self.idle):
                break
            self.stalls["cmd"] += 1
            await io.tick()
        io.set("cmd.valid", 1)
        tr = Trace(cfg)
        cycles = events = last_step = 0
        step_cycles = []
        started = False
        last_ready = None
        for _ in range(max_cycles):
            accepted = not started and io.get("cmd.ready")
            started = started or accepted
            ready = not next(self.backpressure)
            if ready != last_ready:
                io.set("result.ready", ready)
                last_ready = ready
            if started:
                cycles += 1
            if io.get("trace.valid"):
                q = io.get("trace")
                t, layer, blk, s = q.t, q.layer, q.block, q.s
                n = cfg.n_out if layer else cfg.n_hid
                v, u = q.v, q.u
                for lane in range(P):
                    j = blk * P + lane
                    if j < n:
                        (tr.v_out if layer else tr.v_hid)[t, j] = v[lane]
                        (tr.u_out if layer else tr.u_hid)[t, j] = u[lane]
                        (tr.s_out if layer else tr.s_hid)[t, j] = (s >> lane) & 1
                tr.seen[t, layer] += 1
            events += io.get("syn_events")
            if io.get("step_done"):
                step_cycles.append(cycles - last_step)
                last_step = cycles
            done = io.get("result.valid")
            if done and not ready:
                self.stalls["result"] += 1
                cycles -= 1
                done = False
            res = io.get("result.payload") if done else None
            await io.tick()
            if accepted:
                io.set("cmd.valid", 0)
            if done:
                io.set("result.ready", 0)
                counts = np.array([res.counts[k] for k in range(cfg.n_out)])
                stalls = {k: self.stalls[k] - before[k] for k in self.stalls}
                return Presentation(tr, counts, int(res.pred), cycles, step_cycles, events,
                                    stalls)
        raise AssertionError("the core did not finish the presentation")
