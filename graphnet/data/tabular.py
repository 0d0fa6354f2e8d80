"""Tabular sources: .npz archives of the six arrays, and CSV files with a label column."""
from __future__ import annotations

import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np

from ..errors import DataError
from ._checks import check_count, check_example_shape, check_features, prepare_labels

__all__ = ["KEYS", "LABEL_NAMES", "CsvTable", "csv_layout", "load_npz", "read_csv"]

KEYS = ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")
LABEL_NAMES = ("label", "y", "target")


def load_npz(path: Path, classes: int | None, target_shape: tuple[int, ...] | None = None,
             dtype: Any = np.float64) -> tuple[np.ndarray | None, ...]:
    """(X_train, y_train, X_val, y_val, X_test, y_test) from an .npz, without unpickling.

    X_* keep their stored dtype and shape (N, ...); y_* are int64 (N,), or
    `dtype` targets (N, *target_shape) when `target_shape` is given.
    X_val/y_val are None when the archive has neither.
    """
    try:
        with open(path, "rb") as f:  # our own handle: np.load leaks its own when the zip is corrupt
            arrays = _read_npz(path, f)
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from e
    out: list[np.ndarray | None] = []
    for split in ("train", "val", "test"):
        X, y = arrays[f"X_{split}"], arrays[f"y_{split}"]
        if X is None or y is None:
            out += [None, None]
            continue
        X = check_features(X, f"{path}: X_{split}")
        y = prepare_labels(y, f"{path}: y_{split}", classes=classes, target_shape=target_shape, dtype=dtype)
        check_count(len(X), len(y), f"{path}: X_{split}", f"y_{split}")
        out += [X, y]
    for split, X in (("val", out[2]), ("test", out[4])):
        if X is not None:
            check_example_shape(out[0], X, "X_train", f"{path}: X_{split}")
    return tuple(out)


def _read_npz(path: Path, f: BinaryIO) -> dict[str, np.ndarray | None]:
    """The six arrays of an open .npz (None where absent), without unpickling anything."""
    try:
        z = np.load(f, allow_pickle=False)
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
            present = ", ".join(sorted(have)) or "none"
            raise DataError(f"{path}: missing array(s) {', '.join(missing)}; it has {present}")
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
    return arrays


# ----------------------------------------------------------------------------- CSV

def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def read_csv(path: Path, label_column: str | int | None, classes: int | None,
             target_shape: tuple[int, ...] | None = None, dtype: Any = np.float64,
             class_names: tuple[str, ...] | None = None) -> CsvTable:
    """One CSV file as X (N, D) float64, y, its header (or None), the label column's index
    and the class names (None for numeric labels).

    y is int64 class indices (N,), or with `target_shape` (which must hold
    one value: a CSV has one label column) `dtype` targets (N, *target_shape).
    Class labels may be numbers (the class indices themselves) or strings
    (class names): string labels map to indices by `class_names` when given
    (the training file's; a label not among them is a DataError naming the
    row), else by the sorted set of this file's labels.

    The delimiter is the first of `,` TAB `;` found in the first line (else
    whitespace); the first line is a header unless every cell is a number.
    `label_column` is a header name or a 0-based index; by default the first
    column named label, y or target (any case).
    """
    delim, header, ncol = csv_layout(path)
    col = _label_index(path, header, ncol, label_column)
    if ncol < 2:
        raise DataError(f"{path}: only one column; need a label column and at least one feature column")
    if target_shape is not None and int(np.prod(target_shape)) != 1:
        raise DataError(f"{path}: the label declares targets of shape {list(target_shape)}, but a CSV file has "
                        f"one label column (one value per example); use an .npz for wider targets")
    skip = 1 if header else 0
    names = header or [str(i) for i in range(ncol)]
    feature_names = names[:col] + names[col + 1:]
    where = f"{path}: label column {names[col]!r}"
    numbers = None if class_names is not None else _read_table(path, delim, skip, ncol, np.float64, None, quiet=True)
    if numbers is not None:
        X, labels = np.delete(numbers, col, axis=1), numbers[:, col]
    else:
        cells = _read_table(path, delim, skip, ncol, str, col)
        labels = np.char.strip(np.char.strip(cells[:, col]), '"')
        try:
            X = np.delete(cells, col, axis=1).astype(np.float64)
        except ValueError:
            raise DataError(f"{path}: {_csv_problem(path, delim, ncol, skip, col)}") from None
        if target_shape is not None or (class_names is None and all(map(_is_number, set(labels.tolist())))):
            labels = _numbers(labels, path, skip)
    bad = ~np.isfinite(X)
    if bad.any():
        i, j = np.unravel_index(int(np.argmax(bad)), X.shape)
        raise DataError(f"{path}: {X[i, j]} in data row {i + 1}, column {feature_names[j]!r}: features must be finite")
    if labels.dtype.kind == "f":
        y = prepare_labels(labels, where, classes=classes, target_shape=target_shape, dtype=dtype)
        return CsvTable(X, y, header, col, None)
    names_used = class_names if class_names is not None else tuple(sorted(set(labels.tolist())))
    y = _class_indices(labels, names_used, where, skip)
    if classes is not None and len(names_used) != classes:
        raise DataError(f"{where}: {len(names_used)} class names ({_short_list(names_used)}) but {classes} classes "
                        f"are declared")
    return CsvTable(X, y, header, col, names_used)


