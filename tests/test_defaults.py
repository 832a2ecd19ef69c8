"""The defaults per kind of data (sw/defaults/): which file a training run starts from."""

import json

import numpy as np
import pytest

from sim.data import dataset_kind
from spec.config import Config
from sw.cli import main
from sw.defaults import KINDS, config_for, defaults_path


def _npz(path, x_tr, x_te):
    rng = np.random.default_rng(0)
    np.savez(path, x_train=x_tr, y_train=rng.integers(0, 3, len(x_tr)), x_test=x_te,
             y_test=rng.integers(0, 3, len(x_te)))
    return path


def test_dataset_kind(tmp_path):
    rng = np.random.default_rng(1)
    assert dataset_kind("digits") == "images"
    for name in ("iris", "wine", "breast_cancer", "synth-a"):
        assert dataset_kind(name) == "dense"
    flat = _npz(tmp_path / "flat.npz", rng.normal(size=(40, 5)), rng.normal(size=(10, 5)))
    img = _npz(tmp_path / "img.npz", rng.random((40, 4, 4)), rng.random((10, 4, 4)))
    assert dataset_kind(flat) == "dense" and dataset_kind(str(img)) == "images"
    (tmp_path / "idx").mkdir()
    assert dataset_kind(tmp_path / "idx") == "images"
    # unreadable sources: left to load_dataset to report
    assert dataset_kind(tmp_path / "missing.npz") == "dense"
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert dataset_kind(tmp_path / "junk.npz") == "dense"


def test_defaults_files_are_configurations():
    for kind in KINDS:
        cfg = Config.from_file(defaults_path(kind))
        assert cfg.encoding == {"images": "global", "dense": "onoff"}[kind]
        # everything else is Config's default: a file names only what its kind changes
        d = json.loads(defaults_path(kind).read_text())
        assert {k: v for k, v in cfg.to_dict().items() if k not in d} == \
            {k: v for k, v in Config().to_dict().items() if k not in d}
    with pytest.raises(ValueError, match="no defaults"):
        defaults_path("audio")
    assert config_for("dense", "digits")[0].encoding == "onoff"
    assert config_for(None, "digits")[0].encoding == "global"
    assert config_for(None, "iris")[1].startswith("dense defaults")


@pytest.mark.parametrize("shape,config,want_kind,want_in", [
    ((6,), None, "dense", 12), ((2, 3), None, "images", 6), ((6,), "images", "images", 6),
    ((2, 3), "dense", "dense", 12)])
def test_cli_picks_the_kinds_defaults(capsys, tmp_path, shape, config, want_kind, want_in):
    rng = np.random.default_rng(2)
    data = _npz(tmp_path / "d.npz", rng.normal(size=(60, *shape)), rng.normal(size=(20, *shape)))
    args = ["train", "--dataset", str(data), "--set", "n_hid=8", "--epochs", "1", "--probe",
            "2", "--json", str(tmp_path / "r.json")]
    if config:
        args += ["--config", config]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"configuration: {want_kind} defaults" in out
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["config"]["n_in"] == want_in
    assert r["config"]["encoding"] == {"images": "global", "dense": "onoff"}[want_kind]
    # --set still wins over the defaults
    assert main(args + ["--set", "encoding=rate", "--quiet"]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["config"]["encoding"] == "rate"


def test_cli_config_names_a_kind(capsys):
    assert main(["config", "--config", "dense"]) == 0
    assert any(line.split()[:2] == ["encoding", "onoff"]
               for line in capsys.readouterr().out.splitlines())
