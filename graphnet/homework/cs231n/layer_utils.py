"""The homework's "sandwich" layers (CS231n `layer_utils.py`), on graphnet's kernels.

``affine_relu_forward`` is one GEMM plus one fused bias+ReLU kernel, and its
backward one fused ReLU-gradient+bias-gradient kernel plus two GEMMs (the
same fusion the compiler applies). The normalized variants chain the
functions of `graphnet.homework.cs231n.layers`.
"""
from __future__ import annotations

import numpy as np

from ...kernels import RELU, get_backend
from .conv_layers import (
    conv_backward_naive,
    conv_forward_naive,
    max_pool_backward_naive,
    max_pool_forward_naive,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)
from .layers import (
    affine_backward,
    affine_forward,
    as_float,
    batchnorm_backward,
    batchnorm_forward,
    float_dtype,
    layernorm_backward,
    layernorm_forward,
    relu_backward,
)

__all__ = [
    "affine_relu_forward",
    "affine_relu_backward",
    "affine_bn_relu_forward",
    "affine_bn_relu_backward",
    "affine_ln_relu_forward",
    "affine_ln_relu_backward",
    "conv_relu_forward",
    "conv_relu_backward",
    "conv_relu_pool_forward",
    "conv_relu_pool_backward",
    "conv_bn_relu_forward",
    "conv_bn_relu_backward",
]


def affine_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """out = relu(x.reshape(N, D) @ w + b). x: (N, d_1, ..., d_k), w: (D, M), b: (M,) -> out (N, M).

    cache: (fc_cache, relu_cache) with fc_cache = (x, w, b) and relu_cache = out
    (ReLU's gradient mask is the same from its output as from its input).
    """
    dtype = float_dtype(x, w, b)
    n = np.shape(x)[0]
    x2 = as_float(x, dtype).reshape(n, -1)
    w_ = as_float(w, dtype)
    out = np.empty((n, w_.shape[1]), dtype)
    np.matmul(x2, w_, out=out)
    get_backend().bias_act_forward(out, as_float(b, dtype).reshape(-1), RELU, 0.0)
    return out, ((x, w, b), out)


def affine_relu_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of affine_relu_forward. dout: (N, M) -> dx (x's shape), dw (D, M), db (M,)."""
    (x, w, b), out = cache
    dtype = float_dtype(dout, x, w)
    n = np.shape(x)[0]
    x2 = as_float(x, dtype).reshape(n, -1)
    w_ = as_float(w, dtype)
    da = np.empty(out.shape, dtype)
    db = np.empty(w_.shape[1], dtype)
    get_backend().act_bias_backward(as_float(dout, dtype), as_float(out, dtype), RELU, 0.0, da, db)
    dx = np.empty(x2.shape, dtype)
    dw = np.empty(w_.shape, dtype)
    np.matmul(da, w_.T, out=dx)
    np.matmul(x2.T, da, out=dw)
    return dx.reshape(np.shape(x)), dw, db.reshape(np.shape(b))


def _relu_inplace(a: np.ndarray) -> np.ndarray:
    get_backend().act_forward(a, RELU, 0.0, a)
    return a


def affine_bn_relu_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict
) -> tuple[np.ndarray, tuple]:
    """affine -> batchnorm -> relu. x: (N, d_1, ..., d_k) -> out (N, M); cache (fc, bn, relu)."""
    return _affine_norm_relu_forward(batchnorm_forward, x, w, b, gamma, beta, bn_param)


def affine_bn_relu_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, ...]:
    """Gradients of affine_bn_relu_forward: dx, dw, db, dgamma, dbeta."""
    return _affine_norm_relu_backward(batchnorm_backward, dout, cache)


def affine_ln_relu_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, gamma: np.ndarray, beta: np.ndarray, ln_param: dict
) -> tuple[np.ndarray, tuple]:
    """affine -> layernorm -> relu. x: (N, d_1, ..., d_k) -> out (N, M); cache (fc, ln, relu)."""
    return _affine_norm_relu_forward(layernorm_forward, x, w, b, gamma, beta, ln_param)


def affine_ln_relu_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, ...]:
    """Gradients of affine_ln_relu_forward: dx, dw, db, dgamma, dbeta."""
    return _affine_norm_relu_backward(layernorm_backward, dout, cache)


def _affine_norm_relu_forward(norm_forward, x, w, b, gamma, beta, norm_param):  # noqa: ANN001, ANN202
    a, fc_cache = affine_forward(x, w, b)
    h, norm_cache = norm_forward(a, gamma, beta, norm_param)
    out = _relu_inplace(h)  # the norm's backward reads its normalized input, not its output
    return out, (fc_cache, norm_cache, out)


def _affine_norm_relu_backward(norm_backward, dout, cache):  # noqa: ANN001, ANN202
    fc_cache, norm_cache, relu_cache = cache
    dh = relu_backward(dout, relu_cache)
    da, dgamma, dbeta = norm_backward(dh, norm_cache)
    dx, dw, db = affine_backward(da, fc_cache)
    return dx, dw, db, dgamma, dbeta


# ---- convolutional sandwiches (CS231n layer_utils) ---------------------------------------------


def conv_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict) -> tuple[np.ndarray, tuple]:
    """out = relu(conv(x, w) + b), x (N, C, H, W) -> (N, F, H', W'); cache (conv_cache, relu_cache = out)."""
    a, conv_cache = conv_forward_naive(x, w, b, conv_param)
    get_backend().act_forward(a, RELU, 0.0, a)
    return a, (conv_cache, a)


def conv_relu_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of conv_relu_forward: dx, dw, db."""
    conv_cache, out = cache
    return conv_backward_naive(relu_backward(dout, out), conv_cache)


def conv_relu_pool_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict,
                           pool_param: dict) -> tuple[np.ndarray, tuple]:
    """max_pool(relu(conv(x, w) + b)); cache (conv_cache, relu_cache, pool_cache)."""
    a, (conv_cache, relu_cache) = conv_relu_forward(x, w, b, conv_param)
    out, pool_cache = max_pool_forward_naive(a, pool_param)
    return out, (conv_cache, relu_cache, pool_cache)


def conv_relu_pool_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of conv_relu_pool_forward: dx, dw, db."""
    conv_cache, relu_cache, pool_cache = cache
    return conv_relu_backward(max_pool_backward_naive(dout, pool_cache), (conv_cache, relu_cache))


def conv_bn_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                         conv_param: dict, bn_param: dict) -> tuple[np.ndarray, tuple]:
    """relu(spatial_batchnorm(conv(x, w) + b)); cache (conv_cache, bn_cache, relu_cache = out)."""
    a, conv_cache = conv_forward_naive(x, w, b, conv_param)
    an, bn_cache = spatial_batchnorm_forward(a, gamma, beta, bn_param)
    get_backend().act_forward(an, RELU, 0.0, an)
    return an, (conv_cache, bn_cache, an)


def conv_bn_relu_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, ...]:
    """Gradients of conv_bn_relu_forward: dx, dw, db, dgamma, dbeta."""
    conv_cache, bn_cache, out = cache
    dan, dgamma, dbeta = spatial_batchnorm_backward(relu_backward(dout, out), bn_cache)
    dx, dw, db = conv_backward_naive(dan, conv_cache)
    return dx, dw, db, dgamma, dbeta

