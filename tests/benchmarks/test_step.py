"""graphnet.benchmarks.step: graphnet's own step contenders (the peers are in bench/)."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import graphnet
import graphnet.benchmarks.step as step_bench
from graphnet.benchmarks.step import CONTENDERS, build_contenders, make_problem, run_step_bench

GRAPHNET_STEPS = [name for name in CONTENDERS if name != "blas_floor"]


def test_graphnet_contenders_take_the_same_three_sgd_steps():
    """The fused, unfused and NumPy-kernel plans do the same work (bench/test_peers.py
    checks them, and the peers, against the homework code)."""
    problem = make_problem("S", seed=3)
    steps, skipped = build_contenders(problem, GRAPHNET_STEPS)
    assert skipped == {}
    losses = {name: [float(step()) for _ in range(3)] for name, step in steps.items()}
    first, *others = GRAPHNET_STEPS
    for name in others:
        np.testing.assert_allclose(losses[name], losses[first], rtol=1e-5)
        for got, expected in zip(steps[name].weights(), steps[first].weights(), strict=True):
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    moved = [w for w, w0 in zip(steps[first].weights(), problem.weights) if not np.array_equal(w, w0)]
    assert len(moved) == len(problem.weights)  # every parameter was updated


def test_the_floor_runs_only_the_gemms():
    problem = make_problem("S")
    floor = build_contenders(problem, ["blas_floor"])[0]["blas_floor"]
    assert floor() is None and not hasattr(floor, "weights")


def test_a_contender_that_cannot_be_built_is_skipped_with_its_reason(monkeypatch):
    def not_installed(problem):
        raise ImportError("no module named 'numba'", name="numba")

    monkeypatch.setitem(step_bench.CONTENDERS, "graphnet_numba", not_installed)
    steps, skipped = build_contenders(make_problem("S"), ["graphnet_numba", "graphnet_numpy"])
    assert list(steps) == ["graphnet_numpy"] and skipped == {"graphnet_numba": "not installed (numba)"}


def test_run_step_bench_reports_ratios_to_the_floor(monkeypatch):
    fake = {"blas_floor": 2e-4, "graphnet_numba": 2.5e-4}
    asked = {}

    def fake_time_isolated(size, names, **options):
        asked.update(names=names, contenders=options["contenders"])
        return dict(fake), {"jax_jit": "not installed (jax)"}

    monkeypatch.setattr(step_bench, "time_isolated", fake_time_isolated)
    rows = run_step_bench(quick=True, sizes=["S"])
    assert asked == {"names": list(CONTENDERS), "contenders": CONTENDERS}
    by_name = {row["contender"]: row for row in rows}
    assert by_name["graphnet_numba"]["ratio"] == pytest.approx(1.25)
    assert by_name["blas_floor"]["us"] == pytest.approx(200.0)
    assert by_name["jax_jit"]["ratio"] is None and by_name["jax_jit"]["skipped"] == "not installed (jax)"


def test_the_package_imports_no_peer_framework():
    """torch and JAX are peers to measure against (bench/), never graphnet dependencies."""
    package = Path(graphnet.__file__).parent
    found = {}
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            hits = [n for n in names if n.split(".")[0] in ("torch", "jax", "jaxlib")]
            if hits:
                found[str(path.relative_to(package))] = hits
    assert found == {}


@pytest.mark.parametrize("rule", step_bench.STEP_RULES)
def test_each_rule_takes_the_same_steps_inside_backward_and_separately(rule):
    """The rule benchmark compares two ways of doing the same work, not two amounts of it."""
    problem = make_problem("S", seed=3)
    names = [rule, f"{rule}_separate"] + (["adam_clip"] if rule == "adam" else [])
    steps, skipped = build_contenders(problem, names, step_bench.RULE_CONTENDERS)
    assert skipped == {}
    losses = {name: [float(step()) for _ in range(3)] for name, step in steps.items()}
    for name in names[1:]:
        np.testing.assert_allclose(losses[name], losses[rule], rtol=1e-6)
        for got, expected in zip(steps[name].weights(), steps[rule].weights(), strict=True):
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    assert all(not np.array_equal(w, w0) for w, w0 in zip(steps[rule].weights(), problem.weights))


def test_run_rule_bench_reports_medians_of_per_round_ratios(monkeypatch):
    samples = {"blas_floor": [1.0, 2.0, 4.0], "adam": [1.2, 2.2, 5.2], "momentum": [1.2, 2.6, 4.8]}

    def fake_sample_isolated(size, names, rounds, min_sample, settle, contenders):
        assert names == list(step_bench.RULE_CONTENDERS) and contenders is step_bench.RULE_CONTENDERS
        return samples, {"rmsprop": "ValueError: x"}

    monkeypatch.setattr(step_bench, "sample_isolated", fake_sample_isolated)
    rows = {row["contender"]: row for row in step_bench.run_rule_bench(quick=True, sizes=["M"])}
    assert rows["adam"]["ratio"] == pytest.approx(1.2)  # median of 1.2, 1.1, 1.3 (ratio of medians: 1.1)
    assert rows["momentum"]["ratio"] == pytest.approx(1.2) and rows["momentum"]["vs_adam"] == pytest.approx(1.0)
    assert rows["blas_floor"]["us"] == pytest.approx(2e6)
    assert rows["rmsprop"]["ratio"] is None and rows["rmsprop"]["skipped"] == "ValueError: x"
    assert "x adam" in step_bench.format_step_table(list(rows.values()))


def test_the_update_only_contender_runs_one_adam_update_and_no_gemm():
    problem = make_problem("S", seed=3)
    steps, skipped = build_contenders(problem, ["adam_update_only"], step_bench.RULE_CONTENDERS)
    update = steps["adam_update_only"]
    grads = update.grads()
    update()  # Adam's first step moves each weight by lr * g / (|g| + eps): about lr against its gradient
    for before, after, grad in zip(problem.weights, update.weights(), grads, strict=True):
        g = grad.astype(np.float64)
        expected = before - step_bench.LEARNING_RATE * g / (np.abs(g) + 1e-8)
        np.testing.assert_allclose(after, expected, rtol=0, atol=1e-7)
        assert np.abs(before - after).max() > 0.9 * step_bench.LEARNING_RATE
    assert [g.tolist() for g in update.grads()] == [g.tolist() for g in grads]  # no backward pass ran
