"""Data sets as the seed homework's dict of arrays.

`load(name_or_path)` returns ``{"X_train", "y_train", "X_val", "y_val",
"X_test", "y_test"}`` -- exactly those six keys, in that order. ``X_*`` are
float arrays of shape (N, D) (or (N, *example_shape) with ``flatten=False``);
``y_*`` are int64 class indices of shape (N,), or float targets of shape
(N, *target_shape) when ``target_shape`` is given (regression, binary).

Sources:

- IDX folders (MNIST / Fashion-MNIST format, ``.gz`` or plain), by name from
  ``$GRAPHNET_DATA/<name>`` (an ``os.pathsep``-separated list is allowed), then
  ``/usr/share/datasets/<name>`` (Debian's ``dataset-fashion-mnist``), or by
  folder path.
- ``.npz`` files with the six keys (or without ``X_val``/``y_val``), read with
  ``allow_pickle=False``.
- CSV files with a label column; the test set is a second file or a fraction. A CSV
  with text or missing cells is a table (graphnet.data.columns): its categories one-hot
  and its missing cells imputed, fitted on the training split.
- Built-in synthetic sets ``spiral`` and ``blobs``, deterministic by seed.

The validation and test splits a source does not have are seeded random splits of the
training set, stratified by class for class labels (``stratify``).

Every problem with a file raises `graphnet.DataError` naming the file.
"""
from __future__ import annotations

import inspect
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from ..errors import DataError, quoted_list, suggestions
from ._checks import check_example_shape, check_seed, check_targets, prepare_labels
from .arrays import IN_MEMORY, from_arrays, prepare_data, text_labels_as_indices
from .columns import DEFAULT_MISSING, IMPUTE_MODES, ColumnEncoding, TableSettings
from .files import file_kind, regular_file
from .fitted import DataInfo, RawColumns, finish_splits
from .idx import IDX_FILES, find_idx_file, load_idx, read_idx
from .splits import split_off, split_size
from .synthetic import SYNTHETIC, blobs, spiral
from .tabular import KEYS, CsvTable, load_npz, read_csv

__all__ = ["KEYS", "DEBIAN_PACKAGES", "IN_MEMORY", "DataInfo", "from_arrays", "load", "source_kind",
           "load_with_info", "list_datasets", "batches", "read_idx", "spiral", "blobs", "prepare_labels",
           "check_targets", "prepare_data", "table_settings", "text_labels_as_indices"]

SYSTEM_DATA_DIR = Path("/usr/share/datasets")
DEFAULT_TEST_FRACTION = 0.2  # CSV without a test file, synthetic sets

_ALIASES = {"mnist": "mnist", "fashion-mnist": "fashion-mnist",
            "fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist"}
_SUFFIXES = {".npz": "npz", ".csv": "csv", ".tsv": "csv", ".txt": "csv"}


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
    names = set(SYNTHETIC)
    for root in _roots():
        try:
            entries = list(root.iterdir())
        except OSError:
            continue
        for p in entries:
            if p.is_dir() and find_idx_file(p, IDX_FILES["train_images"][0]) is not None:
                names.add(p.name)
            elif p.is_file() and _kind(p) in ("npz", "csv"):
                names.add(p.stem)
    return sorted(names)


def source_path(name_or_path: str | os.PathLike[str]) -> Path | None:
    """The file or folder `load` reads for this name or path; None for a synthetic set.
    DataError if there is none."""
    kind, src = _resolve(name_or_path)
    return None if kind == "synthetic" else Path(src)


def source_kind(name_or_path: str | os.PathLike[str]) -> str:
    """What `load` reads for this name or path: "synthetic", "idx", "npz" or "csv"; DataError if nothing."""
    return _resolve(name_or_path)[0]


