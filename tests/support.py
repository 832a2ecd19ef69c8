"""Shared test support: configurations (small random, stress, the driver tests' network),
random weights and samples, seeds, the comparison of a presentation with the golden model,
and the standard run of the core tests (both tiers: the Amaranth simulator in
``tests/test_hdl_core.py``, the Verilog under cocotb in ``tests/cocotb_core_tb.py``).

Test modules import from here (or from fixtures in ``conftest.py``), never from each other.
"""

from typing import NamedTuple

import numpy as np

from sim.golden import GoldenModel
from spec.config import Config
from spec.cycles import cycles_per_step, presentation_cycles, synaptic_events
from spec.fixed import encode

__all__ = [
    "DRIVER_CFG",
    "STALL_PROBABILITY",
    "Mismatch",
    "Scoreboard",
    "activity",
    "compare_presentation",
    "format_mismatches",
    "random_weights",
    "run_presentations",
    "sample",
    "samples",
    "small_config",
    "stall_seed",
    "stress_config",
    "stress_weights",
]

#: Probability of an idle cycle on ``x_in`` / ``cmd`` and of back-pressure on ``result``
#: per cycle in the standard runs.
STALL_PROBABILITY = 0.25


# ---- configurations --------------------------------------------------------------------------
def small_config(rng, **over):
    """A small random configuration whose thresholds, widths and bounds make saturation,
    resets and closed gates happen within a few steps."""
    wb = int(rng.choice([4, 6]))
    sb = int(rng.choice([6, 8])) if wb == 4 else int(rng.choice([6, 9]))
    smax = (1 << (sb - 1)) - 1
    wmax = (1 << (wb - 1)) - 1
    kw = dict(
        n_in=int(rng.integers(4, 9)), n_hid=int(rng.integers(3, 7)), n_out=int(rng.integers(2, 4)),
        in_bits=4, w_bits=wb, state_bits=sb, timesteps=int(rng.integers(4, 9)),
        theta_hid=int(rng.integers(wmax // 2, 2 * wmax)), theta_out=int(rng.integers(2, wmax)),
        leak_v=int(rng.integers(0, 4)), leak_u=int(rng.integers(0, 4)),
        reset=str(rng.choice(["subtract", "zero"])), target_rate=int(rng.integers(4, 16)),
        err_shift_out=int(rng.integers(0, sb - 2)), err_shift_hid=int(rng.integers(0, sb - 3)),
        lr_shift_hid=int(rng.integers(0, sb)), lr_shift_out=int(rng.integers(0, sb)),
        bmin_hid=int(rng.integers(-smax, 0)), bmax_hid=int(rng.integers(1, smax)),
        bmin_out=int(rng.integers(-smax, 0)), bmax_out=int(rng.integers(1, smax)),
        dfa_shift_hid=int(rng.integers(0, 5)), dfa_shift_out=int(rng.integers(0, 4)),
        seed=int(rng.integers(0, 1 << 32)), init_std_hid=1, init_mean_hid=1, init_std_out=1,
    )
    kw["theta_hid"] = min(kw["theta_hid"], smax)
    kw.update(over)
    return Config(**kw)


def stress_config(**over):
    """Narrow states and large error gains: V saturates negative, U saturates both ways,
    weights are driven into their bounds, and gates close."""
    kw = dict(n_in=6, n_hid=5, n_out=3, in_bits=4, w_bits=6, state_bits=6, timesteps=8,
              theta_hid=20, theta_out=10, leak_v=3, leak_u=3, reset="subtract",
              target_rate=12, err_shift_out=4, err_shift_hid=2, lr_shift_hid=1,
              lr_shift_out=1, bmin_hid=-20, bmax_hid=25, bmin_out=-25, bmax_out=30,
              dfa_shift_hid=0, dfa_shift_out=0, seed=0xC0FFEE, init_std_hid=1,
              init_mean_hid=1, init_std_out=1)
    kw.update(over)
    return Config(**kw)


#: The host-driver tests' small network (``tests/test_driver.py``, the virtual board).
DRIVER_CFG = Config(n_in=12, n_hid=9, n_out=3, timesteps=8, theta_hid=300, theta_out=120,
                    bmin_hid=-400, bmax_hid=800, bmin_out=-400, bmax_out=800, init_std_hid=8,
                    init_mean_hid=4, init_std_out=8, target_rate=128, lr_shift_hid=4,
                    lr_shift_out=4, dfa_shift_hid=4, dfa_shift_out=4)


# ---- random data -----------------------------------------------------------------------------
def random_weights(cfg, rng):
    w1 = rng.integers(cfg.w_min // 2, cfg.w_max + 1, (cfg.n_in, cfg.n_hid))
    w2 = rng.integers(cfg.w_min, cfg.w_max + 1, (cfg.n_hid, cfg.n_out))
    return w1, w2


def stress_weights(cfg, rng):
    w1 = rng.integers(cfg.w_min, cfg.w_max + 1, (cfg.n_in, cfg.n_hid))
    w1[:, 0] = cfg.w_min                 # hidden 0 is driven to s_min
    w1[:, 1] = cfg.w_max                 # hidden 1 saturates at s_max before firing
    w2 = rng.integers(cfg.w_min, cfg.w_max + 1, (cfg.n_hid, cfg.n_out))
    return w1, w2


def sample(cfg, rng):
    """Intensities with a bias to high rates (and one always-firing channel)."""
    x = rng.integers(0, 1 << cfg.in_bits, cfg.n_in)
    x[rng.integers(0, cfg.n_in)] = (1 << cfg.in_bits) - 1
    return x


def samples(cfg, rng, n):
    """``n`` samples and ``n`` labels, in the order the core tests have always drawn them."""
    xs = [sample(cfg, rng) for _ in range(n)]
    labels = [int(rng.integers(0, cfg.n_out)) for _ in range(n)]
    return xs, labels


def stall_seed(seed):
    """The seed of a run's stall generators (apart from its data's)."""
    return f"stalls-{int(seed)}"


# ---- comparison with the golden model --------------------------------------------------------
TRACE_FIELDS = ("s_hid", "v_hid", "u_hid", "s_out", "v_out", "u_out")


class Mismatch(NamedTuple):
    """One difference between the core and the golden model. ``step`` and ``neuron`` are
    ``None`` where they do not apply; for weights ``neuron`` is ``(row, column)``, for the
    trace's block count it is the layer."""
    sample: int
    step: object
    neuron: object
    field: str
    expected: object
    got: object

    def __str__(self):
        where = [f"sample {self.sample}"]
        if self.step is not None:
            where.append(f"step {self.step}")
        if self.neuron is not None:
            where.append(f"neuron {self.neuron}")
        return f"{', '.join(where)}, {self.field}: expected {self.expected}, got {self.got}"


def _array_diffs(i, field, want, got, step=None):
    want, got = np.asarray(want), np.asarray(got)
    if want.shape != got.shape:
        return [Mismatch(i, step, None, f"{field} shape", want.shape, got.shape)]
    return [Mismatch(i, step, tuple(int(k) for k in idx) if len(idx) > 1 else int(idx[0]),
                     field, want[tuple(idx)].item(), got[tuple(idx)].item())
            for idx in np.argwhere(want != got)]


def compare_presentation(i, gold, res, rtl, *, mode, x, lanes, latency=1, weights=None,
                         padding=None, sample_counter=None, cycles=True):
    """Every difference between presentation ``i`` on the core and on the golden model.

    ``gold`` is the :class:`sim.golden.GoldenModel` after the presentation (its weights,
    sample counter and registers), ``res`` its result (``trace=True``), ``rtl`` the
    driver's :class:`hdl.testing.Presentation`. Optional: the weights read back, the padding
    lanes of the last blocks (must stay 0), the core's sample counter. With ``cycles``
    also the cycle counts of every step but the first and of the presentation and the
    synaptic events against the ``docs/cycles.md`` formulas.

    Returns :class:`Mismatch` records ordered by step, then layer, neuron and field.
    """
    cfg = gold.cfg
    tv, tr = res.trace, rtl.trace
    out = []
    for field in TRACE_FIELDS:
        for t, j in np.argwhere(getattr(tv, field) != getattr(tr, field)):
            out.append(Mismatch(i, int(t), int(j), field, int(getattr(tv, field)[t, j]),
                                int(getattr(tr, field)[t, j])))
    nb = [-(-cfg.n_hid // lanes), -(-cfg.n_out // lanes)]
    for t, layer in np.argwhere(tr.seen != nb):
        out.append(Mismatch(i, int(t), int(layer), "trace blocks", nb[layer],
                            int(tr.seen[t, layer])))
    order = {f: k for k, f in enumerate(TRACE_FIELDS)}
    out.sort(key=lambda m: (m.step, "out" in m.field, m.neuron,
                            order.get(m.field, len(order))))
    out += _array_diffs(i, "counts", res.counts, rtl.counts)
    if rtl.pred != res.pred:
        out.append(Mismatch(i, None, None, "pred", int(res.pred), int(rtl.pred)))
    if weights is not None:
        for name, want, got in (("W1", gold.w1, weights[0]), ("W2", gold.w2, weights[1])):
            out += _array_diffs(i, name, want, got)
    if padding is not None:
        for name, pad in zip(("W1", "W2"), padding):
            out += _array_diffs(i, f"{name} padding lane", np.zeros_like(pad), pad)
    if sample_counter is not None and sample_counter != gold.sample_counter:
        out.append(Mismatch(i, None, None, "sample counter", gold.sample_counter,
                            int(sample_counter)))
    if cycles:
        s_in = encode(cfg, x).sum(1)
        s_hid = tv.s_hid.sum(1)
        want = [cycles_per_step(cfg, lanes, int(s_in[t]), int(s_hid[t]), latency)
                for t in range(cfg.timesteps)]
        if len(rtl.step_cycles) != len(want):
            out.append(Mismatch(i, None, None, "steps", len(want), len(rtl.step_cycles)))
        else:     # the first step also counts the command's cycles
            out += [Mismatch(i, t, None, "step cycles", want[t], rtl.step_cycles[t])
                    for t in range(1, len(want)) if rtl.step_cycles[t] != want[t]]
        formula = presentation_cycles(cfg, lanes, mode, s_in, s_hid, latency)
        if rtl.cycles != formula:
            out.append(Mismatch(i, None, None, "cycles", formula, rtl.cycles))
        ev = synaptic_events(cfg, mode, s_in, s_hid)
        if rtl.events != ev:
            out.append(Mismatch(i, None, None, "synaptic events", ev, rtl.events))
    return out


def format_mismatches(mismatches, *, context=None, limit=8):
    """The assertion message: how many differences in how many samples, and the first
    ``limit`` (``context`` maps a sample to a description, e.g. its mode)."""
    if not mismatches:
        return "no differences"
    bad = sorted({m.sample for m in mismatches})
    fields = sorted({m.field for m in mismatches})
    lines = [(f"{len(mismatches)} difference(s) from the golden model in {len(bad)} "
              f"sample(s) {bad[:10]} (fields: {', '.join(fields)}); "
              f"first {min(limit, len(mismatches))}:")]
    for m in mismatches[:limit]:
        extra = f" [{context[m.sample]}]" if context and m.sample in context else ""
        lines.append(f"  {m}{extra}")
    return "\n".join(lines)


class Scoreboard:
    """Collects the mismatches of a run in order; :meth:`check` raises one assertion with
    their count and the first few."""

    def __init__(self, where=""):
        self.where = where
        self.mismatches = []
        self.context = {}

    def add(self, i, description, mismatches):
        self.context[i] = description
        self.mismatches += mismatches

    def message(self, limit=8):
        head = f"{self.where}: " if self.where else ""
        return head + format_mismatches(self.mismatches, context=self.context, limit=limit)

    def check(self):
        if self.mismatches:
            raise AssertionError(self.message())


def activity(cfg, res, w_before, gold):
    """What one presentation exercised (so tests can check they did what they meant to)."""
    tv = res.trace
    lim = [cfg.s_min, cfg.s_max]
    return {
        "hid_spikes": int(tv.s_hid.sum()), "out_spikes": int(res.counts.sum()),
        "sat": int(np.isin(tv.v_hid, lim).sum() + np.isin(tv.u_hid, lim).sum()
                   + np.isin(tv.u_out, lim).sum()),
        "u_nonzero": int((tv.u_hid != 0).sum() + (tv.u_out != 0).sum()),
        "w_changed": int((gold.w1 != w_before[0]).sum() + (gold.w2 != w_before[1]).sum()),
        "w_sat": int(np.isin(gold.w1, [cfg.w_min, cfg.w_max]).sum())}


# ---- the standard run ------------------------------------------------------------------------
async def run_presentations(drv, cfg, weights, xs, labels, modes, *, latency=1,
                            check_cycles=True, reg_changes=None, counter=None, where=""):
    """Load ``cfg``'s registers and ``weights`` through driver ``drv``
    (:class:`hdl.testing.CoreDriver`, any adapter), present ``xs`` (mode
    ``modes[i % len(modes)]``) on the core and on the golden model and compare everything
    after each: trace, counts, prediction, all weights and padding, the sample counter,
    cycles and events. ``reg_changes[i]`` rewrites registers on both before sample ``i``;
    ``counter`` presets both sample counters.

    Returns ``(scoreboard, activity per sample)``; the caller calls ``scoreboard.check()``.
    """
    gold = GoldenModel(cfg, *weights)
    board = Scoreboard(where)
    acts = []
    drv.set_registers(cfg)
    await drv.write_weights(*weights)
    if counter is not None:
        gold.sample_counter = counter
        await drv.set_counter(counter)
    for i, (x, label) in enumerate(zip(xs, labels)):
        mode = modes[i % len(modes)]
        if reg_changes and i in reg_changes:
            gold.set_registers(**reg_changes[i])
            drv.set_registers(gold.cfg)
        rtl = await drv.present(x, label, mode)
        w_before = (gold.w1.copy(), gold.w2.copy())
        res = gold.present(x, label, mode=mode, trace=True)
        weights_back = await drv.read_weights()
        board.add(i, mode, compare_presentation(
            i, gold, res, rtl, mode=mode, x=x, lanes=drv.P, latency=latency,
            weights=weights_back, padding=drv.padding, sample_counter=drv.sample_counter(),
            cycles=check_cycles))
        acts.append(dict(activity(cfg, res, w_before, gold),
                         **{f"stall_{k}": n for k, n in rtl.stalls.items()}))
    return board, acts
