"""Batch and layer normalization, forward and backward (numba + NumPy twins).

Variance is the biased one (divide by the count). Running statistics follow
CS231n: running = momentum * running + (1 - momentum) * batch_stat.
"""
from __future__ import annotations

import numpy as np

from ._jit import helper, kernel
from ._workspace import const, scratch


@helper
def vectors_of_length(d, gamma, beta, running_mean, running_var):  # noqa: ANN001, ANN201
    """Whether batchnorm's four per-feature vectors all have length d."""
    return (gamma.shape[0] == d and beta.shape[0] == d and running_mean.shape[0] == d
            and running_var.shape[0] == d)


def update_running(running: np.ndarray, stat: np.ndarray, momentum: float) -> None:
    """running = momentum * running + (1 - momentum) * stat, in place (stat is scaled in
    place too). running, stat: one shape (D,); 1 - momentum rounded in their dtype, as the
    numba kernels do."""
    t = running.dtype
    mom = const("batchnorm.momentum", momentum, t)
    keep = const("batchnorm.keep", 0, t)
    np.subtract(const("one", 1, t), mom, out=keep)
    np.multiply(running, mom, out=running)
    np.multiply(stat, keep, out=stat)
    np.add(running, stat, out=running)


@kernel
def batchnorm_train_forward_numba(  # noqa: ANN201
    X, gamma, beta, eps, momentum, running_mean, running_var, out, xhat, inv_std  # noqa: ANN001
):
    n, d = X.shape
    if (
        not vectors_of_length(d, gamma, beta, running_mean, running_var) or inv_std.shape[0] != d
        or out.shape != X.shape or xhat.shape != X.shape
    ):
        raise ValueError("batchnorm_train_forward: need X, out, xhat (N, D) and (D,) vectors")
    if n == 0:
        return
    f = X.dtype.type
    mom = f(momentum)
    keep = f(1.0) - mom
    inv_n = f(1.0 / n)
    one = f(1)
    e = f(eps)
    # inv_std first holds the column sums, then the variances
    for j in range(d):
        inv_std[j] = 0
    for i in range(n):
        for j in range(d):
            inv_std[j] += X[i, j]
    for j in range(d):
        mean = inv_std[j] * inv_n
        inv_std[j] = mean
        running_mean[j] = mom * running_mean[j] + keep * mean
    for i in range(n):
        for j in range(d):
            xhat[i, j] = X[i, j] - inv_std[j]
    for j in range(d):
        inv_std[j] = 0
    for i in range(n):
        for j in range(d):
            inv_std[j] += xhat[i, j] * xhat[i, j]
    for j in range(d):
        var = inv_std[j] * inv_n
        running_var[j] = mom * running_var[j] + keep * var
        inv_std[j] = one / np.sqrt(var + e)
    for i in range(n):
        for j in range(d):
            xh = xhat[i, j] * inv_std[j]
            xhat[i, j] = xh
            out[i, j] = gamma[j] * xh + beta[j]


