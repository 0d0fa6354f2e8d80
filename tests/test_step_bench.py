"""graphnet.step_bench: the contenders the README compares do the same work."""
from __future__ import annotations

import numpy as np
import pytest

from graphnet.step_bench import CONTENDERS, build_contenders, make_problem, run_step_bench

COMPARED = [name for name in CONTENDERS if name != "blas_floor"]


@pytest.mark.parametrize("contender", [name for name in COMPARED if name != "student_numpy"])
def test_every_contender_takes_the_same_three_sgd_steps_as_the_homework_code(contender):
    problem = make_problem("S", seed=3)
    steps, skipped = build_contenders(problem, ["student_numpy", contender])
    if contender in skipped:
        pytest.skip(skipped[contender])
    reference, step = steps["student_numpy"], steps[contender]
    for _ in range(3):
        assert float(step()) == pytest.approx(reference(), rel=1e-5)
    for got, expected in zip(step.weights(), reference.weights(), strict=True):
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    moved = [w for w, w0 in zip(reference.weights(), problem.weights) if not np.array_equal(w, w0)]
    assert len(moved) == len(problem.weights)  # every parameter was updated


def test_the_floor_runs_only_the_gemms():
    problem = make_problem("S")
    floor = build_contenders(problem, ["blas_floor"])[0]["blas_floor"]
    assert floor() is None and not hasattr(floor, "weights")


def test_a_missing_peer_is_skipped_with_its_reason(monkeypatch):
    import graphnet.step_bench as step_bench

    def not_installed(problem):
        raise ImportError("no module named 'torch'", name="torch")

    monkeypatch.setitem(step_bench.CONTENDERS, "torch_eager", not_installed)
    steps, skipped = build_contenders(make_problem("S"), ["torch_eager", "student_numpy"])
    assert list(steps) == ["student_numpy"] and skipped == {"torch_eager": "not installed (torch)"}


def test_run_step_bench_reports_ratios_to_the_floor(monkeypatch):
    import graphnet.step_bench as step_bench

    fake = {"blas_floor": 2e-4, "graphnet_numba": 2.5e-4}
    monkeypatch.setattr(step_bench, "time_isolated",
                        lambda size, names, **kw: (dict(fake), {"jax_jit": "not installed (jax)"}))
    rows = run_step_bench(quick=True, sizes=["S"])
    by_name = {row["contender"]: row for row in rows}
    assert by_name["graphnet_numba"]["ratio"] == pytest.approx(1.25)
    assert by_name["blas_floor"]["us"] == pytest.approx(200.0)
    assert by_name["jax_jit"]["ratio"] is None and by_name["jax_jit"]["skipped"] == "not installed (jax)"
