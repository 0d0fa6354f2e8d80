"""Optimizer updates over 1-D flat buffers, in place (numba + NumPy twins).

Hyperparameters arrive as Python floats/ints and are cast to the buffers'
dtype. w, dw and the state buffers all have shape (n,).
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel
from ._workspace import const, scratch


@kernel
def sgd_update_numba(w, dw, lr):  # noqa: ANN001, ANN201
    if dw.shape[0] != w.shape[0]:
        raise ValueError("sgd_update: w and dw must have one length")
    a = w.dtype.type(lr)
    for i in range(w.shape[0]):
        w[i] -= a * dw[i]


def sgd_update_numpy(w: np.ndarray, dw: np.ndarray, lr: float) -> None:
    """w -= lr * dw."""
    step = scratch("sgd_update.step", w.shape, w.dtype)
    np.multiply(dw, const("optim.lr", lr, w.dtype), out=step)
    np.subtract(w, step, out=w)


sgd_update_numba.__doc__ = sgd_update_numpy.__doc__


@kernel
def momentum_update_numba(w, dw, v, lr, mu):  # noqa: ANN001, ANN201
    if dw.shape[0] != w.shape[0] or v.shape[0] != w.shape[0]:
        raise ValueError("momentum_update: w, dw and v must have one length")
    f = w.dtype.type
    a = f(lr)
    m = f(mu)
    for i in range(w.shape[0]):
        vi = m * v[i] - a * dw[i]
        v[i] = vi
        w[i] += vi


def momentum_update_numpy(w: np.ndarray, dw: np.ndarray, v: np.ndarray, lr: float, mu: float) -> None:
    """v = mu * v - lr * dw; w += v."""
    step = scratch("momentum_update.step", w.shape, w.dtype)
    np.multiply(v, const("optim.mu", mu, w.dtype), out=v)
    np.multiply(dw, const("optim.lr", lr, w.dtype), out=step)
    np.subtract(v, step, out=v)
    np.add(w, v, out=w)


momentum_update_numba.__doc__ = momentum_update_numpy.__doc__


@kernel
def nesterov_update_numba(w, dw, v, lr, mu):  # noqa: ANN001, ANN201
    if dw.shape[0] != w.shape[0] or v.shape[0] != w.shape[0]:
        raise ValueError("nesterov_update: w, dw and v must have one length")
    f = w.dtype.type
    a = f(lr)
    m = f(mu)
    m1 = f(1.0 + mu)
    for i in range(w.shape[0]):
        prev = v[i]
        vi = m * prev - a * dw[i]
        v[i] = vi
        w[i] += m1 * vi - m * prev


def nesterov_update_numpy(w: np.ndarray, dw: np.ndarray, v: np.ndarray, lr: float, mu: float) -> None:
    """v_prev = v; v = mu * v - lr * dw; w += -mu * v_prev + (1 + mu) * v."""
    t = w.dtype
    prev = scratch("nesterov_update.prev", w.shape, t)
    step = scratch("nesterov_update.step", w.shape, t)
    np.multiply(v, const("optim.mu", mu, t), out=prev)  # mu * v_prev
    np.multiply(dw, const("optim.lr", lr, t), out=step)
    np.subtract(prev, step, out=v)
    np.multiply(v, const("optim.one_plus_mu", 1.0 + mu, t), out=step)
    np.subtract(step, prev, out=step)
    np.add(w, step, out=w)


nesterov_update_numba.__doc__ = nesterov_update_numpy.__doc__


@kernel
def rmsprop_update_numba(w, dw, cache, lr, decay, eps):  # noqa: ANN001, ANN201
    if dw.shape[0] != w.shape[0] or cache.shape[0] != w.shape[0]:
        raise ValueError("rmsprop_update: w, dw and cache must have one length")
    f = w.dtype.type
    a = f(lr)
    r = f(decay)
    keep = f(1.0 - decay)
    e = f(eps)
    for i in range(w.shape[0]):
        g = dw[i]
        c = r * cache[i] + keep * g * g
        cache[i] = c
        w[i] -= a * g / (np.sqrt(c) + e)


def rmsprop_update_numpy(
    w: np.ndarray, dw: np.ndarray, cache: np.ndarray, lr: float, decay: float, eps: float
) -> None:
    """cache = decay * cache + (1 - decay) * dw²; w -= lr * dw / (sqrt(cache) + eps)."""
    t = w.dtype
    step = scratch("rmsprop_update.step", w.shape, t)
    np.multiply(cache, const("optim.decay", decay, t), out=cache)
    np.square(dw, out=step)
    np.multiply(step, const("optim.keep", 1.0 - decay, t), out=step)
    np.add(cache, step, out=cache)
    np.sqrt(cache, out=step)
    np.add(step, const("optim.eps", eps, t), out=step)
    np.divide(dw, step, out=step)
    np.multiply(step, const("optim.lr", lr, t), out=step)
    np.subtract(w, step, out=w)


rmsprop_update_numba.__doc__ = rmsprop_update_numpy.__doc__


@kernel
def adam_update_numba(w, dw, m, v, lr, beta1, beta2, eps, t):  # noqa: ANN001, ANN201
    if dw.shape[0] != w.shape[0] or m.shape[0] != w.shape[0] or v.shape[0] != w.shape[0]:
        raise ValueError("adam_update: w, dw, m and v must have one length")
    f = w.dtype.type
    b1 = f(beta1)
    b2 = f(beta2)
    k1 = f(1.0 - beta1)
    k2 = f(1.0 - beta2)
    c1 = f(1.0 / (1.0 - beta1**t))
    c2 = f(1.0 / (1.0 - beta2**t))
    a = f(lr)
    e = f(eps)
    for i in range(w.shape[0]):
        g = dw[i]
        mi = b1 * m[i] + k1 * g
        vi = b2 * v[i] + k2 * g * g
        m[i] = mi
        v[i] = vi
        w[i] -= a * (mi * c1) / (np.sqrt(vi * c2) + e)


def adam_update_numpy(
    w: np.ndarray,
    dw: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    t: int,
) -> None:
    """Adam step t (1 on the first call): m, v moments; w -= lr * m_hat / (sqrt(v_hat) + eps)."""
    f = w.dtype
    step = scratch("adam_update.step", w.shape, f)
    denom = scratch("adam_update.denom", w.shape, f)
    np.multiply(m, const("adam.beta1", beta1, f), out=m)
    np.multiply(dw, const("adam.k1", 1.0 - beta1, f), out=step)
    np.add(m, step, out=m)
    np.multiply(v, const("adam.beta2", beta2, f), out=v)
    np.square(dw, out=step)
    np.multiply(step, const("adam.k2", 1.0 - beta2, f), out=step)
    np.add(v, step, out=v)
    np.multiply(v, const("adam.c2", 1.0 / (1.0 - beta2**t), f), out=denom)
    np.sqrt(denom, out=denom)
    np.add(denom, const("adam.eps", eps, f), out=denom)
    np.multiply(m, const("adam.c1", 1.0 / (1.0 - beta1**t), f), out=step)
    np.divide(step, denom, out=step)
    np.multiply(step, const("adam.lr", lr, f), out=step)
    np.subtract(w, step, out=w)


adam_update_numba.__doc__ = adam_update_numpy.__doc__


@kernel
def adamw_update_numba(w, dw, m, v, lr, beta1, beta2, eps, weight_decay, t):  # noqa: ANN001, ANN201
    if dw.shape[0] != w.shape[0] or m.shape[0] != w.shape[0] or v.shape[0] != w.shape[0]:
        raise ValueError("adamw_update: w, dw, m and v must have one length")
    f = w.dtype.type
    b1 = f(beta1)
    b2 = f(beta2)
    k1 = f(1.0 - beta1)
    k2 = f(1.0 - beta2)
    c1 = f(1.0 / (1.0 - beta1**t))
    c2 = f(1.0 / (1.0 - beta2**t))
    a = f(lr)
    e = f(eps)
    shrink = f(1.0 - lr * weight_decay)
    for i in range(w.shape[0]):
        g = dw[i]
        mi = b1 * m[i] + k1 * g
        vi = b2 * v[i] + k2 * g * g
        m[i] = mi
        v[i] = vi
        w[i] = w[i] * shrink - a * (mi * c1) / (np.sqrt(vi * c2) + e)


def adamw_update_numpy(
    w: np.ndarray,
    dw: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    t: int,
) -> None:
    """AdamW: w -= lr * weight_decay * w (decoupled), then the Adam step t."""
    np.multiply(w, const("adamw.shrink", 1.0 - lr * weight_decay, w.dtype), out=w)
    adam_update_numpy(w, dw, m, v, lr, beta1, beta2, eps, t)


adamw_update_numba.__doc__ = adamw_update_numpy.__doc__
