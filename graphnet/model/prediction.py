"""`graphnet predict`: a trained model's predictions for a file of raw examples, streamed.

    with open_output("pred.csv", text=True) as out:       # graphnet.system.fileio
        write_predictions(net, read_examples(net, "new.csv"), out, proba=True)

Inputs (raw features, as in training; the model's preprocessing applies):

- CSV (``.csv``, ``.tsv``, ``.txt``): a header row naming the columns. A model
  trained on a CSV reads its feature columns by name, in any order; its label
  column and any other extra column are ignored. A model trained on other data
  takes every column but one named label, y or target, in order. A model with a
  column encoding (trained on a table: graphnet.data.columns) reads the cells as
  text: categories, numbers and missing cells (imputed); a category unseen in
  training goes to the unknown slot.
- ``.npy`` (memory-mapped) or ``.npz`` with an array ``X``: (N, *raw shape); not for a
  model whose categories are texts (an array of numbers cannot hold them).
- IDX images (``*-ubyte``, ``.gz`` or plain; plain files are memory-mapped).

Every value (of a number column) must be a finite number in the model's dtype
(graphnet.data.features);
a file's header must agree with its data (graphnet.data.npyfile, .idx) and a
CSV follows graphnet.data.csvtext's dialect. A problem is a DataError naming
the file and the place: the line and column, or ``X[i, j]``.

Output: a CSV with a header; ``prediction`` holds the class name (or index)
for classification, 0/1 for binary, the value for regression (``prediction_<i>``
for several values per example; in the targets' units when the model scaled them for
training); ``proba=True`` adds ``p_<class>`` per class.
Examples are read and written `chunk` rows at a time: memory does not grow
with a CSV, .npy or plain IDX file (an .npz's X and a .gz IDX file are read
whole, within the memory limit of graphnet.system.limits).
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Iterator, TextIO

import numpy as np

from ..data.columns import EncodeCounts, TableSettings
from ..data.csvtext import column_name, data_records, is_number, layout, not_a_number, to_numbers
from ..data.features import check_finite, first_nonfinite, nonfinite_problem
from ..data.files import regular_file
from ..data.idx import map_idx
from ..data.npyfile import map_npy, read_npz
from ..data.tabular import LABEL_NAMES
from ..errors import DataError, did_you_mean, quoted, quoted_list
from ..ops.tasks import output_task, predictions, probabilities
from .compiled import CompiledNetwork

CHUNK = 4096
CSV_SUFFIXES = (".csv", ".tsv", ".txt")


def read_examples(net: CompiledNetwork, path: str | Path, chunk: int = CHUNK) -> Iterator[np.ndarray]:
    """The raw examples of a file in chunks of at most `chunk` rows: (n, *raw shape) arrays
    ((n, D) float64 for CSV), every value finite in the model's dtype. DataError naming the
    file and the place (line and column, or X[i, j]) for anything it cannot read."""
    path = regular_file(path)
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        return _csv_examples(net, path, chunk)
    _refuse_numbers_for_text_categories(net, path)
    if name.endswith((".npy", ".npz")):
        return _array_chunks(_array_file(path), chunk, path, "X", net.dtype)
    if "ubyte" in name or "idx" in name:
        return _array_chunks(map_idx(path), chunk, path, "images", net.dtype)
    raise DataError(f"{path}: unsupported file; expected a .csv, .npy, .npz (with X) or IDX images file")


def _refuse_numbers_for_text_categories(net: CompiledNetwork, path: Path) -> None:
    """An array file holds numbers without column names: a model whose categories are texts
    would read every row's categories as unseen, so it takes a CSV naming its columns."""
    if net.encoding is None:
        return
    textual = [column.name for column in net.encoding.columns
               if column.kind == "category" and not all(is_number(c) for c in column.categories)]
    if textual:
        raise DataError(f"{path}: this model reads a table whose categories are texts "
                        f"(columns {quoted_list(textual)}); give a CSV file with a header naming its columns "
                        f"({quoted_list(net.encoding.names)})")


