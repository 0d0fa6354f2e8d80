"""Tabular sources: .npz archives of the six arrays, and CSV files with a label column."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..errors import DataError, did_you_mean, quoted, quoted_list, shorten
from ._checks import Locate, check_count, check_example_shape, check_features, prepare_labels
from .columns import Place, TableSettings
from .csvtext import QUOTE, column_name, data_record, first_problem, is_number, layout, to_numbers, unquote
from .features import first_nonfinite, nonfinite_problem
from .files import regular_file
from .npyfile import read_npz

__all__ = ["KEYS", "LABEL_NAMES", "CsvTable", "feature_names", "load_npz", "read_csv"]

KEYS = ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")
LABEL_NAMES = ("label", "y", "target")


def load_npz(path: Path, classes: int | None, target_shape: tuple[int, ...] | None = None,
             dtype: Any = np.float64) -> tuple[np.ndarray | None, ...]:
    """(X_train, y_train, X_val, y_val, X_test, y_test) from an .npz, without unpickling.

    X_* keep their stored dtype and shape (N, ...), checked finite as `dtype`; y_* are
    int64 (N,), or `dtype` targets (N, *target_shape) when `target_shape` is given.
    X_val/y_val are None when the archive has neither. The arrays' declared sizes are
    checked against the memory limit (graphnet.system.limits) before they are read.
    """
    required = ["X_train", "y_train", "X_test", "y_test"]
    arrays = read_npz(path, KEYS, required=required, expected=f" with {', '.join(KEYS)}")
    if ("X_val" in arrays) != ("y_val" in arrays):
        raise DataError(f"{path}: missing array(s) {'X_val' if 'y_val' in arrays else 'y_val'}; it has "
                        f"{', '.join(sorted(arrays))}")
    out: list[np.ndarray | None] = []
    for split in ("train", "val", "test"):
        X, y = arrays.get(f"X_{split}"), arrays.get(f"y_{split}")
        if X is None or y is None:
            out += [None, None]
            continue
        X = check_features(X, str(path), f"X_{split}", dtype)
        y = prepare_labels(y, f"{path}: y_{split}", classes=classes, target_shape=target_shape, dtype=dtype)
        check_count(len(X), len(y), f"{path}: X_{split}", f"y_{split}")
        out += [X, y]
    for split, X in (("val", out[2]), ("test", out[4])):
        if X is not None:
            check_example_shape(out[0], X, "X_train", f"{path}: X_{split}")
    return tuple(out)


# ----------------------------------------------------------------------------- CSV

def read_csv(path: Path, label_column: str | int | None, classes: int | None,
             target_shape: tuple[int, ...] | None = None, dtype: Any = np.float64,
             class_names: tuple[str, ...] | None = None, table: TableSettings | None = None) -> CsvTable:
    """One CSV file as features X, y, its header (or None), the label column's index, the
    class names (None for numeric labels) and the kinds of its feature columns.

    X is (N, D) float64 numbers (finite as `dtype`) when every feature cell is a number
    (kinds None); otherwise -- a text cell, a missing cell (one of `table.missing`), a
    column declared categorical, or `table.always` -- X is the raw table (N, D) of cell
    texts, whose columns `kinds` says are numbers or categories (graphnet.data.columns:
    inferred, or with `table.kinds` -- a model's, or the training file's for its test
    file -- checked: the columns `table.columns` by name, their number cells numbers).

    y is int64 class indices (N,), or with `target_shape` (which must hold
    one value: a CSV has one label column) `dtype` targets (N, *target_shape).
    Class labels may be numbers (the class indices themselves) or strings
    (class names): string labels map to indices by `class_names` when given
    (the training file's; a label not among them is a DataError naming the
    line), else by the sorted set of this file's labels. A missing label (a
    `table.missing` marker) is a DataError naming its line.

    The dialect (delimiter, quotes, what a number is) is graphnet.data.csvtext's;
    the first line is a header unless every cell is a number.
    `label_column` is a header name or a 0-based index; by default the first
    column named label, y or target (any case). Errors name the file, the line
    and the column, and quote the cell as written.
    """
    table = table or TableSettings()
    delim, header, ncol = layout(path)
    col = _label_index(path, header, ncol, label_column)
    if ncol < 2:
        raise DataError(f"{path}: only one column; need a label column and at least one feature column")
    if target_shape is not None and int(np.prod(target_shape)) != 1:
        raise DataError(f"{path}: the label declares targets of shape {list(target_shape)}, but a CSV file has "
                        f"one label column (one value per example); use an .npz for wider targets")
    where = f"{path}: label {column_name(header, col)}"
    simple = class_names is None and not table.categorical and not table.always and table.kinds is None
    numbers = _read_table(path, delim, header, ncol, np.float64, None, quiet=True) if simple else None
    if numbers is not None and table.missing and np.isnan(numbers).any():
        numbers = None  # NaN cells: missing values, or a label to refuse by its text
    kinds, columns = None, None
    if numbers is not None:
        X, labels = np.delete(numbers, col, axis=1), numbers[:, col]
    else:
        cells = _read_table(path, delim, header, ncol, str, col)
        labels = np.array([unquote(label) for label in cells[:, col].tolist()], dtype=str)
        _refuse_missing_labels(labels, table.missing, where, _places(path, delim, header, col))
        X = np.char.strip(np.delete(cells, col, axis=1))
        if table.is_table(X):
            rows = _rows(path, delim, header)
            X, columns = table.select(X, feature_names(header, col, X.shape[1]), str(path))
            kinds = table.checked_kinds(X, columns, dtype, rows)
        else:
            X = to_numbers(X)
            if X is None:
                raise DataError(f"{path}: {first_problem(path, delim, ncol, header, col)}")
        if target_shape is not None or class_names is None:
            labels = _number_labels(labels, where, target_shape is not None, _places(path, delim, header, col))
    if kinds is None:
        _check_features(X, dtype, path, delim, header, col)
    at = _places(path, delim, header, col)
    if labels.dtype.kind == "f":
        y = prepare_labels(labels, where, classes=classes, target_shape=target_shape, dtype=dtype, at=at)
        return CsvTable(X, y, header, col, None, kinds, columns)
    names_used = class_names if class_names is not None else tuple(sorted(set(labels.tolist())))
    y = _class_indices(labels, names_used, where, at)
    if classes is not None and len(names_used) != classes:
        raise DataError(f"{where}: {len(names_used)} class names ({quoted_list(names_used)}) but {classes} classes "
                        f"are declared")
    return CsvTable(X, y, header, col, names_used, kinds, columns)


class CsvTable(NamedTuple):
    """What `read_csv` reads: features X (N, D), labels y, the header, the label column's
    index, the class names of string labels (else None) and, when X is a table of cell
    texts, its columns' kinds and names (else None: X holds numbers, every column but the
    label's)."""

    X: np.ndarray
    y: np.ndarray
    header: list[str] | None
    label_index: int
    class_names: tuple[str, ...] | None
    kinds: tuple[str, ...] | None = None
    columns: tuple[str, ...] | None = None


