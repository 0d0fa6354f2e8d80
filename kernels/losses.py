"""Fused loss + gradient kernels (numba + NumPy twins).

Each returns the mean loss as a Python float (summed in float64) and writes
the gradient of that mean into the last argument.
"""
from __future__ import annotations

import numpy as np

from ._jit import helper, kernel
from ._jitmath import exp_, flat_operands, sigmoid_from_exp_, tiny_like
from ._workspace import const, label_positions, scratch, sum64, sum_squares64
from .activations import act_forward_numpy
from .codes import SIGMOID
from .softmax import exp_shifted_row


@helper
def softmax_cross_entropy_row(X, i, label, weight, dX):  # noqa: ANN001, ANN201
    """dX[i] = weight * (softmax(X[i]) - onehot(label)); returns -log softmax(X[i])[label] in
    float64. X, dX: (N, C), row i; weight in X's dtype."""
    x_label = X[i, label]
    m, s = exp_shifted_row(X, i, dX)
    scale = weight / s
    for j in range(X.shape[1]):
        dX[i, j] *= scale
    dX[i, label] -= weight
    return np.log(np.float64(s)) - np.float64(x_label - m)


@kernel
def softmax_cross_entropy_numba(X, y, dX):  # noqa: ANN001, ANN201
    n, c = X.shape
    if y.shape[0] != n or dX.shape != X.shape:
        raise ValueError("softmax_cross_entropy: need X, dX (N, C) and y (N,)")
    if n == 0:
        return 0.0
    f = X.dtype.type
    inv_n = f(1.0 / n)
    loss = 0.0
    for i in range(n):
        label = y[i]
        if label < 0 or label >= c:
            raise ValueError("softmax_cross_entropy: labels must lie in [0, C)")
        loss += softmax_cross_entropy_row(X, i, label, inv_n, dX)
    return loss / n


def softmax_row_losses(X: np.ndarray, pos: np.ndarray, dX: np.ndarray, losses: np.ndarray) -> None:
    """dX = softmax(X) per row and losses[i] = -log softmax(X)[i, label_i], as
    log(sum_j exp(X[i, j] - m_i)) - (X[i, label_i] - m_i). X, dX: (N, C); pos (N,): the
    labels' flat indices into dX (label_positions); losses (N,)."""
    row = scratch("softmax_row_losses.row", (X.shape[0], 1), X.dtype)
    np.maximum.reduce(X, axis=1, keepdims=True, out=row)
    np.subtract(X, row, out=dX)
    np.take(dX.reshape(-1), pos, out=losses, mode="clip")
    np.exp(dX, out=dX)
    np.add.reduce(dX, axis=1, keepdims=True, out=row)
    np.divide(dX, row, out=dX)
    np.log(row, out=row)
    np.subtract(row.reshape(-1), losses, out=losses)


def minus_onehot_scaled(dX: np.ndarray, pos: np.ndarray, scale: np.ndarray, work: np.ndarray) -> None:
    """dX[i] = scale_i * (dX[i] - onehot(label_i)) per row. dX: (N, C); pos (N,): the labels'
    flat indices into dX; scale: () or (N,), in dX's dtype; work: (N,) scratch."""
    flat = dX.reshape(-1)
    np.multiply(dX, scale.reshape(-1, 1), out=dX)
    np.take(flat, pos, out=work, mode="clip")
    np.subtract(work, scale, out=work)
    np.put(flat, pos, work, mode="clip")


def softmax_cross_entropy_numpy(X: np.ndarray, y: np.ndarray, dX: np.ndarray) -> float:
    """Mean softmax cross-entropy of logits X (N, C) with int64 labels y (N,).

    dX (N, C) = (softmax(X) - onehot(y)) / N. Stable for any finite X.
    """
    n, c = X.shape
    if n == 0:
        return 0.0
    t = X.dtype
    pos = label_positions(y, c, "softmax_cross_entropy.pos")
    picked = scratch("softmax_cross_entropy.picked", (n,), t)
    inv_n = const("softmax_cross_entropy.inv_n", 1.0 / n, t)
    softmax_row_losses(X, pos, dX, picked)
    loss = sum64(picked, "softmax_cross_entropy.loss") / n
    minus_onehot_scaled(dX, pos, inv_n, picked)
    return loss