def _array_chunks(X: np.ndarray, chunk: int, path: Path, name: str, dtype: np.dtype) -> Iterator[np.ndarray]:
    for start in range(0, len(X), chunk):
        part = np.asarray(X[start:start + chunk])
        check_finite(part, dtype, str(path), name, first_row=start)
        yield part


def _array_file(path: Path) -> np.ndarray:
    """X of an .npz (read whole, within the memory limit: a zip member cannot be mapped) or a
    .npy (memory-mapped); either after checking its header against its data."""
    if path.suffix.lower() == ".npy":
        X = map_npy(path)
    else:
        X = read_npz(path, ["X"], required=["X"], expected=" with an array X")["X"]
    if X.ndim < 1 or X.dtype.kind not in "biuf":
        raise DataError(f"{path}: X must be numbers of shape (N, ...), got {X.dtype} of shape {X.shape}")
    return X


def _csv_examples(net: CompiledNetwork, path: Path, chunk: int) -> Iterator[np.ndarray]:
    delim, header, ncol = layout(path)
    columns = _feature_columns(net, path, header, ncol)
    for batch, lines in _csv_rows(path, delim, header, ncol, columns, chunk):
        yield _features(net, batch, lines, path, header, columns)


def _features(net: CompiledNetwork, batch: list[list[str]], lines: list[int], path: Path,
              header: list[str] | None, columns: list[int]) -> np.ndarray:
    """Rows of feature cells as the model reads them: numbers (n, D) float64 (see `_numbers`),
    or for a model with a column encoding the cells' texts (n, C), each number column's cells
    checked (a DataError names the line and column of one that is not a number)."""
    if net.encoding is None:
        return _numbers(batch, lines, path, header, columns, net.dtype)
    cells = np.array(batch, dtype=str).reshape(len(batch), len(columns))
    TableSettings.of(net.encoding).checked_kinds(cells, net.encoding.names, net.dtype,
                                                 lambda i: f"{path}: line {lines[i]}")
    return cells


def _csv_rows(path: Path, delim: str | None, header: list[str] | None, ncol: int, columns: list[int],
              chunk: int) -> Iterator[tuple[list[list[str]], list[int]]]:
    """The cells of `columns` of every data row, and the rows' line numbers, `chunk` rows at a time."""
    batch: list[list[str]] = []
    lines: list[int] = []
    for lineno, row in data_records(path, delim, header):
        if len(row) != ncol:
            raise DataError(f"{path}: line {lineno} has {len(row)} fields, expected {ncol}")
        batch.append([row[j] for j in columns])
        lines.append(lineno)
        if len(batch) == chunk:
            yield batch, lines
            batch, lines = [], []
    if batch:
        yield batch, lines


