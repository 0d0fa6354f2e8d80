"""Row-wise softmax and its Jacobian-vector product (numba + NumPy twins)."""
from __future__ import annotations

import numpy as np

from ._jit import helper, kernel
from ._jitmath import exp_
from ._workspace import scratch


@helper
def exp_shifted_row(X, i, out):  # noqa: ANN001, ANN201
    """out[i, j] = exp(X[i, j] - m) for the row's maximum m = max_j X[i, j] (C >= 1; out may
    alias X); returns (m, sum_j out[i, j]), the sum in X's dtype."""
    c = X.shape[1]
    m = X[i, 0]
    for j in range(1, c):
        m = max(m, X[i, j])
    s = X.dtype.type(0)
    for j in range(c):
        e = exp_(X[i, j] - m)
        out[i, j] = e
        s += e
    return m, s


@kernel
def softmax_forward_numba(X, out):  # noqa: ANN001, ANN201
    n, c = X.shape
    if out.shape != X.shape:
        raise ValueError("softmax_forward: out must have X's shape")
    if c == 0:
        return
    one = X.dtype.type(1)
    for i in range(n):
        s = exp_shifted_row(X, i, out)[1]
        inv = one / s
        for j in range(c):
            out[i, j] *= inv


def softmax_forward_numpy(X: np.ndarray, out: np.ndarray) -> None:
    """out = softmax(X) per row, stable for any finite X. X, out: (N, C); out may alias X."""
    row = scratch("softmax_forward.row", (X.shape[0], 1), X.dtype)
    np.maximum.reduce(X, axis=1, keepdims=True, out=row)
    np.subtract(X, row, out=out)
    np.exp(out, out=out)
    np.add.reduce(out, axis=1, keepdims=True, out=row)
    np.divide(out, row, out=out)


softmax_forward_numba.__doc__ = softmax_forward_numpy.__doc__


@kernel
def softmax_backward_numba(dY, P, dX):  # noqa: ANN001, ANN201
    n, c = P.shape
    if dY.shape != P.shape or dX.shape != P.shape:
        raise ValueError("softmax_backward: dY, P and dX must have one shape")
    for i in range(n):
        d = P.dtype.type(0)
        for j in range(c):
            d += dY[i, j] * P[i, j]
        for j in range(c):
            dX[i, j] = P[i, j] * (dY[i, j] - d)


def softmax_backward_numpy(dY: np.ndarray, P: np.ndarray, dX: np.ndarray) -> None:
    """dX = P * (dY - rowsum(dY * P)), the softmax JVP. dY, P, dX: (N, C); dX may alias dY."""
    prod = scratch("softmax_backward.prod", P.shape, P.dtype)
    row = scratch("softmax_backward.row", (P.shape[0], 1), P.dtype)
    np.multiply(dY, P, out=prod)
    np.add.reduce(prod, axis=1, keepdims=True, out=row)
    np.subtract(dY, row, out=dX)
    np.multiply(dX, P, out=dX)


softmax_backward_numba.__doc__ = softmax_backward_numpy.__doc__
