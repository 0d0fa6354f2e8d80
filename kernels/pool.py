"""Pooling over images, forward and backward (numba + NumPy twins).

Images are (N, C, H, W); a window of kh x kw moves by (sh, sw) over the input padded
by ph rows on top and pw columns on the left (the bottom/right padding follows from
the output's size, as in kernels/conv.py). Max pooling ignores the padding (and its
backward finds each window's first maximum again from X, so nothing is saved between
the passes); average pooling counts it as zeros (divides by kh*kw, as PyTorch's
default count_include_pad=True). Global average pooling averages each channel over
all positions: X (N, C, S) -> Y (N, C).
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel, nogil_kernel
from ._workspace import const, scratch
from .conv import window_bounds, window_offsets, windows_inside_jit, zero_plane


@nogil_kernel
def max_pool_forward_numba(X, kh, kw, sh, sw, ph, pw, Y):  # noqa: ANN001, ANN201
    n, c, h, w = X.shape
    oh, ow = Y.shape[2], Y.shape[3]
    if Y.shape[0] != n or Y.shape[1] != c:
        raise ValueError("max_pool_forward: X (N, C, H, W), Y (N, C, OH, OW)")
    # without padding every window lies inside X: no clipping of the window bounds
    inside = windows_inside_jit(h, w, oh, ow, kh, kw, sh, sw, ph, pw)
    for b in range(n):
        for ci in range(c):
            plane = X[b, ci]
            for oy in range(oh):
                y_lo, y_hi = window_bounds(oy, sh, ph, kh, h, inside)
                for ox in range(ow):
                    x_lo, x_hi = window_bounds(ox, sw, pw, kw, w, inside)
                    best = plane[y_lo, x_lo]
                    for y in range(y_lo, y_hi):
                        for x in range(x_lo, x_hi):
                            v = plane[y, x]
                            if v > best or v != v:
                                best = v
                    Y[b, ci, oy, ox] = best


def max_pool_forward_numpy(X: np.ndarray, kh: int, kw: int, sh: int, sw: int, ph: int, pw: int,
                           Y: np.ndarray) -> None:
    """Y[n, c, oy, ox] = max of X[n, c] over the window at (oy*sh - ph, ox*sw - pw) of kh x kw,
    the padding left out (NaN wins). X: (N, C, H, W); Y: (N, C, OH, OW)."""
    Y.fill(-np.inf)
    for _, _, oy, y, ox, x in window_offsets(*X.shape[2:], *Y.shape[2:], kh, kw, sh, sw, ph, pw):
        target = Y[:, :, oy, ox]
        np.fmax(target, X[:, :, y, x], out=target)
        _keep_nan(target, X[:, :, y, x])


def _keep_nan(target: np.ndarray, values: np.ndarray) -> None:
    """target = NaN where values is NaN (fmax skipped it)."""
    np.copyto(target, values, where=np.isnan(values, out=scratch("pool.nan", values.shape, np.bool_)))


max_pool_forward_numba.__doc__ = max_pool_forward_numpy.__doc__


@nogil_kernel
def max_pool_backward_numba(dY, X, kh, kw, sh, sw, ph, pw, dX):  # noqa: ANN001, ANN201
    n, c, h, w = X.shape
    oh, ow = dY.shape[2], dY.shape[3]
    if dY.shape[0] != n or dY.shape[1] != c or dX.shape != X.shape:
        raise ValueError("max_pool_backward: dY (N, C, OH, OW), X and dX (N, C, H, W)")
    inside = windows_inside_jit(h, w, oh, ow, kh, kw, sh, sw, ph, pw)
    for b in range(n):
        for ci in range(c):
            plane, grad = X[b, ci], dX[b, ci]
            zero_plane(grad)
            for oy in range(oh):
                y_lo, y_hi = window_bounds(oy, sh, ph, kh, h, inside)
                for ox in range(ow):
                    x_lo, x_hi = window_bounds(ox, sw, pw, kw, w, inside)
                    best = -np.inf
                    by, bx = -1, -1
                    for y in range(y_lo, y_hi):
                        for x in range(x_lo, x_hi):
                            v = plane[y, x]
                            if v > best:
                                best = v
                                by, bx = y, x
                    if by >= 0:
                        grad[by, bx] += dY[b, ci, oy, ox]


def max_pool_backward_numpy(dY: np.ndarray, X: np.ndarray, kh: int, kw: int, sh: int, sw: int, ph: int, pw: int,
                            dX: np.ndarray) -> None:
    """dX = dY routed to each window's maximum of X (the first one in row-major order on ties,
    found again from X; a window of NaN or -inf only passes nothing on). dY: (N, C, OH, OW); X, dX: (N, C, H, W), dX overwritten."""
    n, c, oh, ow = dY.shape
    h, w = X.shape[2], X.shape[3]
    best = scratch("max_pool_backward.best", dY.shape, X.dtype)
    where = scratch("max_pool_backward.where", dY.shape, np.int64)
    better = scratch("max_pool_backward.better", dY.shape, np.bool_)
    value = scratch("max_pool_backward.value", dY.shape, X.dtype)
    best.fill(-np.inf)
    where.fill(-1)
    for i, j, oy, y, ox, x in window_offsets(h, w, oh, ow, kh, kw, sh, sw, ph, pw):
        value.fill(-np.inf)  # this offset's input for every window; -inf in the padding
        np.copyto(value[:, :, oy, ox], X[:, :, y, x])
        np.greater(value, best, out=better)  # strictly: the first maximum keeps its place
        np.copyto(best, value, where=better)
        np.copyto(where, const("max_pool_backward.offset", i * kw + j, np.int64), where=better)
    dX.fill(0)
    # scatter dY into the chosen positions, one kernel offset at a time (no window overlaps itself)
    for i, j, oy, y, ox, x in window_offsets(h, w, oh, ow, kh, kw, sh, sw, ph, pw):
        chosen = np.equal(where[:, :, oy, ox], const("max_pool_backward.offset", i * kw + j, np.int64),
                          out=scratch("max_pool_backward.chosen", where[:, :, oy, ox].shape, np.bool_))
        target = dX[:, :, y, x]
        np.add(target, dY[:, :, oy, ox], out=target, where=chosen)


max_pool_backward_numba.__doc__ = max_pool_backward_numpy.__doc__


@nogil_kernel
def avg_pool_forward_numba(X, kh, kw, sh, sw, ph, pw, Y):  # noqa: ANN001, ANN201
    n, c, h, w = X.shape
    oh, ow = Y.shape[2], Y.shape[3]
    if Y.shape[0] != n or Y.shape[1] != c:
        raise ValueError("avg_pool_forward: X (N, C, H, W), Y (N, C, OH, OW)")
    scale = X.dtype.type(1.0 / (kh * kw))
    inside = windows_inside_jit(h, w, oh, ow, kh, kw, sh, sw, ph, pw)
    for b in range(n):
        for ci in range(c):
            for oy in range(oh):
                y_lo, y_hi = window_bounds(oy, sh, ph, kh, h, inside)
                for ox in range(ow):
                    x_lo, x_hi = window_bounds(ox, sw, pw, kw, w, inside)
                    s = X.dtype.type(0)
                    for y in range(y_lo, y_hi):
                        for x in range(x_lo, x_hi):
                            s += X[b, ci, y, x]
                    Y[b, ci, oy, ox] = s * scale


def avg_pool_forward_numpy(X: np.ndarray, kh: int, kw: int, sh: int, sw: int, ph: int, pw: int,
                           Y: np.ndarray) -> None:
    """Y[n, c, oy, ox] = the sum of X[n, c] over the window at (oy*sh - ph, ox*sw - pw),
    divided by kh*kw (the padding counts as zeros). X: (N, C, H, W); Y: (N, C, OH, OW)."""
    Y.fill(0)
    for _, _, oy, y, ox, x in window_offsets(*X.shape[2:], *Y.shape[2:], kh, kw, sh, sw, ph, pw):
        target = Y[:, :, oy, ox]
        np.add(target, X[:, :, y, x], out=target)
    np.multiply(Y, const("avg_pool.scale", 1.0 / (kh * kw), Y.dtype), out=Y)


avg_pool_forward_numba.__doc__ = avg_pool_forward_numpy.__doc__


@nogil_kernel
def avg_pool_backward_numba(dY, kh, kw, sh, sw, ph, pw, dX):  # noqa: ANN001, ANN201
    n, c, h, w = dX.shape
    oh, ow = dY.shape[2], dY.shape[3]
    if dY.shape[0] != n or dY.shape[1] != c:
        raise ValueError("avg_pool_backward: dY (N, C, OH, OW), dX (N, C, H, W)")
    scale = dY.dtype.type(1.0 / (kh * kw))
    inside = windows_inside_jit(h, w, oh, ow, kh, kw, sh, sw, ph, pw)
    for b in range(n):
        for ci in range(c):
            zero_plane(dX[b, ci])
            for oy in range(oh):
                y_lo, y_hi = window_bounds(oy, sh, ph, kh, h, inside)
                for ox in range(ow):
                    x_lo, x_hi = window_bounds(ox, sw, pw, kw, w, inside)
                    g = dY[b, ci, oy, ox] * scale
                    for y in range(y_lo, y_hi):
                        for x in range(x_lo, x_hi):
                            dX[b, ci, y, x] += g


def avg_pool_backward_numpy(dY: np.ndarray, kh: int, kw: int, sh: int, sw: int, ph: int, pw: int,
                            dX: np.ndarray) -> None:
    """dX = each window's dY / (kh*kw) spread over the window's input positions (the adjoint of
    avg_pool_forward). dY: (N, C, OH, OW); dX: (N, C, H, W), overwritten."""
    dX.fill(0)
    for _, _, oy, y, ox, x in window_offsets(*dX.shape[2:], *dY.shape[2:], kh, kw, sh, sw, ph, pw):
        target = dX[:, :, y, x]
        np.add(target, dY[:, :, oy, ox], out=target)
    np.multiply(dX, const("avg_pool.scale", 1.0 / (kh * kw), dX.dtype), out=dX)


avg_pool_backward_numba.__doc__ = avg_pool_backward_numpy.__doc__


@kernel
def global_avg_pool_forward_numba(X, Y):  # noqa: ANN001, ANN201
    n, c, s = X.shape
    if Y.shape[0] != n or Y.shape[1] != c:
        raise ValueError("global_avg_pool_forward: X (N, C, S), Y (N, C)")
    scale = 1.0 / max(s, 1)
    for b in range(n):
        for ci in range(c):
            total = 0.0
            for q in range(s):
                total += X[b, ci, q]
            Y[b, ci] = total * scale


def global_avg_pool_forward_numpy(X: np.ndarray, Y: np.ndarray) -> None:
    """Y[n, c] = the mean of X[n, c, :] (summed in float64). X: (N, C, S); Y: (N, C)."""
    total = scratch("global_avg_pool_forward.total", Y.shape, np.float64)
    np.add.reduce(X, axis=2, dtype=np.float64, out=total)
    np.multiply(total, const("global_avg_pool.scale", 1.0 / max(X.shape[2], 1), np.float64), out=total)
    np.copyto(Y, total, casting="same_kind")


global_avg_pool_forward_numba.__doc__ = global_avg_pool_forward_numpy.__doc__


@kernel
def global_avg_pool_backward_numba(dY, dX):  # noqa: ANN001, ANN201
    n, c, s = dX.shape
    if dY.shape[0] != n or dY.shape[1] != c:
        raise ValueError("global_avg_pool_backward: dY (N, C), dX (N, C, S)")
    scale = dY.dtype.type(1.0 / max(s, 1))
    for b in range(n):
        for ci in range(c):
            g = dY[b, ci] * scale
            for q in range(s):
                dX[b, ci, q] = g


def global_avg_pool_backward_numpy(dY: np.ndarray, dX: np.ndarray) -> None:
    """dX[n, c, :] = dY[n, c] / S. dY: (N, C); dX: (N, C, S), overwritten."""
    np.multiply(dY[:, :, None], const("global_avg_pool.scale", 1.0 / max(dX.shape[2], 1), dY.dtype), out=dX)


global_avg_pool_backward_numba.__doc__ = global_avg_pool_backward_numpy.__doc__
