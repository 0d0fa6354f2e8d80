"""Raw features checked as a model sees them: finite once converted to its dtype.

Every reader of features (CSV, .npz, .npy, IDX, in-memory arrays, `net.predict`)
asks the same two questions here: where is the first value that is not a finite
number in the model's dtype (NaN, an infinity, or a number finite in float64 but
too large for float32, such as 1e39), and how to say what is wrong with it.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..errors import DataError

CHUNK_VALUES = 1 << 20  # values converted at a time: the check's memory does not grow with the array


def first_nonfinite(X: np.ndarray, dtype: Any) -> tuple[int, ...] | None:
    """The index of X's first value (in C order) that is not finite as `dtype`, else None.

    X: (N, ...) numbers. Integers and booleans always fit a float dtype; floats are
    converted a few rows (about `CHUNK_VALUES` values) at a time, so a memory-mapped
    file is read, not loaded."""
    if X.dtype.kind != "f" or X.ndim == 0 or X.size == 0:
        return None
    step = max(1, CHUNK_VALUES // (X.size // len(X)))
    for start in range(0, len(X), step):
        part = X[start:start + step]
        with np.errstate(over="ignore", invalid="ignore"):
            bad = ~np.isfinite(part.astype(dtype, copy=False))
        if bad.any():
            position = np.unravel_index(int(np.argmax(bad)), part.shape)
            return (start + int(position[0]), *(int(i) for i in position[1:]))
    return None


def number_text(value: Any) -> str:
    """A stored number as a person writes it: 2.5, 0.7 (a float32's shortest form), nan, inf,
    1e+39, 7 -- not np.float64(2.5)."""
    if isinstance(value, np.floating):
        return str(value)  # numpy's shortest repr for the value's own precision
    value = value.item() if isinstance(value, np.generic) else value
    return repr(float(value)) if isinstance(value, float) else str(value)


def nonfinite_problem(value: Any, dtype: Any, what: str = "features") -> str:
    """What is wrong with `value` (a number that is not finite as `dtype`), to follow it in a
    message about `what` (features, targets)."""
    dtype = np.dtype(dtype)
    if np.isfinite(value):
        return (f"does not fit in {dtype.name} (largest {float(np.finfo(dtype).max):.7g}); scale the {what} "
                f"or train with dtype float64")
    return f"is not a finite number: {what} must be finite"


def check_finite(X: np.ndarray, dtype: Any, where: str, name: str = "X", first_row: int = 0) -> None:
    """DataError "`where`: `name`[i, j]: nan is not a finite number ..." for X's first value
    that is not finite as `dtype`; X (N, ...) numbers (other dtypes are left to the shape and
    dtype checks). `first_row`: the index of X's first row in the whole array (X a chunk of it)."""
    position = first_nonfinite(X, dtype)
    if position is None:
        return
    index = ", ".join(map(str, (position[0] + first_row, *position[1:])))
    raise DataError(f"{where}: {name}[{index}]: {number_text(X[position])} {nonfinite_problem(X[position], dtype)}")


def check_raw_inputs(X: Any, dtype: Any, where: str) -> None:
    """`check_finite` on the raw features a caller hands to a model: one array X (N, ...),
    or a dict {input name: array} (named X['name'] in the message). What is not an
    array of numbers (text, ragged lists) is left to the shape and dtype checks."""
    items = X.items() if isinstance(X, Mapping) else [(None, X)]
    for name, value in items:
        try:
            array = np.asarray(value)
        except (ValueError, TypeError):
            continue
        if array.dtype.kind in "biuf" and array.ndim:
            check_finite(array, dtype, where, "X" if name is None else f"X[{name!r}]")
