"""Building plans (graphnet.compiler.plans): the graph a plan kind computes, the
passes run in order for it, and the steps no op owns.
"""
from __future__ import annotations

import numpy as np
import pytest

import graphnet as gn
from graphnet import PlanError
from graphnet.compiler import build_plan, check_memory, plan_graph, regularization_steps, sgd_update_decisions
from graphnet.graph import build_graph
from graphnet.kernels import get_backend
from graphnet.parameters import ParameterStore

import reference  # tests/ helpers, on sys.path via conftest.py
from compiler_specs import affine, network, node

F64 = np.dtype(np.float64)


def compiled_parts(spec, dtype=F64, seed=0):
    """(graph, parameter store with initialized weights, numpy kernels): what build_plan takes."""
    graph = build_graph(spec)
    store = ParameterStore(graph, dtype)
    store.initialize(np.random.default_rng(seed))
    return graph, store, get_backend("numpy")


def softmax_head_spec(l2=0.0):
    spec = network([affine("fc1", "x", 5), node("h1", "relu", "fc1"), affine("fc2", "h1", 3)], ["fc2"],
                   loss_inputs=["fc2", "y"])
    return spec.model_copy(update={"l2": l2}) if l2 else spec


def test_build_plan_compiles_a_graph_without_a_network():
    spec = softmax_head_spec()
    graph, store, kernels = compiled_parts(spec)
    plan = build_plan(graph, "train", 4, store=store, kernels=kernels, dtype=F64, rng=np.random.default_rng(1))
    inputs, labels = reference.random_batch(spec, 4)
    loss = plan.run(inputs, labels)
    params = {name: store.view(name) for name in store.names()}
    _, expected, _ = reference.run_reference(spec, params, {}, inputs, labels, mode="train")
    np.testing.assert_allclose(loss, expected, rtol=1e-12)
    assert [str(d) for d in plan.fusions] == ["affine+activation: fc1 + h1 fused"]
    assert plan.capacity == 4 and plan.backend == "numpy" and not np.all(store.grads == 0)


@pytest.mark.parametrize("kind, mode, loss, backward", [
    ("infer", "eval", None, False),
    ("eval_loss", "eval", "loss", False),
    ("train_loss", "train", "loss", False),
    ("train", "train", "loss", True),
    ("train_sgd", "train", "loss", True),
    ("train_update", "train", "loss", True),
])
def test_each_plan_kind_runs_its_mode_loss_and_backward(kind, mode, loss, backward):
    graph, store, kernels = compiled_parts(softmax_head_spec())
    plan = build_plan(graph, kind, 2, store=store, kernels=kernels, dtype=F64, rng=np.random.default_rng(0))
    assert (plan.mode, plan.schedule.loss, plan.schedule.backward) == (mode, loss, backward)
    assert list(plan.schedule.outputs) == (["fc2"] if kind == "infer" else [])


def test_a_plan_with_a_loss_is_refused_for_a_network_without_one():
    graph, store, kernels = compiled_parts(network([affine("fc", "x", 3)], ["fc"]))
    with pytest.raises(PlanError, match="network 't' has no loss: it can only run forward"):
        build_plan(graph, "eval_loss", 2, store=store, kernels=kernels, dtype=F64, rng=np.random.default_rng(0))


def test_plan_graph_fuses_unless_told_not_to():
    graph = build_graph(softmax_head_spec())
    fused = plan_graph(graph, "infer")
    assert [n.id for n in fused.fused.nodes] == ["fc1", "fc2", "loss"] and fused.renamed == {"h1": "fc1"}
    unfused = plan_graph(graph, "infer", fuse_ops=False)
    assert unfused.fused is graph and unfused.decisions == [] and unfused.renamed == {}


@pytest.mark.parametrize("kind", ["eval_loss", "train"])
def test_regularization_adds_the_l2_term_over_the_weights_only(kind):
    l2 = 0.25
    graph, store, kernels = compiled_parts(softmax_head_spec(l2=l2))
    schedule = build_plan(graph, kind, 2, store=store, kernels=kernels, dtype=F64,
                          rng=np.random.default_rng(0)).schedule
    (step,) = [s for s in regularization_steps(graph, schedule, store, kernels) if s.returns_loss]
    store.grads.fill(0)
    expected = 0.5 * l2 * sum(np.sum(store.view(name) ** 2) for name in ("fc1.W", "fc2.W"))
    np.testing.assert_allclose(step.fn(), expected, rtol=1e-12)
    if kind == "train":  # and its gradient, l2 * W, lands in the weight gradients only
        np.testing.assert_allclose(store.grad_view("fc1.W"), l2 * store.view("fc1.W"), rtol=1e-12)
        assert not store.grad_view("fc1.b").any()


def test_unreached_parameters_get_a_zeroing_step():
    spec = network([affine("fc", "x", 3), affine("side", "x", 2)], ["fc", "side"], loss_inputs=["fc", "y"])
    graph, store, kernels = compiled_parts(spec)
    schedule = build_plan(graph, "train", 2, store=store, kernels=kernels, dtype=F64,
                          rng=np.random.default_rng(0)).schedule
    (step,) = regularization_steps(graph, schedule, store, kernels)
    assert step.kernel == "zero 2 unreached gradients"
    store.grads.fill(1.0)
    step.fn()
    assert not store.grad_view("side.W").any() and not store.grad_view("side.b").any()
    assert store.grad_view("fc.W").all()


def test_sgd_update_decisions_name_every_parameter_and_why_not():
    decisions = sgd_update_decisions(["fc.W", "fc.b"], frozenset({"fc.W"}), "")
    assert [str(d) for d in decisions] == [
        "sgd-update-in-backward: fc.W fused",
        "sgd-update-in-backward: fc.b not fused (updated after backward, from its gradient)"]
    refused = sgd_update_decisions(["fc.W"], frozenset(), "no cblas here")
    assert [str(d) for d in refused] == ["sgd-update-in-backward: fc.W not fused (no cblas here)"]


def test_check_memory_refuses_before_allocating_and_names_the_network():
    graph = build_graph(softmax_head_spec())
    check_memory(graph, F64, 4, limit=10**6)
    with pytest.raises(PlanError, match=r"network 't' would need about .* at batch 4\), over the limit of"):
        check_memory(graph, F64, 4, limit=100)


def test_training_updates_running_statistics_off_the_loss_path():
    """A train plan returns no outputs and drops what the loss does not need, except
    nodes with running statistics: a batchnorm that only feeds an output still learns
    its statistics in training, as it would in an eager framework."""
    spec = gn.parse_network({
        "inputs": {"x": {"shape": [4]}}, "labels": {"y": {"classes": 3}},
        "nodes": [affine("fc1", "x", 3), node("bn", "batchnorm", "x", momentum=0.0),
                  node("loss", "softmax_cross_entropy", "fc1", "y")],
        "outputs": ["fc1", "bn"], "loss": "loss"})
    net = gn.compile(spec, batch_size=8, dtype="float64")
    inputs, labels = reference.random_batch(spec, 8)
    net.train_step(inputs, labels)
    np.testing.assert_allclose(net.state["bn.running_mean"], inputs["x"].mean(axis=0), rtol=1e-12)
    assert "bn" in [step.node for step in net.plan("train").steps]