def _resolve(name_or_path: str | os.PathLike[str]) -> tuple[str, Any]:
    """("synthetic", name) | ("idx" | "npz" | "csv", Path)."""
    s = os.fspath(name_or_path)
    looks_like_name = (isinstance(name_or_path, str) and s and "/" not in s and os.sep not in s
                       and not s.startswith((".", "~")) and Path(s).suffix.lower() not in _SUFFIXES)
    if not looks_like_name:
        p = Path(s).expanduser()
        what = file_kind(p)
        if what == "missing":
            raise DataError(f"{p}: no such file or folder")
        if what not in (None, "a folder"):
            raise DataError(f"{p}: is {what}, not a data file or folder")
        kind = _kind(p)
        if kind is None:
            raise DataError(f"{p}: unsupported data file; expected a folder of IDX files, a .npz or a .csv file")
        return kind, p
    low = s.lower()
    if low in SYNTHETIC:
        return "synthetic", low
    spellings = list(dict.fromkeys([s, low, _ALIASES.get(low, low)]
                                   + [a for a, c in _ALIASES.items() if c == _ALIASES.get(low)]))
    searched = []
    for root in _roots():
        for name in spellings:
            searched.append(f"{root / name}{{,.npz,.csv}}")
            for p in (root / name, root / f"{name}.npz", root / f"{name}.csv"):
                if (kind := _kind(p)) is not None:
                    return kind, p
    if (kind := _kind(Path(s))) is not None:  # a folder of that name in the working directory
        return kind, Path(s)
    where = f"searched {', '.join(searched)} and ./{s}"
    if low in _ALIASES:
        raise DataError(f"dataset {s!r} not found; {where}. {_how_to_install(_ALIASES[low])}")
    canonical = {**{n: n for n in list_datasets()}, **_ALIASES}
    close = dict.fromkeys(canonical[c] for c in suggestions(low, canonical, n=5))
    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    known = sorted(set(canonical.values()))
    raise DataError(f"unknown dataset {s!r}.{hint} Known: {', '.join(known)}; {where}.")


# Debian/Ubuntu packages that install an IDX data set into /usr/share/datasets/<name>.
DEBIAN_PACKAGES = {"fashion-mnist": "dataset-fashion-mnist"}


def _how_to_install(name: str) -> str:
    """How to get the IDX data set `name`: its Debian package (if any) and the file layout."""
    files = ", ".join(f"{base}[.gz]" for base, _ in IDX_FILES.values())
    layout = (f"put the four IDX files ({files}) in a folder named {name} under $GRAPHNET_DATA "
              f"(e.g. $GRAPHNET_DATA/{name}/train-images-idx3-ubyte.gz), or pass that folder's path")
    package = DEBIAN_PACKAGES.get(name)
    if package is None:
        return f"Download it and {layout}."
    return (f"On Debian/Ubuntu install it with `apt-get install -y {package}` (into {SYSTEM_DATA_DIR / name}); "
            f"elsewhere, {layout}.")


# ----------------------------------------------------------------------------- load

def load(name_or_path: str | os.PathLike[str], *, val_size: int | float | None = None,
         normalize: str | None = "auto", seed: int = 0, flatten: bool = True, dtype: Any = "float32",
         classes: int | None = None, label_column: str | int | None = None,
         test_file: str | os.PathLike[str] | None = None, test_size: int | float | None = None,
         target_shape: tuple[int, ...] | list[int] | None = None,
         class_names: tuple[str, ...] | list[str] | None = None, **options: Any) -> dict[str, np.ndarray]:
    """Load a data set as ``{X_train, y_train, X_val, y_val, X_test, y_test}``
    (`load_with_info` also returns what was fitted to it).

    ``X_*``: `dtype` arrays of shape (N, D) with ``flatten=True``, else
    (N, *example_shape) (IDX images: (N, 28, 28)). ``y_*``: int64 (N,), or
    with `target_shape` `dtype` targets (N, *target_shape).

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
        uint8 pixels / 255; other features each min-max to [0, 1] by its own
        range on the training split), ``"standardize"`` (per-feature mean and std of the training
        split -- after the validation split -- applied to all splits; a
        constant feature gets std 1), ``None``; ``"auto"`` (default) is
        ``"scale"`` for uint8 features (IDX images) and ``None`` otherwise.
    seed: seeds the validation split, the test split and synthetic data.
    classes: number of classes; labels must lie in 0..classes-1. Default 10
        for IDX, unchecked (only >= 0) for npz/CSV; for synthetic sets it is
        the number of classes generated.
    label_column, test_file, test_size: CSV only. The label column defaults to
        the first header column named label, y or target; labels are class
        indices (numbers) or class names (text: indices in sorted order of the
        names in the training file). The test set is
        `test_file` (same columns) or else a seeded `test_size` split of the
        file (default 20%). `test_size` also applies to synthetic sets.
    target_shape: the per-example shape of float targets (a spec label
        declared with ``shape``): the labels are read as numbers, not class
        indices (a CSV label column need not hold whole numbers; an (N,)
        array fits shape [1]); a wrong width is a DataError naming the file
        and both shapes. Class labels of IDX and synthetic sets become float
        targets (0/1 labels of two blobs for a binary classifier).
    options: generator options of synthetic sets: spiral (points per class,
        noise), blobs (points per class, features, std); and `load_with_info`'s
        table and split settings (categorical, missing, impute, stratify,
        target_scaling).
    """
    return load_with_info(name_or_path, val_size=val_size, normalize=normalize, seed=seed, flatten=flatten,
                          dtype=dtype, classes=classes, label_column=label_column, test_file=test_file,
                          test_size=test_size, target_shape=target_shape, class_names=class_names,
                          **options)[0]


