"""The cycle formulas of ``docs/cycles.md``: plain functions of the configuration.

They are checked against the simulated core by ``tests/test_hdl_core.py``.
"""

import numpy as np

from .layouts import nblocks as _nblocks
from .scalar_hash import HASH_LATENCY

__all__ = ["cycles_per_step", "presentation_cycles", "synaptic_events"]


def cycles_per_step(cfg, lanes, n1, n2, latency=1):
    """Cycles of one forward step with ``n1`` input and ``n2`` hidden spikes (see
    ``docs/cycles.md``); ``latency`` is the core's ``weight_latency``."""
    nb1, nb2 = _nblocks(cfg.n_hid, lanes), _nblocks(cfg.n_out, lanes)
    return (15 + 2 * latency + max(nb1 + nb2, cfg.n_in + 2) + 2 * (nb1 + nb2)
            + n1 * nb1 + n2 * nb2)



def presentation_cycles(cfg, lanes, mode, n1, n2, latency=1):
    """Cycles of one presentation (``docs/cycles.md``); ``n1[t]``, ``n2[t]`` are the input
    and hidden spike counts of each step of the forward pass, ``latency`` the core's
    ``weight_latency``."""
    nb1, nb2 = _nblocks(cfg.n_hid, lanes), _nblocks(cfg.n_out, lanes)
    T = cfg.timesteps
    c = 2 + sum(cycles_per_step(cfg, lanes, int(n1[t]), int(n2[t]), latency)
                for t in range(T))
    c += latency + cfg.n_out                      # END, ARG
    if mode != "infer":
        c += 3 * HASH_LATENCY - 1 + nb1 * lanes * cfg.n_out
    if mode == "dfa":
        learn = sum(8 + max(nb1 + nb2, cfg.n_in + 2) + int(n1[t]) * nb1 + int(n2[t]) * nb2
                    for t in range(T))
        c += 3 + cfg.n_out + nb1 + nb2 + latency + learn
    return c


def synaptic_events(cfg, mode, n1, n2):
    """Synaptic events of one presentation (what ``syn_events`` adds up): every input spike
    reaches ``n_hid`` synapses and every hidden spike ``n_out``; the DFA learning phase
    replays the forward spikes, so DFA counts them twice."""
    ev = int(cfg.n_hid * np.sum(n1) + cfg.n_out * np.sum(n2))
    return 2 * ev if mode == "dfa" else ev
