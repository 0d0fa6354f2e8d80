"""Pass 1, fusion (graphnet.compiler.fusion): which pairs fuse, why a fusion did
not fire, the values it renames, and that fused networks compute what unfused ones do.
"""
from __future__ import annotations

import numpy as np
import pytest

import graphnet as gn
from graphnet.compiler import fuse, fuse_epilogues, fuse_into_consumers
from graphnet.compiler.graph import build_graph

from tests._support import reference
from tests._support.compiler_specs import affine, network, node


def test_affine_relu_fuses_and_keeps_ids_and_parameter_names():
    spec = network([affine("fc1", "x", 5), node("h1", "relu", "fc1"), affine("fc2", "h1", 3)], ["fc2"],
                   loss_inputs=["fc2", "y"])
    graph = build_graph(spec)
    fused, decisions, renamed = fuse_epilogues(graph)
    assert [(d.rule, d.nodes, d.fired) for d in decisions] == [("affine+activation", ("fc1", "h1"), True)]
    assert renamed == {"h1": "fc1"}
    assert [n.id for n in fused.nodes] == ["fc1", "fc2", "loss"]
    assert fused.node("fc1").spec.activation == "relu"
    assert fused.node("fc2").inputs == ("fc1",)
    assert [(p.name, p.shape) for p in fused.params] == [(p.name, p.shape) for p in graph.params]
    assert str(decisions[0]) == "affine+activation: fc1 + h1 fused"
    # the unfused graph is untouched (passes are pure)
    assert [n.id for n in graph.nodes] == ["fc1", "h1", "fc2", "loss"]


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "sigmoid", "tanh"])
def test_every_fusable_activation_fuses_with_its_alpha(act):
    fields = {"alpha": 0.37} if act == "leaky_relu" else {}
    spec = network([affine("fc1", "x", 5), node("a", act, "fc1", **fields), affine("fc2", "a", 3)], ["fc2"])
    fused, decisions, _ = fuse_epilogues(build_graph(spec))
    assert decisions[0].fired
    assert fused.node("fc1").spec.activation == act
    if act == "leaky_relu":
        assert fused.node("fc1").spec.alpha == 0.37


@pytest.mark.parametrize("nodes, outputs, reason", [
    ([affine("fc1", "x", 5), node("h1", "relu", "fc1"), affine("fc2", "h1", 3)], ["fc2", "fc1"],
     "'fc1' is a network output"),
    ([affine("fc1", "x", 5), node("h1", "relu", "fc1"), node("s", "add", "h1", "fc1"), affine("fc2", "s", 3)],
     ["fc2"], "'fc1' has 2 readers"),
    ([affine("fc1", "x", 5, activation="tanh"), node("h1", "relu", "fc1"), affine("fc2", "h1", 3)], ["fc2"],
     "'fc1' already has activation tanh"),
], ids=["output", "two-readers", "already-activated"])
def test_affine_activation_not_fused_says_why(nodes, outputs, reason):
    graph = build_graph(network(nodes, outputs))
    fused, decisions, renamed = fuse_epilogues(graph)
    assert len(decisions) == 1 and not decisions[0].fired and renamed == {}
    assert decisions[0].reason == reason
    assert str(decisions[0]) == f"affine+activation: fc1 + h1 not fused ({reason})"
    assert [n.id for n in fused.nodes] == [n.id for n in graph.nodes]


def test_a_fusion_decision_holds_rule_nodes_fired_and_reason_only():
    from dataclasses import fields

    from graphnet.ops.lowering import FusionDecision

    assert [f.name for f in fields(FusionDecision)] == ["rule", "nodes", "fired", "reason"]


def test_identity_and_softmax_after_affine_are_not_fusion_candidates():
    spec = network([affine("fc1", "x", 5), node("i", "identity", "fc1"), affine("fc2", "i", 3),
                    node("p", "softmax", "fc2")], ["p"])
    _, decisions, _ = fuse(build_graph(spec))
    assert decisions == []


def test_softmax_cross_entropy_fuses():
    spec = gn.parse_network({
        "name": "t", "inputs": {"x": {"shape": [4]}}, "labels": {"y": {"classes": 3}},
        "nodes": [affine("fc", "x", 3), node("p", "softmax", "fc"), node("loss", "cross_entropy", "p", "y")],
        "outputs": ["fc"], "loss": "loss"})
    graph = build_graph(spec)
    fused, decisions, renamed = fuse_into_consumers(graph)
    assert [(d.rule, d.nodes, d.fired) for d in decisions] == [("softmax+cross_entropy", ("p", "loss"), True)]
    assert renamed == {}  # the loss keeps its id
    assert [n.id for n in fused.nodes] == ["fc", "loss"]
    loss = fused.node("loss")
    assert loss.op == "softmax_cross_entropy" and loss.inputs == ("fc", "y")
    assert fused.loss == "loss"
    assert [p.name for p in fused.params] == [p.name for p in graph.params]


