"""Datasets for the golden model and the host software, quantised to unsigned input codes.

:func:`load_dataset` reads one of three sources and never downloads anything:

* ``"digits"``: scikit-learn's 8x8 handwritten digits (shipped with scikit-learn);
* the other built-in names (:data:`BUILTIN`): scikit-learn's bundled ``wine``,
  ``breast_cancer`` and ``iris``, and two dense synthetic tasks from ``make_classification``
  (``synth-a``, ``synth-b``);
* a ``.npz`` file holding ``x_train, y_train, x_test, y_test``;
* a directory holding the four MNIST IDX files (optionally gzipped).

Every problem with the input raises :class:`DataError` with a one-line message.
"""

from __future__ import annotations

import gzip
import math
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .preprocess import Preprocess, PreprocessError

__all__ = ["BUILTIN", "Dataset", "DataError", "dataset_kind", "load_dataset", "quantise",
           "read_idx"]

#: The four MNIST files, as (array name, file stem) pairs.
_IDX_FILES = (
    ("x_train", "train-images-idx3-ubyte"),
    ("y_train", "train-labels-idx1-ubyte"),
    ("x_test", "t10k-images-idx3-ubyte"),
    ("y_test", "t10k-labels-idx1-ubyte"),
)
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")

#: IDX element type codes (third byte of the magic number) and their big-endian dtypes.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

_QUANT_CHUNK = 1 << 20  # elements quantised at a time, so MNIST needs no float64 copy


class DataError(ValueError):
    """A dataset is missing, malformed or inconsistent."""


