"""Reusable scratch arrays and constants for the NumPy twins.

The twins keep the kernels' signatures, which have no scratch arguments, so
their temporaries come from here: one flat buffer per (tag, dtype), grown
when a larger size is asked for and otherwise reused. Scalars go through
``const``: numpy boxes a Python or numpy scalar operand into a fresh 0-d
array on every ufunc call, a cached 0-d array it uses as is. Full reductions
write into cached 0-d arrays too. After a warm-up call at the largest size,
a twin allocates no numpy memory at all. Everything is per thread, so twins
may run concurrently in several threads.
"""
from __future__ import annotations

import math
import threading

import numpy as np

_local = threading.local()


def _tables() -> tuple[dict, dict, dict]:
    try:
        return _local.buffers, _local.aranges, _local.consts
    except AttributeError:
        _local.buffers, _local.aranges, _local.consts = {}, {}, {}
        return _local.buffers, _local.aranges, _local.consts


def const(tag: str, value: float | int | bool, dtype: np.dtype | type) -> np.ndarray:
    """A 0-d array of `dtype` holding `value`, owned by `tag`, to pass to ufuncs."""
    consts = _tables()[2]
    key = (tag, np.dtype(dtype))
    arr = consts.get(key)
    if arr is None:
        arr = consts[key] = np.empty((), dtype=dtype)
    arr[()] = value
    return arr


def full_reduce(ufunc: np.ufunc, x: np.ndarray, tag: str, dtype: np.dtype | type | None = None) -> np.ndarray:
    """ufunc.reduce over all of `x` into a cached 0-d array of `dtype` (default x's)."""
    out = const(tag, 0, x.dtype if dtype is None else dtype)
    ufunc.reduce(x, axis=None, out=out)
    return out


def scratch(tag: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """A C-contiguous array of `shape` and `dtype` owned by `tag` (contents undefined)."""
    buffers = _tables()[0]
    dtype = np.dtype(dtype)
    size = math.prod(shape)
    key = (tag, dtype)
    buf = buffers.get(key)
    if buf is None or buf.size < size:
        buf = np.empty(max(size, 1), dtype=dtype)
        buffers[key] = buf
    return buf[:size].reshape(shape)


def arange(n: int) -> np.ndarray:
    """0, 1, ..., n-1 as int64 (a cached read-only view)."""
    aranges = _tables()[1]
    buf = aranges.get(0)
    if buf is None or buf.size < n:
        buf = np.arange(max(n, 64), dtype=np.int64)
        buf.flags.writeable = False
        aranges[0] = buf
    return buf[:n]


def label_positions(y: np.ndarray, n_classes: int, tag: str) -> np.ndarray:
    """Flat indices i*C + y[i] into a C-contiguous (N, C) array; checks labels."""
    n = y.shape[0]
    if n and (
        int(full_reduce(np.minimum, y, "labels.min")) < 0
        or int(full_reduce(np.maximum, y, "labels.max")) >= n_classes
    ):
        raise ValueError(f"labels must lie in [0, {n_classes})")
    idx = scratch(tag, (n,), np.int64)
    np.multiply(arange(n), const("labels.classes", n_classes, np.int64), out=idx)
    np.add(idx, y, out=idx)
    return idx


def sum64(x: np.ndarray, tag: str) -> float:
    """Sum of all elements of `x`, accumulated in float64."""
    if x.dtype != np.float64:
        wide = scratch(tag, x.shape, np.float64)
        np.copyto(wide, x)
        x = wide
    return float(full_reduce(np.add, x, "sum64"))


def sum_squares64(x: np.ndarray, tag: str) -> float:
    """Sum of squares of all elements of `x`, in float64 (no BLAS: its thread
    pool stalls badly on a busy machine)."""
    wide = scratch(tag, x.shape, np.float64)
    np.copyto(wide, x)
    np.square(wide, out=wide)
    return float(full_reduce(np.add, wide, "sum64"))


def clear() -> None:
    """Drop this thread's scratch buffers."""
    for table in _tables():
        table.clear()
