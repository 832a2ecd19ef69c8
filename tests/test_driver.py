"""The host driver (sw/driver.py) against the protocol model (sim/device.py), with faults."""

import numpy as np
import pytest

from sim.device import DeviceModel
from sim.golden import GoldenModel, init_weights
from spec import protocol as pr
from sw.driver import Board, BoardError, BoardTimeout, ConfigMismatch, DeviceRejected, open_serial
from tests.fake_board import ModelPort
from tests.support import DRIVER_CFG as CFG


def board(lanes=1, **kw):
    port = ModelPort(DeviceModel(CFG, lanes))
    return Board(port, timeout=0.2, seq=kw.pop("seq", 0), **kw), port


def data(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, CFG.n_in)), rng.integers(0, CFG.n_out, n)


def test_identify_and_config_check():
    b, _ = board(lanes=2)
    info = b.check_config(CFG, lanes=2)
    assert (info["n_in"], info["n_hid"], info["lanes"]) == (12, 9, 2)
    with pytest.raises(ConfigMismatch, match="bitstream configuration does not match: "
                                             "n_hid board 9, config 10"):
        b.check_config(CFG.replace(n_hid=10))


@pytest.mark.parametrize("lanes", [1, 2, 4])
def test_weights_round_trip_in_chunks(lanes):
    b, port = board(lanes)
    w1, w2 = init_weights(CFG, seed=3)
    b.write_weights(CFG, w1, w2)  # verifies by reading back
    r1, r2 = b.read_weights(CFG)
    np.testing.assert_array_equal(r1, w1)
    np.testing.assert_array_equal(r2, w2)
    np.testing.assert_array_equal(port.model.weights()[0], w1)


def test_registers_written_and_checked():
    b, port = board()
    b.write_register("theta_hid", 777, CFG)
    b.write_register("seed", 0xDEADBEEF, CFG)
    regs = b.read_registers()
    assert regs["theta_hid"] == 777 and regs["seed"] == 0xDEADBEEF
    with pytest.raises(ValueError, match="outside 0..24"):
        b.write_register("lr_shift_hid", 25, CFG)
    # the device checks too: bypass the host check
    with pytest.raises(DeviceRejected, match="BAD_ARG"):
        b.write_register("lr_shift_hid", 25)
    assert b.read_registers()["lr_shift_hid"] == CFG.lr_shift_hid


def train_both(b, cfg, modes, n=12):
    X, y = data(n)
    w1, w2 = init_weights(cfg, seed=1)
    gold = GoldenModel(cfg, w1, w2)
    b.write_weights(cfg, w1, w2)
    for i in range(n):
        mode = modes[i % len(modes)]
        got = b.present(cfg, X[i], int(y[i]), mode)
        want = gold.present(X[i], int(y[i]), mode=mode)
        assert got["pred"] == want.pred and list(got["counts"]) == list(want.counts), i
    return gold


def test_training_over_the_link_equals_golden_model():
    b, _ = board(lanes=3)
    gold = train_both(b, CFG, ["erbp", "infer", "dfa"])
    r1, r2 = b.read_weights(CFG)
    assert (r1 != init_weights(CFG, seed=1)[0]).any(), "nothing was learned"
    np.testing.assert_array_equal(r1, gold.w1)
    np.testing.assert_array_equal(r2, gold.w2)
    assert b.read_counters()["sample_counter"] == gold.sample_counter == 8


@pytest.mark.parametrize("fault", ["drop_replies", "corrupt_replies", "corrupt_requests"])
def test_faults_are_retried_and_nothing_runs_twice(fault):
    b, port = board()
    X, y = data(6)
    w1, w2 = init_weights(CFG, seed=1)
    gold = GoldenModel(CFG, w1, w2)
    b.write_weights(CFG, w1, w2)
    for i in range(6):
        setattr(port, fault, 1)  # every learning presentation meets the fault once
        got = b.present(CFG, X[i], int(y[i]), "erbp")
        want = gold.present(X[i], int(y[i]), mode="erbp")
        assert got["pred"] == want.pred
    assert b.stats["resends"] >= 6
    assert b.read_counters()["sample_counter"] == 6  # each sample trained exactly once
    np.testing.assert_array_equal(b.read_weights(CFG)[0], gold.w1)


