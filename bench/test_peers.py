"""bench/peers.py and bench/step.py: the contenders the README compares do the same work."""
from __future__ import annotations

import json

import numpy as np
import peers
import pytest
import step as step_script
from peers import CONTENDERS

import graphnet.benchmarks.step as step_bench
from graphnet.benchmarks.machine import Peak
from graphnet.benchmarks.step import build_contenders, make_problem

COMPARED = [name for name in CONTENDERS if name != "blas_floor"]


def test_the_readme_table_has_graphnets_contenders_then_the_peers():
    assert list(CONTENDERS) == [*step_bench.CONTENDERS, "tuned_numpy", "student_numpy", "torch_eager", "jax_jit"]


@pytest.mark.parametrize("contender", [name for name in COMPARED if name != "student_numpy"])
def test_every_contender_takes_the_same_three_sgd_steps_as_the_homework_code(contender):
    problem = make_problem("S", seed=3)
    steps, skipped = build_contenders(problem, ["student_numpy", contender], CONTENDERS)
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


def test_a_missing_peer_is_skipped_with_its_reason(monkeypatch):
    def not_installed(problem):
        raise ImportError("no module named 'torch'", name="torch")

    monkeypatch.setitem(peers.CONTENDERS, "torch_eager", not_installed)
    steps, skipped = build_contenders(make_problem("S"), ["torch_eager", "student_numpy"], CONTENDERS)
    assert list(steps) == ["student_numpy"] and skipped == {"torch_eager": "not installed (torch)"}


def test_the_script_times_every_peer_and_writes_the_rows(monkeypatch, tmp_path, capsys):
    """The plumbing of bench/step.py, with the measurement stubbed out (timing is not a test)."""
    rows = [{"size": "S", "contender": "blas_floor", "us": 100.0, "ratio": 1.0},
            {"size": "S", "contender": "tuned_numpy", "us": 170.0, "ratio": 1.7}]
    asked = {}

    def fake_run_step_bench(quick, sizes, contenders, peak):
        asked.update(quick=quick, sizes=sizes, contenders=contenders, peak=peak)
        return rows

    peak = Peak(64, 10.0, 2, 20.0)
    monkeypatch.setattr(step_script, "run_step_bench", fake_run_step_bench)
    monkeypatch.setattr(step_script, "measure_peak", lambda: peak)
    target = tmp_path / "step.json"
    assert step_script.main(["--full", "--sizes", "S", "--results", str(tmp_path)]) == 0
    assert asked == {"quick": False, "sizes": ["S"], "contenders": CONTENDERS, "peak": peak}
    out = capsys.readouterr().out
    assert out.startswith("BLAS: ") and "tuned_numpy" in out and "1.70" in out and f"wrote {target}" in out
    assert out.splitlines()[1].startswith("BLAS kernel: ") and str(peak) in out.splitlines()
    assert json.loads(target.read_text()) == rows
