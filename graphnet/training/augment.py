"""Train-time image augmentation (`train.augment`): random flips and shifts of the
training batches, the same for a resumed run and for any number of MPI ranks.

The draws are a function of the run seed, the epoch and the example's position in
that epoch's shuffled order (iteration * batch_size + row of the global batch), and
of nothing else: at each epoch's start

    default_rng([seed, AUGMENT_STREAM, epoch]) -> flip (N,) in {0, 1}, dy, dx (N,) in [-shift, shift]

so a run resumed mid-epoch draws what the uninterrupted run drew, and an MPI rank
that computes rows [start, stop) of a global batch applies the draws of those rows,
as one process would. The batch is transformed by the kernel `flip_shift_images`
into a buffer allocated once: a step allocates nothing for it (the draws are made
once per epoch, as the shuffled order is).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..spec import AugmentSpec

AUGMENT_STREAM = 4  # default_rng([seed, AUGMENT_STREAM, epoch]): the augmentation draws of an epoch


def epoch_draws(augment: AugmentSpec, seed: int, epoch: int, examples: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """flip, dy, dx (each (examples,), int64) for the positions of epoch `epoch` (0-based):
    flip 1 with probability 0.5 when augment.flip is "horizontal" (else 0); dy, dx uniform
    in [-shift, shift]."""
    rng = np.random.default_rng([seed, AUGMENT_STREAM, epoch])
    flip = rng.integers(0, 2, examples, dtype=np.int64)
    shifts = rng.integers(-augment.shift, augment.shift + 1, (2, examples), dtype=np.int64)
    if augment.flip == "none":
        flip[:] = 0
    return flip, shifts[0], shifts[1]


class Augmenter:
    """The augmented copies of training batches of up to `batch_size` examples of
    `image_shape` (C, H, W) and `dtype`, through a kernel backend's flip_shift_images."""

    def __init__(self, augment: AugmentSpec, seed: int, batch_size: int, image_shape: tuple[int, ...],
                 dtype: np.dtype, kernels: Any) -> None:
        self.augment, self.seed, self.kernels = augment, seed, kernels
        self.out = np.empty((batch_size, *image_shape), dtype)
        self.draws: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def start_epoch(self, epoch: int, examples: int) -> None:
        """Draw epoch `epoch`'s flips and shifts for its `examples` positions."""
        self.draws = epoch_draws(self.augment, self.seed, epoch, examples)

    def apply(self, X: np.ndarray, start: int) -> np.ndarray:
        """X (n, C, H, W), the examples at positions [start, start + n) of the epoch, augmented:
        a view of the leading n rows of the buffer."""
        if self.draws is None:
            raise RuntimeError("Augmenter.apply before start_epoch")
        n = len(X)
        flip, dy, dx = (draw[start:start + n] for draw in self.draws)
        out = self.out[:n]
        self.kernels.flip_shift_images(X, flip, dy, dx, out)
        return out
