"""Inverted dropout (numba + NumPy twins).

The random numbers come from the caller: ``fill_uniform(gen, mask)`` fills
the mask with uniforms in [0, 1) from a seeded numpy Generator; the kernels
are deterministic, so both twins give identical results.
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel
from ._jitmath import flat_operands
from ._workspace import const, scratch


def fill_uniform(gen: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """Fill `mask` (float32 or float64, C-contiguous) with uniforms in [0, 1), in place."""
    return gen.random(out=mask, dtype=mask.dtype)


@kernel
def dropout_forward_numba(X, rate, mask, out):  # noqa: ANN001, ANN201
    x, m, o = flat_operands(X, mask, out, "dropout_forward: X, mask and out must have one shape")
    f = X.dtype.type
    r = f(rate)
    keep = f(1) / (f(1) - r)
    zero = f(0)
    for i in range(x.size):
        k = keep if m[i] >= r else zero
        m[i] = k
        o[i] = x[i] * k


def dropout_forward_numpy(X: np.ndarray, rate: float, mask: np.ndarray, out: np.ndarray) -> None:
    """Inverted dropout of X (any shape); rate = probability of dropping.

    On entry mask holds uniforms in [0, 1); on exit mask = 1/(1-rate) where
    uniform >= rate else 0, and out = X * mask (out may alias X).
    """
    t = X.dtype
    r = const("dropout.rate", rate, t)
    one = const("one", 1, t)
    scale = const("dropout.scale", 0, t)
    np.subtract(one, r, out=scale)
    np.divide(one, scale, out=scale)  # 1 / (1 - rate), rounded as in numba
    kept = scratch("dropout_forward.kept", X.shape, np.bool_)
    np.greater_equal(mask, r, out=kept)
    np.copyto(mask, kept)
    np.multiply(mask, scale, out=mask)
    np.multiply(X, mask, out=out)
dropout_forward_numba.__doc__ = dropout_forward_numpy.__doc__


@kernel
def dropout_backward_numba(dY, mask, dX):  # noqa: ANN001, ANN201
    dy, m, dx = flat_operands(dY, mask, dX, "dropout_backward: dY, mask and dX must have one shape")
    for i in range(dy.size):
        dx[i] = dy[i] * m[i]


def dropout_backward_numpy(dY: np.ndarray, mask: np.ndarray, dX: np.ndarray) -> None:
    """dX = dY * mask (any shape); dX may alias dY."""
    np.multiply(dY, mask, out=dX)


dropout_backward_numba.__doc__ = dropout_backward_numpy.__doc__