softmax_cross_entropy_numba.__doc__ = softmax_cross_entropy_numpy.__doc__


@kernel
def cross_entropy_numba(P, y, dP):  # noqa: ANN001, ANN201
    n, c = P.shape
    if y.shape[0] != n or dP.shape != P.shape:
        raise ValueError("cross_entropy: need P, dP (N, C) and y (N,)")
    if n == 0:
        return 0.0
    f = P.dtype.type
    tiny = tiny_like(P)
    neg_inv_n = f(-1.0 / n)
    loss = 0.0
    for i in range(n):
        label = y[i]
        if label < 0 or label >= c:
            raise ValueError("cross_entropy: labels must lie in [0, C)")
        p = max(P[i, label], tiny)
        loss -= np.log(np.float64(p))
        for j in range(c):
            dP[i, j] = 0
        dP[i, label] = neg_inv_n / p
    return loss / n


def cross_entropy_numpy(P: np.ndarray, y: np.ndarray, dP: np.ndarray) -> float:
    """Mean of -log(max(P[i, y_i], tiny)) for probabilities P (N, C), labels y (N,).

    dP (N, C) is zero except dP[i, y_i] = -1 / (N * max(P[i, y_i], tiny)).
    """
    n, c = P.shape
    if n == 0:
        return 0.0
    t = P.dtype
    pos = label_positions(y, c, "cross_entropy.pos")
    picked = scratch("cross_entropy.picked", (n,), t)
    grad = scratch("cross_entropy.grad", (n,), t)
    np.take(P.reshape(-1), pos, out=picked, mode="clip")
    np.maximum(picked, const("cross_entropy.tiny", np.finfo(t).tiny, t), out=picked)
    np.divide(const("cross_entropy.scale", -1.0 / n, t), picked, out=grad)
    dP.fill(0)
    np.put(dP.reshape(-1), pos, grad, mode="clip")
    np.log(picked, out=picked)
    return -sum64(picked, "cross_entropy.loss") / n
cross_entropy_numba.__doc__ = cross_entropy_numpy.__doc__


@kernel
def svm_loss_numba(X, y, dX):  # noqa: ANN001, ANN201
    n, c = X.shape
    if y.shape[0] != n or dX.shape != X.shape:
        raise ValueError("svm_loss: need X, dX (N, C) and y (N,)")
    if n == 0:
        return 0.0
    f = X.dtype.type
    one = f(1)
    zero = f(0)
    inv_n = f(1.0 / n)
    loss = 0.0
    for i in range(n):
        label = y[i]
        if label < 0 or label >= c:
            raise ValueError("svm_loss: labels must lie in [0, C)")
        x = X[i]
        d = dX[i]
        threshold = x[label] - one
        row = zero
        count = zero  # in units of 1/N
        for j in range(c):
            margin = x[j] - threshold
            row += max(margin, zero)
            g = inv_n if margin > zero else zero
            count += g
            d[j] = g
        # the label's own column contributed margin 1 (and 1/N): take it out
        loss += np.float64(row - one)
        d[label] = inv_n - count
    return loss / n


def svm_loss_numpy(X: np.ndarray, y: np.ndarray, dX: np.ndarray) -> float:
    """Mean multiclass hinge loss (margin 1) of scores X (N, C), labels y (N,); dX (N, C)."""
    n, c = X.shape
    if n == 0:
        return 0.0
    t = X.dtype
    zero = const("zero", 0, t)
    pos = label_positions(y, c, "svm_loss.pos")
    picked = scratch("svm_loss.picked", (n, 1), t)
    margins = scratch("svm_loss.margins", X.shape, t)
    positive = scratch("svm_loss.positive", X.shape, np.bool_)
    flat = margins.reshape(-1)
    np.take(X.reshape(-1), pos, out=picked.reshape(-1), mode="clip")
    np.subtract(X, picked, out=margins)
    np.add(margins, const("one", 1, t), out=margins)
    np.maximum(margins, zero, out=margins)
    np.put(flat, pos, zero, mode="clip")
    loss = sum64(margins, "svm_loss.loss") / n
    np.greater(margins, zero, out=positive)
    np.copyto(dX, positive)
    np.add.reduce(dX, axis=1, keepdims=True, out=picked)
    np.negative(picked, out=picked)
    np.put(dX.reshape(-1), pos, picked.reshape(-1), mode="clip")
    np.multiply(dX, const("svm_loss.inv_n", 1.0 / n, t), out=dX)
    return loss
