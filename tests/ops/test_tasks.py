"""graphnet.ops.tasks: the task read from a network's loss, predictions and the metrics of each task."""
from __future__ import annotations

import numpy as np
import pytest

import graphnet as gn
from graphnet.compiler.graph import build_graph
from graphnet.ops.tasks import (
    accuracy,
    binary_accuracy,
    output_task,
    predictions,
    r2,
    rmse,
    score,
    task_of,
    task_of_loss,
)


def network(loss: str, label: dict, units: int = 1) -> gn.NetworkSpec:
    return gn.parse_network({
        "inputs": {"x": {"shape": [3]}},
        "labels": {"y": label},
        "nodes": [{"id": "fc", "op": "affine", "inputs": ["x"], "units": units},
                  {"id": "loss", "op": loss, "inputs": ["fc", "y"]}],
        "outputs": ["fc"],
        "loss": "loss",
    })


@pytest.mark.parametrize("loss, label, units, task", [
    ("softmax_cross_entropy", {"classes": 4}, 4, "classification"),
    ("svm", {"classes": 4}, 4, "classification"),
    ("sigmoid_binary_cross_entropy", {"shape": [1]}, 1, "binary"),
    ("mse", {"shape": [2]}, 2, "regression"),
])
def test_task_of_spec_and_graph(loss, label, units, task):
    spec = network(loss, label, units)
    assert task_of(spec) == task == task_of(build_graph(spec)) == task_of_loss(loss)
    assert output_task(build_graph(spec), "fc") == task


def test_cross_entropy_on_probabilities_is_classification():
    assert task_of_loss("cross_entropy") == "classification"


def test_no_loss_no_task():
    spec = gn.parse_network({"inputs": {"x": {"shape": [3]}},
                             "nodes": [{"id": "fc", "op": "affine", "inputs": ["x"], "units": 2}],
                             "outputs": ["fc"]})
    assert task_of(spec) is None and output_task(build_graph(spec), "fc") is None


def test_an_output_the_loss_does_not_read_has_no_task():
    spec = gn.parse_network({
        "inputs": {"x": {"shape": [3]}}, "labels": {"y": {"shape": [1]}},
        "nodes": [{"id": "fc", "op": "affine", "inputs": ["x"], "units": 1},
                  {"id": "s", "op": "sigmoid", "inputs": ["fc"]},
                  {"id": "loss", "op": "mse", "inputs": ["fc", "y"]}],
        "outputs": ["s", "fc"], "loss": "loss"})
    assert output_task(build_graph(spec), "s") is None
    assert output_task(build_graph(spec), "fc") == "regression"


# ---- predictions ------------------------------------------------------------------------------


def test_predictions_per_task():
    scores = np.array([[0.3], [-0.1], [2.0], [0.0]], np.float32)
    assert np.array_equal(predictions(scores, "binary"), [1, 0, 1, 0])  # sigmoid(0) = 0.5 is not > 0.5
    assert predictions(scores, "binary").dtype == np.int64
    assert predictions(scores, "regression") is scores
    many = np.array([[0.1, 0.9, 0.3], [2.0, -1.0, 0.0]])
    assert np.array_equal(predictions(many, "classification"), [1, 0])
    assert np.array_equal(predictions(many, None), [1, 0])
    assert np.array_equal(predictions(many, "binary"), [[1, 1, 1], [1, 0, 0]])  # multi-label keeps its shape


# ---- metrics ---------------------------------------------------------------------------------


def test_rmse_by_hand():
    # errors 1, -2, 0, 3 -> mean square 14/4
    assert rmse(np.array([[2.0], [0.0], [5.0], [7.0]]), np.array([1.0, 2.0, 5.0, 4.0])) == pytest.approx(np.sqrt(3.5))


def test_r2_by_hand():
    targets = np.array([1.0, 2.0, 3.0, 4.0])  # mean 2.5, SS_tot = 2.25 + 0.25 + 0.25 + 2.25 = 5
    predicted = np.array([[1.5], [2.0], [2.5], [4.0]])  # SS_res = 0.25 + 0 + 0.25 + 0 = 0.5
    assert r2(predicted, targets) == pytest.approx(1 - 0.5 / 5)
    assert r2(targets, targets) == 1.0
    assert r2(np.full(4, 2.5), targets) == pytest.approx(0.0)


def test_r2_averages_outputs_and_handles_constant_targets():
    targets = np.array([[1.0, 7.0], [3.0, 7.0]])  # second output is constant
    assert r2(np.array([[2.0, 7.0], [3.0, 7.0]]), targets) == pytest.approx((1 - 1 / 2 + 1.0) / 2)
    assert r2(np.array([[1.0, 6.0], [3.0, 7.0]]), targets) == pytest.approx((1.0 + 0.0) / 2)


def test_accuracies_by_hand():
    assert accuracy(np.array([0, 2, 1, 1]), np.array([0, 2, 2, 1])) == 0.75
    assert binary_accuracy(np.array([1, 0, 1, 0]), np.array([[1.0], [0.0], [0.0], [0.0]])) == 0.75
    assert binary_accuracy(np.array([[1, 0], [0, 0]]), np.array([[0.9, 0.2], [0.4, 1.0]])) == 0.75


def test_score_reports_what_fits_the_task():
    assert set(score("regression", np.zeros((2, 1)), np.ones((2, 1)))) == {"rmse", "mae", "r2"}
    assert set(score("binary", np.zeros(2, np.int64), np.ones((2, 1)))) == {"accuracy"}
    assert set(score("classification", np.zeros(2, np.int64), np.ones(2, np.int64))) == {"accuracy"}
