"""Data sets as the seed homework's dict of arrays.

`load(name_or_path)` returns ``{"X_train", "y_train", "X_val", "y_val",
"X_test", "y_test"}`` -- exactly those six keys, in that order. ``X_*`` are
float arrays of shape (N, D) (or (N, *example_shape) with ``flatten=False``);
``y_*`` are int64 class indices of shape (N,).

Sources:

- IDX folders (MNIST / Fashion-MNIST format, ``.gz`` or plain), by name from
  ``$GRAPHNET_DATA/<name>`` (an ``os.pathsep``-separated list is allowed), then
  ``/usr/share/datasets/<name>`` (Debian's ``dataset-fashion-mnist``), or by
  folder path.
- ``.npz`` files with the six keys (or without ``X_val``/``y_val``), read with
  ``allow_pickle=False``.
- CSV files with a label column; the test set is a second file or a fraction.
- Built-in synthetic sets ``spiral`` and ``blobs``, deterministic by seed.

Every problem with a file raises `graphnet.DataError` naming the file.
"""
from __future__ import annotations

import difflib
import gzip
import inspect
import math
import os
import struct
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .errors import DataError

__all__ = ["KEYS", "load", "list_datasets", "batches", "read_idx", "spiral", "blobs"]

KEYS = ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")
SYSTEM_DATA_DIR = Path("/usr/share/datasets")
DEFAULT_VAL_FRACTION = 0.1   # of the training set ...
DEFAULT_VAL_MAX = 5000       # ... but at most this many: MNIST-like 60000 -> 55000 / 5000
DEFAULT_TEST_FRACTION = 0.2  # CSV without a test file, synthetic sets
IDX_CLASSES = 10             # MNIST and Fashion-MNIST; pass classes= for others (EMNIST)

_ALIASES = {"mnist": "mnist", "fashion-mnist": "fashion-mnist",
            "fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist"}
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_FILES = {"train_images": ("train-images-idx3-ubyte", 3), "train_labels": ("train-labels-idx1-ubyte", 1),
              "test_images": ("t10k-images-idx3-ubyte", 3), "test_labels": ("t10k-labels-idx1-ubyte", 1)}
_LABEL_NAMES = ("label", "y", "target")
_SUFFIXES = {".npz": "npz", ".csv": "csv", ".tsv": "csv", ".txt": "csv"}


# ----------------------------------------------------------------------------- synthetic

