"""graphnet.benchmarks.step: a contender built and timed in a process of its own."""
from __future__ import annotations

import graphnet.benchmarks.step as step_bench


def test_an_isolated_contender_is_built_in_its_own_process_from_the_table_given():
    """The worker gets the builder itself, so a table from outside the package (bench/peers.py) works."""
    medians, skipped = step_bench.time_isolated("S", ["floor"], rounds=1, min_sample=1e-4, settle=0.0,
                                                contenders={"floor": step_bench.blas_floor_step})
    assert skipped == {} and list(medians) == ["floor"] and medians["floor"] > 0
