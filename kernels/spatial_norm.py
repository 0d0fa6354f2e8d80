"""Spatial (per-channel) batch normalization of images, forward and backward (numba + NumPy twins).

X is (N, C, S): each channel is normalized over the batch and its S = H*W positions
(CS231n's spatial batchnorm, PyTorch's BatchNorm2d). The conventions are those of
kernels/norm.py: biased variance, running = momentum * running + (1 - momentum) * batch.
Channel sums are accumulated in float64 (a channel of a batch of 128 28x28 images
sums 100,352 values).
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel
from ._workspace import const, scratch
from .norm import update_running, vectors_of_length


@kernel
def spatial_batchnorm_train_forward_numba(  # noqa: ANN201
    X, gamma, beta, eps, momentum, running_mean, running_var, out, xhat, inv_std  # noqa: ANN001
):
    n, c, s = X.shape
    if (
        not vectors_of_length(c, gamma, beta, running_mean, running_var) or inv_std.shape[0] != c
        or out.shape != X.shape or xhat.shape != X.shape
    ):
        raise ValueError("spatial_batchnorm_train_forward: need X, out, xhat (N, C, S) and (C,) vectors")
    if n == 0:
        return
    f = X.dtype.type
    mom = f(momentum)
    keep = f(1.0) - mom
    count = n * s
    for j in range(c):
        total = 0.0
        for i in range(n):
            for q in range(s):
                total += X[i, j, q]
        mean = f(total / count)
        running_mean[j] = mom * running_mean[j] + keep * mean
        squares = 0.0
        for i in range(n):
            for q in range(s):
                d = X[i, j, q] - mean
                xhat[i, j, q] = d
                squares += d * d
        var = f(squares / count)
        running_var[j] = mom * running_var[j] + keep * var
        inv = f(1.0) / np.sqrt(var + f(eps))
        inv_std[j] = inv
        g, b = gamma[j], beta[j]
        for i in range(n):
            for q in range(s):
                xh = xhat[i, j, q] * inv
                xhat[i, j, q] = xh
                out[i, j, q] = g * xh + b


def spatial_batchnorm_train_forward_numpy(
    X: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    eps: float,
    momentum: float,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    out: np.ndarray,
    xhat: np.ndarray,
    inv_std: np.ndarray,
) -> None:
    """Training-mode batchnorm of X (N, C, S) with each channel's statistics over axes 0 and 2.

    Writes out = gamma * xhat + beta (N, C, S; may alias X), xhat (N, C, S) and inv_std (C,)
    for backward, and updates running_mean/var (C,) in place."""
    n, c, s = X.shape
    if n == 0:
        return
    t = X.dtype
    total = scratch("spatial_batchnorm.total", (c,), np.float64)
    stat = scratch("spatial_batchnorm.stat", (c, 1), t)
    inv_count = const("spatial_batchnorm.inv_count", 1.0 / (n * s), np.float64)
    np.add.reduce(X, axis=(0, 2), dtype=np.float64, out=total)
    np.multiply(total, inv_count, out=total)
    np.copyto(stat[:, 0], total, casting="same_kind")  # the mean, in X's dtype
    np.subtract(X, stat, out=xhat)
    update_running(running_mean, stat[:, 0], momentum)
    sq = scratch("spatial_batchnorm.sq", X.shape, t)
    np.square(xhat, out=sq)
    np.add.reduce(sq, axis=(0, 2), dtype=np.float64, out=total)
    np.multiply(total, inv_count, out=total)
    np.copyto(stat[:, 0], total, casting="same_kind")  # the biased variance
    np.add(stat[:, 0], const("spatial_batchnorm.eps", eps, t), out=inv_std)
    np.sqrt(inv_std, out=inv_std)
    np.reciprocal(inv_std, out=inv_std)
    update_running(running_var, stat[:, 0], momentum)
    np.multiply(xhat, inv_std[:, None], out=xhat)
    np.multiply(xhat, gamma[:, None], out=out)
    np.add(out, beta[:, None], out=out)


spatial_batchnorm_train_forward_numba.__doc__ = spatial_batchnorm_train_forward_numpy.__doc__


@kernel
def spatial_batchnorm_eval_forward_numba(X, gamma, beta, running_mean, running_var, eps, out):  # noqa: ANN001, ANN201
    n, c, s = X.shape
    if not vectors_of_length(c, gamma, beta, running_mean, running_var) or out.shape != X.shape:
        raise ValueError("spatial_batchnorm_eval_forward: need X, out (N, C, S) and (C,) vectors")
    e = X.dtype.type(eps)
    for j in range(c):
        scale = gamma[j] / np.sqrt(running_var[j] + e)
        shift = beta[j] - running_mean[j] * scale
        for i in range(n):
            for q in range(s):
                out[i, j, q] = X[i, j, q] * scale + shift


def spatial_batchnorm_eval_forward_numpy(
    X: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    eps: float,
    out: np.ndarray,
) -> None:
    """out = gamma * (X - running_mean) / sqrt(running_var + eps) + beta per channel, as
    X * scale + shift. X, out: (N, C, S); the vectors (C,)."""
    c = X.shape[1]
    scale = scratch("spatial_batchnorm_eval.scale", (c, 1), X.dtype)
    shift = scratch("spatial_batchnorm_eval.shift", (c, 1), X.dtype)
    np.add(running_var, const("spatial_batchnorm.eps", eps, X.dtype), out=scale[:, 0])
    np.sqrt(scale[:, 0], out=scale[:, 0])
    np.divide(gamma, scale[:, 0], out=scale[:, 0])
    np.multiply(running_mean, scale[:, 0], out=shift[:, 0])
    np.subtract(beta, shift[:, 0], out=shift[:, 0])
    np.multiply(X, scale, out=out)
    np.add(out, shift, out=out)


spatial_batchnorm_eval_forward_numba.__doc__ = spatial_batchnorm_eval_forward_numpy.__doc__


@kernel
def spatial_batchnorm_backward_numba(dY, xhat, gamma, inv_std, dX, dgamma, dbeta):  # noqa: ANN001, ANN201
    n, c, s = dY.shape
    if xhat.shape != dY.shape or dX.shape != dY.shape or gamma.shape[0] != c or inv_std.shape[0] != c \
            or dgamma.shape[0] != c or dbeta.shape[0] != c:
        raise ValueError("spatial_batchnorm_backward: need dY, xhat, dX (N, C, S) and (C,) vectors")
    f = dY.dtype.type
    count = n * s
    for j in range(c):
        sum_dy = 0.0
        sum_dy_xhat = 0.0
        for i in range(n):
            for q in range(s):
                g = dY[i, j, q]
                sum_dy += g
                sum_dy_xhat += g * xhat[i, j, q]
        dbeta[j] = f(sum_dy)
        dgamma[j] = f(sum_dy_xhat)
        mean_dy = f(sum_dy / max(count, 1))
        mean_dy_xhat = f(sum_dy_xhat / max(count, 1))
        scale = gamma[j] * inv_std[j]
        for i in range(n):
            for q in range(s):
                dX[i, j, q] = scale * (dY[i, j, q] - mean_dy - xhat[i, j, q] * mean_dy_xhat)


def spatial_batchnorm_backward_numpy(
    dY: np.ndarray,
    xhat: np.ndarray,
    gamma: np.ndarray,
    inv_std: np.ndarray,
    dX: np.ndarray,
    dgamma: np.ndarray,
    dbeta: np.ndarray,
) -> None:
    """dX = gamma * inv_std * (dY - mean(dY) - xhat * mean(dY * xhat)), the means per channel
    over axes 0 and 2; dgamma = sum(dY * xhat), dbeta = sum(dY) per channel (overwritten).
    dY, xhat, dX: (N, C, S) (dX may alias dY); vectors (C,)."""
    n, c, s = dY.shape
    t = dY.dtype
    total = scratch("spatial_batchnorm_backward.total", (c,), np.float64)
    mean_dy = scratch("spatial_batchnorm_backward.mean_dy", (c, 1), t)
    mean_dy_xhat = scratch("spatial_batchnorm_backward.mean_dy_xhat", (c, 1), t)
    scale = scratch("spatial_batchnorm_backward.scale", (c, 1), t)
    inv_count = const("spatial_batchnorm.inv_count", 1.0 / max(n * s, 1), np.float64)
    np.add.reduce(dY, axis=(0, 2), dtype=np.float64, out=total)
    np.copyto(dbeta, total, casting="same_kind")
    np.multiply(total, inv_count, out=total)
    np.copyto(mean_dy[:, 0], total, casting="same_kind")
    product = scratch("spatial_batchnorm_backward.product", dY.shape, t)
    np.multiply(dY, xhat, out=product)
    np.add.reduce(product, axis=(0, 2), dtype=np.float64, out=total)
    np.copyto(dgamma, total, casting="same_kind")
    np.multiply(total, inv_count, out=total)
    np.copyto(mean_dy_xhat[:, 0], total, casting="same_kind")
    np.multiply(gamma, inv_std, out=scale[:, 0])
    np.multiply(xhat, mean_dy_xhat, out=product)
    np.subtract(dY, mean_dy, out=dX)
    np.subtract(dX, product, out=dX)
    np.multiply(dX, scale, out=dX)


spatial_batchnorm_backward_numba.__doc__ = spatial_batchnorm_backward_numpy.__doc__
