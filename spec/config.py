"""The one configuration object shared by the golden model, the host software and the RTL.

Every field is an integer (or a small enum string) with a documented range; ``docs/spec.md``
defines what each one does. Fields are of two kinds:

* ``arch``: fixed when a bitstream is built (sizes, widths, timesteps per sample);
* ``reg``: runtime registers the host may rewrite between samples (mode, shifts, thresholds,
  boxcar bounds, seed);
* ``host``: host-side training choices (initial weights, learning-rate schedule, the input
  encoding of the features).

The object is frozen; derive variants with :meth:`Config.replace`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field, fields, make_dataclass
from pathlib import Path

from .registers import REGISTERS, RESET_MODES, SHIFT_MAX
from .rules import MODE_NAMES, RULE_NAMES, learning_shifts

__all__ = ["Config", "ConfigError", "RULES", "MODES", "RESET_MODES", "ENCODINGS",
           "RECALIBRATE", "markdown_table"]

#: Learning rules the core implements (``spec.rules``).
RULES = RULE_NAMES
#: Presentation modes: inference plus one per learning rule.
MODES = MODE_NAMES
#: Host-side encodings of raw features into input intensities (``sim.preprocess``,
#: docs/spec.md section 9): one global min/max (today's), per-feature min/max, ON/OFF pairs.
ENCODINGS = ("global", "rate", "onoff")
#: When the host recalibrates the hidden threshold during training (``sw/calibrate.py``,
#: docs/spec.md section 9): never, or after each epoch whose hidden rate left the band.
RECALIBRATE = ("off", "epoch")


class ConfigError(ValueError):
    """A configuration value is out of range or inconsistent."""


def _arch(default, doc):
    return field(default=default, metadata={"kind": "arch", "doc": doc})


def _host(default, doc):
    return field(default=default, metadata={"kind": "host", "doc": doc})


@dataclass(frozen=True)
class _Arch:
    # --- architecture (fixed per bitstream) -------------------------------------------------
    n_in: int = _arch(64, "input channels (features)")
    n_hid: int = _arch(128, "hidden neurons")
    n_out: int = _arch(10, "output neurons (classes)")
    in_bits: int = _arch(8, "unsigned input intensity width; rates are x / 2**in_bits")
    w_bits: int = _arch(8, "signed weight width")
    state_bits: int = _arch(16, "signed width of the membrane states V and U")
    timesteps: int = _arch(64, "timesteps T per sample presentation")


#: The runtime registers' fields, from the register map (``spec.registers``).
_REG_FIELDS = [(r.config_field, type(r.default),
                field(default=r.default, metadata={"kind": "reg", "doc": r.doc, "register": r}))
               for r in REGISTERS]

#: Host-side training choices (never sent to the device as registers).
_HOST_FIELDS = [
    ("init_std_hid", int, _host(32, "std of the initial hidden weights, in weight LSBs")),
    ("init_mean_hid", int, _host(13, "mean of the initial hidden weights (inputs are >= 0)")),
    ("init_std_out", int, _host(32, "std of the initial output weights, in weight LSBs")),
    ("lr_decay_epochs", tuple, _host((6, 10, 14, 18), "epochs (0-based) from which every "
                                     "learning shift is one larger, cumulatively; e.g. 8,14")),
    ("encoding", str, _host("global", "features to intensities (spec 9.1): 'global' min/max, "
                            "per-feature 'rate' min/max, or 'onoff' pairs (n_in = 2F)")),
    ("recalibrate", str, _host("off", "hidden-threshold recalibration during training (spec "
                               "9): 'off', or 'epoch' (after an epoch whose hidden rate left "
                               "the target ±30 %, theta_hid and the hidden boxcar are "
                               "recalibrated)")),
]


class _ConfigMethods:
    # ------------------------------------------------------------------------------------------
    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        def need(cond, msg):
            if not cond:
                raise ConfigError(msg)

        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "lr_decay_epochs":
                need(isinstance(v, tuple) and all(isinstance(e, int) and e >= 1 for e in v),
                     "lr_decay_epochs must be a tuple of epoch numbers >= 1")
                continue
            if f.name == "encoding":
                need(v in ENCODINGS, f"encoding must be one of {ENCODINGS}, not {v!r}")
                continue
            if f.name == "recalibrate":
                need(v in RECALIBRATE, f"recalibrate must be one of {RECALIBRATE}, not {v!r}")
                continue
            reg = f.metadata.get("register")
            if reg is not None and reg.choices:
                need(v in reg.choices, f"{f.name} must be one of {reg.choices}, not {v!r}")
                continue
            need(isinstance(v, int) and not isinstance(v, bool),
                 f"{f.name} must be an integer, not {v!r}")
        for name in ("n_in", "n_hid", "n_out"):
            need(1 <= getattr(self, name) <= 65535, f"{name} must be in 1..65535")
        need(self.n_out >= 2, "n_out must be at least 2 (one neuron per class)")
        need(1 <= self.in_bits <= 16, "in_bits must be in 1..16")
        need(2 <= self.w_bits <= 16, "w_bits must be in 2..16")
        need(self.w_bits <= self.state_bits <= 32, "state_bits must be in w_bits..32")
        need(1 <= self.timesteps <= 4096, "timesteps must be in 1..4096")
        # every register's range comes from the register map
        for reg in REGISTERS:
            if reg.choices:
                continue
            lo, hi = reg.range(self)
            v = getattr(self, reg.config_field)
            need(lo <= v <= hi, f"{reg.config_field} must be in {lo}..{hi}")
        for lo, hi in (("bmin_hid", "bmax_hid"), ("bmin_out", "bmax_out")):
            need(getattr(self, lo) < getattr(self, hi), f"{lo} must be below {hi}")
        for name in ("init_std_hid", "init_std_out"):
            need(0 <= getattr(self, name) <= self.w_max, f"{name} must be in 0..{self.w_max}")
        need(abs(self.init_mean_hid) <= self.w_max, f"init_mean_hid must be within ±{self.w_max}")

    def registers(self, epoch: int = 0) -> dict:
        """The runtime registers in force during ``epoch`` (learning-rate schedule applied),
        by ``Config`` field name."""
        regs = {f.name: getattr(self, f.name) for f in fields(self) if f.metadata["kind"] == "reg"}
        steps = sum(1 for e in self.lr_decay_epochs if epoch >= e)
        for name in learning_shifts():
            regs[name] = min(regs[name] + steps, SHIFT_MAX)
        return regs

    # ---- derived quantities ------------------------------------------------------------------
    @property
    def w_min(self) -> int:
        return -(1 << (self.w_bits - 1))

    @property
    def w_max(self) -> int:
        return (1 << (self.w_bits - 1)) - 1

    @property
    def s_min(self) -> int:
        return -(1 << (self.state_bits - 1))

    @property
    def s_max(self) -> int:
        return (1 << (self.state_bits - 1)) - 1

    @property
    def n_synapses(self) -> int:
        return self.n_in * self.n_hid + self.n_hid * self.n_out

    # ---- (de)serialisation --------------------------------------------------------------------
    def replace(self, **changes) -> Config:
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ConfigError(f"unknown configuration field(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def replace_unchecked(self, **changes) -> Config:
        """Like :meth:`replace` for runtime registers, without the cross-field checks: the
        device accepts any register value in range (docs/protocol.md), so its models must
        run with combinations :meth:`replace` would refuse (for example ``bmin >= bmax``)."""
        kinds = self.field_kinds()
        bad = [k for k in changes if kinds.get(k) != "reg"]
        if bad:
            raise ConfigError(f"not a runtime register: {', '.join(sorted(bad))}")
        new = copy.copy(self)
        for k, v in changes.items():
            object.__setattr__(new, k, v)
        return new

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        d = dict(d)
        if isinstance(d.get("lr_decay_epochs"), list):
            d["lr_decay_epochs"] = tuple(d["lr_decay_epochs"])
        return cls().replace(**d)

    @classmethod
    def from_file(cls, path: str | Path) -> Config:
        """Read a JSON or TOML file holding a flat table of fields (a ``[config]`` table in
        TOML is also accepted)."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as e:
            raise ConfigError(f"cannot read configuration file {path}: {e.strerror}") from None
        try:
            if path.suffix == ".toml":
                import tomllib
                d = tomllib.loads(text)
                d = d.get("config", d)
            else:
                d = json.loads(text)
        except ValueError as e:
            raise ConfigError(f"cannot parse configuration file {path}: {e}") from None
        return cls.from_dict(d)

    def with_overrides(self, items: list[str]) -> Config:
        """Apply ``key=value`` strings (as given to ``--set`` on the command line)."""
        changes = {}
        names = {f.name: f for f in fields(self)}
        for item in items:
            key, sep, value = item.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or key not in names:
                raise ConfigError(f"--set expects FIELD=VALUE with a known field, got {item!r}")
            if key in ("reset", "encoding", "recalibrate"):
                changes[key] = value.strip()
            elif key == "lr_decay_epochs":
                try:
                    changes[key] = tuple(int(e) for e in value.split(",") if e.strip())
                except ValueError:
                    raise ConfigError(
                        f"{key} must be comma-separated epochs, got {value!r}") from None
            else:
                try:
                    changes[key] = int(value, 0)
                except ValueError:
                    raise ConfigError(f"{key} must be an integer, got {value!r}") from None
        return self.replace(**changes)

    @classmethod
    def field_kinds(cls) -> dict[str, str]:
        return {f.name: f.metadata["kind"] for f in fields(cls)}

    @classmethod
    def field_docs(cls) -> dict[str, str]:
        return {f.name: f.metadata["doc"] for f in fields(cls)}


Config = make_dataclass(
    "Config", _REG_FIELDS + _HOST_FIELDS, bases=(_Arch, _ConfigMethods), frozen=True,
    namespace={"__module__": __name__, "__doc__": """The configuration: ``arch`` fields (fixed
    per bitstream), ``reg`` fields (runtime registers, one per ``spec.registers.REGISTERS``
    entry, in its order) and ``host`` fields (training choices). Frozen; derive variants with
    :meth:`replace`."""})


def markdown_table() -> str:
    """The field table of ``docs/spec.md`` section 11."""
    lines = ["| field | kind | default | meaning |", "|---|---|---|---|"]
    for f in fields(Config):
        default = ",".join(map(str, f.default)) if isinstance(f.default, tuple) else f.default
        lines.append(f"| `{f.name}` | {f.metadata['kind']} | `{default}` | {f.metadata['doc']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys
    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m spec.config --markdown   (print the field table of "
                 "docs/spec.md)")
    print(markdown_table())
