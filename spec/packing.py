"""How neurons and weights are packed into memory words: the one definition of blocks.

``P = lanes`` neurons of a layer share a word: neuron ``j`` is lane ``j % P`` of block
``j // P``; a layer of ``n`` neurons has ``nblocks(n, P) = ceil(n / P)`` blocks, and lanes past
its end are padding (they never spike; their weights are 0 and never learn). A weight matrix
row ``i`` (presynaptic neuron ``i``) is ``words_per_row`` words: word ``i * NB + b`` holds
``W[i, b*P : b*P + P]``. The core's memories, the host weight port, the ``READ_W``/``WRITE_W``
payloads (``spec.protocol.pack_words``), the device model and the test drivers use these.
"""

from __future__ import annotations

import numpy as np

__all__ = ["nblocks", "words_per_row", "layer_words", "layer_shape", "pack_rows",
           "unpack_rows"]


def nblocks(n: int, lanes: int) -> int:
    """Blocks of ``lanes`` neurons that hold ``n`` neurons."""
    return -(-n // lanes)


def layer_shape(cfg, layer: int) -> tuple[int, int]:
    """``(rows, cols)`` of a weight matrix: ``W1`` is ``n_in x n_hid``, ``W2`` ``n_hid x n_out``."""
    return (cfg.n_hid, cfg.n_out) if layer else (cfg.n_in, cfg.n_hid)


def words_per_row(cfg, lanes: int, layer: int) -> int:
    """Words of one weight row of ``layer`` (``NB1`` or ``NB2``)."""
    return nblocks(layer_shape(cfg, layer)[1], lanes)


def layer_words(cfg, lanes: int, layer: int) -> int:
    """Memory words of a layer: ``n_in * NB1`` or ``n_hid * NB2``."""
    return layer_shape(cfg, layer)[0] * words_per_row(cfg, lanes, layer)


def pack_rows(w, lanes: int) -> np.ndarray:
    """A ``rows x cols`` matrix as ``(rows * NB, lanes)`` words (padding lanes 0)."""
    w = np.asarray(w)
    rows, cols = w.shape
    nb = nblocks(cols, lanes)
    padded = np.zeros((rows, nb * lanes), np.int64)
    padded[:, :cols] = w
    return padded.reshape(rows * nb, lanes)


def unpack_rows(words, cols: int) -> np.ndarray:
    """Inverse of :func:`pack_rows`: ``(rows * NB, lanes)`` words -> ``rows x cols``."""
    words = np.asarray(words, np.int64)
    lanes = words.shape[1]
    nb = nblocks(cols, lanes)
    return words.reshape(-1, nb * lanes)[:, :cols].copy()