def load_with_info(name_or_path: str | os.PathLike[str], *, val_size: int | float | None = None,
                   normalize: str | None = "auto", seed: int = 0, flatten: bool = True, dtype: Any = "float32",
                   classes: int | None = None, label_column: str | int | None = None,
                   test_file: str | os.PathLike[str] | None = None, test_size: int | float | None = None,
                   target_shape: tuple[int, ...] | list[int] | None = None,
                   class_names: tuple[str, ...] | list[str] | None = None, categorical: Any = None,
                   missing: Any = None, impute: Any = None, stratify: Any = None, target_scaling: Any = False,
                   encoding: ColumnEncoding | None = None,
                   **options: Any) -> tuple[dict[str, np.ndarray], DataInfo]:
    """`load`'s data set and what was fitted to it: a `DataInfo` (the normalization fitted on
    the training split, the CSV's column names, the class names of text labels, a table's
    column encoding, the target scaling).

    categorical, missing, impute: CSV only (graphnet.data.columns): the feature columns read
        as categories besides the text ones (header names; without a header, the feature
        columns' indices "0", "1", ...), the cells that are missing values
        (default "", NA, NaN, nan, ?) and how missing numbers are filled ("median", "mean",
        "zero"); a CSV with text or missing cells, or declared columns, is a raw table whose
        encoding (one-hot categories, imputed numbers) is fitted on the training split.
        `encoding`: a model's encoding to read the CSV's columns with (by name) instead.
    stratify: split off the test and validation sets class by class (default: for class
        labels, not for float targets).
    target_scaling: standardize float targets by the training split's mean and std.
    """
    kind, src = _resolve(name_or_path)
    what = src if kind == "synthetic" else f"{src} ({kind})"
    for flag, ok in (("label_column", label_column is None or kind == "csv"),
                     ("class_names", class_names is None or kind == "csv"),
                     ("test_file", test_file is None or kind == "csv"),
                     ("test_size", test_size is None or kind in ("csv", "synthetic")),
                     ("option(s) " + ", ".join(options), not options or kind == "synthetic"),
                     ("categorical, missing and impute", (categorical, missing, impute) == (None,) * 3 or kind == "csv"),
                     ("encoding", encoding is None or kind == "csv")):
        if not ok:
            raise DataError(f"{what}: {flag} does not apply to this source (it has its own test split)"
                            if flag == "test_size" else f"{what}: {flag} does not apply to this source")
    if test_file is not None and test_size is not None:
        raise DataError(f"{what}: give test_file or test_size, not both")
    if target_shape is not None and classes is not None and kind in ("npz", "csv"):
        raise DataError(f"{what}: classes= applies to class labels, not to float targets of target_shape=")
    if normalize not in ("auto", "scale", "standardize", None, "none"):
        raise DataError(f"normalize must be 'scale', 'standardize', None or 'auto', got {normalize!r}")
    try:
        out_dtype = np.dtype(dtype)
    except TypeError as e:
        raise DataError(f"dtype {dtype!r} is not a numpy dtype") from e
    if out_dtype.kind != "f":
        raise DataError(f"dtype must be a floating type (float32, float64), got {out_dtype}")
    table = table_settings(categorical, missing, impute, what)
    stratify = _flag(stratify, "stratify", what, default=target_shape is None)
    target_scaling = _flag(target_scaling, "target_scaling", what, default=False)
    gen_rng, test_rng, val_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(check_seed(seed)).spawn(3))
    raw_columns, tp = None, None

    Xv = yv = None
    feature_names = label_name = None
    given_names, class_names = (None if class_names is None else tuple(class_names)), None
    if kind == "synthetic":
        fn = SYNTHETIC[src]
        allowed = [p for p in inspect.signature(fn).parameters if p != "seed"]
        unknown = [o for o in options if o not in allowed]
        if unknown:
            raise DataError(f"{src}: unknown option(s) {', '.join(unknown)}; options: {', '.join(allowed)}")
        if classes is not None:
            options["classes"] = classes
        X, y = fn(**options, seed=gen_rng)
        Xt, yt, Xs, ys = split_off(X, y, split_size(test_size, len(X), "test_size",
                                                    round(DEFAULT_TEST_FRACTION * len(X))), test_rng, stratify)
    elif kind == "idx":
        Xt, yt, Xs, ys = load_idx(src, classes, out_dtype)
    elif kind == "npz":
        Xt, yt, Xv, yv, Xs, ys = load_npz(src, classes, target_shape, out_dtype)
    else:
        settings = TableSettings.of(encoding) if encoding is not None else table
        csv = read_csv(src, label_column, classes, target_shape, out_dtype, given_names, settings)
        tp = None if test_file is None else regular_file(Path(test_file).expanduser(), "test file")
        test = None if tp is None else _read_test_csv(tp, csv, classes, target_shape, out_dtype, settings)
        if test is not None and csv.kinds is None and test.kinds is not None:  # the test file needs a table
            settings = replace(settings, always=True)
            csv = read_csv(src, label_column, classes, target_shape, out_dtype, given_names, settings)
            test = _read_test_csv(tp, csv, classes, target_shape, out_dtype, settings)  # type: ignore[arg-type]
        X, y, header, col, class_names = csv[:5]
        if header is not None:
            feature_names, label_name = tuple(header[:col] + header[col + 1:]), header[col]
        if csv.kinds is not None:
            raw_columns = RawColumns(csv.columns, csv.kinds, header is not None, settings, encoding)  # type: ignore[arg-type]
        if test is None:
            Xt, yt, Xs, ys = split_off(X, y, split_size(test_size, len(X), "test_size",
                                                        round(DEFAULT_TEST_FRACTION * len(X))), test_rng, stratify)
        else:
            Xs, ys, theader, _, test_names = test[:5]
            if class_names is None and test_names is not None:
                raise DataError(f"{tp}: labels are text but {src}'s are numbers")
            if header is not None and theader is not None and header != theader:
                raise DataError(f"{tp}: columns {quoted_list(theader)} differ from {src}'s {quoted_list(header)}")
            check_example_shape(X, Xs, str(src), str(tp))
            Xt, yt = X, y
    if len(Xt) == 0:
        raise DataError(f"{what}: the training set is empty")
    if target_shape is not None and kind in ("synthetic", "idx"):
        yt, ys = (prepare_labels(y, f"{what}: {key}", target_shape=tuple(target_shape), dtype=out_dtype)
                  for key, y in (("y_train", yt), ("y_test", ys)))
    return finish_splits(Xt, yt, Xv, yv, Xs, ys, val_size=val_size, normalize=normalize, flatten=flatten,
                         dtype=out_dtype, val_rng=val_rng, source=str(src),
                         columns=(feature_names, label_name, class_names), table=raw_columns, stratify=stratify,
                         target_scaling=target_scaling, split_test=kind == "synthetic" or (kind == "csv" and tp is None))


