"""Kernel benchmarks: each numba kernel against its NumPy twin (pytest-benchmark).

Not part of CI. Run: ``pytest bench/test_kernels.py`` (add ``--benchmark-columns=median``
to taste). Each (kernel, size) is one benchmark group, so numba and its
baseline appear side by side. ``graphnet bench`` measures the same pairs
interleaved in one process (graphnet.benchmarks.kernels).
"""
from __future__ import annotations

import functools

import pytest

from graphnet.benchmarks.kernels import BenchCase, bench_cases


@functools.lru_cache(maxsize=1)
def cases() -> tuple[BenchCase, ...]:
    return tuple(bench_cases(quick=False, dtype="float32"))


def _all_ids() -> list[str]:
    return [f"{c.kernel} [{c.size}]" for c in cases()]


@pytest.mark.parametrize("variant", ["numba", "numpy"])
@pytest.mark.parametrize("index", range(len(cases())), ids=_all_ids())
def test_kernel(benchmark, index: int, variant: str) -> None:  # noqa: ANN001
    case = cases()[index]
    fn, args = case.variants[variant]
    benchmark.group = f"{case.kernel} [{case.size}] float32"
    benchmark.name = "numba" if variant == "numba" else case.baseline
    fn(*args)  # compile / warm the scratch buffers
    benchmark(fn, *args)
