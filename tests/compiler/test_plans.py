"""Building plans (graphnet.compiler.plans): the graph a plan kind computes, the
passes run in order for it, and the steps no op owns.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from graphnet.kernels import get_backend

import graphnet as gn
from graphnet import PlanError
from graphnet.compiler import (
    PLAN_KINDS,
    PlanSpec,
    build_plan,
    check_memory,
    plan_graph,
    plan_kind,
    regularization_steps,
    sgd_update_decisions,
)
from graphnet.compiler.graph import build_graph
from graphnet.compiler.parameters import ParameterStore
from graphnet.ops.target import KernelSwitches, Target

from tests._support import reference
from tests._support.compiler_specs import affine, network, node

F64 = np.dtype(np.float64)


def compiled_parts(spec, dtype=F64, seed=0):
    """(graph, parameter store with initialized weights, numpy kernels): what build_plan takes."""
    graph = build_graph(spec)
    store = ParameterStore(graph, dtype)
    store.initialize(np.random.default_rng(seed))
    return graph, store, get_backend("numpy")


def plan_of(graph, store, kernels, kind, capacity=2, seed=0, **target):
    """build_plan for a plan of `kind` on a Target of `kernels` in the store's dtype (no GEMM unless given)."""
    return build_plan(graph, PlanSpec(PLAN_KINDS[kind], capacity), Target(kernels, store.dtype, **target),
                      store=store, rng=np.random.default_rng(seed))


def softmax_head_spec(l2=0.0):
    spec = network([affine("fc1", "x", 5), node("h1", "relu", "fc1"), affine("fc2", "h1", 3)], ["fc2"],
                   loss_inputs=["fc2", "y"])
    return spec.model_copy(update={"l2": l2}) if l2 else spec


def test_build_plan_compiles_a_graph_without_a_network():
    spec = softmax_head_spec()
    graph, store, kernels = compiled_parts(spec)
    plan = plan_of(graph, store, kernels, "train", capacity=4, seed=1)
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
    plan = plan_of(graph, store, kernels, kind)
    assert (plan.mode, plan.schedule.loss, plan.schedule.backward) == (mode, loss, backward)
    assert list(plan.schedule.outputs) == (["fc2"] if kind == "infer" else [])
    record = PLAN_KINDS[kind]
    assert plan.kind is record and (record.mode, record.has_loss, record.backward) == (mode, loss is not None, backward)


