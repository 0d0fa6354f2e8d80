"""Robust regression losses with their gradients (numba + NumPy twins): the mean absolute
error and the Huber loss, each over all elements of Y and T (as PyTorch's L1Loss and
HuberLoss with reduction="mean").

Each returns the mean loss as a Python float (summed in float64) and writes the
gradient of that mean into its last argument.
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel
from ._jitmath import flat_operands
from ._workspace import const, full_reduce, scratch


@kernel
def mae_loss_numba(Y, T, dY):  # noqa: ANN001, ANN201
    y, t, d = flat_operands(Y, T, dY, "mae_loss: Y, T and dY must have one shape")
    size = y.size
    if size == 0:
        return 0.0
    zero = Y.dtype.type(0)
    k = Y.dtype.type(1.0 / size)
    loss = 0.0
    for i in range(size):
        diff = y[i] - t[i]
        loss += abs(np.float64(diff))
        d[i] = k if diff > zero else (-k if diff < zero else zero)
    return loss / size


def mae_loss_numpy(Y: np.ndarray, T: np.ndarray, dY: np.ndarray) -> float:
    """Mean absolute error over all elements of Y, T (any shape); dY = sign(Y - T) / size
    (0 where Y == T, as PyTorch's L1Loss)."""
    size = Y.size
    if size == 0:
        return 0.0
    np.subtract(Y, T, out=dY)
    wide = scratch("mae_loss.wide", Y.shape, np.float64)
    np.copyto(wide, dY)
    np.abs(wide, out=wide)
    loss = float(full_reduce(np.add, wide, "mae_loss.sum")) / size
    np.sign(dY, out=dY)
    np.multiply(dY, const("mae_loss.scale", 1.0 / size, Y.dtype), out=dY)
    return loss
mae_loss_numba.__doc__ = mae_loss_numpy.__doc__


@kernel
def huber_loss_numba(Y, T, delta, dY):  # noqa: ANN001, ANN201
    y, t, d = flat_operands(Y, T, dY, "huber_loss: Y, T and dY must have one shape")
    size = y.size
    if size == 0:
        return 0.0
    f = Y.dtype.type
    dl = f(delta)
    k = f(1.0 / size)
    loss = 0.0
    for i in range(size):
        diff = y[i] - t[i]
        c = min(max(diff, -dl), dl)  # the element's gradient: diff inside [-delta, delta], else +-delta
        wide_c = np.float64(c)
        loss += wide_c * (np.float64(diff) - 0.5 * wide_c)  # 0.5 d^2 inside, delta (|d| - delta / 2) outside
        d[i] = c * k
    return loss / size


def huber_loss_numpy(Y: np.ndarray, T: np.ndarray, delta: float, dY: np.ndarray) -> float:
    """Mean Huber loss over all elements of Y, T (any shape): d = Y - T, 0.5 d^2 where
    |d| <= delta, else delta (|d| - delta / 2); dY = clip(d, -delta, delta) / size."""
    size = Y.size
    if size == 0:
        return 0.0
    t = Y.dtype
    np.subtract(Y, T, out=dY)
    wide = scratch("huber_loss.wide", Y.shape, np.float64)
    clipped = scratch("huber_loss.clipped", Y.shape, np.float64)
    np.copyto(wide, dY)  # d
    np.clip(dY, const("huber_loss.low", -delta, t), const("huber_loss.high", delta, t), out=dY)  # c
    np.copyto(clipped, dY)
    # c (d - c / 2): 0.5 d^2 inside the band (c = d), delta (|d| - delta / 2) outside (c = +-delta)
    np.multiply(clipped, const("huber_loss.half", 0.5, np.float64), out=clipped)
    np.subtract(wide, clipped, out=wide)
    np.add(clipped, clipped, out=clipped)
    np.multiply(wide, clipped, out=wide)
    loss = float(full_reduce(np.add, wide, "huber_loss.sum")) / size
    np.multiply(dY, const("huber_loss.scale", 1.0 / size, t), out=dY)
    return loss
huber_loss_numba.__doc__ = huber_loss_numpy.__doc__