def test_silent_board_gives_a_clear_error():
    b, port = board(retries=2)
    b.timeout = 0.05
    port.silent = True
    with pytest.raises(BoardTimeout, match="no reply from board on model-port after 3 tries"):
        b.identify()
    assert len(port.writes) == 3 and len(set(port.writes)) == 1  # same frame, same seq


def test_missing_serial_port():
    with pytest.raises(BoardError, match="cannot open serial port /dev/nonexistent-snn"):
        open_serial("/dev/nonexistent-snn")


def test_model_rejects_bad_frames_and_keeps_state():
    m = DeviceModel(CFG, 2)
    w1, w2 = init_weights(CFG, seed=2)
    b = Board(ModelPort(m), timeout=0.2, seq=0)
    b.write_weights(CFG, w1, w2)
    regs = list(m.regs)
    rng = np.random.default_rng(5)
    good = pr.request(9, pr.Op.WRITE_REG, bytes([0]) + (5).to_bytes(4, "little", signed=True))
    statuses = set()
    for k in range(300):
        f = bytearray(good)
        pos = int(rng.integers(1, len(f) - 1))
        if k % 3:
            f[pos] ^= 1 << int(rng.integers(0, 8))
        else:
            f[pos:pos] = bytes([pr.ESC, 0x01])  # an invalid escape
        rep = pr.SlipDecoder().feed(m.feed(bytes(f)))
        statuses |= {pr.parse_reply(r).status for r in rep if r is not None}
    garbage = rng.integers(0, 256, 5000, dtype=np.uint8).tobytes()
    m.feed(garbage + bytes([pr.END]))
    assert pr.Status.BAD_CRC in statuses and pr.Status.BAD_FRAMING in statuses
    assert m.regs == regs
    np.testing.assert_array_equal(m.weights()[0], w1)
    assert m.counters["frames_rejected"] > 0
    # and the next good frame is answered
    assert b.read_registers()["theta_hid"] == CFG.theta_hid


def test_board_backend_trains_exactly_like_the_golden_backend():
    from sim.data import Dataset
    from sw.backend import BoardBackend, GoldenBackend
    from sw.train import train

    X, y = data(40, seed=4)
    ds = Dataset(name="toy", x_train=X[:30].astype(np.uint8), y_train=y[:30],
                 x_test=X[30:].astype(np.uint8), y_test=y[30:], classes=list(range(3)),
                 image_shape=None)
    cfg = CFG.replace(lr_decay_epochs=(1,))
    w = init_weights(cfg, seed=0)
    runs = []
    for be, where in ((GoldenBackend(cfg), "backend"),
                      (BoardBackend(cfg, Board(ModelPort(DeviceModel(cfg, 2)), seq=0), lanes=2),
                       "host")):
        be.write_weights(*w)
        res = train(be, ds, cfg, "dfa", 2, seed=0, progress=False, probe=4, train_eval=where)
        runs.append((res, be.read_weights(), be.sample_counter))
    (r0, (a1, a2), c0), (r1, (b1, b2), c1) = runs
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert c0 == c1 == 60
    assert [h.test_accuracy for h in r0.history] == [h.test_accuracy for h in r1.history]
    assert [h.train_accuracy for h in r0.history] == [h.train_accuracy for h in r1.history]
    assert (a1 != w[0]).any()


@pytest.mark.parametrize("stray, errors", [(b"\x11\x12\x13", 0), (bytes(range(1, 51)), 1)])
def test_a_frame_cut_off_before_a_request_costs_no_resend(stray, errors):
    """The leading END of a request ends what an interrupted host left: fewer than 4 bytes get
    no reply, more a BAD_CRC with a foreign seq, after which the request is answered."""
    b, port = board()
    assert port.model.feed(stray) == b""
    info = b.identify()
    assert info["n_in"] == CFG.n_in
    assert b.stats["resends"] == 0 and b.stats["foreign_errors"] == errors
    assert port.model.counters["frames_rejected"] == errors