class CsvTable(NamedTuple):
    """What `read_csv` reads: features X (N, D), labels y, the header, the label column's
    index and the class names of string labels (else None)."""

    X: np.ndarray
    y: np.ndarray
    header: list[str] | None
    label_index: int
    class_names: tuple[str, ...] | None


def csv_layout(path: Path) -> tuple[str | None, list[str] | None, int]:
    """(delimiter, header or None, column count) of a CSV file, from its first line."""
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
    return delim, header, len(cells)


def _label_index(path: Path, header: list[str] | None, ncol: int, label_column: str | int | None) -> int:
    """The 0-based index of the label column (DataError naming the file when there is none)."""
    if label_column is None:
        lower = [c.lower() for c in header or []]
        col = next((i for i, c in enumerate(lower) if c in LABEL_NAMES), None)
        if col is None:
            cols = f"columns: {', '.join(header)}" if header else "no header row"
            raise DataError(f"{path}: no label column named {'/'.join(LABEL_NAMES)} ({cols}); "
                            f"pass label_column= (a name or a 0-based index; graphnet train --label-column)")
        return col
    if isinstance(label_column, str):
        if header is None or label_column not in header:
            raise DataError(f"{path}: no column named {label_column!r}"
                            + (f"; columns: {', '.join(header)}" if header else " (the file has no header row)"))
        return header.index(label_column)
    if (isinstance(label_column, (int, np.integer)) and not isinstance(label_column, bool)
            and -ncol <= label_column < ncol):
        return int(label_column) % ncol
    raise DataError(f"{path}: label_column={label_column!r} is neither a column name nor an index in 0..{ncol - 1}")


def _read_table(path: Path, delim: str | None, skip: int, ncol: int, kind: Any, label: int | None,
                quiet: bool = False) -> np.ndarray | None:
    """Every data row, (N, ncol) of `kind` (float64 or str). A row that does not parse is a
    DataError naming its line (the `label` column may hold text), or None when `quiet`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": reported below
            data = np.loadtxt(path, delimiter=delim, skiprows=skip, ndmin=2, dtype=kind,
                              encoding="utf-8-sig", quotechar='"')
    except (ValueError, OSError, UnicodeDecodeError) as e:
        if quiet and isinstance(e, ValueError):
            return None
        raise DataError(f"{path}: {_csv_problem(path, delim, ncol, skip, label) or e}") from None
    if data.shape[0] == 0:
        raise DataError(f"{path}: no data rows")
    if data.shape[1] != ncol:
        raise DataError(f"{path}: rows have {data.shape[1]} columns but the first line has {ncol}")
    return data


def _numbers(labels: np.ndarray, path: Path, skip: int) -> np.ndarray:
    """Numeric label strings as float64 (N,); DataError naming the first that is not a number."""
    try:
        return labels.astype(np.float64)
    except ValueError:
        i = next(i for i, s in enumerate(labels.tolist()) if not _is_number(s))
        raise DataError(f"{path}: line {i + 1 + skip}: label {str(labels[i])!r} is not a number "
                        "(the label declares numeric targets, or the training file's labels were numbers)") from None


def _class_indices(labels: np.ndarray, class_names: tuple[str, ...], where: str, skip: int) -> np.ndarray:
    """String labels (N,) as int64 indices into `class_names`; DataError naming an unknown one."""
    index = {name: i for i, name in enumerate(class_names)}
    unknown = [i for i, s in enumerate(labels.tolist()) if s not in index]
    if unknown:
        i = unknown[0]
        raise DataError(f"{where}: line {i + 1 + skip}: label {str(labels[i])!r} is not a class of the training data "
                        f"({_short_list(class_names)})")
    return np.fromiter((index[s] for s in labels.tolist()), np.int64, len(labels))


def _short_list(names: tuple[str, ...], limit: int = 10) -> str:
    shown = ", ".join(map(repr, names[:limit]))
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _csv_problem(path: Path, delim: str | None, ncol: int, skip: int, label: int | None = None) -> str | None:
    """The first unparsable line, found by a slow exact pass (only after loadtxt failed)."""
    with open(path, encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, 1):
            if lineno <= skip or not line.strip() or line.lstrip().startswith("#"):
                continue
            cells = [c.strip().strip('"').strip() for c in line.split(delim)]
            if len(cells) != ncol:
                return f"line {lineno} has {len(cells)} fields, expected {ncol}"
            for j, c in enumerate(cells):
                if j != label and not _is_number(c):
                    return f"line {lineno}, field {j + 1}: cannot parse {c!r} as a number"
    return None
