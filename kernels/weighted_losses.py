"""Class-weighted classification losses with their gradients (numba + NumPy twins), as
PyTorch weighs them:

- softmax cross-entropy with a weight per class (CrossEntropyLoss(weight=w)): the
  weighted mean sum_i w[y_i] l_i / sum_i w[y_i];
- sigmoid binary cross-entropy with a weight per target value (w[0] for target 0, w[1]
  for target 1; a soft target t weighs w[0] + (w[1] - w[0]) t): the mean over all
  elements of the weighted terms (BCEWithLogitsLoss(weight=w[T])).

Each returns the loss as a Python float (summed in float64) and writes the gradient of
that loss into its last argument.
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel
from ._jitmath import exp_, flat_operands, sigmoid_from_exp_
from ._workspace import const, label_positions, scratch, sum64
from .losses import (
    bce_terms,
    minus_onehot_scaled,
    sigmoid_minus_target,
    softmax_cross_entropy_row,
    softmax_row_losses,
)


@kernel
def weighted_softmax_cross_entropy_numba(X, y, w, dX):  # noqa: ANN001, ANN201
    n, c = X.shape
    if y.shape[0] != n or dX.shape != X.shape or w.shape[0] != c:
        raise ValueError("weighted_softmax_cross_entropy: need X, dX (N, C), y (N,) and w (C,)")
    if n == 0:
        return 0.0
    f = X.dtype.type
    total = 0.0
    for i in range(n):
        label = y[i]
        if label < 0 or label >= c:
            raise ValueError("weighted_softmax_cross_entropy: labels must lie in [0, C)")
        total += np.float64(w[label])
    inv_total = f(1.0 / total)
    loss = 0.0
    for i in range(n):
        label = y[i]
        weight = w[label]
        loss += np.float64(weight) * softmax_cross_entropy_row(X, i, label, weight * inv_total, dX)
    return loss / total


def weighted_softmax_cross_entropy_numpy(X: np.ndarray, y: np.ndarray, w: np.ndarray, dX: np.ndarray) -> float:
    """Weighted mean softmax cross-entropy of logits X (N, C), int64 labels y (N,) and
    class weights w (C,) > 0: sum_i w[y_i] l_i / sum_i w[y_i]; dX (N, C) = w[y_i]
    (softmax(X_i) - onehot(y_i)) / sum_i w[y_i]."""
    n, c = X.shape
    if n == 0:
        return 0.0
    t = X.dtype
    pos = label_positions(y, c, "weighted_softmax_cross_entropy.pos")
    picked = scratch("weighted_softmax_cross_entropy.picked", (n,), t)
    weights = scratch("weighted_softmax_cross_entropy.weights", (n,), t)
    np.take(w, y, out=weights, mode="clip")  # the labels were checked above
    total = sum64(weights, "weighted_softmax_cross_entropy.total")
    softmax_row_losses(X, pos, dX, picked)
    np.multiply(picked, weights, out=picked)
    loss = sum64(picked, "weighted_softmax_cross_entropy.loss") / total
    np.multiply(weights, const("weighted_softmax_cross_entropy.inv_total", 1.0 / total, t), out=weights)
    minus_onehot_scaled(dX, pos, weights, picked)
    return loss
weighted_softmax_cross_entropy_numba.__doc__ = weighted_softmax_cross_entropy_numpy.__doc__


@kernel
def weighted_sigmoid_bce_loss_numba(X, T, w, dX):  # noqa: ANN001, ANN201
    x, t, d = flat_operands(X, T, dX, "weighted_sigmoid_bce_loss: X, T and dX must have one shape")
    if w.shape[0] != 2:
        raise ValueError("weighted_sigmoid_bce_loss: w must hold two weights")
    size = x.size
    if size == 0:
        return 0.0
    f = X.dtype.type
    zero = f(0)
    k = f(1.0 / size)
    w0 = w[0]
    span = w[1] - w[0]
    loss = 0.0
    for i in range(size):
        xi = x[i]
        ti = t[i]
        weight = w0 + span * ti
        e = exp_(-np.abs(xi))
        loss += np.float64(weight) * (np.float64(max(xi, zero) - xi * ti) + np.log1p(np.float64(e)))
        d[i] = weight * (sigmoid_from_exp_(xi, e) - ti) * k
    return loss / size


def weighted_sigmoid_bce_loss_numpy(X: np.ndarray, T: np.ndarray, w: np.ndarray, dX: np.ndarray) -> float:
    """Mean weighted binary cross-entropy of logits X (any shape) with targets T in [0, 1]
    and weights w (2,) > 0 of targets 0 and 1: each element weighs v = w[0] + (w[1] -
    w[0]) T; dX = v (sigmoid(X) - T) / size. Stable for any finite X."""
    size = X.size
    if size == 0:
        return 0.0
    t = X.dtype
    term = scratch("weighted_sigmoid_bce_loss.term", X.shape, t)
    soft = scratch("weighted_sigmoid_bce_loss.soft", X.shape, t)
    bce_terms(X, T, term, soft)
    np.multiply(T, const("weighted_sigmoid_bce_loss.span", w[1] - w[0], t), out=soft)  # the weights v
    np.add(soft, const("weighted_sigmoid_bce_loss.w0", w[0], t), out=soft)
    np.multiply(term, soft, out=term)
    loss = sum64(term, "weighted_sigmoid_bce_loss.loss") / size
    sigmoid_minus_target(X, T, dX)
    np.multiply(dX, soft, out=dX)
    np.multiply(dX, const("weighted_sigmoid_bce_loss.inv_size", 1.0 / size, t), out=dX)
    return loss
weighted_sigmoid_bce_loss_numba.__doc__ = weighted_sigmoid_bce_loss_numpy.__doc__
