"""`graphnet predict`: a trained model's predictions for a file of raw examples, streamed.

    with open_output("pred.csv", text=True) as out:       # graphnet.fileio
        write_predictions(net, read_examples(net, "new.csv"), out, proba=True)

Inputs (raw features, as in training; the model's preprocessing applies):

- CSV (``.csv``, ``.tsv``, ``.txt``): a header row naming the columns. A model
  trained on a CSV reads its feature columns by name, in any order; its label
  column and any other extra column are ignored. A model trained on other data
  takes every column but one named label, y or target, in order.
- ``.npy`` (memory-mapped) or ``.npz`` with an array ``X``: (N, *raw shape).
- IDX images (``*-ubyte``, ``.gz`` or plain; plain files are memory-mapped).

Output: a CSV with a header; ``prediction`` holds the class name (or index)
for classification, 0/1 for binary, the value for regression (``prediction_<i>``
for several values per example); ``proba=True`` adds ``p_<class>`` per class.
Examples are read and written `chunk` rows at a time: memory does not grow
with the file.
"""
from __future__ import annotations

import csv
import math
import zipfile
from pathlib import Path
from typing import Iterator, TextIO

import numpy as np

from .data.idx import map_idx
from .data.tabular import LABEL_NAMES, csv_layout
from .errors import DataError
from .network import CompiledNetwork
from .tasks import output_task, predictions, probabilities

CHUNK = 4096
CSV_SUFFIXES = (".csv", ".tsv", ".txt")