def batchnorm_train_forward_numpy(
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
    """Training-mode batchnorm of X (N, D) with batch statistics over axis 0.

    Writes out = gamma * xhat + beta (N, D; may alias X), xhat (N, D) and
    inv_std (D,) for backward, and updates running_mean/var (D,) in place.
    """
    n, d = X.shape
    if n == 0:
        return
    t = X.dtype
    inv_n = const("batchnorm.inv_n", 1.0 / n, t)
    stat = scratch("batchnorm_train_forward.stat", (d,), t)
    sq = scratch("batchnorm_train_forward.sq", X.shape, t)
    np.add.reduce(X, axis=0, out=stat)
    np.multiply(stat, inv_n, out=stat)  # mean
    np.subtract(X, stat, out=xhat)
    update_running(running_mean, stat, momentum)
    np.square(xhat, out=sq)
    np.add.reduce(sq, axis=0, out=stat)
    np.multiply(stat, inv_n, out=stat)  # biased variance
    np.add(stat, const("batchnorm.eps", eps, t), out=inv_std)
    np.sqrt(inv_std, out=inv_std)
    np.reciprocal(inv_std, out=inv_std)
    update_running(running_var, stat, momentum)
    np.multiply(xhat, inv_std, out=xhat)
    np.multiply(xhat, gamma, out=out)
    np.add(out, beta, out=out)


batchnorm_train_forward_numba.__doc__ = batchnorm_train_forward_numpy.__doc__


@kernel
def batchnorm_eval_forward_numba(X, gamma, beta, running_mean, running_var, eps, out):  # noqa: ANN001, ANN201
    n, d = X.shape
    if not vectors_of_length(d, gamma, beta, running_mean, running_var) or out.shape != X.shape:
        raise ValueError("batchnorm_eval_forward: need X, out (N, D) and (D,) vectors")
    e = X.dtype.type(eps)
    for i in range(n):
        for j in range(d):
            scale = gamma[j] / np.sqrt(running_var[j] + e)
            out[i, j] = (X[i, j] - running_mean[j]) * scale + beta[j]


def batchnorm_eval_forward_numpy(
    X: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    eps: float,
    out: np.ndarray,
) -> None:
    """out = gamma * (X - running_mean) / sqrt(running_var + eps) + beta. X, out: (N, D)."""
    scale = scratch("batchnorm_eval_forward.scale", (X.shape[1],), X.dtype)
    np.add(running_var, const("batchnorm.eps", eps, X.dtype), out=scale)
    np.sqrt(scale, out=scale)
    np.divide(gamma, scale, out=scale)
    np.subtract(X, running_mean, out=out)
    np.multiply(out, scale, out=out)
    np.add(out, beta, out=out)


batchnorm_eval_forward_numba.__doc__ = batchnorm_eval_forward_numpy.__doc__


@kernel
def batchnorm_backward_numba(dY, xhat, gamma, inv_std, dX, dgamma, dbeta):  # noqa: ANN001, ANN201
    n, d = dY.shape
    if (
        xhat.shape != dY.shape or dX.shape != dY.shape or gamma.shape[0] != d
        or inv_std.shape[0] != d or dgamma.shape[0] != d or dbeta.shape[0] != d
    ):
        raise ValueError("batchnorm_backward: need dY, xhat, dX (N, D) and (D,) vectors")
    f = dY.dtype.type
    for j in range(d):
        dgamma[j] = 0
        dbeta[j] = 0
    for i in range(n):
        for j in range(d):
            g = dY[i, j]
            dbeta[j] += g
            dgamma[j] += g * xhat[i, j]
    if n == 0:
        return
    fn = f(n)
    inv_n = f(1.0 / n)
    for i in range(n):
        for j in range(d):
            k = gamma[j] * inv_std[j] * inv_n
            dX[i, j] = k * (fn * dY[i, j] - dbeta[j] - xhat[i, j] * dgamma[j])


def batchnorm_backward_numpy(
    dY: np.ndarray,
    xhat: np.ndarray,
    gamma: np.ndarray,
    inv_std: np.ndarray,
    dX: np.ndarray,
    dgamma: np.ndarray,
    dbeta: np.ndarray,
) -> None:
    """Gradients of training-mode batchnorm. dY, xhat, dX: (N, D); gamma, inv_std,
    dgamma, dbeta: (D,); dgamma/dbeta overwritten; dX may alias dY."""
    n, d = dY.shape
    t = dY.dtype
    prod = scratch("batchnorm_backward.prod", dY.shape, t)
    k = scratch("batchnorm_backward.k", (d,), t)
    np.add.reduce(dY, axis=0, out=dbeta)
    np.multiply(dY, xhat, out=prod)
    np.add.reduce(prod, axis=0, out=dgamma)
    if n == 0:
        return
    np.multiply(xhat, dgamma, out=prod)
    np.multiply(dY, const("batchnorm.n", n, t), out=dX)
    np.subtract(dX, dbeta, out=dX)
    np.subtract(dX, prod, out=dX)
    np.multiply(gamma, inv_std, out=k)
    np.multiply(k, const("batchnorm.inv_n", 1.0 / n, t), out=k)
    np.multiply(dX, k, out=dX)


batchnorm_backward_numba.__doc__ = batchnorm_backward_numpy.__doc__


@kernel
def layernorm_forward_numba(X, gamma, beta, eps, out, xhat, inv_std):  # noqa: ANN001, ANN201
    n, d = X.shape
    if (
        gamma.shape[0] != d or beta.shape[0] != d or inv_std.shape[0] != n
        or out.shape != X.shape or xhat.shape != X.shape
    ):
        raise ValueError("layernorm_forward: need X, out, xhat (N, D), gamma, beta (D,), inv_std (N,)")
    if d == 0:
        return
    f = X.dtype.type
    inv_d = f(1.0 / d)
    one = f(1)
    e = f(eps)
    for i in range(n):
        s = f(0)
        for j in range(d):
            s += X[i, j]
        mean = s * inv_d
        v = f(0)
        for j in range(d):
            c = X[i, j] - mean
            xhat[i, j] = c
            v += c * c
        r = one / np.sqrt(v * inv_d + e)
        inv_std[i] = r
        for j in range(d):
            xh = xhat[i, j] * r
            xhat[i, j] = xh
            out[i, j] = gamma[j] * xh + beta[j]


def layernorm_forward_numpy(
    X: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    eps: float,
    out: np.ndarray,
    xhat: np.ndarray,
    inv_std: np.ndarray,
) -> None:
    """Layer norm of each row of X (N, D): out = gamma * xhat + beta (N, D; may
    alias X); saves xhat (N, D) and inv_std (N,) for backward."""
    n, d = X.shape
    if d == 0:
        return
    t = X.dtype
    inv_d = const("layernorm.inv_d", 1.0 / d, t)
    row = scratch("layernorm_forward.row", (n, 1), t)
    sq = scratch("layernorm_forward.sq", X.shape, t)
    inv = inv_std.reshape(n, 1)
    np.add.reduce(X, axis=1, keepdims=True, out=row)
    np.multiply(row, inv_d, out=row)
    np.subtract(X, row, out=xhat)
    np.square(xhat, out=sq)
    np.add.reduce(sq, axis=1, keepdims=True, out=inv)
    np.multiply(inv, inv_d, out=inv)
    np.add(inv, const("layernorm.eps", eps, t), out=inv)
    np.sqrt(inv, out=inv)
    np.reciprocal(inv, out=inv)
    np.multiply(xhat, inv, out=xhat)
    np.multiply(xhat, gamma, out=out)
    np.add(out, beta, out=out)


layernorm_forward_numba.__doc__ = layernorm_forward_numpy.__doc__


@kernel
def layernorm_backward_numba(dY, xhat, gamma, inv_std, dX, dgamma, dbeta):  # noqa: ANN001, ANN201
    n, d = dY.shape
    if (
        xhat.shape != dY.shape or dX.shape != dY.shape or gamma.shape[0] != d
        or inv_std.shape[0] != n or dgamma.shape[0] != d or dbeta.shape[0] != d
    ):
        raise ValueError("layernorm_backward: need dY, xhat, dX (N, D), inv_std (N,), (D,) vectors")
    f = dY.dtype.type
    for j in range(d):
        dgamma[j] = 0
        dbeta[j] = 0
    if d == 0:
        return
    fd = f(d)
    inv_d = f(1.0 / d)
    for i in range(n):
        s1 = f(0)
        s2 = f(0)
        for j in range(d):
            g = dY[i, j]
            xh = xhat[i, j]
            dbeta[j] += g
            dgamma[j] += g * xh
            gg = g * gamma[j]
            s1 += gg
            s2 += gg * xh
        k = inv_std[i] * inv_d
        for j in range(d):
            dX[i, j] = k * (fd * (dY[i, j] * gamma[j]) - s1 - xhat[i, j] * s2)


def layernorm_backward_numpy(
    dY: np.ndarray,
    xhat: np.ndarray,
    gamma: np.ndarray,
    inv_std: np.ndarray,
    dX: np.ndarray,
    dgamma: np.ndarray,
    dbeta: np.ndarray,
) -> None:
    """Gradients of layer norm. dY, xhat, dX: (N, D); inv_std: (N,); gamma, dgamma,
    dbeta: (D,), dgamma/dbeta overwritten (summed over rows); dX may alias dY."""
    n, d = dY.shape
    t = dY.dtype
    prod = scratch("layernorm_backward.prod", dY.shape, t)
    g = scratch("layernorm_backward.g", dY.shape, t)
    s1 = scratch("layernorm_backward.s1", (n, 1), t)
    s2 = scratch("layernorm_backward.s2", (n, 1), t)
    np.add.reduce(dY, axis=0, out=dbeta)
    np.multiply(dY, xhat, out=prod)
    np.add.reduce(prod, axis=0, out=dgamma)
    if d == 0:
        return
    np.multiply(dY, gamma, out=g)
    np.add.reduce(g, axis=1, keepdims=True, out=s1)
    np.multiply(g, xhat, out=prod)
    np.add.reduce(prod, axis=1, keepdims=True, out=s2)
    np.multiply(xhat, s2, out=prod)
    np.multiply(g, const("layernorm.d", d, t), out=dX)
    np.subtract(dX, s1, out=dX)
    np.subtract(dX, prod, out=dX)
    np.multiply(dX, inv_std.reshape(n, 1), out=dX)
    np.multiply(dX, const("layernorm.inv_d", 1.0 / d, t), out=dX)


layernorm_backward_numba.__doc__ = layernorm_backward_numpy.__doc__
