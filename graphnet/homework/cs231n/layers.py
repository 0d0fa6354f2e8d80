"""The homework's functional layers (CS231n / EECS182 `layers.py`), on graphnet's kernels.

Every ``*_forward`` returns ``(out, cache)`` and every ``*_backward`` takes
``(dout, cache)``, with the homework's names and conventions, so code written
against ``cs231n.layers`` runs unchanged::

    from graphnet.homework.cs231n.layers import affine_forward, affine_backward, softmax_loss

The convolutional layers (``conv_forward_naive``, ``max_pool_forward_naive``,
``spatial_batchnorm_forward``, ... and their ``_fast`` names) live in
``conv_layers.py`` and are importable from here, as the homework does.

The arithmetic is done by the kernels of ``graphnet.kernels.get_backend()``
(``$GRAPHNET_BACKEND`` or numba); GEMMs run in BLAS. Each function allocates
only the arrays it returns (outputs and the cache).

dtypes: float32 and float64 inputs are computed in their own dtype (mixed
inputs promote as NumPy does); integer, bool and float16 inputs are cast to
float64 (float16 to float32). Labels may have any integer dtype.

Conventions where homework versions differ:

- dropout ``p`` is the probability of DROPPING a unit (inverted dropout,
  surviving units scaled by ``1 / (1 - p)``), as in the seed; CS231n 2019+
  passes a keep ratio in ``p`` instead.
- ``relu_forward`` caches its input ``x``, ``sigmoid_forward`` and
  ``tanh_forward`` cache their output (the kernels take the derivative from
  the output: ``s(1 - s)``, ``1 - t**2``).
- ``batchnorm_forward`` stores NEW running-stat arrays into ``bn_param``
  (the arrays passed in are not modified), as the homework does.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ...kernels import IDENTITY, RELU, SIGMOID, TANH, fill_uniform, get_backend
from . import conv_layers
from .arrays import as_float, as_labels, float_dtype, running_stat, writable
from .conv_layers import (  # noqa: F401  (the homework imports them from layers)
    SpatialNormCache,
    conv_backward,
    conv_backward_fast,
    conv_backward_naive,
    conv_forward,
    conv_forward_fast,
    conv_forward_naive,
    max_pool_backward,
    max_pool_backward_fast,
    max_pool_backward_naive,
    max_pool_forward,
    max_pool_forward_fast,
    max_pool_forward_naive,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)

__all__ = [
    "affine_forward",
    "affine_backward",
    "relu_forward",
    "relu_backward",
    "sigmoid_forward",
    "sigmoid_backward",
    "tanh_forward",
    "tanh_backward",
    "softmax_loss",
    "svm_loss",
    "batchnorm_forward",
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "layernorm_forward",
    "layernorm_backward",
    "dropout_forward",
    "dropout_backward",
    "NormCache",
    *conv_layers.__all__,
]


# ---- affine ---------------------------------------------------------------------------------------


def affine_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """out = x.reshape(N, D) @ w + b.

    x: (N, d_1, ..., d_k) with D = d_1 * ... * d_k; w: (D, M); b: (M,).
    Returns out (N, M) and cache (x, w, b).
    """
    dtype = float_dtype(x, w, b)
    n = np.shape(x)[0]
    x2 = as_float(x, dtype).reshape(n, -1)
    w_, b_ = as_float(w, dtype), as_float(b, dtype).reshape(-1)
    out = np.empty((n, w_.shape[1]), dtype)
    np.matmul(x2, w_, out=out)
    get_backend().bias_act_forward(out, b_, IDENTITY, 0.0)
    return out, (x, w, b)


def affine_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of affine_forward. dout: (N, M) -> dx (x's shape), dw (D, M), db (M,)."""
    x, w, b = cache
    dtype = float_dtype(dout, x, w)
    n = np.shape(x)[0]
    x2 = as_float(x, dtype).reshape(n, -1)
    w_ = as_float(w, dtype)
    d = writable(as_float(dout, dtype))
    dx = np.empty(x2.shape, dtype)
    dw = np.empty(w_.shape, dtype)
    db = np.empty(w_.shape[1], dtype)
    np.matmul(d, w_.T, out=dx)
    np.matmul(x2.T, d, out=dw)
    get_backend().act_bias_backward(d, d, IDENTITY, 0.0, d, db)  # identity: d stays as is, db = column sums
    return dx.reshape(np.shape(x)), dw, db.reshape(np.shape(b))


# ---- elementwise activations ----------------------------------------------------------------------