@pytest.mark.parametrize("outputs, extra, reason", [
    (["fc", "p"], [], "'p' is a network output"),
    (["fc", "q"], [node("q", "relu", "p")], "'p' has 2 readers"),
], ids=["output", "two-readers"])
def test_softmax_cross_entropy_not_fused_says_why(outputs, extra, reason):
    spec = gn.parse_network({
        "name": "t", "inputs": {"x": {"shape": [4]}}, "labels": {"y": {"classes": 3}},
        "nodes": [affine("fc", "x", 3), node("p", "softmax", "fc"), *extra,
                  node("loss", "cross_entropy", "p", "y")],
        "outputs": outputs, "loss": "loss"})
    fused, decisions, _ = fuse_into_consumers(build_graph(spec))
    assert [(d.fired, d.reason) for d in decisions] == [(False, reason)]
    assert fused.node("loss").op == "cross_entropy"


def test_fuse_runs_both_passes_and_network_params_do_not_depend_on_fusion():
    spec = gn.parse_network({
        "name": "t", "inputs": {"x": {"shape": [4]}}, "labels": {"y": {"classes": 3}},
        "nodes": [affine("fc1", "x", 5), node("h", "sigmoid", "fc1"), affine("fc2", "h", 3),
                  node("p", "softmax", "fc2"), node("loss", "cross_entropy", "p", "y")],
        "outputs": ["fc2"], "loss": "loss"})
    fused, decisions, renamed = fuse(build_graph(spec))
    assert [d.rule for d in decisions if d.fired] == ["affine+activation", "softmax+cross_entropy"]
    assert renamed == {"h": "fc1"}
    assert [n.op for n in fused.nodes] == ["affine", "affine", "softmax_cross_entropy"]
    a = gn.compile(spec, batch_size=4, dtype="float64", seed=5, fuse=True)
    b = gn.compile(spec, batch_size=4, dtype="float64", seed=5, fuse=False)
    assert list(a.params) == list(b.params)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    assert b.fusion_decisions() == [] and len(a.fusion_decisions()) == 2
    inputs, labels = reference.random_batch(spec, 4)
    np.testing.assert_allclose(a.loss(inputs, labels)[0], b.loss(inputs, labels)[0], rtol=1e-12, atol=1e-14)


def test_fused_activation_stays_available_as_a_network_output():
    """Bug found by these tests: fusing affine+relu renamed the relu's value to the
    affine's id, and forward(output="h1") raised KeyError."""
    spec = network([affine("fc1", "x", 5), node("h1", "relu", "fc1"), affine("fc2", "h1", 3)], ["fc2", "h1"],
                   loss_inputs=["fc2", "y"])
    net = gn.compile(spec, batch_size=4, dtype="float64")
    assert net.fusion_decisions()[0].fired
    inputs, _ = reference.random_batch(spec, 4)
    values, _, _ = reference.run_reference(spec, dict(net.params), dict(net.state), inputs)
    np.testing.assert_allclose(net.forward(inputs, output="h1"), values["h1"], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(net.forward(inputs, output="fc2"), values["fc2"], rtol=1e-12, atol=1e-14)
    assert set(net.plan("infer").schedule.outputs) == {"fc2", "h1"}
    assert net.plan("train").schedule.outputs == {}  # only inference plans return outputs


def test_a_softmax_output_still_fuses_with_its_cross_entropy_for_training():
    """Keras' Dense(softmax) + categorical cross-entropy: the probabilities are the
    network's output, yet training runs the stable fused loss on the logits."""
    spec = gn.parse_network({
        "inputs": {"x": {"shape": [4]}}, "labels": {"y": {"classes": 3}},
        "nodes": [affine("fc1", "x", 3), node("p", "softmax", "fc1"), node("loss", "cross_entropy", "p", "y")],
        "outputs": ["p"], "loss": "loss"})
    net = gn.compile(spec, batch_size=4, dtype="float64")
    assert "softmax_cross_entropy" in [s.kernel for s in net.plan("train").steps]
    assert "softmax_forward" in [s.kernel for s in net.plan("infer").steps]
    inputs, labels = reference.random_batch(spec, 4)
    values, loss, _ = reference.run_reference(spec, dict(net.params), dict(net.state), inputs, labels, mode="train")
    np.testing.assert_allclose(net.step(inputs, labels), loss, rtol=1e-10)
    np.testing.assert_allclose(net.forward(inputs), values["p"], rtol=1e-12, atol=1e-14)
