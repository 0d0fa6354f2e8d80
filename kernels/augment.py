"""Image augmentation for training batches: a per-example horizontal flip and
translation with zero padding (numba + NumPy twins).

The random draws come from the caller (graphnet.training.augment draws them from
the run seed per epoch and position), so both twins give identical results:

    out[n, c, h, w] = X[n, c, h - dy[n], v]   where v = W-1-(w - dx[n]) if flip[n] else w - dx[n],
                      0 where h - dy[n] or w - dx[n] falls outside the image

that is, the image flipped left-right (when flip[n] is not 0), then moved dy[n]
rows down and dx[n] columns right, the uncovered border filled with zeros.
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel
from ._workspace import arange, const, scratch


@kernel
def flip_shift_images_numba(X, flip, dy, dx, out):  # noqa: ANN001, ANN201
    n, c, h, w = X.shape
    if out.shape != X.shape or flip.shape[0] != n or dy.shape[0] != n or dx.shape[0] != n:
        raise ValueError("flip_shift_images: X, out (N, C, H, W); flip, dy, dx (N,)")
    zero = X.dtype.type(0)
    for b in range(n):
        sy, sx, mirrored = dy[b], dx[b], flip[b] != 0
        for ci in range(c):
            for y in range(h):
                source = y - sy
                if source < 0 or source >= h:
                    for x in range(w):
                        out[b, ci, y, x] = zero
                    continue
                row = X[b, ci, source]
                for x in range(w):
                    column = x - sx
                    if column < 0 or column >= w:
                        out[b, ci, y, x] = zero
                    else:
                        out[b, ci, y, x] = row[w - 1 - column] if mirrored else row[column]


def flip_shift_images_numpy(X: np.ndarray, flip: np.ndarray, dy: np.ndarray, dx: np.ndarray,
                            out: np.ndarray) -> None:
    """out (N, C, H, W) = each image of X (N, C, H, W) flipped left-right where flip (N,) is not 0,
    then moved dy (N,) rows down and dx (N,) columns right, zeros where nothing moved in
    (int64 draws, any values; out must not alias X)."""
    n, c, h, w = X.shape
    if out.shape != X.shape or flip.shape != (n,) or dy.shape != (n,) or dx.shape != (n,):
        raise ValueError("flip_shift_images: X, out (N, C, H, W); flip, dy, dx (N,)")
    i64 = np.int64
    # source rows (N, H) and columns (N, W) of each example, and whether they fall inside
    rows, columns = scratch("flip_shift.rows", (n, h), i64), scratch("flip_shift.columns", (n, w), i64)
    np.subtract(arange(h), dy[:, None], out=rows)
    np.subtract(arange(w), dx[:, None], out=columns)
    inside = scratch("flip_shift.inside", (n, 1, h, w), np.bool_)
    row_in, column_in = scratch("flip_shift.row_in", (n, h), np.bool_), scratch("flip_shift.col_in", (n, w), np.bool_)
    _within(rows, h, row_in)
    _within(columns, w, column_in)
    np.logical_and(row_in[:, None, :, None], column_in[:, None, None, :], out=inside)
    mirrored = scratch("flip_shift.mirrored", (n, w), i64)  # W-1-column where flipped
    np.subtract(const("flip_shift.last", w - 1, i64), columns, out=mirrored)
    flipped = scratch("flip_shift.flipped", (n, 1), np.bool_)
    np.not_equal(flip[:, None], const("flip_shift.zero64", 0, i64), out=flipped)
    np.copyto(columns, mirrored, where=flipped)
    _clip(rows, h)  # outside: any pixel of the image, zeroed below
    _clip(columns, w)
    # flat index of each output pixel's source: ((n*C + c)*H + row)*W + column
    index = scratch("flip_shift.index", (n, c, h, w), i64)
    np.multiply(arange(n * c).reshape(n, c, 1, 1), const("flip_shift.h", h, i64), out=index)
    np.add(index, rows[:, None, :, None], out=index)
    np.multiply(index, const("flip_shift.w", w, i64), out=index)
    np.add(index, columns[:, None, None, :], out=index)
    np.take(X.reshape(-1), index.reshape(-1), out=out.reshape(-1), mode="clip")  # "raise" would buffer
    np.copyto(out, const("flip_shift.zero", 0, X.dtype), where=np.logical_not(inside, out=inside))


def _within(positions: np.ndarray, size: int, out: np.ndarray) -> None:
    """out = 0 <= positions < size (elementwise)."""
    below = scratch("flip_shift.below", positions.shape, np.bool_)
    np.greater_equal(positions, const("flip_shift.zero64", 0, np.int64), out=out)
    np.less(positions, const("flip_shift.size", size, np.int64), out=below)
    np.logical_and(out, below, out=out)


def _clip(positions: np.ndarray, size: int) -> None:
    """positions = min(max(positions, 0), size - 1), in place."""
    np.maximum(positions, const("flip_shift.zero64", 0, np.int64), out=positions)
    np.minimum(positions, const("flip_shift.size", size - 1, np.int64), out=positions)


flip_shift_images_numba.__doc__ = flip_shift_images_numpy.__doc__