def read_labelled_csv(net: CompiledNetwork, path: str | Path,
                      label_column: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every row of a CSV file as raw features X: (N, D) float64 (the model's feature columns,
    by name as in `read_examples`, each finite in its dtype) and labels y as the network's
    label declares them: class indices (N,) int64 (text labels by the model's class names) or
    float targets (N, *shape). The label column: `label_column`, else the model's, else the
    first named label, y or target. DataError naming the file, line and column for anything
    it cannot read."""
    path = regular_file(path)
    label = next(iter(net.graph.labels.values()), None)
    if label is None:
        raise DataError(f"{path}: the network has no label to score against")
    delim, header, ncol = layout(path)
    record = net.preprocessing
    wanted = label_column or (record.label_column if record is not None else None)
    names = header or []
    has = f" (the file has: {quoted_list(names)})" if header else " (the file has no header row)"
    if wanted is not None and wanted not in names:
        raise DataError(f"{path}: no label column {quoted(wanted)}{did_you_mean(wanted, names)}{has}"
                        + ("" if label_column else "; name it with --label-column"))
    at = names.index(wanted) if wanted is not None else next(
        (i for i, c in enumerate(names) if c.lower() in LABEL_NAMES), None)
    if at is None:
        raise DataError(f"{path}: no label column named {'/'.join(LABEL_NAMES)}{has}; name it with --label-column")
    columns = _feature_columns(net, path, header, ncol, label_index=at)
    features, labels = [], []
    for batch, lines in _csv_rows(path, delim, header, ncol, columns + [at], 4 * CHUNK):
        features.append(_features(net, [row[:-1] for row in batch], lines, path, header, columns))
        labels += [(row[-1].strip(), lineno) for row, lineno in zip(batch, lines)]
    if not labels:
        raise DataError(f"{path}: no data rows")
    missing = (*net.encoding.missing, "") if net.encoding is not None else ("",)
    absent = next(((text, lineno) for text, lineno in labels if text in missing), None)
    if absent is not None:
        raise DataError(f"{path}: line {absent[1]}, {column_name(header, at)}: the label is missing "
                        f"({quoted(absent[0])}): every example scored needs a label")
    return np.concatenate(features), _label_values(labels, label, net.class_names, path,
                                                   column_name(header, at))


def _label_values(cells: list[tuple[str, int]], label: Any, class_names: tuple[str, ...] | None, path: Path,
                  column: str) -> np.ndarray:
    """Label cells (text, line number) as the label declares them; DataError naming the line."""
    if label.kind == "classes" and class_names is not None:
        index = {name: i for i, name in enumerate(class_names)}
        for text, lineno in cells:
            if text not in index:
                raise DataError(f"{path}: line {lineno}, {column}: label {quoted(text)} is not one of the "
                                f"model's classes ({quoted_list(class_names)})")
        return np.fromiter((index[text] for text, _ in cells), np.int64, len(cells))
    values = np.empty(len(cells), np.float64)
    for i, (text, lineno) in enumerate(cells):
        value = float(text) if is_number(text) else float("nan")
        whole = label.kind != "classes" or (value == round(value) and 0 <= value < label.classes)
        if not np.isfinite(value) or not whole:
            expected = (f"a class index in 0..{label.classes - 1}" if label.kind == "classes"
                        else "a finite number")
            raise DataError(f"{path}: line {lineno}, {column}: label {quoted(text)} is not {expected}")
        values[i] = value
    if label.kind == "classes":
        return values.astype(np.int64)
    return values.reshape(len(cells), *label.shape)


def _feature_columns(net: CompiledNetwork, path: Path, header: list[str] | None, ncol: int,
                     label_index: int | None = None) -> list[int]:
    """The indices of the model's feature columns in this CSV, in the model's order: by name
    when the model knows its columns, else every column but the label (`label_index`, else
    the model's label column or the first named label, y or target)."""
    record = net.preprocessing
    names = record.feature_names if record is not None else None
    if net.encoding is not None:
        names = net.encoding.names if net.encoding.named else None
    if names is not None:
        if header is None:
            raise DataError(f"{path}: no header row; the model reads the columns {quoted_list(names)} by name")
        missing = [n for n in names if n not in header]
        if missing:
            raise DataError(f"{path}: no column {quoted(missing[0])} (the model's features: {quoted_list(names)}; "
                            f"the file has: {quoted_list(header)}){did_you_mean(missing[0], header)}")
        return [header.index(n) for n in names]
    if label_index is not None:
        return [j for j in range(ncol) if j != label_index]
    label = record.label_column if record is not None else None
    skip = [i for i, c in enumerate(header or []) if c == label or c.lower() in LABEL_NAMES][:1]
    return [j for j in range(ncol) if j not in skip]


def _numbers(batch: list[list[str]], lines: list[int], path: Path, header: list[str] | None,
             columns: list[int], dtype: np.dtype) -> np.ndarray:
    """Rows of number cells as float64 (n, D), each finite in `dtype`; DataError naming the
    line and column of the first cell that is not, and quoting it."""
    X = to_numbers(batch)
    position = None if X is None else first_nonfinite(X, dtype)
    if X is not None and position is None:
        return X
    i, j = position if position is not None else next(
        (i, j) for i, row in enumerate(batch) for j, cell in enumerate(row) if not is_number(cell))
    cell = batch[i][j]
    problem = not_a_number(cell) if X is None else nonfinite_problem(X[i, j], dtype)
    raise DataError(f"{path}: line {lines[i]}, {column_name(header, columns[j])}: {quoted(cell.strip())} {problem}")


# ----------------------------------------------------------------------------- output


def prediction_header(net: CompiledNetwork, proba: bool) -> list[str]:
    """The output CSV's columns: prediction (or prediction_<i>), then p_<class> with `proba`."""
    first = net.graph.outputs[0]
    shape = net.graph.values[first].shape
    task = output_task(net.graph, first)
    width = int(np.prod(shape))
    several = (task == "regression" and width > 1) or (task == "binary" and width > 1)
    columns = [f"prediction_{i}" for i in range(width)] if several else ["prediction"]
    if proba:
        if task == "regression":
            raise DataError("--proba: the model is a regression (its loss is mse, mae or huber): its predictions "
                            "are values, not class probabilities")
        if task == "binary":
            columns += ["p_0", "p_1"] if width == 1 else [f"p_{i}" for i in range(width)]
        else:
            names = net.class_names or [str(c) for c in range(shape[-1])]
            columns += [f"p_{name}" for name in names]
    return columns


def write_predictions(net: CompiledNetwork, examples: Iterator[np.ndarray], out: TextIO,
                      proba: bool = False, counts: EncodeCounts | None = None) -> int:
    """Write the header and one row per example to `out`; returns the number of examples.
    `examples` yields raw (n, *raw shape) chunks (see `read_examples`). Nothing is written
    before the first chunk has been read and predicted: an input refused at its layout or
    first rows leaves `out` (stdout, a pipe) empty. A model's column encoding counts the
    missing cells and unseen categories it met into `counts`."""
    rows = _prediction_rows(net, examples, proba, counts)
    first = next(rows, [])
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(prediction_header(net, proba))
    writer.writerows(first)
    total = len(first)
    for cells in rows:
        writer.writerows(cells)
        total += len(cells)
    return total


def _prediction_rows(net: CompiledNetwork, examples: Iterator[np.ndarray], proba: bool,
                     counts: EncodeCounts | None) -> Iterator[list[list[str]]]:
    """The output rows (text cells) of each chunk of raw examples."""
    first = net.graph.outputs[0]
    task = output_task(net.graph, first)
    digits = ".9g" if net.dtype == np.float32 else ".17g"
    names = np.asarray(net.class_names) if net.class_names is not None and task in (None, "classification") else None
    counts = counts if counts is not None else EncodeCounts()
    for raw in examples:
        if len(raw) == 0:
            continue
        scores = net.forward(net.prepare(raw, counts=counts), output=first)
        predicted = predictions(scores, task)
        if net.target_scaling is not None and task == "regression":
            predicted = net.target_scaling.unscale(predicted)
        cells = _cells(names[predicted] if names is not None else predicted, len(raw), digits)
        if proba:
            p = probabilities(scores, net.graph, first)
            cells = [row + _cells(prow, 1, digits)[0] for row, prow in zip(cells, p.reshape(len(raw), -1))]
        yield cells


def _cells(values: np.ndarray, n: int, digits: str) -> list[list[str]]:
    """(n, k) text cells of predictions or probabilities: names as they are, integers as
    integers, floats with enough digits to round-trip."""
    rows = np.asarray(values).reshape(n, -1)
    if rows.dtype.kind == "f":
        return [[format(float(v), digits) for v in row] for row in rows]
    return [[str(v) for v in row] for row in rows.tolist()]
