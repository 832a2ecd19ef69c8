"""Cycle and event counts of the core: the formulas of ``docs/cycles.md``.

Pure functions of the configuration, the lanes ``P``, the weight read latency ``L`` and the
spike counts of a presentation. ``tests/test_hdl_core.py`` checks them against the cycles
the simulated RTL takes for every presentation; the device model (``sim.device``) uses them
for the ``cycles`` and ``events`` fields of a ``PRESENT`` reply, and ``make bench`` for the
computed throughput figures.
"""

from __future__ import annotations

import numpy as np

from .fixed import HASH_STEPS
from .packing import nblocks
from .rules import RULES

__all__ = ["HASH_LATENCY", "MAX_WEIGHT_LATENCY", "cycles_per_step", "presentation_cycles",
           "synaptic_events"]

#: Register stages of the core's scalar hash (its input, then one per step): its users
#: present their inputs this many cycles ahead.
HASH_LATENCY = 1 + HASH_STEPS
#: Largest supported weight read latency ``L``.
MAX_WEIGHT_LATENCY = 3


def cycles_per_step(cfg, lanes, n1, n2, latency=1):
    """Cycles of one forward step with ``n1`` input and ``n2`` hidden spikes (see
    ``docs/cycles.md``); ``latency`` is the core's ``weight_latency``."""
    nb1, nb2 = nblocks(cfg.n_hid, lanes), nblocks(cfg.n_out, lanes)
    return (15 + 2 * latency + max(nb1 + nb2, cfg.n_in + 2) + 2 * (nb1 + nb2)
            + n1 * nb1 + n2 * nb2)


def presentation_cycles(cfg, lanes, mode, n1, n2, latency=1):
    """Cycles of one presentation (``docs/cycles.md``); ``n1[t]``, ``n2[t]`` are the input
    and hidden spike counts of each step of the forward pass, ``latency`` the core's
    ``weight_latency``."""
    nb1, nb2 = nblocks(cfg.n_hid, lanes), nblocks(cfg.n_out, lanes)
    T = cfg.timesteps
    c = 2 + sum(cycles_per_step(cfg, lanes, int(n1[t]), int(n2[t]), latency)
                for t in range(T))
    c += latency + cfg.n_out                      # END, ARG
    rule = RULES.get(mode)
    if rule is not None:                          # KEYS, FB: the feedback matrix
        c += 3 * HASH_LATENCY - 1 + nb1 * lanes * cfg.n_out
    if rule is not None and rule.error == "sample":   # the error, then the replay
        learn = sum(8 + max(nb1 + nb2, cfg.n_in + 2) + int(n1[t]) * nb1 + int(n2[t]) * nb2
                    for t in range(T))
        c += 3 + cfg.n_out + nb1 + nb2 + latency + learn
    return c


def synaptic_events(cfg, mode, n1, n2):
    """Synaptic events of one presentation (what ``syn_events`` adds up): every input spike
    reaches ``n_hid`` synapses and every hidden spike ``n_out``; the DFA learning phase
    replays the forward spikes, so a rule whose error is per sample (DFA) counts them twice."""
    ev = int(cfg.n_hid * np.sum(n1) + cfg.n_out * np.sum(n2))
    rule = RULES.get(mode)
    return 2 * ev if rule is not None and rule.error == "sample" else ev
