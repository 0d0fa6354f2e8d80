"""Affine-layer epilogues that BLAS can't fuse, and the inference affine kernels
(numba + NumPy twins).

In training the GEMM itself runs in BLAS (np.matmul(..., out=)) from the plan;
these kernels fuse what follows it (bias + activation) and what precedes its
backward GEMMs (activation gradient + bias gradient). In eval mode small
batches run affine_small_forward (W read once) and medium ones
affine_packed_forward (W pre-transposed once, bias and activation fused), or
affine_packed_forward_columns on two threads, each over half of Y's columns.
"""
from __future__ import annotations

import numpy as np

from ._jit import helper, kernel, nogil_kernel
from ._jitmath import (
    leaky_relu_,
    leaky_relu_grad_,
    relu_,
    relu_grad_,
    sigmoid_,
    sigmoid_grad_,
    tanh_,
    tanh_grad_,
)
from .activations import act_backward_numpy, act_forward_numba, act_forward_numpy
from .codes import IDENTITY, LEAKY_RELU, RELU, SIGMOID, TANH


@kernel
def bias_act_forward_numba(Y, b, act, alpha):  # noqa: ANN001, ANN201
    n, h = Y.shape
    if b.shape[0] != h:
        raise ValueError("bias_act_forward: b must have shape (H,)")
    a = Y.dtype.type(alpha)
    if act == IDENTITY:
        for i in range(n):
            for j in range(h):
                Y[i, j] = Y[i, j] + b[j]
    elif act == RELU:
        for i in range(n):
            for j in range(h):
                Y[i, j] = relu_(Y[i, j] + b[j])
    elif act == LEAKY_RELU:
        for i in range(n):
            for j in range(h):
                Y[i, j] = leaky_relu_(Y[i, j] + b[j], a)
    elif act == SIGMOID:
        for i in range(n):
            for j in range(h):
                Y[i, j] = sigmoid_(Y[i, j] + b[j])
    elif act == TANH:
        for i in range(n):
            for j in range(h):
                Y[i, j] = tanh_(Y[i, j] + b[j])
    else:
        raise ValueError("bias_act_forward: unknown activation code")


def bias_act_forward_numpy(Y: np.ndarray, b: np.ndarray, act: int, alpha: float) -> None:
    """Y = act(Y + b) in place. Y: (N, H), b: (H,)."""
    np.add(Y, b, out=Y)
    act_forward_numpy(Y, act, alpha, Y)


bias_act_forward_numba.__doc__ = bias_act_forward_numpy.__doc__


@kernel
def act_bias_backward_numba(dY, Y, act, alpha, dZ, db):  # noqa: ANN001, ANN201
    n, h = dY.shape
    if Y.shape != dY.shape or dZ.shape != dY.shape or db.shape[0] != h:
        raise ValueError("act_bias_backward: dY, Y, dZ must be (N, H) and db (H,)")
    a = Y.dtype.type(alpha)
    for j in range(h):
        db[j] = 0
    if act == IDENTITY:
        for i in range(n):
            for j in range(h):
                dz = dY[i, j]
                dZ[i, j] = dz
                db[j] += dz
    elif act == RELU:
        for i in range(n):
            for j in range(h):
                dz = relu_grad_(dY[i, j], Y[i, j])
                dZ[i, j] = dz
                db[j] += dz
    elif act == LEAKY_RELU:
        for i in range(n):
            for j in range(h):
                dz = leaky_relu_grad_(dY[i, j], Y[i, j], a)
                dZ[i, j] = dz
                db[j] += dz
    elif act == SIGMOID:
        for i in range(n):
            for j in range(h):
                dz = sigmoid_grad_(dY[i, j], Y[i, j])
                dZ[i, j] = dz
                db[j] += dz
    elif act == TANH:
        for i in range(n):
            for j in range(h):
                dz = tanh_grad_(dY[i, j], Y[i, j])
                dZ[i, j] = dz
                db[j] += dz
    else:
        raise ValueError("act_bias_backward: unknown activation code")


def act_bias_backward_numpy(
    dY: np.ndarray, Y: np.ndarray, act: int, alpha: float, dZ: np.ndarray, db: np.ndarray
) -> None:
    """dZ = dY * act'(.) from the output Y, db = dZ summed over rows.

    dY, Y, dZ: (N, H); db: (H,), overwritten. dZ may alias dY.
    """
    act_backward_numpy(dY, Y, act, alpha, dZ)
    np.add.reduce(dZ, axis=0, out=db)


act_bias_backward_numba.__doc__ = act_bias_backward_numpy.__doc__


