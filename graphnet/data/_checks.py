"""Validation shared by the data sources: seeds, options, features, labels."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import DataError


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


def check_labels(y: np.ndarray, where: str, classes: int | None) -> np.ndarray:
    """Validated labels as int64 (N,): whole, non-negative, below `classes` if given."""
    y = np.asarray(y)
    if y.ndim != 1:
        hint = " (one-hot? store the argmax)" if y.ndim == 2 else ""
        raise DataError(f"{where}: labels must be 1-D class indices, got shape {y.shape}{hint}")
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"{where}: labels must be whole numbers; label {i} is {y[i]!r}")
    elif y.dtype.kind not in "biu":
        raise DataError(f"{where}: labels must be integers, got dtype {y.dtype}")
    if y.size:
        i = int(np.argmin(y))
        if y[i] < 0:
            raise DataError(f"{where}: label {i} is {y[i]}, labels must be >= 0")
        i = int(np.argmax(y))
        if classes is not None and y[i] >= classes:
            raise DataError(f"{where}: label {i} is {y[i]}, out of range 0..{classes - 1} ({classes} classes)")
    return y.astype(np.int64)


def check_targets(y: np.ndarray, where: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Validated float targets as `dtype` (N, *shape), finite.

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
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported as a non-finite target below
        targets = np.ascontiguousarray(y.reshape(len(y), *shape), dtype=dtype)
    bad = ~np.isfinite(targets)
    if bad.any():
        position = np.unravel_index(int(np.argmax(bad)), targets.shape)
        raise DataError(f"{where}: target {int(position[0])} is {targets[position]} as {targets.dtype}: "
                        f"targets must be finite")
    return targets


def prepare_labels(y: np.ndarray, where: str, *, classes: int | None = None,
                   target_shape: tuple[int, ...] | None = None, dtype: Any = "float32") -> np.ndarray:
    """Labels as a network's label declares them: float targets `dtype` (N, *target_shape)
    when `target_shape` is given, else int64 class indices (N,) below `classes` if given.
    DataError naming `where` when they do not fit."""
    if target_shape is None:
        return check_labels(y, where, classes)
    return check_targets(y, where, tuple(target_shape), dtype)


def check_features(X: np.ndarray, where: str) -> np.ndarray:
    """Check X is numeric, at least (N, D), and finite; returns it unchanged."""
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise DataError(f"{where}: features must be numeric, got dtype {X.dtype}")
    if X.ndim < 2:
        raise DataError(f"{where}: features must have shape (N, ...) with at least one feature axis, got {X.shape}")
    if X.dtype.kind == "f":
        bad = ~np.isfinite(X)
        if bad.any():
            pos = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), X.shape))
            feature = pos[1] if len(pos) == 2 else pos[1:]
            raise DataError(f"{where}: {X[pos]} in example {pos[0]}, feature {feature}: features must be finite")
    return X


def check_count(n_x: int, n_y: int, x_where: str, y_where: str) -> None:
    if n_x != n_y:
        raise DataError(f"{x_where}: {n_x} examples but {y_where} has {n_y} labels")


def check_example_shape(ref: np.ndarray, X: np.ndarray, ref_where: str, where: str) -> None:
    if ref.shape[1:] != X.shape[1:]:
        raise DataError(f"{where}: examples have shape {X.shape[1:]}, but {ref_where} has {ref.shape[1:]}")
