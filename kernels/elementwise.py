"""Structure ops and flat-buffer helpers (numba + NumPy twins).

Arrays may have any shape (C-contiguous); l2_penalty and sum_squares work
on 1-D flat segments.
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel
from ._jitmath import flat_operands
from ._workspace import const, full_reduce, scratch, sum_squares64


@kernel
def add_numba(A, B, out):  # noqa: ANN001, ANN201
    a, b, o = flat_operands(A, B, out, "add: A, B and out must have one shape")
    for i in range(a.size):
        o[i] = a[i] + b[i]


def add_numpy(A: np.ndarray, B: np.ndarray, out: np.ndarray) -> None:
    """out = A + B (one shape); out may alias A or B."""
    np.add(A, B, out=out)


add_numba.__doc__ = add_numpy.__doc__


@kernel
def add_into_numba(out, X):  # noqa: ANN001, ANN201
    o = out.reshape(out.size)
    x = X.reshape(X.size)
    if x.size != o.size:
        raise ValueError("add_into: out and X must have one shape")
    for i in range(o.size):
        o[i] += x[i]


def add_into_numpy(out: np.ndarray, X: np.ndarray) -> None:
    """out += X (one shape)."""
    np.add(out, X, out=out)


add_into_numba.__doc__ = add_into_numpy.__doc__


@kernel
def copy_into_numba(out, X):  # noqa: ANN001, ANN201
    o = out.reshape(out.size)
    x = X.reshape(X.size)
    if x.size != o.size:
        raise ValueError("copy_into: out and X must have one shape")
    for i in range(o.size):
        o[i] = x[i]


def copy_into_numpy(out: np.ndarray, X: np.ndarray) -> None:
    """out[...] = X (one shape)."""
    np.copyto(out, X)


copy_into_numba.__doc__ = copy_into_numpy.__doc__


@kernel
def l2_penalty_numba(W, dW, l2):  # noqa: ANN001, ANN201
    if dW.shape[0] != W.shape[0]:
        raise ValueError("l2_penalty: W and dW must have one length")
    k = W.dtype.type(l2)
    acc = 0.0
    for i in range(W.shape[0]):
        w = W[i]
        acc += np.float64(w) * np.float64(w)
        dW[i] += k * w
    return 0.5 * l2 * acc


def l2_penalty_numpy(W: np.ndarray, dW: np.ndarray, l2: float) -> float:
    """dW += l2 * W over 1-D W, dW (n,); returns 0.5 * l2 * sum(W**2) (float64 sum)."""
    step = scratch("l2_penalty.step", W.shape, W.dtype)
    np.multiply(W, const("l2_penalty.l2", l2, W.dtype), out=step)
    np.add(dW, step, out=dW)
    return 0.5 * l2 * sum_squares_numpy(W)
l2_penalty_numba.__doc__ = l2_penalty_numpy.__doc__


@kernel
def sum_squares_numba(X):  # noqa: ANN001, ANN201
    acc = 0.0
    for i in range(X.shape[0]):
        x = np.float64(X[i])
        acc += x * x
    return acc


def sum_squares_numpy(X: np.ndarray) -> float:
    """sum(X**2) of a 1-D X (n,), accumulated in float64."""
    return sum_squares64(X, "sum_squares.wide")


sum_squares_numba.__doc__ = sum_squares_numpy.__doc__


@kernel
def scale_inplace_numba(X, s):  # noqa: ANN001, ANN201
    x = X.reshape(X.size)
    k = X.dtype.type(s)
    for i in range(x.size):
        x[i] *= k


def scale_inplace_numpy(X: np.ndarray, s: float) -> None:
    """X *= s (any shape)."""
    np.multiply(X, const("scale_inplace.s", s, X.dtype), out=X)
scale_inplace_numba.__doc__ = scale_inplace_numpy.__doc__

_FINITE_BLOCK = 4096


@kernel
def all_finite_numba(X):  # noqa: ANN001, ANN201
    x = X.reshape(X.size)
    n = x.size
    zero = X.dtype.type(0)
    for start in range(0, n, _FINITE_BLOCK):
        stop = min(start + _FINITE_BLOCK, n)
        acc = zero
        for i in range(start, stop):
            acc += x[i] * zero  # NaN for inf or NaN, 0 otherwise
        if acc != zero:
            return False
    return True


def all_finite_numpy(X: np.ndarray) -> bool:
    """True when no element of X (any shape) is inf or NaN."""
    finite = scratch("all_finite.finite", X.shape, np.bool_)
    np.isfinite(X, out=finite)
    return bool(full_reduce(np.logical_and, finite, "all_finite.all"))
all_finite_numba.__doc__ = all_finite_numpy.__doc__