def feature_names(header: list[str] | None, label: int, count: int) -> tuple[str, ...]:
    """The feature columns' names: the header's less the label's, else "0", "1", ... (their
    0-based indices among the features)."""
    if header is None:
        return tuple(str(j) for j in range(count))
    return tuple(header[:label] + header[label + 1:])


def _rows(path: Path, delim: str | None, header: list[str] | None) -> Place:
    """`Place` of a data row of a CSV file: "path: line L" (the file read again to find it)."""
    return lambda i: f"{path}: line {data_record(path, delim, header, i)[0]}"


def _refuse_missing_labels(labels: np.ndarray, missing: tuple[str, ...], where: str, at: Locate) -> None:
    """DataError naming the line of the first label that is empty or a missing marker."""
    absent = np.isin(labels, np.asarray((*missing, ""), dtype=str))
    if absent.any():
        place, text = at((int(np.argmax(absent)),))
        raise DataError(f"{where}{place}: the label is missing ({text}): every example needs a label (drop the row, "
                        "or write its label)")


def _label_index(path: Path, header: list[str] | None, ncol: int, label_column: str | int | None) -> int:
    """The 0-based index of the label column (DataError naming the file when there is none)."""
    if label_column is None:
        lower = [c.lower() for c in header or []]
        col = next((i for i, c in enumerate(lower) if c in LABEL_NAMES), None)
        if col is None:
            cols = f"columns: {quoted_list(header)}" if header else "no header row"
            raise DataError(f"{path}: no label column named {'/'.join(LABEL_NAMES)} ({cols}); "
                            f"pass label_column= (a name or a 0-based index; graphnet train --label-column)")
        return col
    if isinstance(label_column, str):
        if header is None or label_column not in header:
            columns = f"columns: {quoted_list(header)}" if header else "the file has no header row"
            raise DataError(f"{path}: no column named {quoted(label_column)} ({columns})"
                            + (did_you_mean(label_column, header) if header else ""))
        return header.index(label_column)
    if (isinstance(label_column, (int, np.integer)) and not isinstance(label_column, bool)
            and -ncol <= label_column < ncol):
        return int(label_column) % ncol
    raise DataError(f"{path}: label_column={label_column!r} is neither a column name nor an index in 0..{ncol - 1}")


