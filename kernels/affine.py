"""Affine-layer epilogues that BLAS can't fuse (numba + NumPy twins).

The GEMM itself runs in BLAS (np.matmul(..., out=)) from the plan; these
kernels fuse what follows it (bias + activation) and what precedes its
backward GEMMs (activation gradient + bias gradient).
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel
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
