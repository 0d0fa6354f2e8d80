"""Elementwise activations, forward and backward (numba + NumPy twins).

The backward pass is expressed from the activation OUTPUT Y:
relu' = Y>0, leaky' = Y>0 ? 1 : alpha, sigmoid' = Y(1-Y), tanh' = 1-Y².
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel
from ._jitmath import (
    flat_operands,
    leaky_relu_,
    leaky_relu_grad_,
    relu_,
    relu_grad_,
    sigmoid_,
    sigmoid_grad_,
    tanh_,
    tanh_grad_,
)
from ._workspace import const, scratch
from .codes import IDENTITY, LEAKY_RELU, RELU, SIGMOID, TANH, check_activation


@kernel
def act_forward_numba(X, act, alpha, out):  # noqa: ANN001, ANN201
    x = X.reshape(X.size)
    o = out.reshape(out.size)
    if o.size != x.size:
        raise ValueError("act_forward: out must have X's shape")
    a = X.dtype.type(alpha)
    n = x.size
    if act == IDENTITY:
        for i in range(n):
            o[i] = x[i]
    elif act == RELU:
        for i in range(n):
            o[i] = relu_(x[i])
    elif act == LEAKY_RELU:
        for i in range(n):
            o[i] = leaky_relu_(x[i], a)
    elif act == SIGMOID:
        for i in range(n):
            o[i] = sigmoid_(x[i])
    elif act == TANH:
        for i in range(n):
            o[i] = tanh_(x[i])
    else:
        raise ValueError("act_forward: unknown activation code")


def act_forward_numpy(X: np.ndarray, act: int, alpha: float, out: np.ndarray) -> None:
    """out = act(X), any shape; out may alias X."""
    t = X.dtype
    if act == IDENTITY:
        np.copyto(out, X)
    elif act == RELU:
        np.maximum(X, const("zero", 0, t), out=out)
    elif act == LEAKY_RELU:
        # leaky(x) = max(x, alpha x) for alpha <= 1, min(x, alpha x) above
        scaled = scratch("act_forward.scaled", X.shape, t)
        np.multiply(X, const("act.alpha", alpha, t), out=scaled)
        (np.maximum if alpha <= 1 else np.minimum)(X, scaled, out=out)
    elif act == SIGMOID:
        with np.errstate(over="ignore"):  # exp(-x) -> inf gives exactly 0
            np.negative(X, out=out)
            np.exp(out, out=out)
        np.add(out, const("one", 1, t), out=out)
        np.reciprocal(out, out=out)
    elif act == TANH:
        np.tanh(X, out=out)
    else:
        check_activation(act)
act_forward_numba.__doc__ = act_forward_numpy.__doc__


@kernel
def act_backward_numba(dY, Y, act, alpha, dX):  # noqa: ANN001, ANN201
    dy, y, dx = flat_operands(dY, Y, dX, "act_backward: dY, Y and dX must have one shape")
    a = Y.dtype.type(alpha)
    n = dy.size
    if act == IDENTITY:
        for i in range(n):
            dx[i] = dy[i]
    elif act == RELU:
        for i in range(n):
            dx[i] = relu_grad_(dy[i], y[i])
    elif act == LEAKY_RELU:
        for i in range(n):
            dx[i] = leaky_relu_grad_(dy[i], y[i], a)
    elif act == SIGMOID:
        for i in range(n):
            dx[i] = sigmoid_grad_(dy[i], y[i])
    elif act == TANH:
        for i in range(n):
            dx[i] = tanh_grad_(dy[i], y[i])
    else:
        raise ValueError("act_backward: unknown activation code")


def act_backward_numpy(dY: np.ndarray, Y: np.ndarray, act: int, alpha: float, dX: np.ndarray) -> None:
    """dX = dY * act'(.) from the output Y, any shape; dX may alias dY."""
    t = Y.dtype
    if act == IDENTITY:
        np.copyto(dX, dY)
    elif act in (RELU, LEAKY_RELU):
        positive = scratch("act_backward.positive", Y.shape, np.bool_)
        slope = scratch("act_backward.slope", Y.shape, t)
        np.greater(Y, const("zero", 0, t), out=positive)
        np.copyto(slope, positive)  # 1 where Y > 0, else 0
        if act == LEAKY_RELU:  # 1 where Y > 0, else alpha
            if 0 <= alpha <= 1:
                np.maximum(slope, const("act.alpha", alpha, t), out=slope)
            else:
                np.multiply(slope, const("act.one_minus_alpha", 1 - alpha, t), out=slope)
                np.add(slope, const("act.alpha", alpha, t), out=slope)
        np.multiply(dY, slope, out=dX)
    elif act in (SIGMOID, TANH):
        slope = scratch("act_backward.slope", Y.shape, t)
        if act == SIGMOID:
            np.subtract(const("one", 1, t), Y, out=slope)
            np.multiply(slope, Y, out=slope)
        else:
            np.square(Y, out=slope)
            np.subtract(const("one", 1, t), slope, out=slope)
        np.multiply(dY, slope, out=dX)
    else:
        check_activation(act)
act_backward_numba.__doc__ = act_backward_numpy.__doc__
