"""The homework's convolutional layers (CS231n `layers.py` and `fast_layers.py`), on graphnet's
conv and pooling kernels -- the same im2col + GEMM path compiled networks run.

    out, cache = conv_forward_naive(x, w, b, {"stride": 1, "pad": 1})
    dx, dw, db = conv_backward_naive(dout, cache)

x: (N, C, H, W); w: (F, C, HH, WW); b: (F,); out: (N, F, H', W') with
H' = 1 + (H + 2 * pad - HH) // stride. Caches are the homework's: (x, w, b, conv_param)
and (x, pool_param); backward gathers the patches again rather than keeping them.
The `_naive` and `_fast` names (and the plain `conv_forward`, ...) are the same functions:
there is one implementation. dtypes follow graphnet.homework.cs231n.layers.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ...kernels import IDENTITY, get_backend
from .arrays import as_float, float_dtype, running_stat

__all__ = [
    "conv_forward", "conv_backward", "conv_forward_naive", "conv_backward_naive",
    "conv_forward_fast", "conv_backward_fast",
    "max_pool_forward", "max_pool_backward", "max_pool_forward_naive", "max_pool_backward_naive",
    "max_pool_forward_fast", "max_pool_backward_fast",
    "spatial_batchnorm_forward", "spatial_batchnorm_backward", "SpatialNormCache",
]


def _geometry(x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: int, pad: int) -> tuple[int, int]:
    """(H', W') of a convolution, or ValueError when the filter does not fit the padded input."""
    _, c, h, w = x_shape
    f, wc, hh, ww = w_shape
    if wc != c:
        raise ValueError(f"w has {wc} input channels, x has {c}")
    if hh > h + 2 * pad or ww > w + 2 * pad or stride < 1 or pad < 0:
        raise ValueError(f"a {hh}x{ww} filter with stride {stride} does not fit x of {h}x{w} padded by {pad}")
    return 1 + (h + 2 * pad - hh) // stride, 1 + (w + 2 * pad - ww) // stride


def _conv_param(conv_param: dict) -> tuple[int, int]:
    return int(conv_param.get("stride", 1)), int(conv_param.get("pad", 0))


def conv_forward_naive(x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict) -> tuple[np.ndarray, tuple]:
    """out[n, f] = sum over c, i, j of w[f, c, i, j] * xpad[n, c, y*stride + i, x*stride + j] + b[f].

    conv_param: 'stride' (1), 'pad' (0, zeros on every side). Returns out (N, F, H', W') and
    cache (x, w, b, conv_param)."""
    dtype = float_dtype(x, w, b)
    x_, w_, b_ = as_float(x, dtype), as_float(w, dtype), as_float(b, dtype).reshape(-1)
    stride, pad = _conv_param(conv_param)
    oh, ow = _geometry(x_.shape, w_.shape, stride, pad)
    n, f, k = x_.shape[0], w_.shape[0], int(np.prod(w_.shape[1:]))
    kernels = get_backend()
    cols = np.empty((n, oh, ow, k), dtype)
    kernels.im2col(x_, w_.shape[2], w_.shape[3], stride, stride, pad, pad, cols)
    z = np.empty((n, oh * ow, f), dtype)
    np.matmul(cols.reshape(n * oh * ow, k), w_.reshape(f, k).T, out=z.reshape(n * oh * ow, f))
    out = np.empty((n, f, oh, ow), dtype)
    kernels.channel_bias_act_forward(z, b_, IDENTITY, 0.0, out.reshape(n, f, oh * ow))
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of conv_forward_naive: dout (N, F, H', W') -> dx (N, C, H, W), dw (F, C, HH, WW), db (F,)."""
    x, w, b, conv_param = cache
    dtype = float_dtype(dout, x, w)
    x_, w_ = as_float(x, dtype), as_float(w, dtype)
    d = as_float(dout, dtype)
    stride, pad = _conv_param(conv_param)
    n, f, oh, ow = d.shape
    hh, ww, k = w_.shape[2], w_.shape[3], int(np.prod(w_.shape[1:]))
    kernels = get_backend()
    cols = np.empty((n, oh, ow, k), dtype)
    kernels.im2col(x_, hh, ww, stride, stride, pad, pad, cols)
    dz = np.empty((n, oh * ow, f), dtype)
    db = np.empty(f, dtype)
    kernels.act_channel_bias_backward(d.reshape(n, f, oh * ow), d.reshape(n, f, oh * ow), IDENTITY, 0.0, dz, db)
    rows = dz.reshape(n * oh * ow, f)
    dw = np.empty((f, k), dtype)
    np.matmul(rows.T, cols.reshape(n * oh * ow, k), out=dw)
    np.matmul(rows, w_.reshape(f, k), out=cols.reshape(n * oh * ow, k))  # the patches' gradient, in place
    dx = np.empty(x_.shape, dtype)
    kernels.col2im(cols, hh, ww, stride, stride, pad, pad, dx)
    return dx, dw.reshape(w_.shape), db.reshape(np.shape(b))