@dataclass
class Dataset:
    """A quantised train/test split.

    Attributes
    ----------
    name : str
        The built-in name (``"digits"``, ``"wine"``, ...) or the path the data was read from.
    x_train, x_test : ndarray, shape (N, F)
        Input codes in ``0 .. 2**in_bits - 1`` (``uint8`` for ``in_bits <= 8``, else
        ``uint16``).
    y_train, y_test : ndarray, shape (N,)
        ``int64`` class ids ``0 .. C-1``.
    classes : list
        Original label values; ``classes[c]`` is the label of class id ``c``.
    image_shape : tuple or None
        ``(H, W)`` when the raw features are an image, else None.
    preprocess : Preprocess or None
        The mapping from raw features to the codes, fitted on the training split
        (:mod:`sim.preprocess`); ``x_*`` have ``preprocess.n_channels`` columns (``2F`` for
        ON/OFF pairs). None only for a Dataset built by hand.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list
    image_shape: tuple | None
    preprocess: Preprocess | None = None

    @property
    def n_features(self) -> int:
        """Input channels of the codes (the network's ``n_in``)."""
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def load_dataset(spec: str | os.PathLike, in_bits: int = 8, limit_train: int | None = None,
                 limit_test: int | None = None, encoding: str = "global",
                 preprocess: Preprocess | None = None) -> Dataset:
    """Load and quantise a dataset.

    Parameters
    ----------
    spec : str or path
        ``"digits"``: scikit-learn ``load_digits()`` (1797 samples, 64 features, 10 classes)
        with the fixed split ``train_test_split(X, y, test_size=0.2, random_state=0,
        stratify=y)``, i.e. 1437 training and 360 test samples.
        The other built-in names, each with the same fixed stratified 80/20 split
        (``train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)``) and nothing
        downloaded (scikit-learn bundles them or generates them):
        ``"wine"``: ``load_wine()`` (178 samples, 13 features, 3 classes; 142 / 36);
        ``"breast_cancer"``: ``load_breast_cancer()`` (569 samples, 30 features, 2 classes;
        455 / 114);
        ``"iris"``: ``load_iris()`` (150 samples, 4 features, 3 classes; 120 / 30);
        ``"synth-a"``: ``make_classification(n_samples=3000, n_features=40,
        n_informative=30, n_redundant=5, n_classes=10, n_clusters_per_class=2,
        class_sep=1.5, random_state=13)``, dense centred Gaussian features (2400 / 600);
        ``"synth-b"``: ``make_classification(n_samples=2000, n_features=20, n_informative=8,
        n_redundant=6, n_repeated=0, n_classes=4, n_clusters_per_class=3, flip_y=0.02,
        class_sep=1.0, random_state=7)``: 6 noise features (1600 / 400).
        A path to a ``.npz`` file: arrays ``x_train, y_train, x_test, y_test``; ``x`` is
        ``(N, F)`` or image-shaped ``(N, H, W)``, integer or float (possibly negative);
        labels are any integers or strings, at least two distinct ones in training.
        A path to a directory: MNIST IDX files ``train-images-idx3-ubyte``,
        ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``,
        each optionally with a ``.gz`` suffix.
    in_bits : int
        Width of the unsigned input codes, 1..16.
    limit_train, limit_test : int, optional
        Keep only the first N samples of each split, for quick runs. The quantisation range
        and the class list still come from the whole training set, so a limited run sees
        the same codes and class ids as a full one.
    encoding : str
        How features become codes (:mod:`sim.preprocess`): ``"global"`` (default; the
        global minimum and maximum of the training features, :func:`quantise`), ``"rate"``
        (per-feature minimum and maximum) or ``"onoff"`` (two channels per feature).
        Fitted on the whole training split, before ``limit_train``.
    preprocess : Preprocess, optional
        An already fitted preprocessing (from a checkpoint) to apply instead of fitting
        one; its kind and ``in_bits`` must equal ``encoding`` and ``in_bits``.

    Returns
    -------
    Dataset
        Training labels are mapped to class ids in sorted order of their values; features
        are encoded by the fitted (or given) :class:`Preprocess`, stored in the Dataset.

    Raises
    ------
    DataError
        If the source is missing, malformed or inconsistent: no samples or features,
        mismatched shapes, NaN or infinite values, fewer than two classes in training,
        test labels not seen in training, or every feature constant over the training set
        (some constant features are allowed: they carry no information, and
        ``python -m sw train`` reports how many there are).
    """
    if isinstance(in_bits, bool) or not isinstance(in_bits, (int, np.integer)) \
            or not 1 <= in_bits <= 16:
        raise DataError(f"in_bits must be an integer in 1..16, not {in_bits!r}")
    for name, lim in (("limit_train", limit_train), ("limit_test", limit_test)):
        if lim is not None and (isinstance(lim, bool) or not isinstance(lim, (int, np.integer))
                                or lim < 1):
            raise DataError(f"{name} must be a positive integer or None, not {lim!r}")

    image_shape = None
    if isinstance(spec, str) and spec == "digits":
        name = "digits"
        x_tr, y_tr, x_te, y_te = _load_digits()
        image_shape = (8, 8)
    elif isinstance(spec, str) and spec in BUILTIN:
        name = spec
        x_tr, y_tr, x_te, y_te = _load_builtin(spec)
    else:
        path = Path(spec)
        name = str(path)
        if path.is_dir():
            x_tr, y_tr, x_te, y_te = _load_idx_dir(path)
        elif path.is_file():
            x_tr, y_tr, x_te, y_te = _load_npz(path)
        elif path.suffix or os.sep in name or "/" in name:
            raise DataError(f"{name}: no such file or directory")
        else:
            raise DataError(f"unknown dataset {name!r}: expected one of "
                            f"{', '.join(BUILTIN)}, a .npz file or a directory of MNIST IDX "
                            "files")

    x_tr, x_te, shape = _check_arrays(name, x_tr, y_tr, x_te, y_te)
    image_shape = image_shape or shape
    classes, y_tr, y_te = _encode_labels(name, y_tr, y_te)
    _check_finite(name, "x_train", x_tr)
    _check_finite(name, "x_test", x_te)
    _check_not_constant(name, x_tr)
    pre = _preprocessing(name, x_tr, in_bits, encoding, preprocess)

    x_tr, y_tr = x_tr[:limit_train], y_tr[:limit_train]
    x_te, y_te = x_te[:limit_test], y_te[:limit_test]
    return Dataset(name=name,
                   x_train=pre.transform(x_tr), y_train=y_tr,
                   x_test=pre.transform(x_te), y_test=y_te,
                   classes=classes, image_shape=image_shape, preprocess=pre)


def _preprocessing(name, x_tr, in_bits, encoding, preprocess) -> Preprocess:
    """Fit the preprocessing on the training features, or check a given one against them."""
    try:
        if preprocess is None:
            return Preprocess.fit(x_tr, encoding, in_bits)
        if not isinstance(preprocess, Preprocess):
            raise PreprocessError(f"preprocess must be a Preprocess, not "
                                  f"{type(preprocess).__name__}")
        if (preprocess.kind, preprocess.in_bits) != (encoding, in_bits):
            raise PreprocessError(f"the given preprocessing is encoding={preprocess.kind!r}, "
                                  f"in_bits={preprocess.in_bits} but encoding={encoding!r}, "
                                  f"in_bits={in_bits} was asked for")
        if preprocess.n_features != x_tr.shape[1]:
            raise PreprocessError(f"the given preprocessing was fitted on "
                                  f"{preprocess.n_features} features but the data has "
                                  f"{x_tr.shape[1]}")
        return preprocess
    except PreprocessError as e:
        raise DataError(f"{name}: {e}") from None


def quantise(x: np.ndarray, lo: float, hi: float, in_bits: int) -> np.ndarray:
    """Map ``[lo, hi]`` linearly onto the codes ``0 .. M = 2**in_bits - 1``.

    ``q = floor((x - lo) * M / (hi - lo) + 0.5)`` (round half up), clipped to ``0 .. M``;
    everything maps to 0 when ``hi == lo``. Multiplying before dividing keeps the result
    exact for integer data, so ``uint8`` data spanning ``0 .. 255`` comes out unchanged for
    ``in_bits = 8``.
    """
    m = (1 << in_bits) - 1
    dtype = np.uint8 if in_bits <= 8 else np.uint16
    x = np.asarray(x)
    out = np.zeros(x.shape, dtype=dtype)
    if hi == lo or x.size == 0:
        return out
    flat_in = x.reshape(-1)
    flat_out = out.reshape(-1)
    span = float(hi) - float(lo)
    for i in range(0, flat_in.size, _QUANT_CHUNK):
        v = (flat_in[i:i + _QUANT_CHUNK].astype(np.float64) - float(lo)) * m / span
        flat_out[i:i + _QUANT_CHUNK] = np.clip(np.floor(v + 0.5), 0, m)
    return out


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (plain, or gzipped when the name ends in ``.gz``).

    The header is two zero bytes, a type code, the number of dimensions ``d``, then ``d``
    big-endian 32-bit sizes; the data follow in big-endian C order.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot read IDX file ({e})") from None

    if len(raw) < 4:
        raise DataError(f"{path}: corrupted IDX file (only {len(raw)} bytes, no header)")
    magic = int.from_bytes(raw[:4], "big")
    code, ndim = raw[2], raw[3]
    if raw[0] or raw[1] or code not in _IDX_TYPES or ndim == 0:
        raise DataError(f"{path}: corrupted IDX file (bad magic number 0x{magic:08x})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: corrupted IDX file (truncated header)")
    dims = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[code])
    expected = math.prod(dims) * dtype.itemsize
    got = len(raw) - header
    if got != expected:
        what = "truncated" if got < expected else "trailing bytes"
        raise DataError(f"{path}: corrupted IDX file ({what}: {got} data bytes for dimensions "
                        f"{dims}, expected {expected})")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


