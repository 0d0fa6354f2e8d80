"""In-memory data sets: the homework's dict of arrays checked, split and fitted as a file
is (`from_arrays`), text class labels mapped to indices, and raw tables (graphnet.data.columns):
a 2-D X_train of text or objects (str, numbers, None), with NaN cells, or with columns
declared categorical -- its columns named by their indices "0", "1", ..."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..errors import DataError
from ._checks import check_count, check_example_shape, check_features, check_seed, prepare_labels
from .columns import ColumnEncoding, TableSettings, array_rows, as_table
from .fitted import DataInfo, RawColumns, finish_splits
from .tabular import KEYS

IN_MEMORY = "<in-memory>"  # the data name a run trained on arrays records


def from_arrays(data: Mapping[str, Any], *, val_size: int | float | None = None, normalize: str | None = "auto",
                seed: int = 0, dtype: Any = "float32", classes: int | None = None,
                target_shape: tuple[int, ...] | list[int] | None = None,
                class_names: tuple[str, ...] | list[str] | None = None, name: str = "data",
                table: TableSettings | None = None, stratify: bool | None = None, target_scaling: bool = False,
                encoding: ColumnEncoding | None = None) -> tuple[dict[str, np.ndarray], DataInfo]:
    """An in-memory dict (X_train, y_train; optionally X_val, y_val, X_test, y_test) split,
    flattened and normalized as `load_with_info` does a file: without X_val a seeded
    validation split of the training set (`val_size`, by `seed` as for files; `stratify`
    by class, default for class labels); the normalization fitted on the training split.
    X_*: (N, ...) numbers (uint8 images are scaled by "auto"), or a raw table (N, C) (see
    the module docstring; `table`: its settings, `encoding`: a model's encoding to apply
    instead of fitting one); y_* as `prepare_labels` takes them, or text class labels, which
    map to indices as a CSV's do (by `class_names` when given, else by the sorted names in
    y_train; the info then has the class names); `target_scaling` standardizes float
    targets. DataErrors name `name` and the key."""
    full = dict(data)
    if "X_test" not in full and "y_test" not in full and "X_train" in full and "y_train" in full:
        full["X_test"], full["y_test"] = np.asarray(full["X_train"])[:0], np.asarray(full["y_train"])[:0]
    raw = np.asarray(full["X_train"]).dtype if "X_train" in full else np.dtype(dtype)
    settings = table or TableSettings()
    names = None
    if target_shape is None and "y_train" in full and np.asarray(full["y_train"]).dtype.kind in "USO":
        full, names = text_labels_as_indices(full, class_names, name)
    tabular = encoding is not None or ("X_train" in full and is_raw_table(full["X_train"], settings))
    prepared = prepare_data(full, classes=classes, target_shape=target_shape, dtype=dtype, name=name, table=tabular)
    if len(prepared["X_train"]) == 0:
        raise DataError(f"{name}: X_train is empty")
    columns = _raw_columns(full, prepared, settings, encoding, dtype, name) if tabular else None
    val_rng = np.random.default_rng(np.random.SeedSequence(check_seed(seed)).spawn(3)[2])
    given = "X_val" in full
    return finish_splits(prepared["X_train"], prepared["y_train"], prepared["X_val"] if given else None,
                         prepared["y_val"] if given else None, prepared["X_test"], prepared["y_test"],
                         val_size=val_size, normalize=normalize, flatten=True, dtype=np.dtype(dtype),
                         val_rng=val_rng, source=name, raw=raw, columns=(None, None, names), table=columns,
                         stratify=target_shape is None if stratify is None else stratify,
                         target_scaling=target_scaling)


def is_raw_table(X: Any, settings: TableSettings) -> bool:
    """Whether X_train is a raw table: 2-D, and text or objects, NaN cells, or declared
    categorical columns."""
    X = np.asarray(X) if not isinstance(X, list) else np.array(X, dtype=object)
    if X.ndim != 2:
        return False
    return X.dtype.kind in "OU" or bool(settings.categorical) or (X.dtype.kind == "f" and bool(np.isnan(X).any()))


def _raw_columns(full: Mapping[str, Any], prepared: dict[str, np.ndarray], settings: TableSettings,
                 encoding: ColumnEncoding | None, dtype: Any, name: str) -> RawColumns:
    """The columns of a raw table X_train (named "0", "1", ...): their kinds inferred from
    X_train (or the `encoding`'s), every split's number cells checked."""
    X_train = prepared["X_train"]
    names = encoding.names if encoding is not None else tuple(str(j) for j in range(X_train.shape[1]))
    if encoding is not None:
        settings = TableSettings.of(encoding)
    kinds = settings.checked_kinds(X_train, names, dtype, array_rows(f"{name}: X_train"))
    for split in ("val", "test"):
        if f"X_{split}" in full and len(prepared[f"X_{split}"]):
            TableSettings(settings.categorical, settings.missing, kinds=kinds).checked_kinds(
                prepared[f"X_{split}"], names, dtype, array_rows(f"{name}: X_{split}"))
    return RawColumns(names, kinds, encoding.named if encoding is not None else False, settings, encoding)


def text_labels_as_indices(data: Mapping[str, Any], class_names: tuple[str, ...] | list[str] | None,
                           name: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    """`data` with its text labels y_* (N,) replaced by int64 indices into the class names:
    `class_names` when given, else the sorted names of y_train. DataError naming the key and
    position of a label that is not text or not a class."""
    labels = {key: np.asarray(value) for key, value in data.items() if key.startswith("y_")}
    for key, y in labels.items():
        if y.ndim != 1 or not all(isinstance(v, str) for v in y.tolist()):
            raise DataError(f"{name}: {key} must be one text label per example, like y_train "
                            f"(got shape {y.shape}, dtype {y.dtype})")
    names = tuple(class_names) if class_names is not None else tuple(sorted(set(labels["y_train"].tolist())))
    index = {label: i for i, label in enumerate(names)}
    out = dict(data)
    for key, y in labels.items():
        unknown = [i for i, label in enumerate(y.tolist()) if label not in index]
        if unknown:
            raise DataError(f"{name}: {key}[{unknown[0]}] is {y.tolist()[unknown[0]]!r}, not one of the classes "
                            f"{', '.join(map(repr, names[:10]))}{', ...' if len(names) > 10 else ''}")
        out[key] = np.fromiter((index[label] for label in y.tolist()), np.int64, len(y))
    return out, names


def prepare_data(data: Mapping[str, Any], *, classes: int | None = None,
                 target_shape: tuple[int, ...] | list[int] | None = None, dtype: Any = "float32",
                 name: str = "data", table: bool = False) -> dict[str, np.ndarray]:
    """An in-memory data dict checked and converted as `load` returns it.

    `data` holds X_train, y_train, X_test, y_test and optionally X_val,
    y_val (the homework's dict); X_*: (N, ...) numbers, y_*: labels for
    `prepare_labels`. Returns the six keys: X_* as `dtype` (N, ...) (with
    `table`, raw tables (N, C) of cells as they are), y_* as the label
    declares (an absent validation split is empty). Problems are DataErrors
    naming `name` and the key.
    """
    need = [k for k in ("X_train", "y_train", "X_test", "y_test") if k not in data]
    if ("X_val" in data) != ("y_val" in data):
        need += [k for k in ("X_val", "y_val") if k not in data]
    if need:
        raise DataError(f"{name}: missing {', '.join(need)}; it has {', '.join(sorted(map(str, data))) or 'nothing'}")
    out: dict[str, np.ndarray] = {}
    for split in ("train", "val", "test"):
        if f"X_{split}" not in data:
            X_train, y_train = out["X_train"], out["y_train"]
            out["X_val"], out["y_val"] = X_train[:0], y_train[:0]
            continue
        X = (as_table(data[f"X_{split}"], f"{name}: X_{split}") if table
             else check_features(data[f"X_{split}"], name, f"X_{split}", dtype))
        y = prepare_labels(data[f"y_{split}"], f"{name}: y_{split}", classes=classes,
                           target_shape=None if target_shape is None else tuple(target_shape), dtype=dtype)
        check_count(len(X), len(y), f"{name}: X_{split}", f"y_{split}")
        if split != "train":
            check_example_shape(out["X_train"], X, "X_train", f"{name}: X_{split}")
        out[f"X_{split}"], out[f"y_{split}"] = (X if table else np.ascontiguousarray(X, dtype=dtype)), y
    return {key: out[key] for key in KEYS}
