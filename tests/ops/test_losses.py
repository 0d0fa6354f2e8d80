"""The loss ops' own fields (the op table's tests run their examples): huber's delta, the
class weights of softmax_cross_entropy and sigmoid_binary_cross_entropy, and the tasks mae
and huber train for."""
from __future__ import annotations

import numpy as np
import pytest

import graphnet as gn
from graphnet.ops.tasks import task_of


def network(loss: dict, labels: dict, units: int = 3) -> dict:
    return {"inputs": {"x": {"shape": [4]}}, "labels": labels,
            "nodes": [{"id": "fc", "op": "affine", "inputs": ["x"], "units": units},
                      {"id": "loss", "inputs": ["fc", "y"], **loss}],
            "outputs": ["fc"], "loss": "loss"}


@pytest.mark.parametrize("op", ["mae", "huber"])
def test_mae_and_huber_train_regressions(op):
    spec = gn.parse_network(network({"op": op}, {"y": {"shape": [3]}}))
    assert task_of(spec) == "regression"


def test_huber_delta_must_be_positive():
    with pytest.raises(gn.SpecError, match=r"nodes\[1\]\.delta"):
        gn.parse_network(network({"op": "huber", "delta": 0}, {"y": {"shape": [3]}}))


def test_huber_with_a_huge_delta_is_half_the_mse_and_with_a_tiny_one_delta_times_the_mae():
    X = np.random.default_rng(0).standard_normal((6, 4))
    y = np.random.default_rng(1).standard_normal((6, 3))

    def loss(op: str, **fields) -> float:
        net = gn.compile(network({"op": op, **fields}, {"y": {"shape": [3]}}), dtype="float64", seed=0)
        return net.evaluate_loss(X, y)

    assert loss("huber", delta=1e6) == pytest.approx(0.5 * loss("mse"), rel=1e-12)
    assert loss("huber", delta=1e-9) == pytest.approx(1e-9 * loss("mae"), rel=1e-6)


def test_class_weights_need_one_weight_per_class():
    with pytest.raises(gn.SpecError, match=r"nodes\[1\].*class_weight has 2 weights but labels 'y' have 3 classes"):
        gn.parse_network(network({"op": "softmax_cross_entropy", "class_weight": [1, 2]}, {"y": {"classes": 3}}))
    with pytest.raises(gn.SpecError, match=r"nodes\[1\]\.class_weight"):
        gn.parse_network(network({"op": "sigmoid_binary_cross_entropy", "class_weight": [1, 2, 3]},
                                 {"y": {"shape": [3]}}))
    with pytest.raises(gn.SpecError, match=r"nodes\[1\]\.class_weight"):
        gn.parse_network(network({"op": "softmax_cross_entropy", "class_weight": [1, 0, 2]}, {"y": {"classes": 3}}))


def test_class_weights_are_the_state_the_weighted_kernel_reads():
    """Equal weights change nothing; weights [1, 3, 1] are the loss of a batch in which
    class 1's examples appear three times (PyTorch's CrossEntropyLoss(weight=w))."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((8, 4)), np.array([0, 1, 2, 1, 0, 2, 2, 1])

    def net(weights=None):
        loss = {"op": "softmax_cross_entropy", **({"class_weight": weights} if weights else {})}
        return gn.compile(network(loss, {"y": {"classes": 3}}), dtype="float64", seed=0)

    plain, equal, weighted = net(), net([2.0, 2.0, 2.0]), net([1.0, 3.0, 1.0])
    np.testing.assert_array_equal(weighted.state["loss.class_weight"], [1.0, 3.0, 1.0])
    assert equal.evaluate_loss(X, y) == pytest.approx(plain.evaluate_loss(X, y), rel=1e-12)
    repeated = np.concatenate([np.arange(8)] + [np.flatnonzero(y == 1)] * 2)
    assert weighted.evaluate_loss(X, y) == pytest.approx(plain.evaluate_loss(X[repeated], y[repeated]), rel=1e-12)
