"""The RTL core against the golden model, bit for bit: spikes, V and U of every neuron at
every step, output counts, the prediction and all weights after each presentation."""

import numpy as np
import pytest

from hdl.core import Core, cycles_per_step, presentation_cycles, synaptic_events
from hdl.testing import CoreDriver, run_sim
from spec.config import Config
from spec.fixed import encode
from sim.golden import GoldenModel


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


def random_weights(cfg, rng):
    w1 = rng.integers(cfg.w_min // 2, cfg.w_max + 1, (cfg.n_in, cfg.n_hid))
    w2 = rng.integers(cfg.w_min, cfg.w_max + 1, (cfg.n_hid, cfg.n_out))
    return w1, w2


def sample(cfg, rng):
    """Intensities with a bias to high rates (and one always-firing channel)."""
    x = rng.integers(0, 1 << cfg.in_bits, cfg.n_in)
    x[rng.integers(0, cfg.n_in)] = (1 << cfg.in_bits) - 1
    return x


def diff_report(cfg, gold, rtl):
    """List (step, neuron, field, golden, rtl) of every trace difference."""
    out = []
    for field in ("s_hid", "v_hid", "u_hid", "s_out", "v_out", "u_out"):
        a, b = getattr(gold, field), getattr(rtl, field)
        for t, j in zip(*np.nonzero(a != b)):
            out.append((int(t), int(j), field, int(a[t, j]), int(b[t, j])))
    return sorted(out)


def run_case(cfg, lanes, modes, n_samples, seed, check_cycles=True, weights=None,
             reg_changes=None, counter=None, latency=1):
    """Run ``n_samples`` presentations (mode ``modes[i % len(modes)]``) on the RTL and the
    golden model and compare everything; returns per-sample activity figures so tests can
    check they exercised what they meant to. ``reg_changes[i]`` rewrites runtime registers
    on both before sample ``i``; ``counter`` presets the sample counter of both; ``latency``
    is the core's weight read latency."""
    rng = np.random.default_rng(seed)
    w1, w2 = random_weights(cfg, rng) if weights is None else weights
    gold = GoldenModel(cfg, w1, w2)
    dut = Core(cfg, lanes=lanes, weight_latency=latency)
    drv = CoreDriver(dut)
    errors = []
    activity = []
    xs = [sample(cfg, rng) for _ in range(n_samples)]
    labels = [int(rng.integers(0, cfg.n_out)) for _ in range(n_samples)]

    async def tb(ctx):
        await drv.set_registers(ctx, cfg)
        await drv.write_weights(ctx, w1, w2)
        if counter is not None:
            gold.sample_counter = counter
            ctx.set(dut.counter_we, 1)
            ctx.set(dut.counter_wdata, counter)
            await ctx.tick()
            ctx.set(dut.counter_we, 0)
        for i, (x, label) in enumerate(zip(xs, labels)):
            mode = modes[i % len(modes)]
            if reg_changes and i in reg_changes:
                gold.set_registers(**reg_changes[i])
                await drv.set_registers(ctx, gold.cfg)
            tr, counts, pred, cycles, steps = await drv.present(ctx, x, label, mode)
            w_before = (gold.w1.copy(), gold.w2.copy())
            res = gold.present(x, label, mode=mode, trace=True)
            where = f"sample {i} ({mode}, P={lanes})"
            cfg_now = gold.cfg
            d = diff_report(cfg_now, res.trace, tr)
            if not (tr.seen == [dut.nb1, dut.nb2]).all():
                errors.append(f"{where}: trace blocks per step {tr.seen.tolist()}")
            tv = res.trace
            activity.append(dict(
                hid_spikes=int(tv.s_hid.sum()), out_spikes=int(res.counts.sum()),
                sat=int(np.isin(tv.v_hid, [cfg.s_min, cfg.s_max]).sum()
                        + np.isin(tv.u_hid, [cfg.s_min, cfg.s_max]).sum()
                        + np.isin(tv.u_out, [cfg.s_min, cfg.s_max]).sum()),
                u_nonzero=int((tv.u_hid != 0).sum() + (tv.u_out != 0).sum()),
                w_changed=int((gold.w1 != w_before[0]).sum() + (gold.w2 != w_before[1]).sum()),
                w_sat=int(np.isin(gold.w1, [cfg.w_min, cfg.w_max]).sum())))
            if d:
                errors.append(f"{where}: {len(d)} trace differences (t, n, field, gold, rtl), "
                              f"first: {d[:6]}")
            if not np.array_equal(counts, res.counts) or pred != res.pred:
                errors.append(f"{where}: counts {counts} pred {pred}, golden {res.counts} "
                              f"{res.pred}")
            rw1, rw2 = await drv.read_weights(ctx)
            if any(pad.any() for pad in drv.padding):
                errors.append(f"{where}: padding lanes changed (written as 0): "
                              f"{[pad[pad != 0][:5].tolist() for pad in drv.padding]}")
            for name, a, b in (("W1", gold.w1, rw1), ("W2", gold.w2, rw2)):
                bad = np.argwhere(a != b)
                if len(bad):
                    first = [(int(r), int(c), int(a[r, c]), int(b[r, c])) for r, c in bad[:5]]
                    errors.append(f"{where}: {len(bad)} {name} differences, first "
                                  f"(row, col, gold, rtl): {first}")
            if ctx.get(dut.sample_counter) != gold.sample_counter:
                errors.append(f"{where}: sample counter {ctx.get(dut.sample_counter)}, "
                              f"golden {gold.sample_counter}")
            if check_cycles:
                s_in = encode(cfg, x).sum(1)
                s_hid = res.trace.s_hid.sum(1)
                want = [cycles_per_step(cfg, lanes, int(s_in[t]), int(s_hid[t]), latency)
                        for t in range(cfg.timesteps)]
                ev = synaptic_events(cfg, mode, s_in, s_hid)
                if drv.events != ev:
                    errors.append(f"{where}: {drv.events} synaptic events, formula {ev}")
                formula = presentation_cycles(cfg, lanes, mode, s_in, s_hid, latency)
                if steps[1:] != want[1:] or cycles != formula:
                    errors.append(f"{where}: cycles {cycles} steps {steps}, formula "
                                  f"{formula} {want}")

    run_sim(dut, tb, name=f"core-P{lanes}")
    assert not errors, "\n".join(errors)
    return activity


def test_register_block_covers_every_runtime_register():
    """Every ``reg`` field of Config is a port of the core (a new register added to the
    configuration must not be silently ignored by the RTL)."""
    from hdl.core import regs_layout
    regs = {n for n, k in Config.field_kinds().items() if k == "reg"}
    ports = set(regs_layout(Config()).members)
    assert ports == (regs - {"reset"}) | {"reset_zero"}


def total(activity, key):
    return sum(a[key] for a in activity)


@pytest.mark.parametrize("lanes", [1, 2, 4])
@pytest.mark.parametrize("cfg_seed", [0, 1])
def test_core_infer(lanes, cfg_seed):
    rng = np.random.default_rng(100 * cfg_seed + lanes)
    act = run_case(small_config(rng), lanes, ["infer"], 3, seed=lanes + 7 * cfg_seed)
    assert total(act, "hid_spikes") > 0


@pytest.mark.parametrize("lanes", [1, 2, 4])
@pytest.mark.parametrize("cfg_seed", [0, 1])
def test_core_erbp(lanes, cfg_seed):
    rng = np.random.default_rng(200 + 100 * cfg_seed + lanes)
    act = run_case(small_config(rng), lanes, ["erbp", "erbp", "infer", "erbp"], 4,
                   seed=10 + lanes + 7 * cfg_seed)
    assert total(act, "u_nonzero") > 0


@pytest.mark.parametrize("lanes", [1, 2, 4])
@pytest.mark.parametrize("cfg_seed", [0, 1])
def test_core_dfa(lanes, cfg_seed):
    rng = np.random.default_rng(300 + 100 * cfg_seed + lanes)
    act = run_case(small_config(rng), lanes, ["dfa", "dfa", "infer", "dfa"], 4,
                   seed=20 + lanes + 7 * cfg_seed)
    assert total(act, "w_changed") > 0


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


def stress_weights(cfg, rng):
    w1 = rng.integers(cfg.w_min, cfg.w_max + 1, (cfg.n_in, cfg.n_hid))
    w1[:, 0] = cfg.w_min                 # hidden 0 is driven to s_min
    w1[:, 1] = cfg.w_max                 # hidden 1 saturates at s_max before firing
    w2 = rng.integers(cfg.w_min, cfg.w_max + 1, (cfg.n_hid, cfg.n_out))
    return w1, w2


@pytest.mark.parametrize("mode", ["erbp", "dfa"])
@pytest.mark.parametrize("lanes", [1, 2, 4])
def test_core_saturation(mode, lanes):
    cfg = stress_config()
    rng = np.random.default_rng(lanes)
    act = run_case(cfg, lanes, [mode], 3, seed=lanes, weights=stress_weights(cfg, rng))
    assert total(act, "sat") > 0 and total(act, "w_changed") > 0


def test_core_runtime_registers():
    """Registers rewritten between presentations (seed, leaks, reset mode, shifts, target)
    take effect without re-elaboration."""
    cfg = stress_config(n_hid=4, n_out=2, timesteps=5)
    rng = np.random.default_rng(5)
    changes = {1: dict(seed=12345, leak_v=1, reset="zero", lr_shift_hid=3, target_rate=5),
               2: dict(theta_hid=9, theta_out=3, bmin_hid=-5, bmax_hid=5, leak_u=0,
                       dfa_shift_hid=2),
               3: dict(err_shift_out=0, err_shift_hid=0, lr_shift_out=0, lr_shift_hid=0)}
    act = run_case(cfg, 2, ["erbp", "dfa", "erbp", "dfa"], 4, seed=3,
                   weights=stress_weights(cfg, rng), reg_changes=changes)
    assert total(act, "w_changed") > 0


def test_core_sample_counter_wraps():
    """A preset sample counter (resume from a checkpoint) near 2**32: the global step
    ``sample_counter * T + t`` and the counter itself wrap modulo 2**32."""
    cfg = stress_config(n_hid=4, n_out=3, timesteps=6)
    rng = np.random.default_rng(11)
    run_case(cfg, 2, ["erbp", "dfa", "erbp"], 3, seed=6, weights=stress_weights(cfg, rng),
             counter=0xFFFFFFFE)


@pytest.mark.parametrize("latency", [1, 2, 3])
def test_core_single_block_hazard(latency):
    """P >= n: one block per layer, so every integration cycle revisits the same working
    word (read-after-write through the transparent port), and the phases follow each other
    with the pipeline as full as it gets."""
    cfg = stress_config(n_hid=3, n_out=2, n_in=5)
    rng = np.random.default_rng(9)
    run_case(cfg, 4, ["erbp", "dfa", "infer"], 3, seed=4, weights=stress_weights(cfg, rng),
             latency=latency)


@pytest.mark.parametrize("lanes,latency", [(1, 3), (2, 2), (4, 3)])
def test_core_weight_latency(lanes, latency):
    """Weight memories with a longer read latency (the ECP5 boards use 3): the same results
    and the cycle counts of the formulas."""
    rng = np.random.default_rng(400 + 10 * latency + lanes)
    act = run_case(small_config(rng), lanes, ["erbp", "dfa", "infer", "erbp"], 4,
                   seed=30 + lanes + latency, latency=latency)
    assert total(act, "w_changed") > 0 and total(act, "hid_spikes") > 0


def test_core_rejects_bad_parameters():
    with pytest.raises(ValueError, match="weight_latency"):
        Core(Config(n_in=4, n_hid=3, n_out=2), weight_latency=4)
    with pytest.raises(ValueError, match="lanes"):
        Core(Config(n_in=4, n_hid=3, n_out=2), lanes=0)


def test_core_elaborates_full_size():
    """The default (full-size) configuration elaborates and converts to RTLIL; registers
    are ports, so retuned defaults never require a change here."""
    from amaranth.back import rtlil
    core = Core(Config(), lanes=2)
    text = rtlil.convert(core, name="snn_core")
    assert "module" in text and core.nb1 == 64 and core.nb2 == 5


def test_core_result_backpressure_and_vcd(tmp_path, monkeypatch):
    """The core holds the result until it is taken and accepts nothing meanwhile; also
    exercises the ``SNN_VCD`` waveform dump."""
    monkeypatch.setenv("SNN_VCD", str(tmp_path / "wave.vcd"))
    cfg = stress_config(n_in=4, n_hid=3, n_out=2, timesteps=3)
    dut = Core(cfg, lanes=2)
    drv = CoreDriver(dut)
    seen = {}

    async def tb(ctx):
        await drv.set_registers(ctx, cfg)
        for v in [3, 9, 15, 0]:
            ctx.set(dut.x_in.valid, 1)
            ctx.set(dut.x_in.payload, v)
            await ctx.tick()
        ctx.set(dut.x_in.valid, 0)
        ctx.set(dut.cmd.valid, 1)
        ctx.set(dut.cmd.payload, {"mode": 0, "label": 0})
        await ctx.tick()
        ctx.set(dut.cmd.valid, 0)
        while not ctx.get(dut.result.valid):
            await ctx.tick()
        for _ in range(5):
            await ctx.tick()
            seen["held"] = ctx.get(dut.result.valid) and ctx.get(dut.busy)
            seen["cmd_blocked"] = not ctx.get(dut.cmd.ready)
            seen["x_blocked"] = not ctx.get(dut.x_in.ready)
        ctx.set(dut.result.ready, 1)
        await ctx.tick()
        ctx.set(dut.result.ready, 0)
        seen["idle"] = not ctx.get(dut.busy) and ctx.get(dut.cmd.ready)

    run_sim(dut, tb, name="backpressure")
    assert seen == {"held": 1, "cmd_blocked": True, "x_blocked": True, "idle": True}
    assert list(tmp_path.glob("wave-backpressure*.vcd"))


@pytest.mark.parametrize("lanes,latency,over", [
    (1, 1, dict(n_in=1, n_hid=1, n_out=2, timesteps=1)),
    (1, 3, dict(n_in=1, n_hid=1, n_out=2, timesteps=1)),
    (2, 1, dict(n_in=1, n_hid=2, n_out=2, timesteps=2, reset="zero")),
    (4, 3, dict(n_in=9, n_hid=7, n_out=3, timesteps=3, leak_v=0, leak_u=0)),
    (3, 2, dict(n_in=3, n_hid=8, n_out=4, timesteps=2, lr_shift_hid=5, lr_shift_out=0,
                dfa_shift_hid=5, in_bits=3, target_rate=7)),
])
def test_core_edge_sizes(lanes, latency, over):
    """Degenerate sizes: one channel, one hidden neuron, one step, lanes not a power of two,
    more lanes than neurons."""
    cfg = stress_config(**over)
    rng = np.random.default_rng(lanes)
    run_case(cfg, lanes, ["erbp", "dfa", "infer"], 3, seed=lanes,
             weights=stress_weights(cfg, rng) if cfg.n_hid > 1 else None, latency=latency)


@pytest.mark.slow
@pytest.mark.parametrize("k", range(12))
def test_core_random_sweep(k):
    """Many random small configurations, all modes mixed (slow tier)."""
    rng = np.random.default_rng(1000 + k)
    lanes = int(rng.choice([1, 2, 3, 4]))
    run_case(small_config(rng), lanes, ["erbp", "dfa", "infer", "dfa", "erbp"], 5, seed=k,
             latency=1 + k % 3)