@kernel
def affine_small_forward_numba(X, W, b, act, alpha, Y):  # noqa: ANN001, ANN201
    n, d = X.shape
    h = W.shape[1]
    if W.shape[0] != d or b.shape[0] != h or Y.shape[0] != n or Y.shape[1] != h:
        raise ValueError("affine_small_forward: X (N, D), W (D, H), b (H,), Y (N, H)")
    for i in range(n):
        for j in range(h):
            Y[i, j] = b[j]
    # Four rows of W per pass: each W element is read once for the whole batch,
    # and each row of Y is loaded and stored once per four multiply-adds.
    k4 = d - d % 4
    for k in range(0, k4, 4):
        w0, w1, w2, w3 = W[k], W[k + 1], W[k + 2], W[k + 3]
        for i in range(n):
            x0, x1, x2, x3 = X[i, k], X[i, k + 1], X[i, k + 2], X[i, k + 3]
            y = Y[i]
            for j in range(h):
                y[j] += x0 * w0[j] + x1 * w1[j] + x2 * w2[j] + x3 * w3[j]
    for k in range(k4, d):
        w0 = W[k]
        for i in range(n):
            x0 = X[i, k]
            y = Y[i]
            for j in range(h):
                y[j] += x0 * w0[j]
    if act != IDENTITY:
        act_forward_numba(Y, act, alpha, Y)


def affine_small_forward_numpy(X: np.ndarray, W: np.ndarray, b: np.ndarray, act: int, alpha: float,
                               Y: np.ndarray) -> None:
    """Y = act(X @ W + b) for a small batch. X: (N, D), W: (D, H), b: (H,), Y: (N, H), not aliasing X.

    The numba twin reads each weight once for the whole batch (a GEMV-like
    loop with bias and activation fused), which beats a BLAS GEMM call when N
    is a handful of rows."""
    np.matmul(X, W, out=Y)
    bias_act_forward_numpy(Y, b, act, alpha)


affine_small_forward_numba.__doc__ = affine_small_forward_numpy.__doc__


# ---- the packed-weight kernel: Y = act(X @ WT.T + b), WT = W.T packed once -----------------
#
# Every output Y[i, j] is a dot product of two contiguous rows, X[i] and WT[j]. A 4x4 tile of
# them in one loop over k keeps 16 vector accumulators in registers (LLVM vectorizes the 16
# reductions along k): 8 loads per 16 multiply-adds, where a loop that adds into rows of Y
# in memory does a load and a store per multiply-add.


@helper
def _activate(v, act, a):  # noqa: ANN001, ANN201
    if act == RELU:
        return relu_(v)
    if act == LEAKY_RELU:
        return leaky_relu_(v, a)
    if act == SIGMOID:
        return sigmoid_(v)
    if act == TANH:
        return tanh_(v)
    return v


@helper
def _bias_relu(v, b, relu):  # noqa: ANN001, ANN201
    v = v + b
    return relu_(v) if relu else v


@helper
def _packed_tile_4x4(X, WT, b, relu, Y, i, j):  # noqa: ANN001, ANN201
    d = X.shape[1]
    x0, x1, x2, x3 = X[i], X[i + 1], X[i + 2], X[i + 3]
    w0, w1, w2, w3 = WT[j], WT[j + 1], WT[j + 2], WT[j + 3]
    z = Y.dtype.type(0)
    s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = z
    s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = z
    for k in range(d):
        p0, p1, p2, p3 = x0[k], x1[k], x2[k], x3[k]
        q0, q1, q2, q3 = w0[k], w1[k], w2[k], w3[k]
        s00 += p0 * q0
        s01 += p0 * q1
        s02 += p0 * q2
        s03 += p0 * q3
        s10 += p1 * q0
        s11 += p1 * q1
        s12 += p1 * q2
        s13 += p1 * q3
        s20 += p2 * q0
        s21 += p2 * q1
        s22 += p2 * q2
        s23 += p2 * q3
        s30 += p3 * q0
        s31 += p3 * q1
        s32 += p3 * q2
        s33 += p3 * q3
    b0, b1, b2, b3 = b[j], b[j + 1], b[j + 2], b[j + 3]
    Y[i, j], Y[i, j + 1] = _bias_relu(s00, b0, relu), _bias_relu(s01, b1, relu)
    Y[i, j + 2], Y[i, j + 3] = _bias_relu(s02, b2, relu), _bias_relu(s03, b3, relu)
    Y[i + 1, j], Y[i + 1, j + 1] = _bias_relu(s10, b0, relu), _bias_relu(s11, b1, relu)
    Y[i + 1, j + 2], Y[i + 1, j + 3] = _bias_relu(s12, b2, relu), _bias_relu(s13, b3, relu)
    Y[i + 2, j], Y[i + 2, j + 1] = _bias_relu(s20, b0, relu), _bias_relu(s21, b1, relu)
    Y[i + 2, j + 2], Y[i + 2, j + 3] = _bias_relu(s22, b2, relu), _bias_relu(s23, b3, relu)
    Y[i + 3, j], Y[i + 3, j + 1] = _bias_relu(s30, b0, relu), _bias_relu(s31, b1, relu)
    Y[i + 3, j + 2], Y[i + 3, j + 3] = _bias_relu(s32, b2, relu), _bias_relu(s33, b3, relu)


