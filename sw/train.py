"""The training loop, written against :class:`sw.backend.Backend`.

Each epoch presents the training set in the order ``default_rng(seed + 1000 * epoch)``
(spec section 9), applies the learning-rate schedule by rewriting the registers, then
measures train and test accuracy in inference mode and the gradient-alignment diagnostic.
With ``Config.recalibrate = "epoch"`` it then checks the hidden rate on the calibration samples
and, when it left the band around the target, recalibrates the hidden threshold and writes the
new registers (``sw/calibrate.py``); the thresholds carry over to the next epochs, the
schedule's register writes and the checkpoint.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from sim.data import Dataset
from sim.floatref import hidden_alignment_deg
from sim.golden import GoldenModel
from spec.config import Config
from spec.fixed import target_train

from .backend import Backend
from .calibrate import calibration_samples, recalibrate

__all__ = ["EpochRecord", "TrainResult", "epoch_order", "train", "alignment_probe", "evaluate",
           "evaluate_host"]


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed + 1000 * epoch).permutation(n)


@dataclass
class EpochRecord:
    epoch: int
    train_accuracy: float
    test_accuracy: float
    samples_per_second: float
    zero_update_fraction_hid: float
    zero_update_fraction_out: float
    hidden_rate: float
    alignment_deg: float
    #: the hidden threshold and boxcar in force during this epoch
    theta_hid: int = 0
    bmin_hid: int = 0
    bmax_hid: int = 0
    #: hidden rate on the calibration samples after the epoch (recalibrate "epoch"; else nan)
    calibration_rate: float = float("nan")
    #: whether the thresholds were recalibrated after this epoch (the next record has them)
    recalibrated: bool = False
    #: the rate on the calibration samples with the recalibrated thresholds (else nan)
    recalibrated_rate: float = float("nan")


@dataclass
class TrainResult:
    rule: str
    seed: int
    backend: str
    dataset: str
    cfg: Config
    history: list[EpochRecord] = field(default_factory=list)
    train_seconds: float = 0.0
    train_samples: int = 0

    @property
    def samples_per_second(self) -> float:
        return self.train_samples / self.train_seconds if self.train_seconds else float("nan")

    def to_json(self) -> dict:
        last = self.history[-1] if self.history else None
        return {
            "rule": self.rule, "seed": self.seed, "backend": self.backend,
            "dataset": self.dataset, "epochs": len(self.history),
            "test_accuracy": last.test_accuracy if last else None,
            "train_accuracy": last.train_accuracy if last else None,
            "samples_per_second": self.samples_per_second,
            "history": [asdict(r) for r in self.history],
            "config": self.cfg.to_dict(),
        }


def evaluate(backend: Backend, X: np.ndarray, y: np.ndarray) -> float:
    if len(X) == 0:
        return float("nan")
    counts = backend.infer_batch(X)
    return float(np.mean(np.argmax(counts, axis=1) == y))


def alignment_probe(cfg: Config, w1, w2, sample_counter: int, rule: str, X, y):
    """Angle (degrees) between the hidden-weight update the rule makes and a BP gradient.

    Both are summed over the probe samples, each taken from the same starting weights. The
    rule's update is the real integer one (golden model, rounding included). The BP
    reference is the gradient of the squared count error of the rate network the spiking
    network approximates: ``outer(n_in, (W2 E) * gate)``, with ``n_in`` the input spike
    counts, ``E`` target minus output counts and ``gate`` the fraction of steps the hidden
    boxcar was open. Also returns the hidden firing rate (spikes per neuron per step).
    """
    m = GoldenModel(cfg, w1, w2)
    g_rule = np.zeros(w1.shape, np.int64)
    g_bp = np.zeros(w1.shape, np.float64)
    spikes = 0
    for i, (x, label) in enumerate(zip(X, y)):
        m.set_weights(w1, w2)
        m.sample_counter = sample_counter + i
        fwd = m.present(x, mode="infer", trace=True)
        tr = fwd.trace
        spikes += int(fwd.hid_counts.sum())
        v0 = np.vstack([np.zeros((1, cfg.n_hid), np.int32), tr.v_hid[:-1]])
        gate = ((v0 > cfg.bmin_hid) & (v0 < cfg.bmax_hid)).mean(0)
        e = target_train(cfg, int(label)).sum(0) - fwd.counts
        g_bp += np.outer(tr.s_in.sum(0), (w2 @ e) * gate)
        m.present(x, int(label), mode=rule)
        g_rule += m.w1 - w1
    rate = spikes / (len(X) * cfg.n_hid * cfg.timesteps) if len(X) else float("nan")
    return hidden_alignment_deg(g_rule.astype(np.float64), g_bp), rate


def evaluate_host(cfg: Config, w1, w2, X, y) -> float:
    """Accuracy of the golden model with weights read back from a board: the same figure
    the board would compute (the RTL is bit-exact with the model), in a fraction of the time."""
    if len(X) == 0:
        return float("nan")
    counts = GoldenModel(cfg, w1, w2).infer_batch(X)
    return float(np.mean(np.argmax(counts, axis=1) == y))


def train(backend: Backend, ds: Dataset, cfg: Config, rule: str, epochs: int, seed: int,
          start_epoch: int = 0, progress: bool = True, on_epoch=None,
          probe: int = 64, train_eval: str = "backend",
          target_rate: float = 0.1) -> TrainResult:
    """Train ``epochs`` epochs from ``start_epoch``; the backend already holds the weights.
    ``on_epoch(record, backend, cfg)`` is called after each epoch (checkpointing, printing)
    with the configuration in force from then on (recalibrated thresholds included).
    Test accuracy is always measured on the backend; ``train_eval="host"`` measures the
    training-set accuracy with the golden model on the weights read back instead.
    ``target_rate`` is the hidden rate ``cfg.recalibrate = "epoch"`` keeps in its band;
    ``result.cfg`` is the configuration at the end."""
    result = TrainResult(rule=rule, seed=seed, backend=backend.name, dataset=ds.name, cfg=cfg)
    n = len(ds.x_train)
    x_cal = calibration_samples(ds.x_train, seed) if cfg.recalibrate == "epoch" else None
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=epochs * n, unit="sample", dynamic_ncols=True, leave=True)
    try:
        for epoch in range(start_epoch, start_epoch + epochs):
            regs = cfg.registers(epoch)
            backend.set_registers(regs)
            backend.take_stats()
            order = epoch_order(seed, epoch, n)
            t0 = time.perf_counter()
            for k, i in enumerate(order):
                backend.present(ds.x_train[i], int(ds.y_train[i]), rule)
                if bar is not None and (k % 64 == 63 or k == n - 1):
                    bar.update(k + 1 - (bar.n - (epoch - start_epoch) * n))
            dt = time.perf_counter() - t0
            result.train_seconds += dt
            result.train_samples += n
            st = backend.take_stats()
            w1, w2 = backend.read_weights()
            pick = epoch_order(seed + 7, epoch, n)[:probe]
            angle, rate = alignment_probe(cfg.replace(**regs), w1, w2, backend.sample_counter,
                                          rule, ds.x_train[pick], ds.y_train[pick])
            rec = EpochRecord(
                epoch=epoch + 1,
                train_accuracy=(evaluate_host(cfg.replace(**regs), w1, w2, ds.x_train,
                                              ds.y_train) if train_eval == "host"
                                else evaluate(backend, ds.x_train, ds.y_train)),
                test_accuracy=evaluate(backend, ds.x_test, ds.y_test),
                samples_per_second=n / dt if dt else float("nan"),
                zero_update_fraction_hid=st.zero_fraction_hid if st else float("nan"),
                zero_update_fraction_out=st.zero_fraction_out if st else float("nan"),
                hidden_rate=rate, alignment_deg=angle, theta_hid=cfg.theta_hid,
                bmin_hid=cfg.bmin_hid, bmax_hid=cfg.bmax_hid)
            if x_cal is not None:
                new, rec.calibration_rate, after = recalibrate(cfg, w1, x_cal, target_rate)
                if new is not cfg:
                    rec.recalibrated, rec.recalibrated_rate = True, after
                    cfg = result.cfg = new
                    backend.set_registers(cfg.registers(epoch + 1))
            result.history.append(rec)
            if bar is not None:
                bar.set_postfix(epoch=rec.epoch, train=f"{rec.train_accuracy:.3f}",
                                test=f"{rec.test_accuracy:.3f}")
            if on_epoch is not None:
                on_epoch(rec, backend, cfg)
    finally:
        if bar is not None:
            bar.close()
    return result
