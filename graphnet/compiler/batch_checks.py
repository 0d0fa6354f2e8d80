"""A caller's batch arrays as a plan takes them: dtype conversion (as Keras does)
and the detailed label checks behind `Plan.check_batch`'s fast path."""
from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import PlanError

if TYPE_CHECKING:
    from ..ops.base import Value

INT64 = np.dtype(np.int64)


def as_dtype(what: str, X: Any, dtype: np.dtype) -> Any:
    """A numeric array (bool, integer, float) as `dtype` (a copy); anything else as it is
    (the checks name what is wrong with it). PlanError for non-numeric arrays, and for
    finite values that do not fit in `dtype`."""
    if X.__class__ is not np.ndarray or X.dtype == dtype:
        return X
    if X.dtype.kind not in "biuf":
        raise PlanError(f"{what}: expected numbers ({dtype.name}), got an array of dtype {X.dtype} "
                        f"({_kind_name(X.dtype)})")
    with np.errstate(over="ignore"):
        converted = X.astype(dtype)
    if X.dtype.kind == "f" and X.dtype.itemsize > dtype.itemsize:
        overflow = np.isinf(converted) & np.isfinite(X)
        if overflow.any():
            raise PlanError(f"{what}: {X[overflow].flat[0]:g} does not fit in {dtype.name} "
                            f"(largest {np.finfo(dtype).max:g}); scale the data or compile with dtype='float64'")
    return converted


def as_class_labels(name: str, y: Any) -> Any:
    """Integer class labels of any integer dtype as int64 (a copy); float labels are refused."""
    if y.__class__ is not np.ndarray or y.dtype == INT64:
        return y
    if y.dtype.kind in "iu":
        return y.astype(INT64)
    if y.dtype.kind == "f":
        raise PlanError(f"labels '{name}': class labels must be integers, got {y.dtype.name} "
                        "(if they are whole numbers: y.astype(np.int64))")
    raise PlanError(f"labels '{name}': class labels must be integers, got an array of dtype {y.dtype} "
                    f"({_kind_name(y.dtype)})")


def _kind_name(dtype: np.dtype) -> str:
    """What an array of a non-numeric dtype holds, in words."""
    return {"O": "Python objects", "U": "strings", "S": "bytes", "c": "complex numbers", "M": "dates",
            "m": "time deltas", "V": "raw records", "b": "booleans"}.get(dtype.kind, dtype.kind)


def check_batch_labels(name: str, y: Any, value: Value, n: int, dtype: np.dtype) -> None:
    """PlanError saying how labels `y` (for label `value`, batch of n) differ from what the loss reads:
    class labels: int64 (n,); targets: `dtype` (n, *value.shape); C-contiguous."""
    if not isinstance(y, np.ndarray):
        raise PlanError(f"labels '{name}': expected an array, got {type(y).__name__}")
    if value.kind == "classes":
        if y.dtype != np.int64 or y.shape != (n,):
            raise PlanError(f"labels '{name}': expected an int64 array of shape ({n},), "
                            f"got {y.dtype.name} {y.shape}")
        if not y.flags.c_contiguous:
            raise PlanError(f"labels '{name}': expected a C-contiguous array, got a strided view "
                            "(use np.ascontiguousarray(y))")
    else:
        expected = (n, *value.shape)
        if y.dtype != dtype or y.shape[0] != n or prod(y.shape[1:]) != prod(value.shape) or not y.flags.c_contiguous:
            raise PlanError(f"targets '{name}': expected a C-contiguous {dtype.name} array of shape {expected}, "
                            f"got {y.dtype.name} {y.shape}")