# ---- sources ---------------------------------------------------------------------------------

def _load_digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(d.data, d.target, test_size=0.2, random_state=0,
                                              stratify=d.target)
    return x_tr, y_tr, x_te, y_te


#: make_classification arguments of the synthetic tasks (dense, centred, not sparse).
_SYNTH = {
    "synth-a": dict(n_samples=3000, n_features=40, n_informative=30, n_redundant=5,
                    n_classes=10, n_clusters_per_class=2, class_sep=1.5, random_state=13),
    "synth-b": dict(n_samples=2000, n_features=20, n_informative=8, n_redundant=6,
                    n_repeated=0, n_classes=4, n_clusters_per_class=3, flip_y=0.02,
                    class_sep=1.0, random_state=7),
}

#: The names :func:`load_dataset` knows (nothing is downloaded for any of them).
BUILTIN = ("digits", "wine", "breast_cancer", "iris", *_SYNTH)
#: The built-in datasets that are images (sparse, zero-based intensities).
_IMAGES = ("digits",)


def dataset_kind(spec: str | os.PathLike) -> str:
    """``"images"`` or ``"dense"``, without loading the data: ``digits`` and MNIST IDX
    directories are images, so is a ``.npz`` whose ``x_train`` is image-shaped
    ``(N, H, W)``; every other source is dense features. A source that cannot be read is
    called dense here (:func:`load_dataset` then says what is wrong with it)."""
    if isinstance(spec, str) and spec in BUILTIN:
        return "images" if spec in _IMAGES else "dense"
    path = Path(spec)
    if path.is_dir():
        return "images"
    try:
        with np.load(path, allow_pickle=False) as z:
            ndim = len(z["x_train"].shape) if "x_train" in z.files else 2
    except (OSError, ValueError, zipfile.BadZipFile, KeyError):
        return "dense"
    return "images" if ndim == 3 else "dense"


def _load_builtin(name: str):
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    if name in _SYNTH:
        x, y = datasets.make_classification(**_SYNTH[name])
    else:
        d = getattr(datasets, f"load_{name}")()
        x, y = d.data, d.target
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    return x_tr, y_tr, x_te, y_te