def _act_forward(x: np.ndarray, code: int) -> tuple[np.ndarray, np.ndarray]:
    x_ = as_float(x, float_dtype(x))
    out = np.empty(x_.shape, x_.dtype)
    get_backend().act_forward(x_, code, 0.0, out)
    return x_, out


def _act_backward(dout: np.ndarray, y: np.ndarray, code: int) -> np.ndarray:
    y_ = np.asarray(y)
    dtype = float_dtype(dout, y_)
    y_, d = as_float(y_, dtype), as_float(dout, dtype)
    dx = np.empty(y_.shape, dtype)
    get_backend().act_backward(d, y_, code, 0.0, dx)
    return dx


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """out = max(x, 0), any shape. Returns out and cache x."""
    x_, out = _act_forward(x, RELU)
    return out, x_


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """dx = dout * (x > 0), any shape (cache: x, or equally relu's output)."""
    return _act_backward(dout, cache, RELU)


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """out = 1 / (1 + exp(-x)), stable for any x; any shape. Returns out and cache out."""
    _, out = _act_forward(x, SIGMOID)
    return out, out


def sigmoid_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """dx = dout * s * (1 - s) with s the cached sigmoid output; any shape."""
    return _act_backward(dout, cache, SIGMOID)


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """out = tanh(x), any shape. Returns out and cache out."""
    _, out = _act_forward(x, TANH)
    return out, out


def tanh_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """dx = dout * (1 - t**2) with t the cached tanh output; any shape."""
    return _act_backward(dout, cache, TANH)


# ---- losses ---------------------------------------------------------------------------------------


