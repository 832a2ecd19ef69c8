"""Integer primitives of the specification (``docs/spec.md`` sections 2, 3 and 6.1).

Everything here works on NumPy integer arrays (or Python ints) and is exactly what the
hardware computes: saturation, arithmetic shifts, stochastic rounding, the error projection
(section 6.1), the 32-bit hash, and the three things derived from the hash (feedback signs,
rounding dither, encoder phases).
"""

from __future__ import annotations

import numpy as np

from .config import Config

__all__ = [
    "MASK32", "GOLDEN32", "HASH_ROUNDS", "HASH_STEPS", "DOMAIN_FEEDBACK", "DOMAIN_DITHER",
    "sat", "sround", "center_error", "feedback_values", "project_error", "hash32", "stream_key",
    "feedback_matrix", "dither", "encoder_phase", "encode", "target_train",
]

MASK32 = 0xFFFFFFFF
GOLDEN32 = 0x9E3779B9

#: Domain tags that separate the independent random streams drawn from one seed.
DOMAIN_FEEDBACK = 1
DOMAIN_DITHER = 2


def sat(x, lo: int, hi: int):
    """Saturate (clamp) to ``[lo, hi]``."""
    return np.clip(x, lo, hi)


def sround(v, shift: int, r):
    """Stochastic rounding of ``v / 2**shift``: ``(v + r) >> shift`` with ``0 <= r < 2**shift``.

    ``>>`` is an arithmetic shift (floor division by a power of two), so the result is
    ``floor(v / 2**shift)`` or one more, and its expectation over uniform ``r`` is exactly
    ``v / 2**shift``: unbiased for negative and positive ``v`` alike.
    """
    return (v + r) >> shift


def center_error(e):
    """The output error with its common mode removed, scaled by ``n_out`` to stay integer:
    ``n_out * e_k - sum_m e_m`` over the last axis. This is what the feedback matrix projects
    onto the hidden layer; without it, ``B e`` pushes every hidden neuron's weights in a fixed
    random direction whenever the outputs are too active or too quiet overall."""
    e = np.asarray(e, dtype=np.int64)
    return e.shape[-1] * e - e.sum(-1, keepdims=True)


def feedback_values(b_bits: int) -> np.ndarray:
    """The values an entry of ``B`` can take in a feedback source of ``b_bits`` bits: -1 and
    +1 for ``b_bits == 1`` (a sign bit: 1 is +1, 0 is -1; the hashed ``B``), else the
    two's-complement integers ``-2**(b_bits-1) .. 2**(b_bits-1) - 1``."""
    if not isinstance(b_bits, (int, np.integer)) or b_bits < 1:
        raise ValueError(f"b_bits must be an integer >= 1, not {b_bits!r}")
    if b_bits == 1:
        return np.array([-1, 1], np.int64)
    return np.arange(-(1 << (b_bits - 1)), 1 << (b_bits - 1), dtype=np.int64)


def project_error(B, e):
    """The error reaching the hidden layer (spec 6.1): ``sum_k B[j, k] * ec[k]`` with
    ``ec = center_error(e)``, for any integer ``B`` of shape ``(n_hid, n_out)`` (the +-1 of
    the hashed source or the small signed integers of a ``b_bits >= 2`` source); over the
    last axis of ``e``, so ``(..., n_out)`` gives ``(..., n_hid)``. Exact in int64."""
    return center_error(e) @ np.asarray(B, dtype=np.int64).T


def hash32(x):
    """The 32-bit mixing function. Shifts, XORs and adds only (no multiplier in hardware)::

        x = x + 0x9E3779B9
        x = x ^ (x >> 16)
        x = x + (x << 10);  x = x ^ (x >> 6)
        x = x + (x << 3);   x = x ^ (x >> 11)
        x = x + (x << 15);  x = x ^ (x >> 16)
        x = x + (x << 7);   x = x ^ (x >> 13)

    all modulo 2**32. Flipping any input bit flips every output bit with probability
    0.5 +- 0.05 (``tests/test_golden.py`` checks this avalanche property). Accepts a Python
    int or a NumPy integer array.
    """
    if isinstance(x, (int, np.integer)):
        x = int(x) & MASK32
        x = (x + GOLDEN32) & MASK32
        x ^= x >> 16
        for left, right in HASH_ROUNDS:
            x = (x + (x << left)) & MASK32
            x ^= x >> right
        return x
    x = np.asarray(x).astype(np.uint32)  # wraps modulo 2**32 like the hardware
    with np.errstate(over="ignore"):
        x = x + np.uint32(GOLDEN32)
        x ^= x >> np.uint32(16)
        for left, right in HASH_ROUNDS:
            x = x + (x << np.uint32(left))
            x ^= x >> np.uint32(right)
    return x


#: (left-shift-add, right-shift-xor) pairs of hash32 after its first two operations.
HASH_ROUNDS = ((10, 6), (3, 11), (15, 16), (7, 13))
#: Steps of hash32 that hardware may register between: the first add and xor, then a round each.
HASH_STEPS = 1 + len(HASH_ROUNDS)


