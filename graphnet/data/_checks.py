"""Validation shared by the data sources: seeds, options, features, labels."""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ..errors import DataError
from .features import check_finite, first_nonfinite, nonfinite_problem, number_text


def check_seed(seed: Any) -> int:
    """`seed` as an int, or DataError unless it is a non-negative int."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def as_generator(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(check_seed(seed))


def check_positive(name: str, value: Any, source: str, *, integer: bool = True) -> None:
    ok = (isinstance(value, (int, np.integer)) and not isinstance(value, bool)) if integer \
        else (isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(value))
    if not ok or value < (1 if integer else 0):
        kind = "an int >= 1" if integer else "a finite number >= 0"
        raise DataError(f"{source}: option {name} must be {kind}, got {value!r}")


Locate = Callable[[tuple[int, ...]], tuple[str, str]]
"""Where a label is and how it is written: index -> (place, value as written); for an array
("[3]", "2.5"), for a CSV file (", line 7", "'2.50'")."""

MAX_CLASS_INDEX = 2**31 - 1  # a class index beyond this is a mistake, not a class


def array_places(y: np.ndarray) -> Locate:
    """`Locate` for labels held in an array: its index, and the stored value (2.5, not np.float64(2.5))."""
    return lambda index: (f"[{', '.join(map(str, index))}]", number_text(y[index]))


def check_class_labels(y: np.ndarray, where: str, classes: int | None, at: Locate | None = None) -> np.ndarray:
    """Validated labels as int64 (N,): whole, in 0..classes-1 (`classes` given) or 0..2**31-1.
    A DataError names `where`, the place of the first bad label and its value (`at`: how to
    say them, default the array index and stored value)."""
    y = np.asarray(y)
    if y.ndim != 1:
        hint = " (one-hot? store the argmax)" if y.ndim == 2 else ""
        raise DataError(f"{where}: labels must be 1-D class indices, got shape {y.shape}{hint}")
    if y.dtype.kind not in "biuf":
        raise DataError(f"{where}: labels must be integers, got dtype {y.dtype}")
    at = at or array_places(y)
    with np.errstate(invalid="ignore"):
        bad = (~np.isfinite(y) | (y != np.round(y))) if y.dtype.kind == "f" else np.zeros(len(y), bool)
    if bad.any():
        place, text = at((int(np.argmax(bad)),))
        raise DataError(f"{where}{place}: label {text}: class labels must be whole numbers 0, 1, ...")
    top = MAX_CLASS_INDEX if classes is None else classes - 1
    with np.errstate(invalid="ignore"):
        bad = (y < 0) | (y > top)
    if bad.any():
        i = int(np.argmax(bad))
        place, text = at((i,))
        problem = ("labels must be >= 0" if y[i] < 0 else f"out of range 0..{top} ({classes} classes)"
                   if classes is not None else f"too large for a class index (at most {top})")
        raise DataError(f"{where}{place}: label {text}: {problem}")
    return y.astype(np.int64)


def check_targets(y: np.ndarray, where: str, shape: tuple[int, ...], dtype: Any, at: Locate | None = None) -> np.ndarray:
    """Validated float targets as `dtype` (N, *shape), finite in `dtype` (`at`: as in `check_class_labels`).

    Accepted: (N, *shape); (N,) when `shape` holds one value; (N, k) rows
    of k = prod(shape) values.
    """
    y = np.asarray(y)
    shape = tuple(shape)
    if y.dtype.kind not in "biuf":
        raise DataError(f"{where}: targets must be numbers, got dtype {y.dtype}")
    size = math.prod(shape)
    per_example = y.shape[1:]
    if y.ndim == 0 or not (per_example == shape or (per_example == () and size == 1)
                           or per_example == (size,)):
        raise DataError(f"{where}: targets have shape {y.shape}, but the label declares shape {list(shape)} "
                        f"per example: expected ({len(y) if y.ndim else 'N'}, {', '.join(map(str, shape))})")
    position = first_nonfinite(y, dtype)
    if position is not None:
        place, text = (at or array_places(y))(position)
        raise DataError(f"{where}{place}: target {text} {nonfinite_problem(y[position], dtype, 'targets')}")
    return np.ascontiguousarray(y.reshape(len(y), *shape), dtype=dtype)


def prepare_labels(y: np.ndarray, where: str, *, classes: int | None = None,
                   target_shape: tuple[int, ...] | None = None, dtype: Any = "float32",
                   at: Locate | None = None) -> np.ndarray:
    """Labels as a network's label declares them: float targets `dtype` (N, *target_shape)
    when `target_shape` is given, else int64 class indices (N,) below `classes` if given.
    DataError naming `where` and the place (`at`, as in `check_class_labels`) when they do not fit."""
    if target_shape is None:
        return check_class_labels(y, where, classes, at)
    return check_targets(y, where, tuple(target_shape), dtype, at)


def check_features(X: np.ndarray, source: str, name: str, dtype: Any) -> np.ndarray:
    """Check features X (`name` in `source`) are numeric, at least (N, D), and finite once
    converted to `dtype` (a DataError names `source` and `name`[i, j]); returns X unchanged."""
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise DataError(f"{source}: {name}: features must be numeric, got dtype {X.dtype}")
    if X.ndim < 2:
        raise DataError(f"{source}: {name}: features must have shape (N, ...) with at least one feature axis, "
                        f"got {X.shape}")
    check_finite(X, dtype, source, name)
    return X


def check_count(n_x: int, n_y: int, x_where: str, y_where: str) -> None:
    if n_x != n_y:
        raise DataError(f"{x_where}: {n_x} examples but {y_where} has {n_y} labels")


def check_example_shape(ref: np.ndarray, X: np.ndarray, ref_where: str, where: str) -> None:
    if ref.shape[1:] != X.shape[1:]:
        raise DataError(f"{where}: examples have shape {X.shape[1:]}, but {ref_where} has {ref.shape[1:]}")
