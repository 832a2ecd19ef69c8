"""What a presentation of the golden model returns: spike counts, update statistics and the
per-timestep trace the RTL testbenches compare."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Trace", "UpdateStats", "Presentation", "exact_float"]


@dataclass
class Trace:
    """Per-timestep state of one presentation; each array has shape ``(T, n)``. States are
    the values at the end of each timestep (after integration, firing, reset and error)."""
    s_in: np.ndarray
    s_hid: np.ndarray
    v_hid: np.ndarray
    u_hid: np.ndarray
    s_out: np.ndarray
    v_out: np.ndarray
    u_out: np.ndarray
    target: np.ndarray


@dataclass
class UpdateStats:
    """Counts of gated synaptic events (gate open on a presynaptic spike) and of those whose
    rounded update was zero, per layer. A layer whose updates are almost all zero has
    silently stopped learning (learning-rate shift too large)."""
    gated_hid: int = 0
    zero_hid: int = 0
    gated_out: int = 0
    zero_out: int = 0

    def add(self, other: UpdateStats) -> None:
        self.gated_hid += other.gated_hid
        self.zero_hid += other.zero_hid
        self.gated_out += other.gated_out
        self.zero_out += other.zero_out

    @property
    def zero_fraction_hid(self) -> float:
        return self.zero_hid / self.gated_hid if self.gated_hid else float("nan")

    @property
    def zero_fraction_out(self) -> float:
        return self.zero_out / self.gated_out if self.gated_out else float("nan")


def exact_float(bound: int):
    """The cheapest float type whose matrix products are exact integers when every partial
    sum is at most ``bound`` in magnitude (float32 holds integers up to 2**24)."""
    return np.float32 if bound < (1 << 24) else np.float64


@dataclass
class Presentation:
    counts: np.ndarray          # output spike counts (n_out,)
    hid_counts: np.ndarray      # hidden spike counts (n_hid,)
    pred: int                   # most output spikes, ties to the lowest index
    stats: UpdateStats = field(default_factory=UpdateStats)
    trace: Trace | None = None
    u_hid: np.ndarray | None = None  # DFA: the per-sample hidden error (after the forward phase)
    u_out: np.ndarray | None = None
    #: forward-phase record for the DFA learning phase: hidden spikes, start-of-step V of both
    #: layers, each (T, n)
    forward: tuple | None = field(default=None, repr=False)
