"""Array conversions the homework's layer functions share: the dtype to compute in, contiguous
float and label arrays, and the running statistics a normalization stores back."""
from __future__ import annotations

from typing import Any

import numpy as np


def float_dtype(*arrays: Any) -> np.dtype:
    """The float dtype to compute in: float32 or float64 (see the module docstring)."""
    dtype = np.result_type(*[np.asarray(a).dtype for a in arrays])
    if dtype == np.float32 or dtype == np.float64:
        return dtype
    if dtype.kind == "f" and dtype.itemsize < 4:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def as_float(a: Any, dtype: np.dtype) -> np.ndarray:
    """`a` as a C-contiguous array of `dtype` (no copy when it already is one)."""
    return np.ascontiguousarray(a, dtype=dtype)


def as_labels(y: Any, n: int) -> np.ndarray:
    """Class labels (N,) as C-contiguous int64; ValueError for a wrong length or fractional values."""
    y = np.asarray(y)
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.array_equal(y, np.round(y)):
            raise ValueError("labels must be integers")
    elif y.dtype.kind not in "iub":
        raise ValueError(f"labels must be integers, got dtype {y.dtype}")
    y = y.reshape(-1)
    if y.shape[0] != n:
        raise ValueError(f"expected {n} labels, got {y.shape[0]}")
    return np.ascontiguousarray(y, dtype=np.int64)


def writable(a: np.ndarray) -> np.ndarray:
    """`a`, or a copy of it when it is read-only."""
    return a if a.flags.writeable else a.copy()


def running_stat(param: dict, key: str, d: int, dtype: np.dtype) -> np.ndarray:
    """A copy of param[key] as a (d,) array of `dtype` (zeros when absent): a running statistic
    that the forward pass updates and stores back, leaving the caller's array unchanged."""
    value = param.get(key)
    if value is None:
        return np.zeros(d, dtype)
    return np.array(value, dtype=dtype, copy=True).reshape(d)
