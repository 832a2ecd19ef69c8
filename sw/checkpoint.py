"""Checkpoints: weights + configuration + sample counter + the host's input preprocessing
(``sim.preprocess``: part of the model, applied to any data the network sees), with a SHA-256
checksum so that a corrupted or edited file is refused instead of silently loading wrong
weights. Checkpoints written before the preprocessing was stored load with
``preprocess=None`` (the caller refits it from the training data)."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.preprocess import Preprocess, PreprocessError
from spec.config import Config, ConfigError

__all__ = ["Checkpoint", "CheckpointError", "save_checkpoint", "load_checkpoint"]

FORMAT = "snn-fpga-checkpoint/1"


class CheckpointError(ValueError):
    pass


@dataclass
class Checkpoint:
    cfg: Config
    w1: np.ndarray
    w2: np.ndarray
    sample_counter: int = 0
    epoch: int = 0
    meta: dict | None = None
    preprocess: Preprocess | None = None

    def digest(self) -> str:
        h = hashlib.sha256()
        d = self.cfg.to_dict()
        if d.get("recalibrate") == "off":  # absent from older checkpoints: their digest stands
            del d["recalibrate"]
        h.update(json.dumps(d, sort_keys=True).encode())
        for w in (self.w1, self.w2):
            h.update(str(w.shape).encode())
            h.update(np.ascontiguousarray(w, dtype="<i4").tobytes())
        h.update(f"{self.sample_counter}:{self.epoch}".encode())
        if self.preprocess is not None:  # absent from older checkpoints: their digest stands
            h.update(json.dumps(self.preprocess.to_dict(), sort_keys=True).encode())
        return h.hexdigest()


def save_checkpoint(path: str | Path, ck: Checkpoint) -> Path:
    """Write atomically (a temporary file renamed into place): a crash mid-write never leaves
    a half-written checkpoint under the final name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pre = ck.preprocess
    if pre is not None and (pre.kind, pre.n_channels) != (ck.cfg.encoding, ck.cfg.n_in):
        raise CheckpointError(f"preprocessing ({pre.kind}, {pre.n_channels} channels) does not "
                              f"match the configuration (encoding={ck.cfg.encoding!r}, "
                              f"n_in={ck.cfg.n_in})")
    header = {"format": FORMAT, "config": ck.cfg.to_dict(), "sample_counter": ck.sample_counter,
              "epoch": ck.epoch, "meta": ck.meta or {}, "sha256": ck.digest()}
    if pre is not None:
        header["preprocess"] = pre.to_dict()
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, w1=ck.w1.astype(np.int32), w2=ck.w2.astype(np.int32),
                 header=np.array(json.dumps(header)))
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            w1, w2 = z["w1"], z["w2"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"checkpoint {path} is unreadable or not a checkpoint: {e}") from None
    if header.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} has unknown format {header.get('format')!r}")
    try:
        cfg = Config.from_dict(header["config"])
    except ConfigError as e:
        raise CheckpointError(f"checkpoint {path} holds an invalid configuration: {e}") from None
    pre = None
    if header.get("preprocess") is not None:
        try:
            pre = Preprocess.from_dict(header["preprocess"])
        except PreprocessError as e:
            raise CheckpointError(f"checkpoint {path} holds an invalid preprocessing: {e}") \
                from None
    ck = Checkpoint(cfg, w1, w2, int(header["sample_counter"]), int(header["epoch"]),
                    header.get("meta", {}), pre)
    if ck.digest() != header.get("sha256"):
        raise CheckpointError(f"checkpoint {path} fails its checksum: the file is corrupted")
    if pre is not None and (pre.kind, pre.n_channels, pre.in_bits) != \
            (cfg.encoding, cfg.n_in, cfg.in_bits):
        raise CheckpointError(f"checkpoint {path}: its preprocessing ({pre.kind}, "
                              f"{pre.n_channels} channels, in_bits {pre.in_bits}) does not "
                              f"match its configuration")
    return ck
