"""Example inputs for every kernel: one table, used by warmup, tests and benchmarks.

``example_args(name, dtype, shape)`` returns fresh arguments for kernel
`name`: random inputs (seeded), consistent saved tensors for backward
kernels (xhat, inv_std, P, Y, mask) and output arrays. 2-D kernels take
shape = (N, D); flat kernels (optimizers, l2_penalty, sum_squares) use a
1-D buffer of prod(shape) elements; elementwise kernels take any shape.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .activations import act_forward_numpy
from .codes import RELU
from .dropout import dropout_forward_numpy, fill_uniform
from .norm import batchnorm_train_forward_numpy, layernorm_forward_numpy
from .softmax import softmax_forward_numpy
from .spatial_norm import spatial_batchnorm_train_forward_numpy

Factory = Callable[[np.random.Generator, np.dtype, tuple[int, ...], int], tuple[Any, ...]]


@dataclass(frozen=True)
class Example:
    """How to build a kernel's arguments, and which of them are what."""

    make: Factory
    outputs: tuple[int, ...] = ()  # arguments that are fully overwritten
    aliases: tuple[tuple[int, int], ...] = ()  # (output, input) pairs that may be one array
    flat: bool = False  # 1-D flat buffers
    any_shape: bool = False  # elementwise: any number of dimensions
    act_arg: int | None = None  # position of the activation code


