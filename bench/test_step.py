"""One training step, graphnet against its peers (pytest-benchmark).

    pytest bench/test_step.py --benchmark-group-by=param:size --benchmark-sort=mean

Each contender (graphnet's and its peers, bench/peers.py) is timed in the same
process on the same weights and batch. Interleaved medians, each contender in
its own process (less sensitive to load drift), come from
`python bench/step.py --full`; the README quotes those.
"""
from __future__ import annotations

import pytest
from peers import CONTENDERS

from graphnet.benchmarks.step import SIZES, build_contenders, make_problem


@pytest.mark.parametrize("contender", list(CONTENDERS))
@pytest.mark.parametrize("size", list(SIZES))
def test_step(benchmark, size: str, contender: str) -> None:
    problem = make_problem(size)
    steps, skipped = build_contenders(problem, [contender], CONTENDERS)
    if contender in skipped:
        pytest.skip(skipped[contender])
    benchmark.group = f"step {size}"
    benchmark(steps[contender])