def _read_table(path: Path, delim: str | None, header: list[str] | None, ncol: int, kind: Any, label: int | None,
                quiet: bool = False) -> np.ndarray | None:
    """Every data row, (N, ncol) of `kind` (float64 or str). A row that does not parse is a
    DataError naming its line (the `label` column may hold text), or None when `quiet`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": reported below
            data = np.loadtxt(regular_file(path), delimiter=delim, skiprows=0 if header is None else 1, ndmin=2,
                              dtype=kind, encoding="utf-8-sig", quotechar=QUOTE, comments=None)
    except (ValueError, OSError, UnicodeDecodeError) as e:
        if quiet and isinstance(e, ValueError):
            return None
        raise DataError(f"{path}: {first_problem(path, delim, ncol, header, label) or shorten(str(e))}") from None
    if data.shape[0] == 0:
        raise DataError(f"{path}: no data rows")
    if data.shape[1] != ncol:
        raise DataError(f"{path}: rows have {data.shape[1]} columns but the first line has {ncol}")
    return data


def _places(path: Path, delim: str | None, header: list[str] | None, col: int) -> Locate:
    """`Locate` for the cells of column `col`: their line and their text as written (the
    file is read again up to that row, only when an error is reported)."""
    def at(index: tuple[int, ...]) -> tuple[str, str]:
        line, cells = data_record(path, delim, header, index[0])
        return f", line {line}", quoted(cells[col].strip())
    return at


def _check_features(X: np.ndarray, dtype: Any, path: Path, delim: str | None, header: list[str] | None,
                    col: int) -> None:
    """DataError naming the line and column of the first feature that is not finite as `dtype`
    (X: the rows without the label column `col`)."""
    position = first_nonfinite(X, dtype)
    if position is not None:
        i, j = position
        column = j if j < col else j + 1
        line, cells = data_record(path, delim, header, i)
        raise DataError(f"{path}: line {line}, {column_name(header, column)}: "
                        f"{quoted(cells[column].strip())} {nonfinite_problem(X[i, j], dtype)}")


def _number_labels(labels: np.ndarray, where: str, required: bool, at: Locate) -> np.ndarray:
    """Label cells (N,) as float64 when they are all numbers; text labels (none of them a
    number) as they are unless numbers are `required`; DataError naming the first that is
    not a number when some are (or all must be)."""
    names = set(labels.tolist())
    numbers = {name for name in names if is_number(name)}
    if len(numbers) == len(names):
        return to_numbers(labels)  # type: ignore[return-value]
    if not required and not numbers:
        return labels
    place, text = at((next(i for i, s in enumerate(labels.tolist()) if s not in numbers),))
    reason = ("the label declares numeric targets" if required
              else "the other labels are numbers (class indices); a label is a number or a class name, not both")
    raise DataError(f"{where}{place}: label {text} is not a number: {reason}")


def _class_indices(labels: np.ndarray, class_names: tuple[str, ...], where: str, at: Locate) -> np.ndarray:
    """String labels (N,) as int64 indices into `class_names`; DataError naming an unknown one."""
    index = {name: i for i, name in enumerate(class_names)}
    unknown = next((i for i, s in enumerate(labels.tolist()) if s not in index), None)
    if unknown is not None:
        place, text = at((unknown,))
        raise DataError(f"{where}{place}: label {text} is not a class of the training data "
                        f"({quoted_list(class_names)})")
    return np.fromiter((index[s] for s in labels.tolist()), np.int64, len(labels))
