"""The RTL core against the golden model, bit for bit: spikes, V and U of every neuron at
every step, output counts, the prediction and all weights after each presentation."""

import numpy as np
import pytest

from hdl.core import Core
from hdl.testing import AmaranthAdapter, CoreDriver, run_sim
from spec.config import Config
from spec.rules import RULE_NAMES
from tests.support import (
    STALL_PROBABILITY,
    random_weights,
    run_presentations,
    samples,
    small_config,
    stall_seed,
    stress_config,
    stress_weights,
)


def run_case(cfg, lanes, modes, n_samples, seed, check_cycles=True, weights=None,
             reg_changes=None, counter=None, latency=1, stall_probability=STALL_PROBABILITY):
    """Run ``n_samples`` presentations (mode ``modes[i % len(modes)]``) on the RTL and the
    golden model and compare everything (``tests.support.run_presentations``), with seeded
    random idle cycles and back-pressure on the core's streams; returns per-sample activity
    figures so tests can check they exercised what they meant to. ``reg_changes[i]``
    rewrites runtime registers on both before sample ``i``; ``counter`` presets the sample
    counter of both; ``latency`` is the core's weight read latency; ``stall_probability`` is
    that of an idle or a back-pressure cycle (stalls before the command and while the result
    waits are not part of the cycle counts)."""
    rng = np.random.default_rng(seed)
    weights = random_weights(cfg, rng) if weights is None else weights
    xs, labels = samples(cfg, rng, n_samples)
    dut = Core(cfg, lanes=lanes, weight_latency=latency)
    out = {}

    async def tb(ctx):
        drv = CoreDriver.with_stalls(dut, AmaranthAdapter(ctx, dut), stall_seed(seed),
                                     stall_probability)
        out["board"], out["activity"] = await run_presentations(
            drv, cfg, weights, xs, labels, modes, latency=latency, check_cycles=check_cycles,
            reg_changes=reg_changes, counter=counter, where=f"P={lanes}, L={latency}")

    run_sim(dut, tb, name=f"core-P{lanes}")
    out["board"].check()
    return out["activity"]


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


@pytest.mark.parametrize("mode", RULE_NAMES)
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


@pytest.mark.parametrize("mode", RULE_NAMES)
def test_core_states_wider_than_16_bits(mode):
    """state_bits = 20: the update d = sround(U0, s, r) is formed from U0 << (32 - s), which
    then needs more than the 48 bits 16-bit states do (with shifts 0 and open gates)."""
    cfg = stress_config(state_bits=20, w_bits=8, lr_shift_hid=0, lr_shift_out=0,
                        err_shift_hid=8, err_shift_out=8, bmin_hid=-(1 << 19),
                        bmax_hid=(1 << 19) - 1, bmin_out=-(1 << 19), bmax_out=(1 << 19) - 1)
    rng = np.random.default_rng(17)
    act = run_case(cfg, 2, [mode, mode], 3, seed=8, weights=stress_weights(cfg, rng))
    assert total(act, "w_changed") > 0


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
    seen = {}

    async def tb(ctx):
        CoreDriver(dut, AmaranthAdapter(ctx, dut)).set_registers(cfg)
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


@pytest.mark.parametrize("lanes,latency", [(1, 1), (2, 3)])
def test_core_heavy_stalls(lanes, latency):
    """Idle cycles and back-pressure three cycles in four: the results are the same, and
    the cycle counts (without the cycles the result waited) still follow the formulas."""
    rng = np.random.default_rng(600 + lanes)
    act = run_case(small_config(rng), lanes, ["erbp", "infer", "dfa"], 3, seed=40 + lanes,
                   latency=latency, stall_probability=0.75)
    assert total(act, "stall_result") > 0 and total(act, "stall_cmd") > 0
    assert total(act, "stall_x_in") > 0