def _class_loss(kernel_name: str, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    x_ = as_float(x, float_dtype(x))
    if x_.ndim != 2:
        raise ValueError(f"scores must have shape (N, C), got {x_.shape}")
    labels = as_labels(y, x_.shape[0])
    dx = np.empty(x_.shape, x_.dtype)
    loss = getattr(get_backend(), kernel_name)(x_, labels, dx)
    return float(loss), dx


def softmax_loss(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy of scores x: (N, C) with labels y: (N,) in [0, C).

    Returns (loss, dx) with dx: (N, C) = (softmax(x) - onehot(y)) / N. Stable for any finite x.
    """
    return _class_loss("softmax_cross_entropy", x, y)


def svm_loss(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean multiclass hinge loss (margin 1) of scores x: (N, C), labels y: (N,); returns (loss, dx (N, C))."""
    return _class_loss("svm_loss", x, y)


# ---- normalization --------------------------------------------------------------------------------


class NormCache(NamedTuple):
    """What batchnorm/layernorm backward needs: xhat (N, D), gamma (D,), inv_std ((D,) or (N,))."""

    xhat: np.ndarray
    gamma: np.ndarray
    inv_std: np.ndarray


def _norm_inputs(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, ...]:
    dtype = float_dtype(x, gamma, beta)
    x_ = as_float(x, dtype)
    if x_.ndim != 2:
        raise ValueError(f"x must have shape (N, D), got {x_.shape}")
    return x_, as_float(gamma, dtype).reshape(-1), as_float(beta, dtype).reshape(-1)


def batchnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict
) -> tuple[np.ndarray, NormCache | None]:
    """Batch normalization of x: (N, D) with scale gamma (D,) and shift beta (D,).

    bn_param: 'mode' ('train' or 'test', required), 'eps' (1e-5), 'momentum'
    (0.9), 'running_mean' / 'running_var' ((D,), zeros when absent). In
    'train' mode the batch mean and biased variance normalize x, and
    running = momentum * running + (1 - momentum) * batch is stored back into
    bn_param; in 'test' mode the running statistics are used.
    Returns out (N, D) and the cache for batchnorm_backward (None in 'test' mode).
    """
    mode = bn_param["mode"]
    eps = float(bn_param.get("eps", 1e-5))
    momentum = float(bn_param.get("momentum", 0.9))
    x_, g, b = _norm_inputs(x, gamma, beta)
    n, d = x_.shape
    kernels = get_backend()
    running_mean = running_stat(bn_param, "running_mean", d, x_.dtype)
    running_var = running_stat(bn_param, "running_var", d, x_.dtype)
    out = np.empty((n, d), x_.dtype)
    cache: NormCache | None = None
    if mode == "train":
        xhat = np.empty((n, d), x_.dtype)
        inv_std = np.empty(d, x_.dtype)
        kernels.batchnorm_train_forward(x_, g, b, eps, momentum, running_mean, running_var, out, xhat, inv_std)
        cache = NormCache(xhat, g, inv_std)
    elif mode == "test":
        kernels.batchnorm_eval_forward(x_, g, b, running_mean, running_var, eps, out)
    else:
        raise ValueError(f'Invalid forward batchnorm mode "{mode}"')
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache


def _norm_backward(kernel_name: str, dout: np.ndarray, cache: NormCache) -> tuple[np.ndarray, ...]:
    if cache is None:
        raise ValueError("no cache: backward needs a forward pass in 'train' mode")
    xhat, gamma, inv_std = cache
    d = as_float(dout, xhat.dtype)
    dx = np.empty(xhat.shape, xhat.dtype)
    dgamma = np.empty(gamma.shape, xhat.dtype)
    dbeta = np.empty(gamma.shape, xhat.dtype)
    getattr(get_backend(), kernel_name)(d, xhat, gamma, inv_std, dx, dgamma, dbeta)
    return dx, dgamma, dbeta


def batchnorm_backward(dout: np.ndarray, cache: NormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of train-mode batchnorm. dout: (N, D) -> dx (N, D), dgamma (D,), dbeta (D,).

    One fused kernel pass: dbeta = sum(dout), dgamma = sum(dout * xhat), and
    dx = gamma * inv_std / N * (N * dout - dbeta - xhat * dgamma).
    """
    return _norm_backward("batchnorm_backward", dout, cache)


def batchnorm_backward_alt(dout: np.ndarray, cache: NormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """batchnorm_backward by the simplified single-expression formula (identical results).

    The homework asks for the simplified formula as a faster alternative to
    backpropagating through the staged graph; graphnet's kernel already is
    that formula, so both names run it.
    """
    return _norm_backward("batchnorm_backward", dout, cache)


def layernorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, ln_param: dict
) -> tuple[np.ndarray, NormCache]:
    """Layer normalization of each row of x: (N, D); gamma, beta: (D,).

    ln_param: 'eps' (1e-5); other keys are ignored. Same in train and test.
    Returns out (N, D) and the cache for layernorm_backward.
    """
    eps = float(ln_param.get("eps", 1e-5))
    x_, g, b = _norm_inputs(x, gamma, beta)
    n, d = x_.shape
    out = np.empty((n, d), x_.dtype)
    xhat = np.empty((n, d), x_.dtype)
    inv_std = np.empty(n, x_.dtype)
    get_backend().layernorm_forward(x_, g, b, eps, out, xhat, inv_std)
    return out, NormCache(xhat, g, inv_std)


def layernorm_backward(dout: np.ndarray, cache: NormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of layer norm. dout: (N, D) -> dx (N, D), dgamma (D,), dbeta (D,)."""
    return _norm_backward("layernorm_backward", dout, cache)


# ---- dropout --------------------------------------------------------------------------------------


def _dropout_generator(dropout_param: dict) -> np.random.Generator:
    seed = dropout_param.get("seed")
    if seed is None:  # drawn from NumPy's global state, so np.random.seed(...) reproduces it
        seed = int(np.random.randint(0, 2**63 - 1, dtype=np.int64))
    return np.random.default_rng(seed)


def dropout_forward(x: np.ndarray, dropout_param: dict) -> tuple[np.ndarray, tuple[dict, np.ndarray | None]]:
    """Inverted dropout of x (any shape).

    dropout_param: 'p' (probability of DROPPING a unit, 0 <= p < 1), 'mode'
    ('train' or 'test'), optional 'seed' (the same seed gives the same mask).
    Train: out = x * mask, mask in {0, 1 / (1 - p)}. Test: out = x.
    Returns out and cache (dropout_param, mask) (mask None in 'test' mode).
    """
    p, mode = float(dropout_param["p"]), dropout_param["mode"]
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout p (the drop probability) must be in [0, 1), got {p}")
    if mode == "test":
        return x, (dropout_param, None)
    if mode != "train":
        raise ValueError(f'Invalid forward dropout mode "{mode}"')
    x_ = as_float(x, float_dtype(x))
    mask = np.empty(x_.shape, x_.dtype)
    fill_uniform(_dropout_generator(dropout_param), mask)
    out = np.empty(x_.shape, x_.dtype)
    get_backend().dropout_forward(x_, p, mask, out)
    return out, (dropout_param, mask)


def dropout_backward(dout: np.ndarray, cache: tuple[dict, np.ndarray | None]) -> np.ndarray:
    """Gradient of dropout_forward: dout * mask in train mode, dout in test mode."""
    _, mask = cache
    if mask is None:
        return dout
    d = as_float(dout, mask.dtype)
    dx = np.empty(mask.shape, mask.dtype)
    get_backend().dropout_backward(d, mask, dx)
    return dx