def _randn(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(dtype)


def _uniform(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype, lo: float, hi: float) -> np.ndarray:
    return rng.uniform(lo, hi, shape).astype(dtype)


def _labels(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(0, shape[1], shape[0]).astype(np.int64)


def _act_output(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype, act: int) -> np.ndarray:
    y = _randn(rng, shape, dtype, 2.0)
    act_forward_numpy(y, act, 0.1, y)
    return y


def _softmax_of_random(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    p = _randn(rng, shape, dtype, 2.0)
    softmax_forward_numpy(p, p)
    return p


def _bn_saved(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    n, d = shape
    x = _randn(rng, shape, dtype, 2.0) + dtype.type(0.5)
    xhat, inv_std = np.empty(shape, dtype), np.empty(d, dtype)
    batchnorm_train_forward_numpy(
        x, np.ones(d, dtype), np.zeros(d, dtype), 1e-5, 0.9,
        np.zeros(d, dtype), np.ones(d, dtype), np.empty(shape, dtype), xhat, inv_std,
    )
    return xhat, inv_std


def _ln_saved(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    n, d = shape
    x = _randn(rng, shape, dtype, 2.0) + dtype.type(0.5)
    xhat, inv_std = np.empty(shape, dtype), np.empty(n, dtype)
    layernorm_forward_numpy(x, np.ones(d, dtype), np.zeros(d, dtype), 1e-5, np.empty(shape, dtype), xhat, inv_std)
    return xhat, inv_std


def _uniforms(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    mask = np.empty(shape, dtype)
    fill_uniform(rng, mask)
    return mask


def _dropout_mask(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    mask = _uniforms(rng, shape, dtype)
    dropout_forward_numpy(np.zeros(shape, dtype), 0.3, mask, np.empty(shape, dtype))
    return mask


def _e(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    return np.empty(shape, dtype)


def _norm_backward_args(saved: Callable, r: np.random.Generator, t: np.dtype, s: tuple[int, ...]) -> tuple:
    dY = _randn(r, s, t)
    xhat, inv_std = saved(r, s, t)
    v = s[1:2]  # (D,) of (N, D); (C,) of images (N, C, S)
    return dY, xhat, _randn(r, v, t), inv_std, _e(s, t), _e(v, t), _e(v, t)


# Images for the conv and pooling kernels: shape (N, D) -> X (N, 2, 3, D + 1).
# conv: a 2x3 kernel, stride (1, 2), padding (1, 1) -> (4, D // 2 + 1) outputs;
# pooling: a 2x2 window, stride (2, 1), padding (1, 1) -> (2, D + 2) outputs.
CONV_GEOMETRY = (2, 3, 1, 2, 1, 1)  # kh, kw, sh, sw, ph, pw
POOL_GEOMETRY = (2, 2, 2, 1, 1, 1)


def _image(s: tuple[int, ...]) -> tuple[int, int, int, int]:
    return (s[0], 2, 3, s[1] + 1)


def _conv_cols(s: tuple[int, ...]) -> tuple[int, int, int, int]:
    return (s[0], 4, s[1] // 2 + 1, 2 * 2 * 3)


def _pooled(s: tuple[int, ...]) -> tuple[int, int, int, int]:
    return (s[0], 2, 2, s[1] + 2)


def _windowed(source: Callable, geometry: tuple[int, ...], target: Callable) -> Example:
    """A kernel of arguments (input, *geometry, output): input of shape source(s), output
    of shape target(s), fully overwritten."""
    return Example(
        lambda r, t, s, a: (_randn(r, source(s), t), *geometry, _e(target(s), t)),
        outputs=(len(geometry) + 1,),
    )


def _spatial_bn_saved(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> tuple:
    x = _randn(rng, shape, dtype, 2.0) + dtype.type(0.5)
    c = shape[1]
    xhat, inv_std = np.empty(shape, dtype), np.empty(c, dtype)
    spatial_batchnorm_train_forward_numpy(
        x, np.ones(c, dtype), np.zeros(c, dtype), 1e-5, 0.9,
        np.zeros(c, dtype), np.ones(c, dtype), np.empty(shape, dtype), xhat, inv_std,
    )
    return xhat, inv_std


def _augment_draws(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """flip (N,) in {0, 1}, dy and dx (N,) in [-4, 4]: int64 draws for flip_shift_images."""
    return rng.integers(0, 2, n), rng.integers(-4, 5, n), rng.integers(-4, 5, n)


def _channels(s: tuple[int, ...]) -> tuple[int, int, int]:
    """(N, D) -> (N, 3, D): three channels of D positions."""
    return (s[0], 3, s[1])


EXAMPLES: dict[str, Example] = {
    "bias_act_forward": Example(
        lambda r, t, s, a: (_randn(r, s, t, 2.0), _randn(r, s[1:], t), a, 0.1),
        act_arg=2,
    ),
    "act_bias_backward": Example(
        lambda r, t, s, a: (_randn(r, s, t), _act_output(r, s, t, a), a, 0.1, _e(s, t), _e(s[1:], t)),
        outputs=(4, 5), aliases=((4, 0),), act_arg=2,
    ),
    "affine_small_forward": Example(  # X (N, D) @ W (D, 5) + b (5,) -> Y (N, 5)
        lambda r, t, s, a: (_randn(r, s, t), _randn(r, (s[1], 5), t, 0.5), _randn(r, (5,), t), a, 0.1,
                            _e((s[0], 5), t)),
        outputs=(5,), act_arg=3,
    ),
    "affine_packed_forward": Example(  # X (N, D) @ WT (7, D).T + b (7,) -> Y (N, 7)
        lambda r, t, s, a: (_randn(r, s, t), _randn(r, (7, s[1]), t, 0.5), _randn(r, (7,), t), a, 0.1,
                            _e((s[0], 7), t)),
        outputs=(5,), act_arg=3,
    ),
    "affine_packed_forward_columns": Example(  # all 7 columns: lo = 0, hi = 7
        lambda r, t, s, a: (_randn(r, s, t), _randn(r, (7, s[1]), t, 0.5), _randn(r, (7,), t), a, 0.1,
                            _e((s[0], 7), t), 0, 7),
        outputs=(5,), act_arg=3,
    ),
    "act_forward": Example(
        lambda r, t, s, a: (_randn(r, s, t, 3.0), a, 0.1, _e(s, t)),
        outputs=(3,), aliases=((3, 0),), act_arg=1, any_shape=True,
    ),
    "act_backward": Example(
        lambda r, t, s, a: (_randn(r, s, t), _act_output(r, s, t, a), a, 0.1, _e(s, t)),
        outputs=(4,), aliases=((4, 0),), act_arg=2, any_shape=True,
    ),
    "softmax_forward": Example(
        lambda r, t, s, a: (_randn(r, s, t, 3.0), _e(s, t)),
        outputs=(1,), aliases=((1, 0),),
    ),
    "softmax_backward": Example(
        lambda r, t, s, a: (_randn(r, s, t), _softmax_of_random(r, s, t), _e(s, t)),
        outputs=(2,), aliases=((2, 0),),
    ),
    "softmax_cross_entropy": Example(
        lambda r, t, s, a: (_randn(r, s, t, 3.0), _labels(r, s), _e(s, t)),
        outputs=(2,),
    ),
    "cross_entropy": Example(
        lambda r, t, s, a: (_softmax_of_random(r, s, t), _labels(r, s), _e(s, t)),
        outputs=(2,),
    ),
    "svm_loss": Example(
        lambda r, t, s, a: (_randn(r, s, t, 2.0), _labels(r, s), _e(s, t)),
        outputs=(2,),
    ),
    "mse_loss": Example(
        lambda r, t, s, a: (_randn(r, s, t), _randn(r, s, t), _e(s, t)),
        outputs=(2,), any_shape=True,
    ),
    "sigmoid_bce_loss": Example(
        lambda r, t, s, a: (_randn(r, s, t, 3.0), _uniform(r, s, t, 0.0, 1.0), _e(s, t)),
        outputs=(2,), any_shape=True,
    ),
    "mae_loss": Example(
        lambda r, t, s, a: (_randn(r, s, t), _randn(r, s, t), _e(s, t)),
        outputs=(2,), any_shape=True,
    ),
    "huber_loss": Example(  # differences of both sides of delta
        lambda r, t, s, a: (_randn(r, s, t, 2.0), _randn(r, s, t), 1.5, _e(s, t)),
        outputs=(3,), any_shape=True,
    ),
    "weighted_softmax_cross_entropy": Example(
        lambda r, t, s, a: (_randn(r, s, t, 3.0), _labels(r, s), _uniform(r, s[1:], t, 0.5, 2.0), _e(s, t)),
        outputs=(3,),
    ),
    "weighted_sigmoid_bce_loss": Example(
        lambda r, t, s, a: (_randn(r, s, t, 3.0), _uniform(r, s, t, 0.0, 1.0), _uniform(r, (2,), t, 0.5, 4.0),
                            _e(s, t)),
        outputs=(3,), any_shape=True,
    ),
    "batchnorm_train_forward": Example(
        lambda r, t, s, a: (
            _randn(r, s, t, 2.0) + t.type(1.0), _randn(r, s[1:], t), _randn(r, s[1:], t), 1e-5, 0.9,
            _randn(r, s[1:], t, 0.1), _uniform(r, s[1:], t, 0.5, 1.5), _e(s, t), _e(s, t), _e(s[1:], t),
        ),
        outputs=(7, 8, 9), aliases=((7, 0),),
    ),
    "batchnorm_eval_forward": Example(
        lambda r, t, s, a: (
            _randn(r, s, t, 2.0), _randn(r, s[1:], t), _randn(r, s[1:], t),
            _randn(r, s[1:], t, 0.1), _uniform(r, s[1:], t, 0.5, 1.5), 1e-5, _e(s, t),
        ),
        outputs=(6,), aliases=((6, 0),),
    ),
    "batchnorm_backward": Example(
        lambda r, t, s, a: _norm_backward_args(_bn_saved, r, t, s),
        outputs=(4, 5, 6), aliases=((4, 0),),
    ),
    "layernorm_forward": Example(
        lambda r, t, s, a: (
            _randn(r, s, t, 2.0) + t.type(1.0), _randn(r, s[1:], t), _randn(r, s[1:], t), 1e-5,
            _e(s, t), _e(s, t), _e(s[:1], t),
        ),
        outputs=(4, 5, 6), aliases=((4, 0),),
    ),
    "layernorm_backward": Example(
        lambda r, t, s, a: _norm_backward_args(_ln_saved, r, t, s),
        outputs=(4, 5, 6), aliases=((4, 0),),
    ),
    "im2col": _windowed(_image, CONV_GEOMETRY, _conv_cols),
    "col2im": _windowed(_conv_cols, CONV_GEOMETRY, _image),
    "channel_bias_act_forward": Example(  # Z (N, D, 3) -> Y (N, 3, D)
        lambda r, t, s, a: (_randn(r, (*s, 3), t, 2.0), _randn(r, (3,), t), a, 0.1, _e(_channels(s), t)),
        outputs=(4,), act_arg=2,
    ),
    "act_channel_bias_backward": Example(
        lambda r, t, s, a: (_randn(r, _channels(s), t), _act_output(r, _channels(s), t, a), a, 0.1,
                            _e((*s, 3), t), _e((3,), t)),
        outputs=(4, 5), act_arg=2,
    ),
    "max_pool_forward": _windowed(_image, POOL_GEOMETRY, _pooled),
    "max_pool_backward": Example(
        lambda r, t, s, a: (_randn(r, _pooled(s), t), _randn(r, _image(s), t), *POOL_GEOMETRY, _e(_image(s), t)),
        outputs=(8,),
    ),
    "avg_pool_forward": _windowed(_image, POOL_GEOMETRY, _pooled),
    "avg_pool_backward": _windowed(_pooled, POOL_GEOMETRY, _image),
    "global_avg_pool_forward": Example(
        lambda r, t, s, a: (_randn(r, _channels(s), t), _e((s[0], 3), t)),
        outputs=(1,),
    ),
    "global_avg_pool_backward": Example(
        lambda r, t, s, a: (_randn(r, (s[0], 3), t), _e(_channels(s), t)),
        outputs=(1,),
    ),
    "spatial_batchnorm_train_forward": Example(
        lambda r, t, s, a: (
            _randn(r, _channels(s), t, 2.0) + t.type(1.0), _randn(r, (3,), t), _randn(r, (3,), t), 1e-5, 0.9,
            _randn(r, (3,), t, 0.1), _uniform(r, (3,), t, 0.5, 1.5), _e(_channels(s), t), _e(_channels(s), t),
            _e((3,), t),
        ),
        outputs=(7, 8, 9), aliases=((7, 0),),
    ),
    "spatial_batchnorm_eval_forward": Example(
        lambda r, t, s, a: (
            _randn(r, _channels(s), t, 2.0), _randn(r, (3,), t), _randn(r, (3,), t),
            _randn(r, (3,), t, 0.1), _uniform(r, (3,), t, 0.5, 1.5), 1e-5, _e(_channels(s), t),
        ),
        outputs=(6,), aliases=((6, 0),),
    ),
    "spatial_batchnorm_backward": Example(
        lambda r, t, s, a: _norm_backward_args(_spatial_bn_saved, r, t, _channels(s)),
        outputs=(4, 5, 6), aliases=((4, 0),),
    ),
    "dropout_forward": Example(
        lambda r, t, s, a: (_randn(r, s, t), 0.3, _uniforms(r, s, t), _e(s, t)),
        outputs=(3,), aliases=((3, 0),), any_shape=True,
    ),
    "dropout_backward": Example(
        lambda r, t, s, a: (_randn(r, s, t), _dropout_mask(r, s, t), _e(s, t)),
        outputs=(2,), aliases=((2, 0),), any_shape=True,
    ),
    "flip_shift_images": Example(  # X (N, 2, 3, D + 1), shifts past the image's edges too
        lambda r, t, s, a: (_randn(r, _image(s), t), *_augment_draws(r, s[0]), _e(_image(s), t)),
        outputs=(4,),
    ),
    "add": Example(
        lambda r, t, s, a: (_randn(r, s, t), _randn(r, s, t), _e(s, t)),
        outputs=(2,), aliases=((2, 0), (2, 1)), any_shape=True,
    ),
    "add_into": Example(lambda r, t, s, a: (_randn(r, s, t), _randn(r, s, t)), any_shape=True),
    "copy_into": Example(lambda r, t, s, a: (_e(s, t), _randn(r, s, t)), outputs=(0,), any_shape=True),
    "l2_penalty": Example(lambda r, t, s, a: (_randn(r, s, t), _randn(r, s, t), 0.1), flat=True),
    "sum_squares": Example(lambda r, t, s, a: (_randn(r, s, t),), flat=True),
    "scale_inplace": Example(lambda r, t, s, a: (_randn(r, s, t), 0.7), any_shape=True),
    "all_finite": Example(lambda r, t, s, a: (_randn(r, s, t),), any_shape=True),
    "sgd_update": Example(lambda r, t, s, a: (_randn(r, s, t), _randn(r, s, t), 0.01), flat=True),
    "momentum_update": Example(
        lambda r, t, s, a: (_randn(r, s, t), _randn(r, s, t), _randn(r, s, t, 0.1), 0.01, 0.9), flat=True
    ),
    "nesterov_update": Example(
        lambda r, t, s, a: (_randn(r, s, t), _randn(r, s, t), _randn(r, s, t, 0.1), 0.01, 0.9), flat=True
    ),
    "rmsprop_update": Example(
        lambda r, t, s, a: (_randn(r, s, t), _randn(r, s, t), _uniform(r, s, t, 0.0, 1.0), 0.01, 0.99, 1e-8),
        flat=True,
    ),
    "adam_update": Example(
        lambda r, t, s, a: (
            _randn(r, s, t), _randn(r, s, t), _randn(r, s, t, 0.1), _uniform(r, s, t, 0.0, 0.01),
            1e-3, 0.9, 0.999, 1e-8, 3,
        ),
        flat=True,
    ),
    "adamw_update": Example(
        lambda r, t, s, a: (
            _randn(r, s, t), _randn(r, s, t), _randn(r, s, t, 0.1), _uniform(r, s, t, 0.0, 0.01),
            1e-3, 0.9, 0.999, 1e-8, 0.01, 3,
        ),
        flat=True,
    ),
}


def example_args(
    name: str,
    dtype: np.dtype | type | str = np.float32,
    shape: tuple[int, ...] = (2, 3),
    seed: int = 0,
    act: int = RELU,
) -> tuple[Any, ...]:
    """Fresh arguments for kernel `name` (see the module docstring)."""
    example = EXAMPLES[name]
    dtype = np.dtype(dtype)
    if example.flat:
        shape = (math.prod(shape),)
    elif len(shape) != 2 and not example.any_shape:
        raise ValueError(f"{name} takes 2-D arrays: give shape=(N, D), not {shape}")
    return example.make(np.random.default_rng(seed), dtype, tuple(shape), act)
