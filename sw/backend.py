"""Backends: where presentations run. The training loop talks only to this interface, so the
golden model, the virtual board (simulated RTL behind a pseudo-terminal) and a real board
over a serial port are interchangeable."""

from __future__ import annotations

import abc

import numpy as np

from sim.config import Config
from sim.golden import GoldenModel, UpdateStats

__all__ = ["Backend", "BackendError", "GoldenBackend", "BACKENDS", "make_backend"]


class BackendError(RuntimeError):
    """A backend cannot be opened or stopped answering; the message says which and why."""


class Backend(abc.ABC):
    """One learning core. Weights live in the backend; the host reads and writes them."""

    name = "abstract"

    def __init__(self, cfg: Config):
        self.cfg = cfg

    @abc.abstractmethod
    def set_registers(self, regs: dict) -> None:
        """Write runtime registers (fields of kind ``reg``)."""

    @abc.abstractmethod
    def write_weights(self, w1: np.ndarray, w2: np.ndarray) -> None: ...

    @abc.abstractmethod
    def read_weights(self) -> tuple[np.ndarray, np.ndarray]: ...

    @abc.abstractmethod
    def present(self, x: np.ndarray, label: int | None, mode: str) -> tuple[np.ndarray, int]:
        """One presentation; returns (output spike counts, predicted class)."""

    @property
    @abc.abstractmethod
    def sample_counter(self) -> int: ...

    @sample_counter.setter
    @abc.abstractmethod
    def sample_counter(self, value: int) -> None: ...

    def infer_batch(self, X: np.ndarray) -> np.ndarray:
        """Output spike counts of many inference presentations."""
        return np.stack([self.present(x, None, "infer")[0] for x in X])

    def take_stats(self) -> UpdateStats | None:
        """Update statistics since the last call, if the backend can tell."""
        return None

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class GoldenBackend(Backend):
    """The NumPy golden model, in this process."""

    name = "golden"

    def __init__(self, cfg: Config):
        super().__init__(cfg)
        self.model = GoldenModel(cfg)
        self._stats = UpdateStats()

    def set_registers(self, regs: dict) -> None:
        self.model.set_registers(**regs)
        self.cfg = self.model.cfg

    def write_weights(self, w1, w2) -> None:
        self.model.set_weights(w1, w2)

    def read_weights(self):
        return self.model.w1.copy(), self.model.w2.copy()

    def present(self, x, label, mode):
        res = self.model.present(x, label, mode)
        self._stats.add(res.stats)
        return res.counts, res.pred

    @property
    def sample_counter(self) -> int:
        return self.model.sample_counter

    @sample_counter.setter
    def sample_counter(self, value: int) -> None:
        self.model.sample_counter = int(value)

    def infer_batch(self, X):
        return self.model.infer_batch(X)

    def take_stats(self):
        st, self._stats = self._stats, UpdateStats()
        return st


#: Backend names accepted by ``python -m sw train --backend``.
BACKENDS = ("golden", "float", "virtual", "serial")


def make_backend(name: str, cfg: Config, port: str | None = None) -> Backend:
    if name == "golden":
        return GoldenBackend(cfg)
    if name in ("virtual", "serial"):
        raise BackendError(f"the {name!r} backend is not available yet: it needs the UART "
                           "top level and the host link (issue #4); use --backend golden")
    raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