def _pool_param(pool_param: dict) -> tuple[int, int, int]:
    return int(pool_param.get("pool_height", 2)), int(pool_param.get("pool_width", 2)), int(pool_param.get("stride", 2))


def max_pool_forward_naive(x: np.ndarray, pool_param: dict) -> tuple[np.ndarray, tuple]:
    """out[n, c, y, x] = max of x[n, c] over the pool_height x pool_width window at (y*stride, x*stride).

    pool_param: 'pool_height', 'pool_width', 'stride' (each 2 by default). Returns out
    (N, C, H', W') with H' = 1 + (H - pool_height) // stride, and cache (x, pool_param)."""
    x_ = as_float(x, float_dtype(x))
    ph, pw, stride = _pool_param(pool_param)
    n, c, h, w = x_.shape
    if ph > h or pw > w or stride < 1:
        raise ValueError(f"a {ph}x{pw} pool with stride {stride} does not fit x of {h}x{w}")
    out = np.empty((n, c, 1 + (h - ph) // stride, 1 + (w - pw) // stride), x_.dtype)
    get_backend().max_pool_forward(x_, ph, pw, stride, stride, 0, 0, out)
    return out, (x, pool_param)


def max_pool_backward_naive(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Gradient of max_pool_forward_naive: each window's dout goes to its (first) maximum. -> dx (N, C, H, W)."""
    x, pool_param = cache
    dtype = float_dtype(dout, x)
    x_, d = as_float(x, dtype), as_float(dout, dtype)
    ph, pw, stride = _pool_param(pool_param)
    dx = np.empty(x_.shape, dtype)
    get_backend().max_pool_backward(d, x_, ph, pw, stride, stride, 0, 0, dx)
    return dx


class SpatialNormCache(NamedTuple):
    """What spatial_batchnorm_backward needs: xhat (N, C, H*W), gamma (C,), inv_std (C,), x's shape."""

    xhat: np.ndarray
    gamma: np.ndarray
    inv_std: np.ndarray
    shape: tuple[int, ...]


def spatial_batchnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                              bn_param: dict) -> tuple[np.ndarray, SpatialNormCache | None]:
    """Batchnorm of x: (N, C, H, W) per channel, over the batch and the positions; gamma, beta (C,).

    bn_param as for batchnorm_forward ('mode', 'eps', 'momentum', 'running_mean'/'running_var' of
    shape (C,)), the new running statistics stored back. Returns out (N, C, H, W) and the cache
    (None in 'test' mode)."""
    mode = bn_param["mode"]
    eps, momentum = float(bn_param.get("eps", 1e-5)), float(bn_param.get("momentum", 0.9))
    dtype = float_dtype(x, gamma, beta)
    x_ = as_float(x, dtype)
    if x_.ndim != 4:
        raise ValueError(f"x must have shape (N, C, H, W), got {x_.shape}")
    n, c = x_.shape[:2]
    flat = x_.reshape(n, c, -1)
    g, b = as_float(gamma, dtype).reshape(-1), as_float(beta, dtype).reshape(-1)
    running_mean = running_stat(bn_param, "running_mean", c, dtype)
    running_var = running_stat(bn_param, "running_var", c, dtype)
    out = np.empty(flat.shape, dtype)
    cache = None
    kernels = get_backend()
    if mode == "train":
        xhat, inv_std = np.empty(flat.shape, dtype), np.empty(c, dtype)
        kernels.spatial_batchnorm_train_forward(flat, g, b, eps, momentum, running_mean, running_var, out, xhat,
                                                inv_std)
        cache = SpatialNormCache(xhat, g, inv_std, x_.shape)
    elif mode == "test":
        kernels.spatial_batchnorm_eval_forward(flat, g, b, running_mean, running_var, eps, out)
    else:
        raise ValueError(f'Invalid forward batchnorm mode "{mode}"')
    bn_param["running_mean"], bn_param["running_var"] = running_mean, running_var
    return out.reshape(x_.shape), cache


def spatial_batchnorm_backward(dout: np.ndarray, cache: SpatialNormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of train-mode spatial batchnorm: dout (N, C, H, W) -> dx (N, C, H, W), dgamma (C,), dbeta (C,)."""
    if cache is None:
        raise ValueError("no cache: backward needs a forward pass in 'train' mode")
    xhat, gamma, inv_std, shape = cache
    d = as_float(dout, xhat.dtype).reshape(xhat.shape)
    dx = np.empty(xhat.shape, xhat.dtype)
    dgamma, dbeta = np.empty(gamma.shape, xhat.dtype), np.empty(gamma.shape, xhat.dtype)
    get_backend().spatial_batchnorm_backward(d, xhat, gamma, inv_std, dx, dgamma, dbeta)
    return dx.reshape(shape), dgamma, dbeta


conv_forward = conv_forward_fast = conv_forward_naive
conv_backward = conv_backward_fast = conv_backward_naive
max_pool_forward = max_pool_forward_fast = max_pool_forward_naive
max_pool_backward = max_pool_backward_fast = max_pool_backward_naive
