"""Backends: where presentations run. The training loop talks only to this interface, so the
golden model, the virtual board (simulated RTL behind a pseudo-terminal) and a real board
over a serial port are interchangeable."""

from __future__ import annotations

import abc

import numpy as np

from sim.golden import GoldenModel, UpdateStats
from spec import link
from spec.config import Config

__all__ = ["Backend", "BackendError", "GoldenBackend", "BoardBackend", "BACKENDS",
           "make_backend"]


class BackendError(RuntimeError):
    """A backend cannot be opened or stopped answering; the message says which and why.
    ``board_info`` is the board's identity when its bitstream was built for another
    configuration (else empty)."""

    def __init__(self, msg, board_info=None):
        super().__init__(msg)
        self.board_info = dict(board_info or {})


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

    def close(self) -> None:  # noqa: B027 (optional: only backends with a link close one)
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


class BoardBackend(Backend):
    """A learning core behind the link protocol: a real board on a serial port, or the
    virtual board. Registers are written when they change; every weight write is verified
    by reading it back."""

    name = "serial"

    def __init__(self, cfg: Config, board, *, lanes: int | None = None, owner=None,
                 name: str | None = None):
        super().__init__(cfg)
        from .driver import BoardError, ConfigMismatch
        self.board = board
        self.owner = owner
        if name:
            self.name = name
        self._written: dict = {}
        try:
            self.info = board.check_config(cfg, lanes)
            self._write_all_registers()
        except ConfigMismatch as e:
            self.close()
            raise BackendError(str(e), e.info) from None
        except (BoardError, OSError) as e:
            self.close()
            raise BackendError(str(e)) from None

    def _write_all_registers(self):
        from spec.protocol import REGISTERS, register_values
        for name, value in zip(REGISTERS, register_values(self.cfg)):
            if self._written.get(name) != value:
                self.board.write_register(name, value, self.cfg)
                self._written[name] = value

    def set_registers(self, regs: dict) -> None:
        self.cfg = self.cfg.replace(**regs)
        self._write_all_registers()

    def write_weights(self, w1, w2) -> None:
        self.board.write_weights(self.cfg, w1, w2, verify=True)

    def read_weights(self):
        return self.board.read_weights(self.cfg)

    def present(self, x, label, mode):
        r = self.board.present(self.cfg, x, 0 if label is None else int(label), mode)
        return r["counts"], int(r["pred"])

    @property
    def sample_counter(self) -> int:
        return int(self.board.read_counters()["sample_counter"])

    @sample_counter.setter
    def sample_counter(self, value: int) -> None:
        self.board.write_counter(int(value))

    def counters(self) -> dict:
        return self.board.read_counters()

    def close(self) -> None:
        try:
            self.board.close()
        finally:
            if self.owner is not None:
                self.owner.close()
                self.owner = None


#: Backend names accepted by ``python -m sw train --backend``.
BACKENDS = ("golden", "float", "virtual", "serial")


def make_backend(name: str, cfg: Config, port: str | None = None, *, baud: int = link.BAUD,
                 lanes: int | None = None, timeout: float = 2.0, retries: int = 3) -> Backend:
    """Open a backend. ``serial`` needs ``port``; ``virtual`` builds (once, cached) and
    starts the virtual board for ``cfg`` with ``lanes`` lanes."""
    from .driver import Board, BoardError, open_serial
    if name == "golden":
        return GoldenBackend(cfg)
    if name == "serial":
        if not port:
            raise BackendError("--backend serial needs --port (e.g. --port /dev/ttyUSB1)")
        try:
            link = open_serial(port, baud)
        except BoardError as e:
            raise BackendError(str(e)) from None
        return BoardBackend(cfg, Board(link, name=port, timeout=timeout, retries=retries),
                            lanes=lanes, name="serial")
    if name == "virtual":
        from .virtual import start_virtual_board
        try:
            vb = start_virtual_board(cfg, lanes=lanes or 4)
            link = open_serial(vb.port, baud)
        except BoardError as e:
            raise BackendError(str(e)) from None
        return BoardBackend(cfg, Board(link, name=f"virtual board {vb.port}",
                                       timeout=timeout, retries=retries),
                            lanes=lanes or 4, owner=vb, name="virtual")
    raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
