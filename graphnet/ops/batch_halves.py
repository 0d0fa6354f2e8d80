"""Image steps that run on the two halves of their batch, over graphnet's threads.

    cut = batch_cut(n, per_example)           # 0: the batch is not cut
    finish = on_halves(ctx, kernel)           # a step's runner for kernel(*batched, *shared)
    finish(cut, (Z, Y), (b,))                 # kernel(Z[:cut], Y[:cut], b) and kernel(Z[cut:], Y[cut:], b)

The per-example kernels of convolution and pooling (im2col, the epilogues, col2im,
the pooling kernels) read and write each example on its own, so a step cuts its
batch in two and runs the halves over the target's threads (Target.run_parts: the
caller and the helper thread, or one after the other when one thread runs). Shapes
alone decide the cut, never the load or the thread count, so the bits are the same
on one thread and two; a step that sums over the batch (a bias gradient) adds the
two halves' sums.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .lowering import LowerContext

#: A step cuts its batch in two from this many elements (the batch's, of the step's
#: largest per-example array) on: below it, waking a thread costs more than it saves.
SPLIT_ELEMENTS = 1 << 16


def batch_cut(n: int, per_example: int) -> int:
    """Where a step cuts a batch of n examples of `per_example` elements (0: not cut)."""
    return n // 2 if n >= 2 and n * per_example >= SPLIT_ELEMENTS else 0


def on_halves(ctx: LowerContext, kernel: Callable[..., None]) -> Callable[..., None]:
    """kernel(*batched, *shared) as a step runs it: on the two halves of the batch (every
    `batched` array cut at `cut` along its first axis; `shared` passed whole to both) over the
    target's threads, or once on the whole batch when `cut` is 0."""
    run_parts = ctx.target.run_parts

    def run(cut: int, batched: tuple[np.ndarray, ...], shared: tuple = ()) -> None:
        if cut:
            run_parts(kernel, [(*(a[:cut] for a in batched), *shared), (*(a[cut:] for a in batched), *shared)])
        else:
            kernel(*batched, *shared)

    return run
