"""Bad input through the command line (issue 13): a dataset with NaN or infinite values, a
single class, only constant features, or more features or classes than a fixed board's
bitstream holds ends with one ``error:`` line and exit status 2."""

from __future__ import annotations

import re

import numpy as np
import pytest

from sim.device import DeviceModel
from spec.config import Config
from sw.cli import main
from tests.fake_board import ModelPort

# (the images defaults: one input channel per feature; the dense defaults double them)
FAST = ["--epochs", "1", "--checkpoint", "none", "--probe", "0", "--calibrate", "off",
        "--config", "images"]


def _arrays(n_feat=5, n_cls=3, n_tr=24, n_te=9):
    rng = np.random.default_rng(0)
    return dict(x_train=rng.normal(size=(n_tr, n_feat)), y_train=np.arange(n_tr) % n_cls,
                x_test=rng.normal(size=(n_te, n_feat)), y_test=np.arange(n_te) % n_cls)


def _run(capsys, tmp_path, arrays, *extra):
    p = tmp_path / "bad.npz"
    np.savez(p, **arrays)
    code = main(["train", "--dataset", str(p), "--quiet", *FAST, *extra])
    err = capsys.readouterr().err
    return code, err


def _one_error_line(err):
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, err
    return err


def _nan_x():
    a = _arrays()
    a["x_train"][3, 1] = np.nan
    return a


def _inf_x():
    a = _arrays()
    a["x_test"][2, 4] = -np.inf
    return a


def _nan_y():
    a = _arrays()
    a["y_train"] = a["y_train"].astype(float)
    a["y_train"][5] = np.nan
    return a


def _single_class():
    a = _arrays()
    a["y_train"][:] = 1
    a["y_test"][:] = 1
    return a


def _constant():
    a = _arrays()
    a["x_train"][:] = 0.5
    return a


@pytest.mark.parametrize("make, message", [
    (_nan_x, r"bad\.npz: x_train contains non-finite values \(NaN or inf\)"),
    (_inf_x, r"bad\.npz: x_test contains non-finite values \(NaN or inf\)"),
    (_nan_y, r"bad\.npz: y_train contains non-finite values"),
    (_single_class, r"bad\.npz: fewer than 2 classes in y_train \(found 1\)"),
    (_constant, r"bad\.npz: every feature of x_train is constant"),
])
def test_bad_dataset(capsys, tmp_path, make, message):
    code, err = _run(capsys, tmp_path, make())
    assert code == 2
    assert re.search(message, _one_error_line(err)), err


def test_some_constant_features_are_allowed_and_reported(capsys, tmp_path):
    a = _arrays()
    a["x_train"][:, 2] = 7.0
    p = tmp_path / "c.npz"
    np.savez(p, **a)
    assert main(["train", "--dataset", str(p), *FAST]) == 0
    out = capsys.readouterr()
    assert "5 input channels (1 with one code over the training set: no information)" in out.out


# ---- a board with a fixed bitstream ------------------------------------------------------------
BOARD = Config(n_in=5, n_hid=16, n_out=3)


@pytest.fixture
def board(monkeypatch):
    """``--backend serial --port fake`` talks to the device model of a bitstream built for
    ``BOARD``."""
    import sw.driver
    monkeypatch.setattr(sw.driver, "open_serial",
                        lambda port, baud=None, timeout=None: ModelPort(DeviceModel(BOARD, 1)))
    return ["--backend", "serial", "--port", "fake", "--set", "n_hid=16"]


@pytest.mark.parametrize("n_feat, n_cls, message", [
    (8, 3, r"bad\.npz has 8 features, more than the board can hold: its bitstream is built "
           r"for a 5-16-3 network \(n_in = 5\); build a bitstream for n_in = 8"),
    (5, 4, r"bad\.npz has 4 classes, more than the board can hold: its bitstream is built "
           r"for a 5-16-3 network \(n_out = 3\); build a bitstream for n_out = 4"),
    (3, 3, r"bad\.npz has 3 features but the board's bitstream is built for a 5-16-3 network "
           r"\(n_in = 5\) and n_in must equal the dataset's number of features"),
    (5, 2, r"bad\.npz has 2 classes but .* \(n_out = 3\) and n_out must equal"),
])
def test_dataset_the_board_cannot_hold(capsys, tmp_path, board, n_feat, n_cls, message):
    code, err = _run(capsys, tmp_path, _arrays(n_feat, n_cls), *board)
    assert code == 2
    assert re.search(message, _one_error_line(err)), err


def test_a_dataset_the_board_holds_trains(capsys, tmp_path, board):
    code, err = _run(capsys, tmp_path, _arrays(5, 3), *board, "--limit-train", "4",
                     "--limit-test", "3")
    assert code == 0, err


def test_the_board_error_counts_input_channels(capsys, tmp_path, board):
    """With the dense defaults (ON/OFF pairs) 4 features are 8 input channels."""
    code, err = _run(capsys, tmp_path, _arrays(n_feat=4), *board, "--config", "dense")
    assert code == 2
    assert re.search(r"bad\.npz has 8 input channels \(4 features, onoff encoding\), more than "
                     r"the board can hold", _one_error_line(err)), err
