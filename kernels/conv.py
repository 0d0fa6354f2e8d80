"""Convolution as im2col + GEMM: the patch gathering, its adjoint, and the transposing
bias + activation epilogues (numba + NumPy twins).

A convolution of X (N, C, H, W) with W (F, C, kh, kw) runs as

    im2col(X, ...) -> cols (N, OH, OW, C*kh*kw)           one row per output position
    Z = cols.reshape(N*OH*OW, K) @ W.reshape(F, K).T       one BLAS GEMM (the plan's)
    channel_bias_act_forward(Z, b, ...) -> Y (N, F, OH*OW)  transposed to channels first,
                                                            bias and activation fused

and backward as act_channel_bias_backward (dY -> dZ (N, OH*OW, F), db), two GEMMs
(dW = dZ.T @ cols, dcols = dZ @ W) and col2im (dcols -> dX, the adjoint of im2col).

Why im2col + GEMM: measured on this machine (2 cores, Zen 5, OpenBLAS SkylakeX
kernels, the 32 -> 64 channel 3x3 convolution of the Fashion CNN on 14x14 images at
batch 128, float32, interleaved in one process): the im2col gather + one sgemm +
the transposing epilogue took 81 ms against 877 ms for a direct numba loop nest
and 975 ms for a batched (N, F, K) @ (N, K, P) matmul per example (numpy's stacked
matmul does not reach BLAS' speed at these sizes); the GEMM alone took 31 ms. The
FLOPs stay in BLAS, the gather is a streaming copy, and every other step is
O(N*F*P). Winograd F(2x2, 3x3) would cut the GEMM's multiply-adds by 2.25x for 3x3
kernels at stride 1 only, at the cost of four transforms per tile and a less
accurate result; at these channel counts the transforms are as costly as the saved
GEMM work, so it was not pursued.

Padding is given as the top/left pads (ph, pw); the output size comes from the
arrays (cols' OH, OW), so asymmetric ("same" with an even kernel) padding needs no
extra argument: positions outside the image read zeros.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from ._jit import helper, nogil_kernel
from ._jitmath import (
    leaky_relu_,
    leaky_relu_grad_,
    relu_,
    relu_grad_,
    sigmoid_,
    sigmoid_grad_,
    tanh_,
    tanh_grad_,
)
from ._workspace import scratch
from .activations import act_backward_numpy, act_forward_numpy
from .codes import IDENTITY, LEAKY_RELU, RELU, SIGMOID, TANH


@nogil_kernel
def im2col_numba(X, kh, kw, sh, sw, ph, pw, cols):  # noqa: ANN001, ANN201
    n, c, h, w = X.shape
    oh, ow = cols.shape[1], cols.shape[2]
    if cols.shape[0] != n or cols.shape[3] != c * kh * kw:
        raise ValueError("im2col: X (N, C, H, W), cols (N, OH, OW, C*kh*kw)")
    zero = X.dtype.type(0)
    # one kernel row i of one channel at a time: the input row it reads is fixed (or padding)
    for b in range(n):
        for oy in range(oh):
            for i in range(kh):
                y = oy * sh - ph + i
                for ci in range(c):
                    q = (ci * kh + i) * kw
                    if y < 0 or y >= h:
                        for ox in range(ow):
                            for j in range(kw):
                                cols[b, oy, ox, q + j] = zero
                        continue
                    row = X[b, ci, y]
                    for ox in range(ow):
                        x0 = ox * sw - pw
                        if x0 >= 0 and x0 + kw <= w:
                            for j in range(kw):
                                cols[b, oy, ox, q + j] = row[x0 + j]
                        else:
                            for j in range(kw):
                                x = x0 + j
                                cols[b, oy, ox, q + j] = row[x] if 0 <= x < w else zero


def window_slices(size: int, out: int, stride: int, pad: int, offset: int) -> tuple[slice, slice] | None:
    """For kernel offset `offset`: (output positions, input positions) that fall inside the
    input, as slices (the outputs reading position o*stride + offset - pad); None when none do."""
    first = max(0, -(-(pad - offset) // stride))  # smallest o with o*stride + offset - pad >= 0
    last = min(out - 1, (size - 1 + pad - offset) // stride)  # largest o inside the input
    if last < first:
        return None
    start = first * stride + offset - pad
    return slice(first, last + 1), slice(start, start + (last - first) * stride + 1, stride)


def window_offsets(h: int, w: int, oh: int, ow: int, kh: int, kw: int, sh: int, sw: int, ph: int,
                   pw: int) -> Iterator[tuple[int, int, slice, slice, slice, slice]]:
    """The kernel offsets (i, j) at which some window reads the (h, w) input, each as
    (i, j, oy, y, ox, x): the output rows oy and columns ox whose window reads input row
    oy*sh + i - ph and column ox*sw + j - pw, and those input rows y and columns x, as
    slices (window_slices of both axes; offsets that read only padding are skipped)."""
    for i in range(kh):
        rows = window_slices(h, oh, sh, ph, i)
        if rows is None:
            continue
        for j in range(kw):
            columns = window_slices(w, ow, sw, pw, j)
            if columns is not None:
                yield i, j, rows[0], rows[1], columns[0], columns[1]


def windows_inside(h: int, w: int, oh: int, ow: int, kh: int, kw: int, sh: int, sw: int, ph: int,
                   pw: int) -> bool:
    """Whether every kh x kw window of an (oh, ow) output lies inside the (h, w) input (no padding read)."""
    return ph == 0 and pw == 0 and (oh - 1) * sh + kh <= h and (ow - 1) * sw + kw <= w


#: windows_inside for numba kernels (inlined).
windows_inside_jit = helper(windows_inside)


@helper
def window_bounds(o, stride, pad, k, size, inside):  # noqa: ANN001, ANN201
    """[lo, hi): the input positions window o reads along one axis, clipped to [0, size)
    unless `inside` (windows_inside: no clipping needed)."""
    lo = o * stride - pad
    if inside:
        return lo, lo + k
    return max(lo, 0), min(lo + k, size)


@helper
def zero_plane(plane):  # noqa: ANN001, ANN201
    """plane[:, :] = 0 for a 2-D array (an image channel)."""
    for y in range(plane.shape[0]):
        for x in range(plane.shape[1]):
            plane[y, x] = 0


def im2col_numpy(X: np.ndarray, kh: int, kw: int, sh: int, sw: int, ph: int, pw: int, cols: np.ndarray) -> None:
    """cols[n, oy, ox, (c*kh + i)*kw + j] = X[n, c, oy*sh + i - ph, ox*sw + j - pw] (0 outside X).

    X: (N, C, H, W); cols: (N, OH, OW, C*kh*kw), OH and OW its output size (the bottom/right
    padding follows from them)."""
    n, c, h, w = X.shape
    oh, ow = cols.shape[1], cols.shape[2]
    patches = cols.reshape(n, oh, ow, c, kh, kw)
    if not windows_inside(h, w, oh, ow, kh, kw, sh, sw, ph, pw):
        cols.fill(0)  # the padding some windows read
    for i, j, oy, y, ox, x in window_offsets(h, w, oh, ow, kh, kw, sh, sw, ph, pw):
        np.copyto(patches[:, oy, ox, :, i, j], X[:, :, y, x].transpose(0, 2, 3, 1))


im2col_numba.__doc__ = im2col_numpy.__doc__


@nogil_kernel
def col2im_numba(dcols, kh, kw, sh, sw, ph, pw, dX):  # noqa: ANN001, ANN201
    n, c, h, w = dX.shape
    oh, ow = dcols.shape[1], dcols.shape[2]
    if dcols.shape[0] != n or dcols.shape[3] != c * kh * kw:
        raise ValueError("col2im: dcols (N, OH, OW, C*kh*kw), dX (N, C, H, W)")
    for b in range(n):
        for ci in range(c):
            zero_plane(dX[b, ci])
        for oy in range(oh):
            for i in range(kh):
                y = oy * sh - ph + i
                if y < 0 or y >= h:
                    continue
                for ci in range(c):
                    q = (ci * kh + i) * kw
                    row = dX[b, ci, y]
                    for ox in range(ow):
                        x0 = ox * sw - pw
                        if x0 >= 0 and x0 + kw <= w:
                            for j in range(kw):
                                row[x0 + j] += dcols[b, oy, ox, q + j]
                        else:
                            for j in range(kw):
                                x = x0 + j
                                if 0 <= x < w:
                                    row[x] += dcols[b, oy, ox, q + j]


def col2im_numpy(dcols: np.ndarray, kh: int, kw: int, sh: int, sw: int, ph: int, pw: int, dX: np.ndarray) -> None:
    """dX = the adjoint of im2col applied to dcols: each input position receives the sum of
    the dcols entries that im2col copied from it. dcols: (N, OH, OW, C*kh*kw); dX: (N, C, H, W),
    overwritten."""
    n, c, h, w = dX.shape
    oh, ow = dcols.shape[1], dcols.shape[2]
    patches = dcols.reshape(n, oh, ow, c, kh, kw)
    dX.fill(0)
    for i, j, oy, y, ox, x in window_offsets(h, w, oh, ow, kh, kw, sh, sw, ph, pw):
        target = dX[:, :, y, x]
        np.add(target, patches[:, oy, ox, :, i, j].transpose(0, 3, 1, 2), out=target)


col2im_numba.__doc__ = col2im_numpy.__doc__


@nogil_kernel
def channel_bias_act_forward_numba(Z, b, act, alpha, Y):  # noqa: ANN001, ANN201
    n, p, f = Z.shape
    if Y.shape[0] != n or Y.shape[1] != f or Y.shape[2] != p or b.shape[0] != f:
        raise ValueError("channel_bias_act_forward: Z (N, P, F), b (F,), Y (N, F, P)")
    a = Z.dtype.type(alpha)
    block = 32
    for i in range(n):
        for q0 in range(0, p, block):
            q1 = min(q0 + block, p)
            for j in range(f):
                bj = b[j]
                if act == IDENTITY:
                    for q in range(q0, q1):
                        Y[i, j, q] = Z[i, q, j] + bj
                elif act == RELU:
                    for q in range(q0, q1):
                        Y[i, j, q] = relu_(Z[i, q, j] + bj)
                elif act == LEAKY_RELU:
                    for q in range(q0, q1):
                        Y[i, j, q] = leaky_relu_(Z[i, q, j] + bj, a)
                elif act == SIGMOID:
                    for q in range(q0, q1):
                        Y[i, j, q] = sigmoid_(Z[i, q, j] + bj)
                elif act == TANH:
                    for q in range(q0, q1):
                        Y[i, j, q] = tanh_(Z[i, q, j] + bj)
                else:
                    raise ValueError("channel_bias_act_forward: unknown activation code")


def channel_bias_act_forward_numpy(Z: np.ndarray, b: np.ndarray, act: int, alpha: float, Y: np.ndarray) -> None:
    """Y[n, f, p] = act(Z[n, p, f] + b[f]): the GEMM's positions-by-channels result turned
    channels first, bias and activation fused. Z: (N, P, F); b: (F,); Y: (N, F, P)."""
    np.add(Z.transpose(0, 2, 1), b[:, None], out=Y)
    act_forward_numpy(Y, act, alpha, Y)


channel_bias_act_forward_numba.__doc__ = channel_bias_act_forward_numpy.__doc__


@nogil_kernel
def act_channel_bias_backward_numba(dY, Y, act, alpha, dZ, db):  # noqa: ANN001, ANN201
    n, f, p = dY.shape
    if Y.shape != dY.shape or dZ.shape[0] != n or dZ.shape[1] != p or dZ.shape[2] != f or db.shape[0] != f:
        raise ValueError("act_channel_bias_backward: dY, Y (N, F, P), dZ (N, P, F), db (F,)")
    a = Y.dtype.type(alpha)
    for j in range(f):
        db[j] = 0
    block = 32
    for i in range(n):
        for q0 in range(0, p, block):
            q1 = min(q0 + block, p)
            for j in range(f):
                s = Y.dtype.type(0)
                if act == IDENTITY:
                    for q in range(q0, q1):
                        dz = dY[i, j, q]
                        dZ[i, q, j] = dz
                        s += dz
                elif act == RELU:
                    for q in range(q0, q1):
                        dz = relu_grad_(dY[i, j, q], Y[i, j, q])
                        dZ[i, q, j] = dz
                        s += dz
                elif act == LEAKY_RELU:
                    for q in range(q0, q1):
                        dz = leaky_relu_grad_(dY[i, j, q], Y[i, j, q], a)
                        dZ[i, q, j] = dz
                        s += dz
                elif act == SIGMOID:
                    for q in range(q0, q1):
                        dz = sigmoid_grad_(dY[i, j, q], Y[i, j, q])
                        dZ[i, q, j] = dz
                        s += dz
                elif act == TANH:
                    for q in range(q0, q1):
                        dz = tanh_grad_(dY[i, j, q], Y[i, j, q])
                        dZ[i, q, j] = dz
                        s += dz
                else:
                    raise ValueError("act_channel_bias_backward: unknown activation code")
                db[j] += s


def act_channel_bias_backward_numpy(dY: np.ndarray, Y: np.ndarray, act: int, alpha: float,
                                    dZ: np.ndarray, db: np.ndarray) -> None:
    """dZ[n, p, f] = dY[n, f, p] * act'(from the output Y[n, f, p]); db[f] = dZ summed over n and p.

    dY, Y: (N, F, P); dZ: (N, P, F); db: (F,), overwritten."""
    n, f, p = dY.shape
    grad = scratch("act_channel_bias_backward.grad", dY.shape, dY.dtype)
    act_backward_numpy(dY, Y, act, alpha, grad)
    np.copyto(dZ, grad.transpose(0, 2, 1))
    per_example = scratch("act_channel_bias_backward.per_example", (n, f), dY.dtype)
    np.add.reduce(grad, axis=2, out=per_example)
    np.add.reduce(per_example, axis=0, out=db)


act_channel_bias_backward_numba.__doc__ = act_channel_bias_backward_numpy.__doc__
