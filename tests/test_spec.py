"""The bottom layer (``spec/``): the register map and the rule set are defined once and
everything that depends on them is derived, so they cannot drift apart."""

from dataclasses import fields

import pytest
from amaranth.hdl import Shape

from hdl.core import MODE_NAMES, Mode, reg_values, regs_layout
from sim.device import DeviceModel
from spec import protocol as pr
from spec.config import MODES, RULES, Config, ConfigError
from spec.registers import NAMES, REGISTERS, register
from spec.rules import MODES as MODE_NUMBERS
from spec.rules import RULE_NAMES, learning_shifts, mode_number

CONFIGS = [Config(), Config(state_bits=13, in_bits=6, w_bits=6, target_rate=40, init_std_hid=8,
                           init_mean_hid=4, init_std_out=8), Config(state_bits=24)]


@pytest.mark.parametrize("cfg", CONFIGS, ids=["default", "narrow", "wide"])
def test_core_register_port_follows_the_register_map(cfg):
    layout = regs_layout(cfg)
    assert tuple(layout.members) == NAMES
    for r in REGISTERS:
        shape = Shape.cast(layout.members[r.name])
        assert shape.signed == r.signed and shape.width == r.width(cfg), r.name
        lo, hi = r.range(cfg)
        # the width holds the whole range and no more than one bit beyond it
        assert (-(1 << (shape.width - 1)) if r.signed else 0) <= lo
        assert hi <= ((1 << (shape.width - 1)) - 1 if r.signed else (1 << shape.width) - 1)


@pytest.mark.parametrize("cfg", CONFIGS, ids=["default", "narrow", "wide"])
def test_config_validation_uses_each_registers_range(cfg):
    for r in REGISTERS:
        if r.choices:
            with pytest.raises(ConfigError, match=r.config_field):
                cfg.replace(**{r.config_field: "neither"})
            continue
        lo, hi = r.range(cfg)
        assert pr.reg_range(cfg, r.index) == (lo, hi)
        for bad in (lo - 1, hi + 1):
            with pytest.raises(ConfigError, match=r.config_field):
                cfg.replace(**{r.config_field: bad})
        for good in (lo, hi):
            if r.name.startswith(("bmin", "bmax")):
                continue      # bmin < bmax is a cross-field rule of Config, not a range
            assert getattr(cfg.replace(**{r.config_field: good}), r.config_field) == good


def test_config_register_fields_are_the_register_map():
    reg_fields = [f for f in fields(Config) if f.metadata["kind"] == "reg"]
    assert [f.name for f in reg_fields] == [r.config_field for r in REGISTERS]
    assert [f.default for f in reg_fields] == [r.default for r in REGISTERS]
    assert all(f.metadata["register"] is r for f, r in zip(reg_fields, REGISTERS))
    cfg = Config(reset="zero", seed=0xDEADBEEF, bmin_out=-5)
    assert pr.register_values(cfg) == [reg_values(cfg)[n] for n in NAMES]
    decoded = {r.config_field: r.decode(v) for r, v in zip(REGISTERS, pr.register_values(cfg))}
    assert decoded == cfg.registers()


def test_device_model_accepts_exactly_each_registers_range():
    cfg = Config()
    for r in REGISTERS:
        lo, hi = r.range(cfg)
        for value, ok in ((lo, True), (hi, True), (lo - 1, False), (hi + 1, False)):
            if r.name == "seed" and not ok:
                continue      # any 32 bits: every i32 on the wire is a seed
            raw = value - (1 << 32) if value >= 1 << 31 else value
            payload = bytes([r.index]) + raw.to_bytes(4, "little", signed=True)
            frames = pr.SlipDecoder().feed(DeviceModel(cfg).feed(
                pr.request(7, pr.Op.WRITE_REG, payload)))
            status = pr.parse_reply(frames[0]).status
            assert (status == pr.Status.OK) == ok, (r.name, value, status)


def test_the_rule_set_is_defined_once():
    assert RULES == RULE_NAMES
    assert MODES == ("infer",) + RULE_NAMES
    assert {m.name.lower(): m.value for m in Mode} == MODE_NUMBERS
    assert {k: v.value for k, v in MODE_NAMES.items()} == MODE_NUMBERS
    assert [mode_number(m) for m in MODES] == list(range(len(MODES)))
    with pytest.raises(ValueError, match="mode"):
        mode_number("backprop")
    # the schedule raises every rule's update shifts, and those registers belong to the rule
    for name in learning_shifts():
        assert register(name).owner in RULE_NAMES
    cfg = Config(lr_decay_epochs=(1,))
    raised = {k for k, v in cfg.registers(1).items() if v != cfg.registers(0)[k]}
    assert raised == set(learning_shifts())


def test_cli_rule_choices_follow_the_rule_set(capsys):
    from sw.cli import main
    assert main(["train", "--rule", "hebb", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert all(name in err for name in RULE_NAMES)
