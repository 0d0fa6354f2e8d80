"""flip_shift_images on small images written out by hand, on both backends (the parity,
allocation and aliasing tables cover it too: tests/kernels/test_parity.py, test_memory.py)."""
from __future__ import annotations

import numpy as np
import pytest

from graphnet.kernels import KernelBackend

IMAGE = np.array([[1, 2, 3, 4],
                  [5, 6, 7, 8],
                  [9, 10, 11, 12]], dtype=np.float64)  # one channel, 3 x 4


def augmented(backend: KernelBackend, X: np.ndarray, flip: list[int], dy: list[int], dx: list[int]) -> np.ndarray:
    out = np.full_like(X, -1.0)  # every pixel is written
    backend.flip_shift_images(X, np.array(flip, np.int64), np.array(dy, np.int64), np.array(dx, np.int64), out)
    return out


def test_no_flip_no_shift_is_a_copy(backend: KernelBackend, dtype: np.dtype) -> None:
    X = IMAGE.astype(dtype)[None, None]
    assert np.array_equal(augmented(backend, X, [0], [0], [0]), X)


def test_flip_mirrors_each_row(backend: KernelBackend, dtype: np.dtype) -> None:
    X = IMAGE.astype(dtype)[None, None]
    assert np.array_equal(augmented(backend, X, [1], [0], [0])[0, 0], IMAGE[:, ::-1])


def test_shift_moves_down_and_right_with_zeros_behind(backend: KernelBackend, dtype: np.dtype) -> None:
    X = IMAGE.astype(dtype)[None, None]
    expected = [[0, 0, 0, 0],
                [0, 1, 2, 3],
                [0, 5, 6, 7]]
    assert np.array_equal(augmented(backend, X, [0], [1], [1])[0, 0], expected)
    up_left = [[7, 8, 0, 0],
               [11, 12, 0, 0],
               [0, 0, 0, 0]]
    assert np.array_equal(augmented(backend, X, [0], [-1], [-2])[0, 0], up_left)


def test_flip_comes_before_the_shift(backend: KernelBackend, dtype: np.dtype) -> None:
    X = IMAGE.astype(dtype)[None, None]
    expected = [[0, 4, 3, 2],   # the mirrored image [[4, 3, 2, 1], ...] moved one column right
                [0, 8, 7, 6],
                [0, 12, 11, 10]]
    assert np.array_equal(augmented(backend, X, [1], [0], [1])[0, 0], expected)


def test_a_shift_past_the_edge_leaves_zeros(backend: KernelBackend, dtype: np.dtype) -> None:
    X = IMAGE.astype(dtype)[None, None]
    assert not augmented(backend, X, [0], [3], [0]).any()
    assert not augmented(backend, X, [1], [0], [-9]).any()


def test_each_example_its_own_draw_every_channel_alike(backend: KernelBackend, dtype: np.dtype) -> None:
    X = np.stack([np.stack([IMAGE, 10 * IMAGE]), np.stack([-IMAGE, IMAGE + 0.5])]).astype(dtype)  # (2, 2, 3, 4)
    out = augmented(backend, X, [1, 0], [0, -1], [0, 0])
    assert np.array_equal(out[0], X[0][:, :, ::-1])
    assert np.array_equal(out[1, :, :2], X[1, :, 1:])
    assert not out[1, :, 2].any()


@pytest.mark.parametrize("bad", ["out", "draws"])
def test_mismatched_shapes_are_refused(backend: KernelBackend, dtype: np.dtype, bad: str) -> None:
    X = IMAGE.astype(dtype)[None, None]
    out = np.empty((1, 1, 3, 3), dtype) if bad == "out" else np.empty_like(X)
    draws = np.zeros(2 if bad == "draws" else 1, np.int64)
    with pytest.raises(ValueError, match="flip_shift_images"):
        backend.flip_shift_images(X, draws, draws, draws, out)