def _read_test_csv(path: Path, train: CsvTable, classes: int | None, target_shape: Any, dtype: np.dtype,
                   settings: TableSettings) -> CsvTable:
    """A test file read as its training file was: with the training file's label column and
    class names, and -- when the training file is a table -- its columns and their kinds."""
    if train.kinds is not None:
        named = train.header is not None
        settings = replace(settings, always=True, kinds=train.kinds, columns=train.columns if named else None)
    return read_csv(path, train.label_index, classes, target_shape, dtype, train.class_names, settings)


def table_settings(categorical: Any, missing: Any, impute: Any, what: Any = "data") -> TableSettings:
    """The table settings of a data source's options (train.data.options), checked:
    `categorical` and `missing` lists of strings, `impute` one of median, mean, zero; None
    keeps a default. DataError naming the option."""
    def texts(value: Any, option: str, default: tuple[str, ...]) -> tuple[str, ...]:
        if value is None:
            return default
        if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise DataError(f"{what}: {option} must be a list of strings (column names, cell texts), got {value!r}")
        return tuple(value)

    if impute is not None and impute not in IMPUTE_MODES:
        raise DataError(f"{what}: impute must be one of {', '.join(IMPUTE_MODES)}, got {impute!r}")
    return TableSettings(texts(categorical, "categorical", ()), texts(missing, "missing", DEFAULT_MISSING),
                         impute or "median")


def _flag(value: Any, option: str, what: Any, default: bool) -> bool:
    """A true/false option (None: `default`); DataError naming it otherwise."""
    if value is None:
        return default
    if not isinstance(value, (bool, np.bool_)):
        raise DataError(f"{what}: {option} must be true or false, got {value!r}")
    return bool(value)


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

