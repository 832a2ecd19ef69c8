"""Host preprocessing: raw features to unsigned input intensities (docs/spec.md section 9.1).

A :class:`Preprocess` is fitted on the training features only and is part of the model: the
checkpoint stores it and every backend sees the codes it makes (the device only ever sees
intensities, so the RTL is unchanged). With ``M = 2**in_bits - 1`` and
``R(v) = clip(floor(v + 0.5), 0, M)`` (round half up, then clip):

* ``"global"`` (the default, the codes of :func:`sim.data.quantise` bit for bit): one
  ``lo, hi`` = the minimum and maximum of all training features;
  ``q = R((x - lo) * M / (hi - lo))``, all zero when ``hi == lo``.
* ``"rate"``: the same per feature ``j`` with ``lo_j, hi_j`` = the feature's training
  minimum and maximum (a constant feature gives 0).
* ``"onoff"``: centre ``c_j`` = the training median of feature ``j``, scale ``s_j`` = the
  ``SCALE_PERCENTILE``-th percentile of ``|x_j - c_j|`` over the training set (its maximum
  if that percentile is 0; a constant feature gives 0 on both channels). With
  ``v = (x_j - c_j) * M / s_j``, channel ``j`` (ON) is ``R(v)`` and channel ``F + j`` (OFF)
  is ``R(-v)``: ``2F`` channels, ON block first. At most one of a pair is non-zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spec.config import ENCODINGS

__all__ = ["Preprocess", "PreprocessError", "ENCODINGS", "SCALE_PERCENTILE", "round_clip"]

#: Percentile of ``|x - centre|`` used as the ON/OFF scale: about 2.6 standard deviations of a
#: normal feature; the largest 1 % of deviations saturate at ``M``.
SCALE_PERCENTILE = 99.0

_CHUNK = 1 << 20  # elements transformed at a time, so MNIST needs no full float64 copy


class PreprocessError(ValueError):
    """Features or stored parameters the preprocessing cannot accept."""


def round_clip(v: np.ndarray, m: int) -> np.ndarray:
    """``clip(floor(v + 0.5), 0, m)``: round half up, then clip to the codes ``0 .. m``."""
    return np.clip(np.floor(v + 0.5), 0, m)


def _check_kind(kind):
    if kind not in ENCODINGS:
        raise PreprocessError(f"unknown encoding {kind!r}: expected one of {', '.join(ENCODINGS)}")


def _check_in_bits(in_bits):
    if isinstance(in_bits, bool) or not isinstance(in_bits, (int, np.integer)) \
            or not 1 <= in_bits <= 16:
        raise PreprocessError(f"in_bits must be an integer in 1..16, not {in_bits!r}")


def _check_x(x, what: str, n_features: int | None = None) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise PreprocessError(f"{what} must be numeric, not dtype {x.dtype}")
    if x.ndim != 2:
        raise PreprocessError(f"{what} must be 2-D (samples, features), got shape {x.shape}")
    if n_features is not None and x.shape[1] != n_features:
        raise PreprocessError(f"{what} has {x.shape[1]} features, the preprocessing was fitted "
                              f"on {n_features}")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise PreprocessError(f"{what} contains non-finite values (NaN or inf)")
    return x


@dataclass(frozen=True, eq=False)
class Preprocess:
    """A fitted feature-to-intensity mapping; build with :meth:`fit` or :meth:`from_dict`.

    ``offset`` and ``scale`` are float64: ``lo`` and ``hi - lo`` (scalars for ``"global"``,
    one per feature for ``"rate"``), or the centres and scales of ``"onoff"``.
    """

    kind: str
    in_bits: int
    n_features: int
    offset: np.ndarray
    scale: np.ndarray

    def __post_init__(self):
        _check_kind(self.kind)
        _check_in_bits(self.in_bits)
        if isinstance(self.n_features, bool) or not isinstance(self.n_features, (int, np.integer)) \
                or self.n_features < 1:
            raise PreprocessError(f"n_features must be a positive integer, not "
                                  f"{self.n_features!r}")
        shape = () if self.kind == "global" else (self.n_features,)
        for name in ("offset", "scale"):
            a = np.array(getattr(self, name), dtype=np.float64)  # a private, read-only copy
            if a.shape != shape:
                raise PreprocessError(f"{self.kind} preprocessing: {name} must have shape "
                                      f"{shape}, got {a.shape}")
            if not np.isfinite(a).all():
                raise PreprocessError(f"{self.kind} preprocessing: {name} is not finite")
            a.flags.writeable = False
            object.__setattr__(self, name, a)
        if (self.scale < 0).any():
            raise PreprocessError(f"{self.kind} preprocessing: scale must be >= 0")

    # ---- fitting -------------------------------------------------------------------------
    @classmethod
    def fit(cls, x_train, kind: str = "global", in_bits: int = 8) -> Preprocess:
        """Fit on the training features ``x_train`` (N, F) only."""
        _check_kind(kind)
        _check_in_bits(in_bits)
        x = _check_x(x_train, "x_train")
        if len(x) == 0 or x.shape[1] == 0:
            raise PreprocessError(f"cannot fit on an empty training set (shape {x.shape})")
        f = x.shape[1]
        if kind == "global":
            lo, hi = x.min(), x.max()
            return cls(kind, int(in_bits), f, float(lo), float(hi) - float(lo))
        if kind == "rate":
            lo = x.min(axis=0).astype(np.float64)
            hi = x.max(axis=0).astype(np.float64)
            return cls(kind, int(in_bits), f, lo, hi - lo)
        c = np.median(x, axis=0).astype(np.float64)
        dev = np.abs(x - c)
        s = np.percentile(dev, SCALE_PERCENTILE, axis=0)
        s = np.where(s > 0, s, dev.max(axis=0))
        return cls(kind, int(in_bits), f, c, s)

    # ---- applying ------------------------------------------------------------------------
    @property
    def n_channels(self) -> int:
        """Input channels the network sees: ``2F`` for ``"onoff"``, else ``F``."""
        return 2 * self.n_features if self.kind == "onoff" else self.n_features

    @property
    def dtype(self):
        return np.uint8 if self.in_bits <= 8 else np.uint16

    def transform(self, x) -> np.ndarray:
        """Codes ``(N, n_channels)`` for features ``x`` (N, F); a 1-D ``x`` is one sample."""
        x = np.asarray(x)
        single = x.ndim == 1
        x = _check_x(x[None, :] if single else x, "x", self.n_features)
        m = (1 << self.in_bits) - 1
        out = np.zeros((len(x), self.n_channels), dtype=self.dtype)
        rows = max(1, _CHUNK // self.n_features)
        live = self.scale > 0                 # a zero scale (constant feature) gives 0
        f = self.n_features
        for i in range(0, len(x), rows):
            # v = (x - offset) * M / scale: lo and hi - lo ("global", "rate"), or the
            # centre and scale ("onoff")
            v = (x[i:i + rows].astype(np.float64) - self.offset) * m
            v = np.divide(v, self.scale, out=np.zeros_like(v), where=live)
            if self.kind == "onoff":
                out[i:i + rows, :f] = round_clip(v, m)
                out[i:i + rows, f:] = round_clip(-v, m)
            else:
                out[i:i + rows] = round_clip(v, m)
        return out[0] if single else out

    # ---- storage -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready; floats are written with ``repr`` precision, so :meth:`from_dict`
        restores the exact parameters."""
        return {"kind": self.kind, "in_bits": self.in_bits, "n_features": self.n_features,
                "offset": self.offset.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> Preprocess:
        if not isinstance(d, dict):
            raise PreprocessError(f"stored preprocessing must be a mapping, not {type(d).__name__}")
        missing = [k for k in ("kind", "in_bits", "n_features", "offset", "scale") if k not in d]
        if missing:
            raise PreprocessError(f"stored preprocessing lacks {', '.join(missing)}")
        try:
            offset = np.asarray(d["offset"], dtype=np.float64)
            scale = np.asarray(d["scale"], dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise PreprocessError(f"stored preprocessing parameters are not numbers: {e}") from None
        return cls(d["kind"], d["in_bits"], d["n_features"], offset, scale)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Preprocess):
            return NotImplemented
        return (self.kind, self.in_bits, self.n_features) == \
            (other.kind, other.in_bits, other.n_features) and \
            np.array_equal(self.offset, other.offset) and np.array_equal(self.scale, other.scale)

    __hash__ = None