def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def _generator(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(_check_seed(seed))


def _positive(name: str, value: Any, source: str, *, integer: bool = True) -> None:
    ok = (isinstance(value, (int, np.integer)) and not isinstance(value, bool)) if integer \
        else (isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(value))
    if not ok or value < (1 if integer else 0):
        kind = "an int >= 1" if integer else "a finite number >= 0"
        raise DataError(f"{source}: option {name} must be {kind}, got {value!r}")


def spiral(points: int = 100, classes: int = 3, noise: float = 0.2, *,
           seed: int | np.random.Generator = 0) -> tuple[np.ndarray, np.ndarray]:
    """The CS231n spiral: `classes` arms of `points` each, in 2-D.

    Arm j has radius linspace(0, 1) and angle linspace(4j, 4(j+1)) plus
    Gaussian noise of std `noise` (radians). Returns X (points*classes, 2)
    float64 and y (points*classes,) int64, ordered arm by arm.
    """
    _positive("points", points, "spiral")
    _positive("classes", classes, "spiral")
    _positive("noise", noise, "spiral", integer=False)
    rng = _generator(seed)
    X = np.zeros((points * classes, 2))
    y = np.repeat(np.arange(classes, dtype=np.int64), points)
    r = np.linspace(0.0, 1.0, points)
    for j in range(classes):
        t = np.linspace(j * 4, (j + 1) * 4, points) + rng.standard_normal(points) * noise
        X[j * points:(j + 1) * points] = np.c_[r * np.sin(t), r * np.cos(t)]
    return X, y


def blobs(points: int = 100, classes: int = 3, features: int = 2, std: float = 1.0, *,
          seed: int | np.random.Generator = 0) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic Gaussian blobs, one per class, `points` each.

    Centers are uniform in [-10, 10]^features (as scikit-learn's make_blobs);
    each point is its center plus N(0, std^2) noise per feature. Returns
    X (points*classes, features) float64 and y (points*classes,) int64.
    """
    _positive("points", points, "blobs")
    _positive("classes", classes, "blobs")
    _positive("features", features, "blobs")
    _positive("std", std, "blobs", integer=False)
    rng = _generator(seed)
    centers = rng.uniform(-10.0, 10.0, size=(classes, features))
    y = np.repeat(np.arange(classes, dtype=np.int64), points)
    X = centers[y] + rng.standard_normal((points * classes, features)) * std
    return X, y


_SYNTHETIC: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {"spiral": spiral, "blobs": blobs}


# ----------------------------------------------------------------------------- checks

def _labels(y: np.ndarray, where: str, classes: int | None) -> np.ndarray:
    """Validated labels as int64 (N,): whole, non-negative, below `classes` if given."""
    y = np.asarray(y)
    if y.ndim != 1:
        hint = " (one-hot? store the argmax)" if y.ndim == 2 else ""
        raise DataError(f"{where}: labels must be 1-D class indices, got shape {y.shape}{hint}")
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"{where}: labels must be whole numbers; label {i} is {y[i]!r}")
    elif y.dtype.kind not in "biu":
        raise DataError(f"{where}: labels must be integers, got dtype {y.dtype}")
    if y.size:
        i = int(np.argmin(y))
        if y[i] < 0:
            raise DataError(f"{where}: label {i} is {y[i]}, labels must be >= 0")
        i = int(np.argmax(y))
        if classes is not None and y[i] >= classes:
            raise DataError(f"{where}: label {i} is {y[i]}, out of range 0..{classes - 1} ({classes} classes)")
    return y.astype(np.int64)


def _features(X: np.ndarray, where: str, row: Callable[[int], str] = lambda i: f"example {i}") -> np.ndarray:
    """Check X is numeric, at least (N, D), and finite; returns it unchanged."""
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise DataError(f"{where}: features must be numeric, got dtype {X.dtype}")
    if X.ndim < 2:
        raise DataError(f"{where}: features must have shape (N, ...) with at least one feature axis, got {X.shape}")
    if X.dtype.kind == "f":
        bad = ~np.isfinite(X)
        if bad.any():
            pos = np.unravel_index(int(np.argmax(bad)), X.shape)
            feature = pos[1] if len(pos) == 2 else pos[1:]
            raise DataError(f"{where}: {X[pos]} in {row(int(pos[0]))}, feature {feature}: features must be finite")
    return X


def _count(n_x: int, n_y: int, x_where: str, y_where: str) -> None:
    if n_x != n_y:
        raise DataError(f"{x_where}: {n_x} examples but {y_where} has {n_y} labels")


def _same_example_shape(ref: np.ndarray, X: np.ndarray, ref_where: str, where: str) -> None:
    if ref.shape[1:] != X.shape[1:]:
        raise DataError(f"{where}: examples have shape {X.shape[1:]}, but {ref_where} has {ref.shape[1:]}")


# ----------------------------------------------------------------------------- IDX

def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from e
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
            raise DataError(f"{path}: corrupt or truncated gzip data ({e})") from e
    if path.suffix == ".gz":
        raise DataError(f"{path}: named .gz but is not gzip data")
    return raw


def read_idx(path: str | os.PathLike[str], *, ndim: int | None = None) -> np.ndarray:
    """Read one IDX file (gzip-compressed or not) into an array of its declared shape.

    The magic number is two zero bytes, a type code (0x08 uint8, 0x09 int8,
    0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64) and the number of
    dimensions; then one big-endian uint32 per dimension, then the data. The
    data size must match the header exactly. `ndim`, if given, is required.
    Returns a native-endian array (read-only for uint8/int8).
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataError(f"{path}: not an IDX file: {len(raw)} bytes, shorter than the 4-byte magic number")
    zero, code, nd = struct.unpack(">HBB", raw[:4])
    if zero != 0 or code not in _IDX_DTYPES or nd == 0:
        codes = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise DataError(f"{path}: bad IDX magic number 0x{raw[:4].hex().upper()}: expected 0x0000, "
                        f"a type code ({codes}) and a dimension count >= 1")
    if ndim is not None and nd != ndim:
        raise DataError(f"{path}: header declares {nd} dimension(s), expected {ndim}")
    start = 4 + 4 * nd
    if len(raw) < start:
        raise DataError(f"{path}: truncated IDX header: {nd} dimensions need {start} bytes, file has {len(raw)}")
    dims = struct.unpack(f">{nd}I", raw[4:start])
    if 0 in dims:
        raise DataError(f"{path}: header declares an empty dimension: {dims}")
    dtype = np.dtype(_IDX_DTYPES[code])
    need, have = math.prod(dims) * dtype.itemsize, len(raw) - start
    if have != need:
        what = "truncated" if have < need else "has trailing bytes"
        raise DataError(f"{path}: {what}: header declares shape {dims} of {dtype.name} "
                        f"({need} data bytes), file has {have}")
    return np.frombuffer(raw, dtype=dtype, offset=start).reshape(dims).astype(dtype.newbyteorder("="), copy=False)


def _idx_file(folder: Path, stem: str) -> Path | None:
    dotted = stem.replace("-idx", ".idx")  # Kaggle's spelling: train-images.idx3-ubyte
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _load_idx(folder: Path, classes: int | None) -> tuple[np.ndarray, ...]:
    paths = {role: _idx_file(folder, stem) for role, (stem, _) in _IDX_FILES.items()}
    missing = [_IDX_FILES[role][0] for role, p in paths.items() if p is None]
    if missing:
        raise DataError(f"{folder}: missing IDX file(s) {', '.join(missing)} (looked for each with and without .gz)")
    classes = IDX_CLASSES if classes is None else classes
    out = []
    for split in ("train", "test"):
        xp, yp = paths[f"{split}_images"], paths[f"{split}_labels"]
        X = _features(read_idx(xp, ndim=3), str(xp))
        y = _labels(read_idx(yp, ndim=1), str(yp), classes)
        _count(len(X), len(y), str(xp), str(yp))
        out += [X, y]
    _same_example_shape(out[0], out[2], str(paths["train_images"]), str(paths["test_images"]))
    return tuple(out)


# ----------------------------------------------------------------------------- npz

def _load_npz(path: Path, classes: int | None) -> tuple[np.ndarray | None, ...]:
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: not a readable .npz file ({e})") from e
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: is a single .npy array, expected an .npz archive with {', '.join(KEYS)}")
    with z:
        have = set(z.files)
        need = ["X_train", "y_train", "X_test", "y_test"]
        if ("X_val" in have) != ("y_val" in have):
            need += ["X_val", "y_val"]
        missing = [k for k in need if k not in have]
        if missing:
            raise DataError(f"{path}: missing array(s) {', '.join(missing)}; it has {', '.join(sorted(have)) or 'none'}")
        arrays: dict[str, np.ndarray | None] = {k: None for k in KEYS}
        for key in KEYS:
            if key not in have:
                continue
            try:
                arrays[key] = z[key]
            except ValueError as e:
                if "allow_pickle" in str(e):
                    raise DataError(f"{path}: array {key!r} is an object array (pickled Python objects); "
                                    f"refused without unpickling -- store numeric arrays") from None
                raise DataError(f"{path}: array {key!r} is corrupt ({e})") from e
            except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
                raise DataError(f"{path}: array {key!r} is corrupt ({e})") from e
    out: list[np.ndarray | None] = []
    for split in ("train", "val", "test"):
        X, y = arrays[f"X_{split}"], arrays[f"y_{split}"]
        if X is None or y is None:
            out += [None, None]
            continue
        X = _features(X, f"{path}: X_{split}")
        y = _labels(y, f"{path}: y_{split}", classes)
        _count(len(X), len(y), f"{path}: X_{split}", f"y_{split}")
        out += [X, y]
    for split, X in (("val", out[2]), ("test", out[4])):
        if X is not None:
            _same_example_shape(out[0], X, "X_train", f"{path}: X_{split}")
    return tuple(out)


# ----------------------------------------------------------------------------- CSV

def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _read_csv(path: Path, label_column: str | int | None, classes: int | None) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """One CSV file as X (N, D) float64, y (N,) int64 and its header (or None)."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            first = f.readline()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read: {e}") from e
    if not first.strip():
        raise DataError(f"{path}: empty first line; expected a header or a data row")
    delim = next((d for d in (",", "\t", ";") if d in first), None)
    cells = [c.strip().strip('"').strip() for c in first.split(delim)]
    header = cells if not all(_is_number(c) for c in cells) else None
    ncol = len(cells)
    if label_column is None:
        lower = [c.lower() for c in header or []]
        col = next((lower.index(n) for n in _LABEL_NAMES if n in lower), None)
        if col is None:
            cols = f"columns: {', '.join(header)}" if header else "no header row"
            raise DataError(f"{path}: no label column named {'/'.join(_LABEL_NAMES)} ({cols}); "
                            f"pass label_column= (a name or a 0-based index)")
    elif isinstance(label_column, str):
        if header is None or label_column not in header:
            raise DataError(f"{path}: no column named {label_column!r}"
                            + (f"; columns: {', '.join(header)}" if header else " (the file has no header row)"))
        col = header.index(label_column)
    elif isinstance(label_column, (int, np.integer)) and not isinstance(label_column, bool) and -ncol <= label_column < ncol:
        col = int(label_column) % ncol
    else:
        raise DataError(f"{path}: label_column={label_column!r} is neither a column name nor an index in 0..{ncol - 1}")
    if ncol < 2:
        raise DataError(f"{path}: only one column; need a label column and at least one feature column")
    skip = 1 if header else 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": reported below
            data = np.loadtxt(path, delimiter=delim, skiprows=skip, ndmin=2, dtype=np.float64,
                              encoding="utf-8-sig", quotechar='"')
    except (ValueError, OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: {_csv_problem(path, delim, ncol, skip) or e}") from None
    if data.shape[0] == 0:
        raise DataError(f"{path}: no data rows")
    if data.shape[1] != ncol:
        raise DataError(f"{path}: rows have {data.shape[1]} columns but the first line has {ncol}")
    names = header or [str(i) for i in range(ncol)]
    feature_names = names[:col] + names[col + 1:]
    X = np.delete(data, col, axis=1)
    bad = ~np.isfinite(X)
    if bad.any():
        i, j = np.unravel_index(int(np.argmax(bad)), X.shape)
        raise DataError(f"{path}: {X[i, j]} in data row {i + 1}, column {feature_names[j]!r}: features must be finite")
    return X, _labels(data[:, col], f"{path}: label column {names[col]!r}", classes), header


def _csv_problem(path: Path, delim: str | None, ncol: int, skip: int) -> str | None:
    """The first unparsable line, found by a slow exact pass (only after loadtxt failed)."""
    with open(path, encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, 1):
            if lineno <= skip or not line.strip() or line.lstrip().startswith("#"):
                continue
            cells = [c.strip().strip('"').strip() for c in line.split(delim)]
            if len(cells) != ncol:
                return f"line {lineno} has {len(cells)} fields, expected {ncol}"
            for j, c in enumerate(cells):
                if not _is_number(c):
                    return f"line {lineno}, field {j + 1}: cannot parse {c!r} as a number"
    return None


# ----------------------------------------------------------------------------- finding data

def _roots() -> list[Path]:
    env = os.environ.get("GRAPHNET_DATA", "")
    return [Path(p).expanduser() for p in env.split(os.pathsep) if p] + [SYSTEM_DATA_DIR]


def _kind(path: Path) -> str | None:
    if path.is_dir():
        return "idx"
    if path.is_file():
        return _SUFFIXES.get(path.suffix.lower())
    return None


def list_datasets() -> list[str]:
    """Names `load` accepts right now: the synthetic sets plus the IDX folders,
    .npz and .csv files found in $GRAPHNET_DATA and /usr/share/datasets."""
    names = set(_SYNTHETIC)
    for root in _roots():
        try:
            entries = list(root.iterdir())
        except OSError:
            continue
        for p in entries:
            if p.is_dir() and _idx_file(p, _IDX_FILES["train_images"][0]) is not None:
                names.add(p.name)
            elif p.is_file() and _kind(p) in ("npz", "csv"):
                names.add(p.stem)
    return sorted(names)


def _resolve(name_or_path: str | os.PathLike[str]) -> tuple[str, Any]:
    """("synthetic", name) | ("idx" | "npz" | "csv", Path)."""
    s = os.fspath(name_or_path)
    looks_like_name = (isinstance(name_or_path, str) and s and "/" not in s and os.sep not in s
                       and not s.startswith((".", "~")) and Path(s).suffix.lower() not in _SUFFIXES)
    if not looks_like_name:
        p = Path(s).expanduser()
        if not p.exists():
            raise DataError(f"{p}: no such file or folder")
        kind = _kind(p)
        if kind is None:
            raise DataError(f"{p}: unsupported data file; expected a folder of IDX files, a .npz or a .csv file")
        return kind, p
    low = s.lower()
    if low in _SYNTHETIC:
        return "synthetic", low
    spellings = list(dict.fromkeys([s, low, _ALIASES.get(low, low)]
                                   + [a for a, c in _ALIASES.items() if c == _ALIASES.get(low)]))
    searched = []
    for root in _roots():
        for name in spellings:
            for p in (root / name, root / f"{name}.npz", root / f"{name}.csv"):
                searched.append(str(p))
                if (kind := _kind(p)) is not None:
                    return kind, p
    if (kind := _kind(Path(s))) is not None:  # a folder of that name in the working directory
        return kind, Path(s)
    where = f"searched {', '.join(searched)} and ./{s}"
    if low in _ALIASES:
        raise DataError(f"dataset {s!r} not found; {where}. Set $GRAPHNET_DATA or pass a folder path.")
    known = sorted(set(list_datasets()) | set(_ALIASES))
    close = difflib.get_close_matches(low, known, n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    raise DataError(f"unknown dataset {s!r}.{hint} Known: {', '.join(known)}; {where}.")


# ----------------------------------------------------------------------------- splits, normalization

def _split_size(size: Any, n: int, what: str, default: int) -> int:
    if size is None:
        k = default
    elif isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        k = int(size)
        if not 0 <= k < n:
            raise DataError(f"{what}={size} must be in 0..{n - 1} (the training set has {n} examples)")
    elif isinstance(size, (float, np.floating)) and 0.0 <= size < 1.0:
        k = min(int(round(float(size) * n)), n - 1)
    else:
        raise DataError(f"{what} must be an int count or a float fraction in [0, 1), got {size!r}")
    return max(0, min(k, n - 1))


def _split(X: np.ndarray, y: np.ndarray, k: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A seeded random subset of k examples split off; both parts keep their original order."""
    perm = rng.permutation(len(X))
    take, keep = np.sort(perm[:k]), np.sort(perm[k:])
    return X[keep], y[keep], X[take], y[take]


def _standardize(arrays: list[np.ndarray]) -> None:
    """In place: subtract the first array's per-feature mean, divide by its std (0 -> 1)."""
    train = arrays[0]
    mean = train.mean(axis=0, dtype=np.float64)
    sq = np.zeros_like(mean)
    for i in range(0, len(train), 8192):  # chunked so float64 temporaries stay small
        d = train[i:i + 8192] - mean
        sq += np.einsum("i...,i...->...", d, d)
    std = np.sqrt(sq / len(train))
    std[std == 0] = 1.0
    for a in arrays:
        a -= mean.astype(a.dtype)
        a /= std.astype(a.dtype)


def _normalize(arrays: list[np.ndarray], mode: str | None, raw: np.dtype) -> None:
    if mode == "scale":
        if raw.kind == "u":
            for a in arrays:
                a /= a.dtype.type(np.iinfo(raw).max)
        else:  # min-max of the training split, to [0, 1]
            lo, hi = float(arrays[0].min()), float(arrays[0].max())
            for a in arrays:
                a -= a.dtype.type(lo)
                a /= a.dtype.type(hi - lo or 1.0)
    elif mode == "standardize":
        _standardize(arrays)


# ----------------------------------------------------------------------------- load

def load(name_or_path: str | os.PathLike[str], *, val_size: int | float | None = None,
         normalize: str | None = "auto", seed: int = 0, flatten: bool = True, dtype: Any = "float32",
         classes: int | None = None, label_column: str | int | None = None,
         test_file: str | os.PathLike[str] | None = None, test_size: int | float | None = None,
         **options: Any) -> dict[str, np.ndarray]:
    """Load a data set as ``{X_train, y_train, X_val, y_val, X_test, y_test}``.

    ``X_*``: `dtype` arrays of shape (N, D) with ``flatten=True``, else
    (N, *example_shape) (IDX images: (N, 28, 28)). ``y_*``: int64 (N,).

    name_or_path: ``"mnist"``, ``"fashion-mnist"`` (or ``fashion_mnist``),
        ``"spiral"``, ``"blobs"``, any name found in $GRAPHNET_DATA or
        /usr/share/datasets (a folder, ``<name>.npz`` or ``<name>.csv``), or
        a path to an IDX folder, ``.npz`` or ``.csv`` file.
    val_size: examples moved from the training set to the validation set by a
        seeded permutation: an int count or a float fraction. Default: 10% of
        the training set, at most 5000 -- MNIST-like data gives 55000 / 5000,
        the classic TensorFlow split, large enough that validation accuracy
        has a standard error under 0.5%; small sets (spiral) still get a
        tenth. An ``.npz`` that has X_val/y_val is used as is (giving
        val_size too is an error).
    normalize: ``"scale"`` (unsigned-integer features / dtype max, e.g.
        uint8 pixels / 255; other features min-max to [0, 1] by the training
        split), ``"standardize"`` (per-feature mean and std of the training
        split -- after the validation split -- applied to all splits; a
        constant feature gets std 1), ``None``; ``"auto"`` (default) is
        ``"scale"`` for uint8 features (IDX images) and ``None`` otherwise.
    seed: seeds the validation split, the test split and synthetic data.
    classes: number of classes; labels must lie in 0..classes-1. Default 10
        for IDX, unchecked (only >= 0) for npz/CSV; for synthetic sets it is
        the number of classes generated.
    label_column, test_file, test_size: CSV only. The label column defaults to
        the first header column named label, y or target. The test set is
        `test_file` (same columns) or else a seeded `test_size` split of the
        file (default 20%). `test_size` also applies to synthetic sets.
    options: generator options of synthetic sets: spiral (points per class,
        noise), blobs (points per class, features, std).
    """
    kind, src = _resolve(name_or_path)
    what = src if kind == "synthetic" else f"{src} ({kind})"
    for flag, ok in (("label_column", label_column is None or kind == "csv"),
                     ("test_file", test_file is None or kind == "csv"),
                     ("test_size", test_size is None or kind in ("csv", "synthetic")),
                     ("option(s) " + ", ".join(options), not options or kind == "synthetic")):
        if not ok:
            raise DataError(f"{what}: {flag} does not apply to this source (it has its own test split)"
                            if flag == "test_size" else f"{what}: {flag} does not apply to this source")
    if test_file is not None and test_size is not None:
        raise DataError(f"{what}: give test_file or test_size, not both")
    if normalize not in ("auto", "scale", "standardize", None, "none"):
        raise DataError(f"normalize must be 'scale', 'standardize', None or 'auto', got {normalize!r}")
    try:
        out_dtype = np.dtype(dtype)
    except TypeError as e:
        raise DataError(f"dtype {dtype!r} is not a numpy dtype") from e
    if out_dtype.kind != "f":
        raise DataError(f"dtype must be a floating type (float32, float64), got {out_dtype}")
    gen_rng, test_rng, val_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(_check_seed(seed)).spawn(3))

    Xv = yv = None
    if kind == "synthetic":
        fn = _SYNTHETIC[src]
        allowed = [p for p in inspect.signature(fn).parameters if p != "seed"]
        unknown = [o for o in options if o not in allowed]
        if unknown:
            raise DataError(f"{src}: unknown option(s) {', '.join(unknown)}; options: {', '.join(allowed)}")
        if classes is not None:
            options["classes"] = classes
        X, y = fn(**options, seed=gen_rng)
        Xt, yt, Xs, ys = _split(X, y, _split_size(test_size, len(X), "test_size",
                                                  round(DEFAULT_TEST_FRACTION * len(X))), test_rng)
    elif kind == "idx":
        Xt, yt, Xs, ys = _load_idx(src, classes)
    elif kind == "npz":
        Xt, yt, Xv, yv, Xs, ys = _load_npz(src, classes)
    else:
        X, y, header = _read_csv(src, label_column, classes)
        if test_file is None:
            Xt, yt, Xs, ys = _split(X, y, _split_size(test_size, len(X), "test_size",
                                                      round(DEFAULT_TEST_FRACTION * len(X))), test_rng)
        else:
            tp = Path(test_file).expanduser()
            if not tp.is_file():
                raise DataError(f"{tp}: no such test file")
            if label_column is None and header is not None:
                label_column = next(h for h in header if h.lower() in _LABEL_NAMES)
            Xs, ys, theader = _read_csv(tp, label_column, classes)
            if header is not None and theader is not None and header != theader:
                raise DataError(f"{tp}: columns {theader} differ from {src}'s {header}")
            _same_example_shape(X, Xs, str(src), str(tp))
            Xt, yt = X, y
    if Xv is None:
        default = min(DEFAULT_VAL_MAX, round(DEFAULT_VAL_FRACTION * len(Xt)))
        Xt, yt, Xv, yv = _split(Xt, yt, _split_size(val_size, len(Xt), "val_size", default), val_rng)
    elif val_size is not None:
        raise DataError(f"{src}: has its own X_val/y_val; val_size={val_size!r} does not apply")

    raw = Xt.dtype
    mode = {"auto": "scale" if raw == np.uint8 else None, "none": None}.get(normalize, normalize)  # type: ignore[arg-type]
    arrays = [np.array(a.reshape(len(a), -1) if flatten else a, dtype=out_dtype, order="C") for a in (Xt, Xv, Xs)]
    _normalize(arrays, mode, raw)
    return {"X_train": arrays[0], "y_train": yt, "X_val": arrays[1], "y_val": yv, "X_test": arrays[2], "y_test": ys}


def batches(X: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool = True,
            rng: np.random.Generator | int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of (X_batch (B, ...), y_batch (B,)) pairs covering every example once.

    With `shuffle`, the order is a permutation drawn from `rng` (a Generator,
    an int seed, or None for fresh entropy): sampling without replacement.
    Every batch has `batch_size` rows except the last, which holds the rest.
    Without shuffle the batches are views in order.
    """
    n = len(X)
    if len(y) != n:
        raise DataError(f"batches: X has {n} examples but y has {len(y)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise DataError(f"batches: batch_size must be an int >= 1, got {batch_size!r}")
    order = (rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)).permutation(n) \
        if shuffle else None

    def epoch() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for i in range(0, n, batch_size):
            if order is None:
                yield X[i:i + batch_size], y[i:i + batch_size]
            else:
                idx = order[i:i + batch_size]
                yield X[idx], y[idx]
    return epoch()
