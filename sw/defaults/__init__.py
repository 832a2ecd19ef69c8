"""The default configurations per kind of data, as files the CLI picks or the user names.

``images.json``: sparse, zero-based intensities (digits, MNIST): one global range
(``encoding = "global"``, what the digits defaults were found with; ``docs/tuning.md``).
``dense.json``: dense or centred features (sensor readings, tabular data): ON/OFF channel
pairs around each feature's median (``encoding = "onoff"``, ``docs/spec.md`` 9.1).

``python -m sw train`` without ``--config`` picks the file of the dataset's kind
(:func:`sim.data.dataset_kind`); ``--config images`` or ``--config dense`` names one, and
``--config FILE`` any other file. Every other field keeps ``Config``'s default.
"""

from __future__ import annotations

from pathlib import Path

from sim.data import dataset_kind
from spec.config import Config

__all__ = ["KINDS", "config_for", "defaults_path"]

HERE = Path(__file__).resolve().parent
#: The kinds of data that have a defaults file.
KINDS = ("images", "dense")


def defaults_path(kind: str) -> Path:
    """The defaults file of a kind of data."""
    if kind not in KINDS:
        raise ValueError(f"no defaults for {kind!r}; kinds: {', '.join(KINDS)}")
    return HERE / f"{kind}.json"


def config_for(config: str | None, dataset) -> tuple[Config, str]:
    """The configuration a run starts from, and where it came from: the file ``config``
    (a path, or the name of a kind), else the defaults of ``dataset``'s kind."""
    if config in KINDS:
        return Config.from_file(defaults_path(config)), f"{config} defaults"
    if config:
        return Config.from_file(config), str(config)
    kind = dataset_kind(dataset)
    return Config.from_file(defaults_path(kind)), f"{kind} defaults (picked for {dataset})"
