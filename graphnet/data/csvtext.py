"""CSV text as graphnet reads it: one dialect for the header and the rows, numbers in
plain decimal syntax, and the line and column of every problem.

The dialect: the delimiter is the first of `,` TAB `;` found outside quotes in the
first line (else runs of whitespace); a cell may be quoted with `"` (a doubled `""`
inside is one quote), so a quoted cell may hold the delimiter. Lines are numbered
from 1, the header included; empty lines are skipped. A number is what a CSV writer
writes: optional sign, decimal digits with an optional point and exponent, or
inf / nan -- not Python's `1_0` (10) nor non-ASCII digits.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Iterator, TextIO

import numpy as np

from ..errors import DataError, quoted, shorten
from .files import regular_file

DELIMITERS = (",", "\t", ";")
QUOTE = '"'
FIELD_LIMIT = csv.field_size_limit()  # the csv module's longest cell: 131072 characters
_QUOTED = re.compile(r'"[^"]*"')


def is_number(cell: str) -> bool:
    """Whether a cell is a CSV number (surrounding whitespace allowed)."""
    if not cell.isascii() or "_" in cell:
        return False
    try:
        float(cell)
    except ValueError:
        return False
    return True


def to_numbers(cells: np.ndarray | list[list[str]]) -> np.ndarray | None:
    """Text cells (an array of any shape, or rows of cells) as float64, or None when one of
    them is not a CSV number."""
    if isinstance(cells, np.ndarray):  # str cells: their UCS-4 code points, without a Python string each
        codes = np.ascontiguousarray(cells, dtype=str).view(np.uint32)
        if codes.size and (codes.max() > 127 or (codes == ord("_")).any()):
            return None
    else:
        text = "\0".join(c for row in cells for c in row)
        if "_" in text or not text.isascii():
            return None
    try:
        return np.array(cells, dtype=np.float64)
    except ValueError:
        return None


def not_a_number(cell: str) -> str:
    """Why a cell a model without a column encoding reads is refused (a model trained on
    numbers only: its training data had no text and no missing cell), to follow the
    quoted cell."""
    if not cell.strip():
        return ("is empty: a missing value, which this model cannot fill (its training data had none, so it has "
                "no values to impute)")
    if any(c.isalpha() for c in cell):
        return "is text: this model reads numbers only (its training data had no text column)"
    return "is not a number"


def column_name(header: list[str] | None, j: int) -> str:
    """How a message names column j (0-based): "column 'name'" by its header, else "field <j + 1>"."""
    return f"column {quoted(header[j])}" if header else f"field {j + 1}"


def unquote(cell: str) -> str:
    """A header name or text label as meant: surrounding whitespace dropped, and the quotes
    around a cell the dialect left quoted (`a, "b"`: a space before the quote)."""
    cell = cell.strip()
    return cell[1:-1].strip() if len(cell) >= 2 and cell[0] == cell[-1] == QUOTE else cell


def open_text(path: Path) -> TextIO:
    """A regular file opened as UTF-8 text (a BOM dropped) for `records`; DataError naming it."""
    try:
        return open(regular_file(path), encoding="utf-8-sig", newline="")
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror or error}") from None


def records(handle: TextIO, delim: str | None, path: Path) -> Iterator[tuple[int, list[str]]]:
    """(first line number, cells) of each record of an open text file, empty lines skipped; a
    record the dialect cannot read (a cell over FIELD_LIMIT characters, text that is not
    UTF-8) is a DataError naming the file and line."""
    reader = None if delim is None else csv.reader(handle, delimiter=delim, quotechar=QUOTE)
    rows = (line.split() for line in handle) if reader is None else reader
    line = 0
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as error:
            problem = (f"a cell is longer than {FIELD_LIMIT:,} characters"
                       if "field larger than field limit" in str(error) else shorten(str(error)))
            raise DataError(f"{path}: line {line + 1}: {problem}") from None
        except UnicodeDecodeError as error:
            raise DataError(f"{path}: not UTF-8 text (at or after line {line + 1}: {error.reason})") from None
        start, line = line + 1, (line + 1 if reader is None else reader.line_num)
        if row:
            yield start, row


def layout(path: Path) -> tuple[str | None, list[str] | None, int]:
    """(delimiter, header or None, column count) of a CSV file, from its first record: a
    header unless every cell is a number. DataError naming the file for an empty first line
    or a header that names a column twice."""
    with open_text(path) as handle:
        try:
            first = handle.readline()
        except UnicodeDecodeError as error:
            raise DataError(f"{path}: not UTF-8 text (line 1: {error.reason})") from None
        if not first.strip():
            raise DataError(f"{path}: empty first line; expected a header or a data row")
        delim = next((d for d in DELIMITERS if d in _QUOTED.sub("", first)), None)
        handle.seek(0)
        _, row = next(records(handle, delim, path))
    cells = [unquote(c) for c in row]
    header = None if all(map(is_number, cells)) else cells
    first_column: dict[str, int] = {}
    for j, name in enumerate(header or []):
        if name in first_column:
            raise DataError(f"{path}: line 1: the column name {quoted(name)} appears twice (columns "
                            f"{first_column[name] + 1} and {j + 1}); column names must be unique")
        first_column[name] = j
    return delim, header, len(cells)


def data_records(path: Path, delim: str | None, header: list[str] | None) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of every data row (the records after the header, if any)."""
    with open_text(path) as handle:
        rows = records(handle, delim, path)
        if header is not None:
            next(rows, None)
        yield from rows


def data_record(path: Path, delim: str | None, header: list[str] | None, index: int) -> tuple[int, list[str]]:
    """(line number, cells) of the data row `index` (0-based, as the rows were read)."""
    for i, record in enumerate(data_records(path, delim, header)):
        if i == index:
            return record
    raise DataError(f"{path}: has no data row {index + 1}")


def first_problem(path: Path, delim: str | None, ncol: int, header: list[str] | None,
                  text_column: int | None = None) -> str | None:
    """The first data row that is not `ncol` numbers (column `text_column` may hold text),
    said with its line and column; None when every row is. A slow exact pass, for after a
    fast reader failed."""
    for lineno, cells in data_records(path, delim, header):
        if len(cells) != ncol:
            return f"line {lineno} has {len(cells)} fields, expected {ncol}"
        for j, cell in enumerate(cells):
            if j != text_column and not is_number(cell):
                return f"line {lineno}, {column_name(header, j)}: {quoted(cell.strip())} {not_a_number(cell)}"
    return None