def _load_npz(path: Path):
    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise DataError(f"{path}: not a valid .npz archive ({_first_line(e)})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: not a .npz archive (holds a single array)")
    with z:
        missing = [k for k in _NPZ_KEYS if k not in z.files]
        if missing:
            raise DataError(f"{path}: missing array(s) {', '.join(missing)}")
        try:
            return tuple(z[k] for k in _NPZ_KEYS)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
            raise DataError(f"{path}: cannot read .npz archive ({_first_line(e)})") from None


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _load_idx_dir(path: Path):
    found, missing = [], []
    for _, stem in _IDX_FILES:
        for fname in (stem, stem + ".gz"):
            if (path / fname).is_file():
                found.append(path / fname)
                break
        else:
            missing.append(stem)
    if missing:
        raise DataError(f"{path}: missing MNIST IDX file(s) {', '.join(missing)} "
                        "(optionally .gz)")
    arrays = [read_idx(f) for f in found]
    for (key, _), f, a in zip(_IDX_FILES, found, arrays):
        want = 3 if key.startswith("x") else 1
        if a.ndim != want:
            raise DataError(f"{f}: expected a {want}-dimensional IDX file, got {a.ndim} "
                            f"dimensions {a.shape}")
    for i in (0, 2):
        if len(arrays[i]) != len(arrays[i + 1]):
            raise DataError(f"{found[i]} has {len(arrays[i])} images but {found[i + 1].name} "
                            f"has {len(arrays[i + 1])} labels")
    return tuple(arrays)


# ---- checks ----------------------------------------------------------------------------------

def _check_arrays(name, x_tr, y_tr, x_te, y_te):
    """Check shapes and kinds; return both x flattened to (N, F) and the image shape."""
    shapes = {}
    for key, x, y in (("train", x_tr, y_tr), ("test", x_te, y_te)):
        if x.dtype.kind not in "biuf":
            raise DataError(f"{name}: x_{key} must be numeric, not dtype {x.dtype}")
        if x.ndim not in (2, 3):
            raise DataError(f"{name}: x_{key} must be 2-D (N, F) or 3-D (N, H, W), got shape "
                            f"{x.shape}")
        if y.ndim != 1:
            raise DataError(f"{name}: y_{key} must be 1-D, got shape {y.shape}")
        if y.dtype.kind not in "biufUS":
            raise DataError(f"{name}: y_{key} must hold integers or strings, not dtype "
                            f"{y.dtype}")
        if len(x) != len(y):
            raise DataError(f"{name}: x_{key} has {len(x)} samples but y_{key} has {len(y)}")
        if len(x) == 0:
            raise DataError(f"{name}: the {key} set is empty")
        if math.prod(x.shape[1:]) == 0:
            raise DataError(f"{name}: x_{key} samples have no features (shape {x.shape})")
        shapes[key] = x.shape[1:]
    if math.prod(shapes["train"]) != math.prod(shapes["test"]) or \
            (x_tr.ndim == 3 and x_te.ndim == 3 and shapes["train"] != shapes["test"]):
        raise DataError(f"{name}: train and test feature counts differ (x_train sample shape "
                        f"{shapes['train']}, x_test {shapes['test']})")
    if x_tr.ndim == 3:
        image_shape = tuple(int(s) for s in shapes["train"])
    else:
        s = math.isqrt(x_tr.shape[1])
        image_shape = (s, s) if s * s == x_tr.shape[1] else None
    return x_tr.reshape(len(x_tr), -1), x_te.reshape(len(x_te), -1), image_shape


def _encode_labels(name, y_tr, y_te):
    for key, y in (("y_train", y_tr), ("y_test", y_te)):
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise DataError(f"{name}: {key} contains non-finite values (NaN or inf)")
    classes = np.unique(y_tr)
    if len(classes) < 2:
        raise DataError(f"{name}: fewer than 2 classes in y_train (found {len(classes)})")
    ids_tr = np.searchsorted(classes, y_tr)
    try:
        ids_te = np.searchsorted(classes, y_te)
        ok = (ids_te < len(classes)) & (classes[np.minimum(ids_te, len(classes) - 1)] == y_te)
    except (TypeError, np.exceptions.DTypePromotionError):
        ok = np.zeros(len(y_te), dtype=bool)
    if not np.all(ok):
        unseen = np.unique(y_te[~np.asarray(ok, dtype=bool)])
        shown = ", ".join(repr(v) for v in unseen[:5].tolist())
        more = ", ..." if len(unseen) > 5 else ""
        raise DataError(f"{name}: y_test has label(s) not seen in training: {shown}{more}")
    return classes.tolist(), ids_tr.astype(np.int64), ids_te.astype(np.int64)


def _check_not_constant(name, x):
    """Every feature constant over the training set: nothing to learn from. Some constant
    features are allowed (digits has a few always-blank pixels): they only carry no
    information (``python -m sw train`` says how many)."""
    if (x == x[:1]).all():
        raise DataError(f"{name}: every feature of x_train is constant over the training "
                        "set: nothing to learn from")


def _check_finite(name, key, x):
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise DataError(f"{name}: {key} contains non-finite values (NaN or inf)")