def read_examples(net: CompiledNetwork, path: str | Path, chunk: int = CHUNK) -> Iterator[np.ndarray]:
    """The raw examples of a file in chunks of at most `chunk` rows: (n, *raw shape) arrays
    (n, D) for CSV). DataError naming the file for anything it cannot read."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        return _csv_examples(net, path, chunk)
    if name.endswith((".npy", ".npz")):
        return _array_chunks(_array_file(path), chunk)
    if "ubyte" in name or "idx" in name:
        return _array_chunks(map_idx(path), chunk)
    raise DataError(f"{path}: unsupported file; expected a .csv, .npy, .npz (with X) or IDX images file")


def _array_chunks(X: np.ndarray, chunk: int) -> Iterator[np.ndarray]:
    for start in range(0, len(X), chunk):
        yield np.asarray(X[start:start + chunk])


def _array_file(path: Path) -> np.ndarray:
    """X of an .npz (read whole: a zip cannot be mapped) or a .npy (memory-mapped)."""
    try:
        if path.suffix.lower() == ".npy":
            X = np.load(path, mmap_mode="r", allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as archive:
                if "X" not in archive.files:
                    raise DataError(f"{path}: no array 'X' (it has {', '.join(archive.files) or 'none'})")
                X = archive["X"]
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: not a readable numpy file ({error})") from None
    if X.ndim < 1 or X.dtype.kind not in "biuf":
        raise DataError(f"{path}: X must be numbers of shape (N, ...), got {X.dtype} of shape {X.shape}")
    return X


def _csv_examples(net: CompiledNetwork, path: Path, chunk: int) -> Iterator[np.ndarray]:
    delim, header, ncol = csv_layout(path)
    columns = _feature_columns(net, path, header, ncol)
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = csv.reader(handle, delimiter=delim) if delim else (line.split() for line in handle)
        batch: list[list[str]] = []
        lines: list[int] = []
        for lineno, row in enumerate(rows, 1):
            if (lineno == 1 and header is not None) or not row or (len(row) == 1 and not row[0].strip()):
                continue  # the header, blank lines
            if len(row) != ncol:
                raise DataError(f"{path}: line {lineno} has {len(row)} fields, expected {ncol}")
            batch.append([row[j] for j in columns])
            lines.append(lineno)
            if len(batch) == chunk:
                yield _numbers(batch, lines, path, header, columns)
                batch, lines = [], []
        if batch:
            yield _numbers(batch, lines, path, header, columns)


def _feature_columns(net: CompiledNetwork, path: Path, header: list[str] | None, ncol: int) -> list[int]:
    """The indices of the model's feature columns in this CSV, in the model's order."""
    record = net.preprocessing
    names = record.feature_names if record is not None else None
    if names is not None:
        if header is None:
            raise DataError(f"{path}: no header row; the model reads the columns {', '.join(names)} by name")
        missing = [n for n in names if n not in header]
        if missing:
            raise DataError(f"{path}: no column {missing[0]!r} (the model's features: {', '.join(names)}; "
                            f"the file has: {', '.join(header)})")
        return [header.index(n) for n in names]
    label = record.label_column if record is not None else None
    skip = [i for i, c in enumerate(header or []) if c == label or c.lower() in LABEL_NAMES][:1]
    return [j for j in range(ncol) if j not in skip]


def _numbers(batch: list[list[str]], lines: list[int], path: Path, header: list[str] | None,
             columns: list[int]) -> np.ndarray:
    """Rows of number strings as float64 (n, D); DataError naming the first cell that is not a finite number."""
    try:
        X = np.array(batch, dtype=np.float64)
    except ValueError:
        X = None
    if X is not None and np.isfinite(X).all():
        return X
    for i, row in enumerate(batch):
        for j, cell in enumerate(row):
            try:
                ok = math.isfinite(float(cell))
            except ValueError:
                ok = False
            if not ok:
                column = header[columns[j]] if header else str(columns[j] + 1)
                raise DataError(f"{path}: line {lines[i]}, column {column!r}: {cell.strip()!r} is not a "
                                "finite number")
    raise DataError(f"{path}: unreadable rows from line {lines[0]}")  # not reached


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
            raise DataError("--proba: the model is a regression (mse loss): its predictions are values, "
                            "not class probabilities")
        if task == "binary":
            columns += ["p_0", "p_1"] if width == 1 else [f"p_{i}" for i in range(width)]
        else:
            names = net.class_names or [str(c) for c in range(shape[-1])]
            columns += [f"p_{name}" for name in names]
    return columns


def write_predictions(net: CompiledNetwork, examples: Iterator[np.ndarray], out: TextIO,
                      proba: bool = False) -> int:
    """Write the header and one row per example to `out`; returns the number of examples.
    `examples` yields raw (n, *raw shape) chunks (see `read_examples`). Nothing is written
    before the first chunk has been read and predicted: an input refused at its layout or
    first rows leaves `out` (stdout, a pipe) empty."""
    rows = _prediction_rows(net, examples, proba)
    first = next(rows, [])
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(prediction_header(net, proba))
    writer.writerows(first)
    total = len(first)
    for cells in rows:
        writer.writerows(cells)
        total += len(cells)
    return total


def _prediction_rows(net: CompiledNetwork, examples: Iterator[np.ndarray], proba: bool) -> Iterator[list[list[str]]]:
    """The output rows (text cells) of each chunk of raw examples."""
    first = net.graph.outputs[0]
    task = output_task(net.graph, first)
    digits = ".9g" if net.dtype == np.float32 else ".17g"
    names = np.asarray(net.class_names) if net.class_names is not None and task in (None, "classification") else None
    for raw in examples:
        if len(raw) == 0:
            continue
        scores = net.forward(net.prepare(raw), output=first)
        predicted = predictions(scores, task)
        cells = _cells(names[predicted] if names is not None else predicted, len(raw), digits)
        if proba:
            p = probabilities(scores, net.graph, first)
            if task == "binary" and p.ndim == 1:
                p = np.stack([1.0 - p, p], axis=1)
            cells = [row + _cells(prow, 1, digits)[0] for row, prow in zip(cells, p.reshape(len(raw), -1))]
        yield cells


def _cells(values: np.ndarray, n: int, digits: str) -> list[list[str]]:
    """(n, k) text cells of predictions or probabilities: names as they are, integers as
    integers, floats with enough digits to round-trip."""
    rows = np.asarray(values).reshape(n, -1)
    if rows.dtype.kind == "f":
        return [[format(float(v), digits) for v in row] for row in rows]
    return [[str(v) for v in row] for row in rows.tolist()]