def test_plan_kinds_are_records_from_one_table():
    assert {name: (k.mode, k.runs_to, k.backward, k.update) for name, k in PLAN_KINDS.items()} == {
        "infer": ("eval", "outputs", False, "none"),
        "eval_loss": ("eval", "loss", False, "none"),
        "train_loss": ("train", "loss", False, "none"),
        "train": ("train", "loss", True, "none"),
        "train_sgd": ("train", "loss", True, "sgd"),
        "train_update": ("train", "loss", True, "rule"),
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        PLAN_KINDS["train"].backward = False  # type: ignore[misc]
    assert plan_kind("train_sgd") is PLAN_KINDS["train_sgd"] and plan_kind(PLAN_KINDS["infer"]) is PLAN_KINDS["infer"]
    with pytest.raises(PlanError, match="unknown plan kind 'train_sdg'; did you mean 'train_sgd'"):
        plan_kind("train_sdg")


def test_a_new_kind_is_built_from_its_record_not_its_name():
    """build_plan reads the record's fields: a kind under a name it has never seen builds the plan they say."""
    graph, store, kernels = compiled_parts(softmax_head_spec())
    unnamed = dataclasses.replace(PLAN_KINDS["train_update"], name="my_kind")
    plan = build_plan(graph, PlanSpec(unnamed, 2), Target(kernels, F64), store=store, rng=np.random.default_rng(0))
    assert plan.kind is unnamed and plan.updates_params
    assert any(step.kernel.startswith("update[") for step in plan.steps)


def test_build_plan_takes_the_kernel_switches_from_the_target_not_from_the_settings():
    graph, store, kernels = compiled_parts(softmax_head_spec())
    on = Target(kernels, F64, switches=KernelSwitches(small_batch_rows=1))
    with gn.config_context(small_batch_rows=0):
        plan = build_plan(graph, PlanSpec(PLAN_KINDS["infer"], 2), on, store=store, rng=np.random.default_rng(0))
    assert "affine_small_forward" in plan.describe()
    with gn.config_context(small_batch_rows=1):
        plan = plan_of(graph, store, kernels, "infer")
    assert "affine_small_forward" not in plan.describe()


def test_a_plan_with_a_loss_is_refused_for_a_network_without_one():
    graph, store, kernels = compiled_parts(network([affine("fc", "x", 3)], ["fc"]))
    with pytest.raises(PlanError, match="network 't' has no loss: it can only run forward"):
        plan_of(graph, store, kernels, "eval_loss")


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
    schedule = plan_of(graph, store, kernels, kind).schedule
    (step,) = [s for s in regularization_steps(graph, schedule, store, kernels) if s.returns_loss]
    store.grads.fill(0)
    expected = 0.5 * l2 * sum(np.sum(store.view(name) ** 2) for name in ("fc1.W", "fc2.W"))
    assert [str(ref) for ref in step.args] == ["[fc1.W..fc2.W]", "d[fc1.W..fc2.W]"][:len(step.args)]
    np.testing.assert_allclose(step.fn(*(bind(store, ref) for ref in step.args)), expected, rtol=1e-12)
    if kind == "train":  # and its gradient, l2 * W, lands in the weight gradients only
        np.testing.assert_allclose(store.grad_view("fc1.W"), l2 * store.view("fc1.W"), rtol=1e-12)
        assert not store.grad_view("fc1.b").any()


def test_unreached_parameters_get_a_zeroing_step():
    spec = network([affine("fc", "x", 3), affine("side", "x", 2)], ["fc", "side"], loss_inputs=["fc", "y"])
    graph, store, kernels = compiled_parts(spec)
    schedule = plan_of(graph, store, kernels, "train").schedule
    (step,) = regularization_steps(graph, schedule, store, kernels)
    assert step.kernel == "zero 2 unreached gradients"
    assert [str(ref) for ref in step.args] == ["side.dW", "side.db"] and step.writes == {0, 1}
    store.grads.fill(1.0)
    step.fn(*(bind(store, ref) for ref in step.args))
    assert not store.grad_view("side.W").any() and not store.grad_view("side.b").any()
    assert store.grad_view("fc.W").all()


def bind(store, ref):
    """The array a plan binds `ref` (a parameter, gradient or span ref) to."""
    if ref.kind in ("param_span", "grad_span"):
        return (store.values if ref.kind == "param_span" else store.grads)[store.span(ref.name)]
    return store.view(ref.name) if ref.kind == "param" else store.grad_view(ref.name)


@pytest.mark.parametrize("kind", ["eval_loss", "train", "train_sgd", "train_update"])
def test_every_step_the_compiler_adds_declares_what_it_reads_and_writes(kind):
    """The steps no op owns (zeroing, the l2 term, the updates) bind their arrays from refs, as op steps do,
    so describe() shows them."""
    spec = network([affine("fc", "x", 3), affine("side", "x", 2)], ["fc", "side"], loss_inputs=["fc", "y"])
    graph, store, kernels = compiled_parts(spec.model_copy(update={"l2": 0.1}))
    plan = plan_of(graph, store, kernels, kind)
    added = [step for step in plan.steps if step.node.startswith("(") or step.kernel.startswith("update[")]
    assert added, "no compiler step in this plan"
    for step in added:
        assert step.args and all(ref is not None for ref in step.args), step.kernel
        if kind != "eval_loss":
            assert step.writes, step.kernel
    lines = plan.describe().splitlines()
    for step in added:
        (line,) = [line for line in lines if f"  {step.kernel}  " in line]
        assert all(str(ref) in line for ref in step.args), line


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
    net.step(inputs, labels)
    np.testing.assert_allclose(net.state["bn.running_mean"], inputs["x"].mean(axis=0), rtol=1e-12)
    assert "bn" in [step.node for step in net.plan("train").steps]