svm_loss_numba.__doc__ = svm_loss_numpy.__doc__


@kernel
def mse_loss_numba(Y, T, dY):  # noqa: ANN001, ANN201
    y, t, d = flat_operands(Y, T, dY, "mse_loss: Y, T and dY must have one shape")
    size = y.size
    if size == 0:
        return 0.0
    k = Y.dtype.type(2.0 / size)
    loss = 0.0
    for i in range(size):
        diff = y[i] - t[i]
        wide = np.float64(diff)
        loss += wide * wide
        d[i] = k * diff
    return loss / size


def mse_loss_numpy(Y: np.ndarray, T: np.ndarray, dY: np.ndarray) -> float:
    """Mean squared error over all elements of Y, T (N, D); dY = 2 (Y - T) / (N D)."""
    size = Y.size
    if size == 0:
        return 0.0
    np.subtract(Y, T, out=dY)
    loss = sum_squares64(dY, "mse_loss.wide")
    np.multiply(dY, const("mse_loss.scale", 2.0 / size, Y.dtype), out=dY)
    return loss / size
mse_loss_numba.__doc__ = mse_loss_numpy.__doc__


_BCE_BLOCK = 512


@kernel
def sigmoid_bce_loss_numba(X, T, dX):  # noqa: ANN001, ANN201
    x, t, d = flat_operands(X, T, dX, "sigmoid_bce_loss: X, T and dX must have one shape")
    size = x.size
    if size == 0:
        return 0.0
    f = X.dtype.type
    zero = f(0)
    k = f(1.0 / size)
    loss = 0.0
    # sum of log(1 + e_i) as the log of blockwise float64 products: one log
    # per block instead of one libm log1p per element; each factor is in
    # (1, 2], so a block of 512 stays below 2^512
    for start in range(0, size, _BCE_BLOCK):
        stop = min(start + _BCE_BLOCK, size)
        linear = 0.0
        product = 1.0
        for i in range(start, stop):
            xi = x[i]
            ti = t[i]
            e = exp_(-np.abs(xi))
            linear += np.float64(max(xi, zero) - xi * ti)
            product *= 1.0 + np.float64(e)
            d[i] = (sigmoid_from_exp_(xi, e) - ti) * k
        loss += linear + np.log(product)
    return loss / size


def bce_terms(X: np.ndarray, T: np.ndarray, term: np.ndarray, work: np.ndarray) -> None:
    """term = max(X, 0) - X T + log(1 + exp(-|X|)), the binary cross-entropy of logits X
    with targets T, elementwise (stable for any finite X). X, T, term, work: one shape
    (work is scratch)."""
    np.abs(X, out=work)
    np.negative(work, out=work)
    np.exp(work, out=work)
    np.log1p(work, out=work)  # log(1 + exp(-|x|))
    np.maximum(X, const("zero", 0, X.dtype), out=term)
    np.add(term, work, out=term)
    np.multiply(X, T, out=work)
    np.subtract(term, work, out=term)


def sigmoid_minus_target(X: np.ndarray, T: np.ndarray, out: np.ndarray) -> None:
    """out = sigmoid(X) - T, elementwise; X, T, out: one shape (out may alias X)."""
    act_forward_numpy(X, SIGMOID, 0.0, out)
    np.subtract(out, T, out=out)


def sigmoid_bce_loss_numpy(X: np.ndarray, T: np.ndarray, dX: np.ndarray) -> float:
    """Mean binary cross-entropy of logits X (N, D) with targets T in [0, 1].

    dX = (sigmoid(X) - T) / (N D). Stable for any finite X.
    """
    size = X.size
    if size == 0:
        return 0.0
    t = X.dtype
    term = scratch("sigmoid_bce_loss.term", X.shape, t)
    bce_terms(X, T, term, scratch("sigmoid_bce_loss.soft", X.shape, t))
    loss = sum64(term, "sigmoid_bce_loss.loss") / size
    sigmoid_minus_target(X, T, dX)
    np.multiply(dX, const("sigmoid_bce_loss.inv_size", 1.0 / size, t), out=dX)
    return loss
sigmoid_bce_loss_numba.__doc__ = sigmoid_bce_loss_numpy.__doc__