@helper
def _packed_tile_1x4(X, WT, b, relu, Y, i, j):  # noqa: ANN001, ANN201
    x = X[i]
    w0, w1, w2, w3 = WT[j], WT[j + 1], WT[j + 2], WT[j + 3]
    z = Y.dtype.type(0)
    s0 = s1 = s2 = s3 = z
    for k in range(X.shape[1]):
        p = x[k]
        s0 += p * w0[k]
        s1 += p * w1[k]
        s2 += p * w2[k]
        s3 += p * w3[k]
    Y[i, j], Y[i, j + 1] = _bias_relu(s0, b[j], relu), _bias_relu(s1, b[j + 1], relu)
    Y[i, j + 2], Y[i, j + 3] = _bias_relu(s2, b[j + 2], relu), _bias_relu(s3, b[j + 3], relu)


@kernel
def _packed_column_block(X, WT, b, act, a, Y, j):  # noqa: ANN001, ANN201
    """Columns j .. min(j + 4, H) of Y (a kernel of its own, called by both packed kernels,
    which keeps numba's compile time small)."""
    n, d = X.shape
    h = WT.shape[0]
    relu = act == RELU
    if j + 4 <= h:
        n4 = n - n % 4
        for i in range(0, n4, 4):
            _packed_tile_4x4(X, WT, b, relu, Y, i, j)
        for i in range(n4, n):
            _packed_tile_1x4(X, WT, b, relu, Y, i, j)
    else:
        for c in range(j, h):
            w = WT[c]
            for i in range(n):
                x = X[i]
                s = Y.dtype.type(0)
                for k in range(d):
                    s += x[k] * w[k]
                Y[i, c] = _bias_relu(s, b[c], relu)
    if act != IDENTITY and not relu:
        for i in range(n):
            for c in range(j, min(j + 4, h)):
                Y[i, c] = _activate(Y[i, c], act, a)


@helper
def _check_packed(X, WT, b, Y):  # noqa: ANN001, ANN201
    n, d = X.shape
    h = WT.shape[0]
    if WT.shape[1] != d or b.shape[0] != h or Y.shape[0] != n or Y.shape[1] != h:
        raise ValueError("affine_packed_forward: X (N, D), WT (H, D), b (H,), Y (N, H)")


@kernel
def affine_packed_forward_numba(X, WT, b, act, alpha, Y):  # noqa: ANN001, ANN201
    _check_packed(X, WT, b, Y)
    a = Y.dtype.type(alpha)
    for j in range(0, WT.shape[0], 4):
        _packed_column_block(X, WT, b, act, a, Y, j)


def affine_packed_forward_numpy(X: np.ndarray, WT: np.ndarray, b: np.ndarray, act: int, alpha: float,
                                Y: np.ndarray) -> None:
    """Y = act(X @ WT.T + b). X: (N, D), WT: (H, D) (the weights W: (D, H) transposed, packed
    once), b: (H,), Y: (N, H), not aliasing X.

    The numba twin computes 4x4 tiles of Y as dot products of contiguous rows of X and WT,
    with bias and activation applied as each tile is written; it beats a BLAS GEMM plus the
    epilogue on inference batches of a few dozen rows (graphnet.ops.affine)."""
    np.matmul(X, WT.T, out=Y)
    bias_act_forward_numpy(Y, b, act, alpha)


affine_packed_forward_numba.__doc__ = affine_packed_forward_numpy.__doc__


@nogil_kernel
def affine_packed_forward_columns_numba(X, WT, b, act, alpha, Y, lo, hi):  # noqa: ANN001, ANN201
    _check_packed(X, WT, b, Y)
    if lo < 0 or lo % 4 != 0 or hi < lo or hi > WT.shape[0]:
        raise ValueError("affine_packed_forward_columns: 0 <= lo <= hi <= H, lo a multiple of 4")
    a = Y.dtype.type(alpha)
    for j in range(lo, hi, 4):
        _packed_column_block(X, WT, b, act, a, Y, j)


def affine_packed_forward_columns_numpy(X: np.ndarray, WT: np.ndarray, b: np.ndarray, act: int, alpha: float,
                                        Y: np.ndarray, lo: int, hi: int) -> None:
    """Columns lo:hi of affine_packed_forward: Y[:, lo:hi] = act(X @ WT[lo:hi].T + b[lo:hi]),
    the rest of Y untouched. X: (N, D), WT: (H, D), b: (H,), Y: (N, H); lo a multiple of 4
    (hi = H or a multiple of 4). The numba twin runs without the GIL and computes each
    column exactly as affine_packed_forward does, so two threads can share Y's columns
    (graphnet.ops.affine)."""
    if lo < 0 or lo % 4 != 0 or hi < lo or hi > WT.shape[0]:
        raise ValueError("affine_packed_forward_columns: 0 <= lo <= hi <= H, lo a multiple of 4")
    out = Y[:, lo:hi]
    np.matmul(X, WT[lo:hi].T, out=out)
    bias_act_forward_numpy(out, b[lo:hi], act, alpha)


affine_packed_forward_columns_numba.__doc__ = affine_packed_forward_columns_numpy.__doc__