def stream_key(seed: int, domain: int) -> int:
    """Key of one random stream: ``hash32(hash32(seed) ^ domain)``."""
    return hash32(hash32(seed) ^ domain)


def feedback_matrix(cfg: Config) -> np.ndarray:
    """The fixed random feedback matrix ``B`` of shape ``(n_hid, n_out)``, entries +1 or -1.

    ``B[j, k] = +1`` if bit ``k mod 32`` of ``hash32(key ^ j ^ ((k >> 5) << 16))`` is set, else
    ``-1``, with ``key = stream_key(seed, DOMAIN_FEEDBACK)``: one hash gives a row of up to 32
    entries; then a *constant* row (every entry the same, ``n_out >= 2``) has its first entry
    negated. A constant row projects the centered error to zero (its neuron would never
    learn): with ``n_out = 2`` that is half the rows. The hardware regenerates ``B`` from this
    definition (or caches it per presentation).
    """
    key = stream_key(cfg.seed, DOMAIN_FEEDBACK)
    j = np.arange(cfg.n_hid, dtype=np.uint32)[:, None]
    k = np.arange(cfg.n_out, dtype=np.uint32)[None, :]
    h = hash32(np.uint32(key) ^ j ^ ((k >> np.uint32(5)) << np.uint32(16)))
    b = np.where((h >> (k & np.uint32(31))) & np.uint32(1), 1, -1).astype(np.int32)
    if cfg.n_out >= 2:
        constant = np.all(b == b[:, :1], axis=1)
        b[constant, 0] = -b[constant, 0]
    return b


def dither(cfg: Config, step, neuron, shift: int):
    """Rounding dither ``r`` in ``[0, 2**shift)`` for a neuron at a global step.

    ``r = ((hash32(key ^ step) + neuron * 0x9E3779B9) mod 2**32) >> (32 - shift)`` (0 when
    ``shift == 0``), with ``key = stream_key(seed, DOMAIN_DITHER)``: one hash per step, and a
    Weyl-sequence offset per neuron (one adder per lane in hardware). ``step`` is the global
    step number ``(sample_counter * T + t) mod 2**32``; ``neuron`` is ``j`` for hidden neuron
    ``j`` and ``n_hid + k`` for output neuron ``k``. Broadcasts over array arguments.
    """
    step = np.asarray(step, dtype=np.uint64) & MASK32
    neuron = np.asarray(neuron, dtype=np.uint64)
    if shift == 0:
        return np.zeros(np.broadcast_shapes(step.shape, neuron.shape), dtype=np.int32)
    key = np.uint32(stream_key(cfg.seed, DOMAIN_DITHER))
    h = np.asarray(hash32(key ^ step.astype(np.uint32)), dtype=np.uint64)
    x = (h + neuron * np.uint64(GOLDEN32)) & np.uint64(MASK32)
    return (x >> np.uint64(32 - shift)).astype(np.int32)


def encoder_phase(cfg: Config) -> np.ndarray:
    """Initial accumulator of each input channel: ``(i * P) mod 2**in_bits`` where ``P`` is
    the odd integer nearest ``0.6180339887 * 2**in_bits`` (spreads channels of equal
    intensity; ``P = 159`` for 8 bits)."""
    n = 1 << cfg.in_bits
    p = 2 * int(np.floor((0.6180339887 * n - 1) / 2 + 0.5)) + 1
    return ((np.arange(cfg.n_in, dtype=np.int64) * p) % n).astype(np.int32)


def _delta_sigma(x, phase, in_bits: int, T: int) -> np.ndarray:
    """Spikes of accumulators ``a <- a + x`` that fire on carry out of ``in_bits`` bits.

    The spike at step t (0-based) is ``floor((phase + (t+1) x) / 2**in_bits) -
    floor((phase + t x) / 2**in_bits)``, computed for all steps at once. ``x`` may have a
    leading batch axis; the result has the time axis just before the channel axis.
    """
    x = np.asarray(x, dtype=np.int64)
    t = np.arange(T + 1, dtype=np.int64).reshape((T + 1,) + (1,) * x.ndim)
    c = (phase + t * x) >> in_bits
    s = (c[1:] - c[:-1]).astype(np.int8)
    if x.ndim == 2:  # (T, B, n) -> (B, T, n)
        s = np.ascontiguousarray(s.transpose(1, 0, 2))
    return s


def encode(cfg: Config, x) -> np.ndarray:
    """Input spike trains of one sample ``(n_in,)`` -> ``(T, n_in)`` or of a batch
    ``(B, n_in)`` -> ``(B, T, n_in)``, values 0/1 (int8)."""
    return _delta_sigma(x, encoder_phase(cfg), cfg.in_bits, cfg.timesteps)


def target_train(cfg: Config, label: int) -> np.ndarray:
    """Target spikes ``(T, n_out)``: the label neuron follows an encoder of intensity
    ``target_rate`` with phase 0; every other output neuron is silent."""
    tgt = np.zeros((cfg.timesteps, cfg.n_out), dtype=np.int8)
    tgt[:, label] = _delta_sigma(np.array([cfg.target_rate]), 0, cfg.in_bits,
                                 cfg.timesteps)[:, 0]
    return tgt
