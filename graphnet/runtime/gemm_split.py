"""A plan's GEMMs split over graphnet's own threads, computing the same bits on any number of them
and under any load.

    split = GemmSplit(parts=2, part_work=1 << 21, lag_work=1 << 20, live=threads_now)
    matmul = split.matmul()               # a step's kernel (A, B, C): C = A @ B
    update = split.at_b_update(gemm)      # (A, B, C, alpha, beta): C = beta * C + alpha * A.T @ B

numpy's BLAS runs on one thread in a process that compiled a network
(graphnet.runtime.threads). A GEMM of a plan with at least `part_work` multiply-adds
per part is cut into at most `parts` blocks of rows or of columns of C, each one
single-threaded BLAS call; graphnet.runtime.helper_thread.run_parts runs the first
block on the calling thread and offers the others to the helper threads while
`live()` (the contention governor's count) is 2 or more; otherwise the calling
thread makes the whole call at once (the bits of its blocks, see below, without
packing the operand the blocks share once per block). The blocks depend on the shapes,
`parts` (the threads the process is set up for) and the two work settings only,
never on the load: every element of C comes from the same BLAS call whoever
makes it, so a run gives the same bits on a quiet machine and on a busy one.

A block of rows (or columns) of a single-threaded OpenBLAS sgemm gives the bits
of the whole call: its sums along K are blocked by K alone. So a GEMM cut in
blocks computes what the uncut call computes, and networks give the same bits
on 1 thread (nothing cut) and on 2 (tests/runtime/test_gemm_split.py checks it for the
shapes of the model zoo; OpenBLAS's multi-threaded GEMM did not: it blocks K
differently, and rounded a 784-long inner dimension otherwise). The exception
is a block small enough for OpenBLAS's small-matrix kernels (about 1e6
multiply-adds): `part_work` keeps blocks above it.

Which way: rows of C when C has at least as many rows as columns, else columns.
Each block packs all of the operand the blocks share (B for rows, A for
columns), so the cut goes along the larger dimension of C and the smaller
operand is packed again. Block boundaries are multiples of ALIGN. The caller's
block is `lag_work` multiply-adds larger than the others: a helper starts its
block that much later (a wake-up through a lock and the GIL, ~20 us on 2 vCPUs).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .helper_thread import run_parts

#: Block boundaries are multiples of this many rows or columns (a 512-bit vector of float32).
ALIGN = 16


def _one() -> int:
    return 1


def _matmul_into(A: np.ndarray, B: np.ndarray, C: np.ndarray) -> None:
    np.matmul(A, B, out=C)


def _update_into(update: Any, A: np.ndarray, B: np.ndarray, C: np.ndarray, alpha: float, beta: float) -> None:
    update(A, B, C, alpha, beta)


@dataclass(frozen=True)
class GemmSplit:
    """How a plan's GEMMs are cut (see the module docstring): into at most `parts` blocks of at
    least `part_work` multiply-adds (0: never cut), the caller's `lag_work` larger; `live()`
    is the number of threads to run them on at a call."""

    parts: int = 1
    part_work: int = 1 << 21
    lag_work: int = 1 << 20
    live: Callable[[], int] = _one

    def bounds(self, size: int, work: int) -> list[int]:
        """Block boundaries [0, ..., size] along a dimension of `size` of a GEMM of `work`
        multiply-adds ([0, size]: not cut): multiples of ALIGN, the first block larger by the lag."""
        count = min(self.parts, size // ALIGN, work // self.part_work) if self.part_work > 0 else 1
        while count > 1 and (work - self.lag_work) / count < self.part_work:
            count -= 1
        if count < 2:
            return [0, size]
        per_row = work / size
        rest = (work - self.lag_work) / count  # each helper's share of the work
        first = size - (count - 1) * rest / per_row
        edges = [0] + [first + i * rest / per_row for i in range(count - 1)]
        bounds = sorted({min(size, max(0, ALIGN * round(edge / ALIGN))) for edge in edges} | {size})
        return bounds if len(bounds) > 2 else [0, size]

    def run(self, kernel: Callable[..., None], parts: list[tuple]) -> None:
        """kernel(*part) for every part (they write disjoint outputs): on the caller and helper
        threads while `live()` is 2 or more, else one after the other on the caller."""
        if len(parts) > 1 and self.live() > 1:
            run_parts(kernel, parts)
        else:
            for part in parts:
                kernel(*part)

    def matmul(self) -> "SplitMatmul":
        """A fresh kernel (A, B, C): C = A @ B, cut as this split says."""
        return SplitMatmul(self)

    def at_b_update(self, gemm: Any) -> "SplitAtBUpdate":
        """A fresh kernel (A, B, C, alpha, beta): C = beta * C + alpha * A.T @ B on `gemm`
        (graphnet.runtime.blas.Gemm), cut as this split says."""
        return SplitAtBUpdate(self, gemm)


def _cut(split: GemmSplit, rows: int, inner: int, columns: int) -> tuple[str, list[int]] | None:
    """("rows" or "columns", boundaries) of a GEMM whose C is rows x columns; None: not cut."""
    axis, size = ("rows", rows) if rows >= columns else ("columns", columns)
    bounds = split.bounds(size, rows * inner * columns)
    return None if len(bounds) == 2 else (axis, bounds)


class SplitMatmul:
    """C = A @ B, cut by a GemmSplit. A: (M, K), B: (K, N), C: (M, N), not aliasing A or B;
    the blocks' views are made again only when an argument is another array than last time
    (a bound plan passes the same views on every run). It holds the last arrays it was given."""

    def __init__(self, split: GemmSplit):
        self.split = split
        self.arrays: tuple[Any, Any, Any] = (None, None, None)
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None

    def __call__(self, A: np.ndarray, B: np.ndarray, C: np.ndarray) -> None:
        arrays = self.arrays
        if A is not arrays[0] or B is not arrays[1] or C is not arrays[2]:
            self._rebind(A, B, C)
        parts = self.parts
        if parts is not None and self.split.live() > 1:
            run_parts(_matmul_into, parts)
        else:  # one thread: the whole call, the bits of its blocks without packing the shared operand again
            np.matmul(A, B, out=C)

    def _rebind(self, A: np.ndarray, B: np.ndarray, C: np.ndarray) -> None:
        self.arrays = (A, B, C)
        cut = _cut(self.split, A.shape[0], A.shape[1], B.shape[1]) if A.ndim == B.ndim == 2 else None
        if cut is None:
            self.parts = None
            return
        axis, bounds = cut
        blocks = zip(bounds[:-1], bounds[1:])
        if axis == "rows":
            self.parts = [(A[lo:hi], B, C[lo:hi]) for lo, hi in blocks]
        else:
            self.parts = [(A, B[:, lo:hi], C[:, lo:hi]) for lo, hi in blocks]


class SplitAtBUpdate:
    """C = beta * C + alpha * A.T @ B in place, cut by a GemmSplit: A: (K, M), B: (K, N), C: (M, N)
    (the SGD update inside backward, W = W - rate * X.T @ dY). Each block is one
    graphnet.runtime.blas.AtBUpdate on its views, made again only when an argument is another
    array than last time."""

    def __init__(self, split: GemmSplit, gemm: Any):
        self.split, self.gemm = split, gemm
        self.whole = gemm.at_b_update()
        self.arrays: tuple[Any, Any, Any] = (None, None, None)
        self.parts: list[tuple[Any, np.ndarray, np.ndarray, np.ndarray]] | None = None

    def __call__(self, A: np.ndarray, B: np.ndarray, C: np.ndarray, alpha: float, beta: float) -> None:
        arrays = self.arrays
        if A is not arrays[0] or B is not arrays[1] or C is not arrays[2]:
            self._rebind(A, B, C)
        parts = self.parts
        if parts is not None and self.split.live() > 1:
            run_parts(_update_into, [(*part, alpha, beta) for part in parts])
        else:  # one thread: the whole call (the bits of its blocks)
            self.whole(A, B, C, alpha, beta)

    def _rebind(self, A: np.ndarray, B: np.ndarray, C: np.ndarray) -> None:
        self.arrays = (A, B, C)
        cut = _cut(self.split, C.shape[0], A.shape[0], C.shape[1]) if A.ndim == C.ndim == 2 else None
        if cut is None:
            self.parts = None
            return
        axis, bounds = cut
        blocks = list(zip(bounds[:-1], bounds[1:]))
        if axis == "rows":
            views = [(A[:, lo:hi], B, C[lo:hi]) for lo, hi in blocks]
        else:
            views = [(A, B[:, lo:hi], C[:, lo:hi]) for lo, hi in blocks]
        self.parts = [(self.gemm.at_b_update(), *view) for view in views]
