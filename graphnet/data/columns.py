"""Table columns as a model reads them: numbers with their missing cells imputed, and
categorical (text) columns one-hot encoded, both fitted on the training split.

A raw table is an array (N, C), one column per feature column of a CSV file or of an
in-memory table: numbers, text (a str or object array), and missing cells -- a cell
whose text (surrounding whitespace dropped) is one of the `missing` markers (default
"", NA, NaN, nan, ?), or None or NaN in an array. A column is categorical when it is
declared so, or when its present cells are all text (inferred); a column mixing numbers
and text is an error unless declared. The encoded features are (N, D) float64:

    [numbers, in column order] + [one block per categorical column, in column order]

A number column is one feature: the value, or its `fill` where missing ("median",
"mean" or "zero" of the training split, the `impute` setting). A categorical column is
k + 2 one-hot slots: its k categories seen in the training split (sorted), then the
column's missing cells, then the "unknown" slot that every category unseen in training
lights -- never an error at predict time; `EncodeCounts` counts them. The category of
a cell is its text: a number in an object array by str() (3 -> "3", 3.0 -> "3.0").

One-hot slots rather than an `embedding` op: tables have a few to a few dozen
categories per column, where one-hot into the first affine IS an embedding lookup (a
row of W per category, summed), runs on the kernels and plans that exist, exports to
ONNX as standard Equal/Cast nodes and imports back as a plain affine; an embedding op
would add gather/scatter kernels, an op, an ONNX mapping and a vocabulary size the
spec must know. A slot training never lit (the unknown slot, a missing slot of a
column complete in training) keeps the weights the first layer was initialized with.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import numpy as np

from ..errors import DataError, quoted, quoted_list
from .csvtext import is_number, to_numbers
from .features import nonfinite_problem

DEFAULT_MISSING = ("", "NA", "NaN", "nan", "?")
IMPUTE_MODES = ("median", "mean", "zero")
MISSING_SLOT, UNKNOWN_SLOT = "<missing>", "<unknown>"

Place = Callable[[int], str]  # row index -> where it is, e.g. "X[3]" or "data.csv: line 5"


def array_rows(where: str) -> Place:
    """`Place` of the rows of an array named `where`: "where[i]"."""
    return lambda i: f"{where}[{i}]"


@dataclass(frozen=True)
class TableSettings:
    """How a source's feature columns are read (train.data.options): the columns declared
    `categorical`, the `missing` markers and the `impute` mode. `always`: read a table even
    when every cell is a number. `columns` and `kinds`: the columns to read, by name and in
    this order, and their kinds (a model's, or the training file's for its test file):
    checked instead of inferred."""

    categorical: tuple[str, ...] = ()
    missing: tuple[str, ...] = DEFAULT_MISSING
    impute: str = "median"
    always: bool = False
    columns: tuple[str, ...] | None = None
    kinds: tuple[str, ...] | None = None

    @classmethod
    def of(cls, encoding: "ColumnEncoding") -> "TableSettings":
        """The settings that read a table for `encoding` (a trained model's): its columns, by
        name when it knows them, with their kinds."""
        return cls(tuple(encoding.names[j] for j in encoding.categorical()), encoding.missing, encoding.impute,
                   always=True, columns=encoding.names if encoding.named else None,
                   kinds=tuple(c.kind for c in encoding.columns))

    def is_table(self, X: np.ndarray) -> bool:
        """Whether cell texts X (N, C) are read as a table (else as numbers): text or a missing
        marker in a cell, a declared column, or settings that ask for one."""
        return (self.always or bool(self.categorical) or self.kinds is not None
                or bool(_is_marker(X.reshape(-1), self.missing).any()) or to_numbers(X) is None)

    def select(self, X: np.ndarray, names: tuple[str, ...], source: str) -> tuple[np.ndarray, tuple[str, ...]]:
        """(X's columns `columns` by name, in that order, and their names); DataError naming
        `source` and a column X lacks. Without `columns`: X and `names` as they are."""
        if self.columns is None or names == self.columns:
            return X, names
        missing = [name for name in self.columns if name not in names]
        if missing:
            raise DataError(f"{source}: no column {quoted(missing[0])} (the model reads "
                            f"{quoted_list(self.columns)}; the file has {quoted_list(names)})")
        return X[:, [names.index(name) for name in self.columns]], self.columns

    def checked_kinds(self, X: np.ndarray, names: tuple[str, ...], dtype: Any, place: Place) -> tuple[str, ...]:
        """The columns' kinds: `kinds`, after checking every number column's cells (a DataError
        names the row and column of one that is not a number), else inferred (`column_kinds`)."""
        if self.kinds is None:
            return column_kinds(X, names, self.categorical, self.missing, dtype, place)
        if len(self.kinds) != X.shape[1]:
            raise DataError(f"{place(0)}: rows of {X.shape[1]} feature columns, expected {len(self.kinds)}")
        for j, kind in enumerate(self.kinds):
            if kind == "number":
                number_cells(X[:, j], self.missing, dtype, place, names[j])
        return self.kinds


@dataclass(frozen=True)
class Column:
    """One raw column: a number (`fill` replaces its missing cells) or a category (its
    `categories` of the training split, sorted; `declared` when the settings named it)."""

    name: str
    kind: Literal["number", "category"]
    fill: float = 0.0
    categories: tuple[str, ...] = ()
    declared: bool = False

    @property
    def width(self) -> int:
        """Encoded features: 1 for a number, the categories + missing + unknown slots."""
        return 1 if self.kind == "number" else len(self.categories) + 2


@dataclass
class EncodeCounts:
    """Cells `encode` met, by column name: missing ones (imputed) and categories unseen in
    training (the unknown slot)."""

    missing: Counter = field(default_factory=Counter)
    unseen: Counter = field(default_factory=Counter)

    def describe(self) -> str:
        """"missing cells imputed: 12 (age: 10, workclass: 2); categories unseen in training,
        read as <unknown>: 3 (workclass: 3)", or "" when there were none."""
        parts = []
        for counter, what in ((self.missing, "missing cells imputed"),
                              (self.unseen, f"categories unseen in training, read as {UNKNOWN_SLOT}")):
            seen = [(name, n) for name, n in counter.most_common() if n]
            if seen:
                each = ", ".join(f"{name}: {n}" for name, n in seen[:6])
                parts.append(f"{what}: {sum(n for _, n in seen)} ({each}{', ...' if len(seen) > 6 else ''})")
        return "; ".join(parts)


@dataclass(frozen=True, eq=False)
class ColumnEncoding:
    """How raw table columns become the model's features (see the module docstring).
    `named`: the names come from a header (else they are the column indices "0", "1", ...)."""

    columns: tuple[Column, ...]
    missing: tuple[str, ...] = DEFAULT_MISSING
    impute: str = "median"
    named: bool = True

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def width(self) -> int:
        """D: the encoded features per example."""
        return sum(c.width for c in self.columns)

    def numbers(self) -> list[int]:
        """The indices of the number columns, in order (the first features)."""
        return [j for j, c in enumerate(self.columns) if c.kind == "number"]

    def categorical(self) -> list[int]:
        """The indices of the categorical columns, in order (one block each after the numbers)."""
        return [j for j, c in enumerate(self.columns) if c.kind == "category"]

    def feature_names(self) -> tuple[str, ...]:
        """The D features' names: a number column's name, "column=category" for a slot."""
        names = [self.columns[j].name for j in self.numbers()]
        for j in self.categorical():
            column = self.columns[j]
            names += [f"{column.name}={c}" for c in (*column.categories, MISSING_SLOT, UNKNOWN_SLOT)]
        return tuple(names)

    def one_hot(self) -> np.ndarray:
        """(D,) bool: the one-hot slots (never shifted or scaled by a normalization)."""
        mask = np.ones(self.width, bool)
        mask[:len(self.numbers())] = False
        return mask

    def encode(self, X: Any, dtype: Any = np.float64, place: Place | None = None,
               counts: EncodeCounts | None = None) -> np.ndarray:
        """Raw cells X (N, C), columns in this encoding's order -> features (N, D) float64.
        A number column's cell that is not a number, or not finite in `dtype`, is a
        DataError naming its row (`place`, default X[i]) and column; missing cells and
        unseen categories are counted into `counts`."""
        X = as_table(X, "X")
        place = place or array_rows("X")
        if X.shape[1] != len(self.columns) and len(X):
            raise DataError(f"{place(0)}: a row of {X.shape[1]} cells; the model reads {len(self.columns)} columns "
                            f"({quoted_list(self.names)})")
        counts = counts if counts is not None else EncodeCounts()
        out = np.zeros((len(X), self.width), np.float64)
        at = 0
        for j in self.numbers():
            column = self.columns[j]
            values, absent = number_cells(X[:, j], self.missing, dtype, place, column.name)
            values[absent] = column.fill
            out[:, at] = values
            counts.missing[column.name] += int(absent.sum())
            at += 1
        for j in self.categorical():
            column = self.columns[j]
            text, absent = text_cells(X[:, j], self.missing)
            slot = _slots(text, absent, column.categories)
            counts.missing[column.name] += int(absent.sum())
            counts.unseen[column.name] += int((slot == len(column.categories) + 1).sum())
            out[np.arange(len(X)), at + slot] = 1.0
            at += column.width
        return out

    def describe(self) -> str:
        """One line for a run log: the columns by kind (categorical ones declared or inferred
        from text), the imputation and the feature count."""
        numbers = [self.columns[j].name for j in self.numbers()]
        declared = [f"{c.name} ({len(c.categories)})" for c in self.columns if c.kind == "category" and c.declared]
        inferred = [f"{c.name} ({len(c.categories)})" for c in self.columns
                    if c.kind == "category" and not c.declared]
        fill = "0" if self.impute == "zero" else f"the training split's {self.impute}"
        parts = [f"{len(numbers)} numeric column{'s' if len(numbers) != 1 else ''}"
                 + (f" (missing cells -> {fill})" if numbers else "")]
        if inferred:
            parts.append(f"categorical, inferred from text: {', '.join(inferred)}")
        if declared:
            parts.append(f"categorical, declared: {', '.join(declared)}")
        return (f"table columns: {'; '.join(parts)} -> {self.width} features "
                f"(each category one slot, plus {MISSING_SLOT} and {UNKNOWN_SLOT})")

    # ---- saving ------------------------------------------------------------------------------

    def description(self) -> dict[str, Any]:
        """The encoding as JSON (a checkpoint's meta, the ONNX export's metadata)."""
        return {"columns": [{"name": c.name, "kind": c.kind, "fill": c.fill} if c.kind == "number" else
                            {"name": c.name, "kind": c.kind, "categories": list(c.categories),
                             "declared": c.declared} for c in self.columns],
                "missing": list(self.missing), "impute": self.impute, "named": self.named}

    @classmethod
    def from_saved(cls, description: Any) -> "ColumnEncoding":
        """The encoding of `description()`; ValueError saying what is malformed."""
        if not isinstance(description, dict) or not isinstance(description.get("columns"), list):
            raise ValueError(f"the column encoding {str(description)[:80]} is not an object with columns")
        missing, impute = description.get("missing"), description.get("impute")
        if not isinstance(missing, list) or not all(isinstance(m, str) for m in missing):
            raise ValueError(f"the column encoding's missing markers {missing!r} are not a list of strings")
        if impute not in IMPUTE_MODES:
            raise ValueError(f"the column encoding's impute {impute!r} is not one of {', '.join(IMPUTE_MODES)}")
        columns = []
        for i, item in enumerate(description["columns"]):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise ValueError(f"column {i} of the encoding is not an object with a name")
            if item.get("kind") == "number" and isinstance(item.get("fill"), (int, float)) \
                    and not isinstance(item["fill"], bool) and np.isfinite(item["fill"]):
                columns.append(Column(item["name"], "number", float(item["fill"])))
            elif item.get("kind") == "category" and isinstance(item.get("categories"), list) \
                    and all(isinstance(c, str) for c in item["categories"]) \
                    and item["categories"] == sorted(set(item["categories"])):
                columns.append(Column(item["name"], "category", categories=tuple(item["categories"]),
                                      declared=bool(item.get("declared"))))
            else:
                raise ValueError(f"column {item['name']!r} of the encoding is neither a number with a finite "
                                 "fill nor a category with sorted, distinct categories")
        if not columns or len({c.name for c in columns}) != len(columns):
            raise ValueError("the column encoding has no columns, or a column name twice")
        return cls(tuple(columns), tuple(missing), impute, bool(description.get("named", True)))


# ---- fitting -----------------------------------------------------------------------------


def column_kinds(X: np.ndarray, names: tuple[str, ...], declared: tuple[str, ...], missing: tuple[str, ...],
                 dtype: Any, place: Place, setting: str = "train.data.options.categorical") -> tuple[str, ...]:
    """The kind of each column of a whole raw table X (N, C): "category" when declared
    (by name) or when its present cells are all text, else "number". DataError for a
    declared name that is not a column (`setting` names the option), a column that mixes
    numbers and text, or a number not finite in `dtype` (naming the row and column)."""
    unknown = [name for name in declared if name not in names]
    if unknown:
        raise DataError(f"{setting}: {quoted(unknown[0])} is not a feature column (columns: {quoted_list(names)})")
    kinds = []
    for j, name in enumerate(names):
        if name in declared:
            kinds.append("category")
            continue
        column = X[:, j]
        if column.dtype.kind in "biuf":
            number_cells(column, missing, dtype, place, name)
            kinds.append("number")
            continue
        text, absent = text_cells(column, missing)
        present = text[~absent]
        if to_numbers(present) is not None:
            number_cells(column, missing, dtype, place, name)
            kinds.append("number")
            continue
        distinct = np.unique(present)
        numeric = [is_number(cell) for cell in distinct.tolist()]
        if any(numeric):  # both numbers and text: a typo, or a column to declare
            texts = set(distinct[~np.asarray(numeric)].tolist())
            row = next(i for i, cell in enumerate(text.tolist()) if not absent[i] and cell in texts)
            cell, example = str(text[row]), str(distinct[np.asarray(numeric)][0])
            what = (f"is empty, and \"\" is not a missing value here ({setting.rsplit('.', 1)[0]}.missing)"
                    if not cell else "is not a number")
            raise DataError(f"{place(row)}, column {quoted(name)}: {quoted(cell)} {what}, while other cells of the "
                            f"column are numbers (such as {quoted(example)}): fix the cell, or declare the column "
                            f"categorical ({setting}) to read every cell as a category")
        kinds.append("category")
    return tuple(kinds)


def fit_encoding(X: np.ndarray, names: tuple[str, ...], kinds: tuple[str, ...], declared: tuple[str, ...] = (),
                 missing: tuple[str, ...] = DEFAULT_MISSING, impute: str = "median",
                 named: bool = True) -> ColumnEncoding:
    """The encoding of columns of `kinds` fitted on the training split X (N, C): each number
    column's fill (the `impute` of its present values; 0 when it has none), each
    categorical column's categories (sorted)."""
    if impute not in IMPUTE_MODES:
        raise DataError(f"impute must be one of {', '.join(IMPUTE_MODES)}, got {impute!r}")
    columns = []
    for j, (name, kind) in enumerate(zip(names, kinds)):
        if kind == "number":
            values, absent = number_cells(X[:, j], missing, np.float64, array_rows("X_train"), name)
            present = values[~absent]
            fill = 0.0 if impute == "zero" or not len(present) else float(
                np.median(present) if impute == "median" else present.mean())
            columns.append(Column(name, "number", fill))
        else:
            text, absent = text_cells(X[:, j], missing)
            columns.append(Column(name, "category", categories=tuple(np.unique(text[~absent]).tolist()),
                                  declared=name in declared))
    return ColumnEncoding(tuple(columns), tuple(missing), impute, named)


# ---- cells -------------------------------------------------------------------------------


def as_table(X: Any, where: str) -> np.ndarray:
    """X as a 2-D array of cells (N, C): numbers, str or objects; DataError otherwise."""
    try:
        X = np.asarray(X) if not isinstance(X, list) else np.array(X, dtype=object)
    except ValueError:  # ragged rows
        raise DataError(f"{where}: rows of different lengths; a table has one cell per column in every row") from None
    if X.ndim != 2:
        raise DataError(f"{where}: a table is (rows, columns), got shape {X.shape}")
    return X


def text_cells(column: np.ndarray, missing: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(text (N,) str, surrounding whitespace dropped; absent (N,) bool) of one column: a
    cell is absent when its text is a `missing` marker, or when it is None or NaN."""
    if column.dtype.kind in "biuf":
        absent = np.isnan(column) if column.dtype.kind == "f" else np.zeros(len(column), bool)
        return column.astype(str), absent
    if column.dtype.kind == "U":
        text = np.char.strip(column)
        return text, _is_marker(text, missing)
    values = column.tolist()
    none = np.array([v is None or (isinstance(v, float) and v != v) for v in values], bool)
    text = np.array(["" if none[i] else str(v).strip() for i, v in enumerate(values)], dtype=str)
    return text, none | _is_marker(text, missing)


def _is_marker(text: np.ndarray, missing: tuple[str, ...]) -> np.ndarray:
    return np.isin(text, np.asarray(missing, dtype=str)) if missing else np.zeros(len(text), bool)


def number_cells(column: np.ndarray, missing: tuple[str, ...], dtype: Any, place: Place,
                 name: str) -> tuple[np.ndarray, np.ndarray]:
    """(values (N,) float64, NaN where absent; absent (N,) bool) of a number column;
    DataError naming the row and column of a cell that is not a number, or not finite in
    `dtype`."""
    if column.dtype.kind in "biuf":
        values = column.astype(np.float64)
        absent = np.isnan(values)
        text = None
    else:
        text, absent = text_cells(column, missing)
        values = np.full(len(column), np.nan)
        parsed = to_numbers(text[~absent])
        if parsed is None:
            row = next(i for i, cell in enumerate(text.tolist()) if not absent[i] and not is_number(cell))
            raise DataError(f"{place(row)}, column {quoted(name)}: {quoted(str(text[row]))} is not a number (a "
                            f"numeric column; missing cells are written {' or '.join(map(quoted, missing)) or '(none)'})")
        values[~absent] = parsed
    with np.errstate(over="ignore", invalid="ignore"):
        bad = ~absent & ~np.isfinite(values.astype(dtype))
    if bad.any():
        row = int(np.argmax(bad))
        shown = quoted(str(text[row])) if text is not None else str(values[row])
        raise DataError(f"{place(row)}, column {quoted(name)}: {shown} {nonfinite_problem(values[row], dtype)}")
    return values, absent


def _slots(text: np.ndarray, absent: np.ndarray, categories: tuple[str, ...]) -> np.ndarray:
    """Each cell's slot (N,) int: its category's index, k for a missing cell, k + 1 (unknown)
    for a category not in `categories` (k of them, sorted)."""
    k = len(categories)
    slot = np.full(len(text), k + 1, np.int64)
    if k:
        known = np.asarray(categories, dtype=str)
        index = np.minimum(np.searchsorted(known, text), k - 1)
        found = known[index] == text
        slot[found] = index[found]
    slot[absent] = k
    return slot
