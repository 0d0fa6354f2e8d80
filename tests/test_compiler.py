"""Compiler passes, each alone: fusion (and why a fusion did not fire),
lowering with autodiff (reverse schedule, gradient accumulation, pruning),
and memory planning (liveness, reuse, best fit, alignment, keep-alive,
in-place merges), on hand-built step lists, real networks and random DAGs.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import graphnet as gn
from graphnet.compiler import (
    ALIGN,
    PLANNED_KINDS,
    fuse,
    fuse_epilogues,
    fuse_into_consumers,
    lower,
    plan_memory,
)
from graphnet.graph import build_graph
from graphnet.kernels import get_backend
from graphnet.lowering import Ref, Step


import reference  # tests/ helpers, on sys.path via conftest.py
import strategies

LINE = ALIGN // 4  # elements per alignment unit (offsets are in elements per example)


def network(nodes, outputs, *, classes=3, input_shape=(4,), loss_inputs=None):
    doc = {"name": "t", "inputs": {"x": {"shape": list(input_shape)}}, "labels": {"y": {"classes": classes}},
           "nodes": list(nodes), "outputs": outputs}
    if loss_inputs:
        doc["nodes"].append({"id": "loss", "op": "softmax_cross_entropy", "inputs": loss_inputs})
        doc["loss"] = "loss"
    return gn.parse_network(doc)


def affine(node_id, src, units, **fields):
    return {"id": node_id, "op": "affine", "inputs": [src], "units": units, **fields}


def node(node_id, op, *inputs, **fields):
    return {"id": node_id, "op": op, "inputs": list(inputs), **fields}


# ---- fusion -----------------------------------------------------------------------------------


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

    from graphnet.lowering import FusionDecision

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
    np.testing.assert_allclose(net.train_step(inputs, labels), loss, rtol=1e-10)
    np.testing.assert_allclose(net.forward(inputs), values["p"], rtol=1e-12, atol=1e-14)


# ---- lowering and autodiff ----------------------------------------------------------------------


def lowered(spec, mode="train", *, with_loss=True, with_backward=True, fused=True):
    graph = build_graph(spec)
    if fused:
        graph = fuse(graph).graph
    return lower(graph, mode, get_backend("numpy"), np.dtype(np.float64), np.random.default_rng(0),
                 with_loss=with_loss, with_backward=with_backward)


def residual_spec():
    return network([affine("stem", "x", 5, activation="relu"), affine("f1", "stem", 5, activation="relu"),
                    affine("f2", "f1", 5), node("sum", "add", "stem", "f2"), node("out", "relu", "sum"),
                    affine("head", "out", 3)], ["head"], loss_inputs=["head", "y"])


def test_backward_schedule_is_the_reverse_of_forward():
    schedule = lowered(residual_spec())
    forward = [s.node for s in schedule.steps[:schedule.n_forward]]
    assert forward == ["stem", "f1", "f2", "sum", "out", "head", "loss"]
    backward = [s.node for s in schedule.steps[schedule.n_forward:] if not s.kernel.startswith("add_into")]
    order = [n for i, n in enumerate(backward) if i == 0 or backward[i - 1] != n]
    assert order == ["head", "out", "sum", "f2", "f1", "stem"]
    assert schedule.backward and schedule.loss == "loss"


def test_gradient_of_a_value_with_several_readers_is_accumulated():
    schedule = lowered(residual_spec())
    adds = [s for s in schedule.steps if s.kernel.startswith("add_into")]
    # stem is read by f1 and sum: one accumulation into dstem
    assert len(adds) == 1
    whole, part = adds[0].args
    assert whole == Ref("grad", "stem", (5,)) and part.kind == "grad" and part.name.startswith("stem#")
    # the part is written by an earlier backward step (f1's), then added into the whole
    index = schedule.steps.index(adds[0])
    writers = [s for s in schedule.steps[:index] if any(j in s.writes and ref == part for j, ref in enumerate(s.args))]
    assert [s.node for s in writers] == ["f1"]


def test_value_read_three_times_gets_two_accumulations():
    spec = network([affine("fc", "x", 5), node("s", "add", "fc", "fc", "fc"), affine("head", "s", 3)],
                   ["head"], loss_inputs=["head", "y"])
    schedule = lowered(spec)
    adds = [s for s in schedule.steps if s.kernel.startswith("add_into")]
    assert len(adds) == 2
    assert {s.args[0] for s in adds} == {Ref("grad", "fc", (5,))}


@pytest.mark.filterwarnings("ignore::graphnet.SpecWarning")  # the dead nodes are the point here
def test_nodes_no_target_needs_are_pruned_and_their_gradients_zeroed():
    with pytest.warns(gn.SpecWarning, match="'unused' .* is not connected"):
        spec = network([affine("fc", "x", 5, activation="relu"), affine("unused", "fc", 4),
                        node("dead", "tanh", "unused"), affine("head", "fc", 3)], ["head"],
                       loss_inputs=["head", "y"])
    schedule = lowered(spec)
    assert {s.node for s in schedule.steps} == {"fc", "head", "loss"}
    net = gn.compile(spec, batch_size=4, dtype="float64")
    inputs, labels = reference.random_batch(spec, 4)
    net.grads["unused.W"][...] = 7.0
    net.grads["unused.b"][...] = 7.0
    net.train_step(inputs, labels)
    assert not net.grads["unused.W"].any() and not net.grads["unused.b"].any()
    assert net.grads["fc.W"].any()


def test_values_upstream_of_every_parameter_get_no_gradient():
    spec = network([node("r", "relu", "x"), node("t", "tanh", "r"), affine("head", "t", 3)], ["head"],
                   loss_inputs=["head", "y"])
    schedule = lowered(spec)
    grads = {ref.name for s in schedule.steps for ref in s.args if ref is not None and ref.kind == "grad"}
    assert grads == {"head"}
    assert [s.node for s in schedule.steps[schedule.n_forward:]] == ["head"]


def test_values_not_needed_by_backward_are_not_kept():
    spec = network([affine("fc", "x", 6, bias=False), node("bn", "batchnorm", "fc"), node("h", "relu", "bn"),
                    affine("head", "h", 3)], ["head"], loss_inputs=["head", "y"])
    schedule = lowered(spec)
    memory = plan_memory(schedule.steps, {("value", "head")})
    # batchnorm's backward reads its saved xhat, not its input: fc dies in the forward pass
    assert memory.buffers[("value", "fc")].last < schedule.n_forward


def test_eval_schedules_have_no_backward_and_backward_needs_train_mode():
    spec = residual_spec()
    schedule = lowered(spec, "eval", with_backward=False)
    assert schedule.n_forward == len(schedule.steps)
    assert not any(ref.kind == "grad" for s in schedule.steps for ref in s.args if ref is not None
                   and s.node != "loss")
    infer = lowered(spec, "eval", with_loss=False, with_backward=False)
    assert "loss" not in {s.node for s in infer.steps} and infer.loss is None
    with pytest.raises(ValueError, match="backward"):
        lowered(spec, "eval", with_backward=True)
    with pytest.raises(ValueError, match="backward"):
        lowered(spec, "train", with_loss=False, with_backward=True)


def test_view_ops_cost_no_steps():
    spec = network([node("f", "flatten", "x"), node("i", "identity", "f"), node("d", "dropout", "i", rate=0.3),
                    affine("head", "d", 3)], ["head"], input_shape=(2, 2), loss_inputs=["head", "y"])
    eval_schedule = lowered(spec, "eval", with_backward=False)
    assert [s.node for s in eval_schedule.steps] == ["head", "loss"]
    assert eval_schedule.steps[0].args[0] == Ref("input", "x", (4,))
    train = lowered(spec, "train")
    assert "d" in {s.node for s in train.steps}  # dropout with rate > 0 runs in train mode only


# ---- plan_memory on hand-built step lists -------------------------------------------------------


def _noop(*arrays):
    pass


def V(name, size=16, kind="value"):
    return Ref(kind, name, (size,))


def step(name, reads=(), writes=(), inplace=(), fn_inplace=None):
    args = tuple(reads) + tuple(writes)
    return Step(name, "k", _noop, args, writes=frozenset(range(len(reads), len(args))), inplace=inplace,
                fn_inplace=fn_inplace)


def test_liveness_intervals():
    a, b, c = V("a"), V("b"), V("c", kind="grad")
    steps = [step("s0", [Ref("input", "x", (16,))], [a]), step("s1", [a], [b]), step("s2", [b], [c]),
             step("s3", [a, c], [])]
    memory = plan_memory(steps, set())
    spans = {key: (buf.first, buf.last) for key, buf in memory.buffers.items()}
    assert spans == {("value", "a"): (0, 3), ("value", "b"): (1, 2), ("grad", "c"): (2, 3)}
    assert memory.naive_size() == 48


def test_buffers_reuse_storage_after_their_last_use():
    a, b, c, d = V("a"), V("b"), V("c"), V("d")
    steps = [step("s0", [], [a]), step("s1", [a], [b]), step("s2", [b], [c]), step("s3", [c], [d])]
    memory = plan_memory(steps, set())
    off = {key[1]: buf.offset for key, buf in memory.buffers.items()}
    assert off["a"] != off["b"] and off["b"] != off["c"] and off["c"] != off["d"]
    assert off["c"] == off["a"] and off["d"] == off["b"]  # ping-pong
    assert memory.arena_size == 32


def test_best_fit_picks_the_smallest_free_block():
    big, sep, small, late = V("big", 64), V("sep", 16), V("small", 16), V("late", 16)
    steps = [
        step("s0", [], [big, sep]),
        step("s1", [big], [small]),
        step("s2", [small], []),
        step("s3", [sep], [late]),  # big [0, 64) and small [80, 96) are free; sep sits between them
        step("s4", [late, sep], []),
    ]
    memory = plan_memory(steps, set())
    off = {key[1]: buf.offset for key, buf in memory.buffers.items()}
    assert off == {"big": 0, "sep": 64, "small": 80, "late": 80}  # first fit would say 0
    assert memory.arena_size == 96


def test_freed_neighbours_merge_into_one_block():
    a, b, c = V("a", 16), V("b", 16), V("c", 32)
    steps = [step("s0", [], [a, b]), step("s1", [a, b], []), step("s2", [], [c]), step("s3", [c], [])]
    memory = plan_memory(steps, set())
    assert memory.buffers[("value", "c")].offset == 0
    assert memory.arena_size == 32


def test_offsets_are_aligned_to_cache_lines():
    a, b, c = V("a", 1), V("b", 3), V("c", LINE + 1)
    memory = plan_memory([step("s0", [], [a, b, c]), step("s1", [a, b, c], [])], set())
    offsets = sorted(buf.offset for buf in memory.buffers.values())
    assert all(o % LINE == 0 for o in offsets)
    assert offsets == [0, LINE, 2 * LINE]
    assert memory.arena_size == 4 * LINE


def test_keep_alive_buffers_are_never_reused():
    a, b, c = V("a"), V("b"), V("c")
    steps = [step("s0", [], [a]), step("s1", [a], [b]), step("s2", [b], [c])]
    shared = plan_memory(steps, set())
    assert shared.buffers[("value", "c")].offset == shared.buffers[("value", "a")].offset
    kept = plan_memory(steps, {("value", "a"), ("value", "missing")})
    assert kept.buffers[("value", "a")].last == len(steps)
    offs = [buf.offset for buf in kept.buffers.values()]
    assert len(set(offs)) == 3


def test_share_false_gives_every_buffer_its_own_storage():
    a, b, c = V("a"), V("b", 5), V("c")
    steps = [step("s0", [], [a]), step("s1", [a], [b], inplace=((0, 1),)), step("s2", [b], [c], inplace=((0, 1),))]
    memory = plan_memory(steps, set(), share=False)
    assert len({buf.offset for buf in memory.buffers.values()}) == 3
    assert memory.arena_size == 3 * LINE
    assert memory.inplace_pairs == [] and memory.merged_steps == set()


def test_inplace_pair_merges_when_the_input_dies_there():
    a, b, c = V("a"), V("b"), V("c")
    steps = [step("s0", [], [a]), step("s1", [a], [b], inplace=((0, 1),)), step("s2", [b], [c], inplace=((0, 1),)),
             step("s3", [c], [])]
    memory = plan_memory(steps, set())
    bufs = memory.buffers
    assert bufs[("value", "a")].storage == bufs[("value", "b")].storage == bufs[("value", "c")].storage
    assert bufs[("value", "a")].offset == bufs[("value", "c")].offset
    assert memory.inplace_pairs == [(1, "a", "b"), (2, "b", "c")]
    assert memory.merged_steps == {1, 2}
    assert memory.arena_size == LINE


def test_inplace_pair_not_merged_while_the_input_is_read_later():
    a, b = V("a"), V("b")
    steps = [step("s0", [], [a]), step("s1", [a], [b], inplace=((0, 1),)), step("s2", [a, b], [])]
    memory = plan_memory(steps, set())
    assert memory.buffers[("value", "a")].storage != memory.buffers[("value", "b")].storage
    assert memory.buffers[("value", "a")].offset != memory.buffers[("value", "b")].offset
    assert memory.inplace_pairs == [] and memory.merged_steps == set()


def test_inplace_pair_not_merged_for_a_kept_output_or_different_sizes():
    a, b = V("a"), V("b")
    steps = [step("s0", [], [a]), step("s1", [a], [b], inplace=((0, 1),))]
    assert plan_memory(steps, {("value", "a")}).inplace_pairs == []
    a8 = V("a", 8)
    steps = [step("s0", [], [a8]), step("s1", [a8], [b], inplace=((0, 1),))]
    assert plan_memory(steps, set()).inplace_pairs == []


def test_inplace_pair_not_merged_when_another_argument_reads_the_same_storage():
    """Bug found by these tests: add(a, a, a) merged its output into a, then its
    second accumulation read the already-overwritten a (4a instead of 3a)."""
    a, b = V("a"), V("b")
    steps = [step("s0", [], [a]), step("s1", [a, a, a], [b], inplace=((0, 3),))]
    memory = plan_memory(steps, set())
    assert memory.inplace_pairs == [] and memory.merged_steps == set()
    assert memory.buffers[("value", "a")].offset != memory.buffers[("value", "b")].offset


def test_fn_inplace_used_when_merged():
    """A copy whose source and target share storage becomes a no-op (add's backward)."""
    a, b = V("a", kind="grad"), V("b", kind="grad")
    steps = [step("s0", [], [a]),
             Step("s1", "copy", _noop, (b, a), writes=frozenset({0}), inplace=((1, 0),), fn_inplace=print)]
    memory = plan_memory(steps, set())
    assert 1 in memory.merged_steps and memory.inplace_pairs == [(1, "da", "db")]
    # in a real plan: the last gradient copy of an add is planned away
    net = gn.compile(residual_spec(), batch_size=4)
    plan = net.plan("train")
    merged = [t for t in plan.memory.merged_steps if plan.steps[t].fn_inplace is not None]
    assert merged
    bound = plan.bind(4).steps
    fns = [fn for fn, _, _ in bound]
    for t in merged:
        assert plan.steps[t].fn_inplace in fns
    assert ", no-op" in plan.describe()


def test_unplanned_kinds_are_ignored_and_size_mismatch_is_an_error():
    steps = [step("s0", [Ref("input", "x", (3,)), Ref("param", "fc.W", (3, 4)), Ref("label", "y", ())],
                  [V("a", 4), Ref("param_grad", "fc.W", (3, 4)), Ref("fixed", "n.s", (4,))])]
    memory = plan_memory(steps, set())
    assert list(memory.buffers) == [("value", "a")]
    with pytest.raises(AssertionError, match="sizes"):
        plan_memory([step("s0", [], [V("a", 4)]), step("s1", [V("a", 5)], [])], set())


# ---- memory of real networks ------------------------------------------------------------------


def chain(widths, *, activation="relu"):
    layers = [{"op": "affine", "units": w, "activation": activation} for w in widths]
    return gn.sequential([*layers, {"op": "affine", "units": 10}], input_shape=[32], classes=10)


def _aligned(size):
    return -(-size // LINE) * LINE


def test_inference_plan_of_a_ten_layer_mlp_ping_pongs_two_regions():
    net = gn.compile(chain([64] * 10), batch_size=16)
    memory = net.plan("infer").memory
    assert len(memory.buffers) == 11
    assert len({buf.offset for buf in memory.buffers.values()}) == 2
    assert memory.arena_size == 2 * _aligned(64)
    assert memory.arena_size * 5 < memory.naive_size()


def test_inference_plan_of_a_ten_layer_mlp_of_mixed_widths_needs_two_layers_of_memory():
    widths = [32, 64, 48, 100, 16, 80, 64, 8, 128, 40]
    memory = gn.compile(chain(widths), batch_size=16).plan("infer").memory
    assert memory.arena_size <= 2 * _aligned(max(widths))
    # at most 3 regions alive at any step, and never more than what two adjacent layers need
    for t in range(len(widths) + 1):
        alive = [b for b in memory.buffers.values() if b.first <= t <= b.last]
        assert len(alive) <= 3


def test_deep_chain_plans_well_below_the_naive_sum():
    net = gn.compile(chain([64] * 16), batch_size=32)
    train = net.plan("train").memory
    assert train.arena_size <= 0.62 * train.naive_size()
    for kind in ("infer", "eval_loss", "train_loss"):
        memory = net.plan(kind).memory
        assert memory.arena_size <= 3 * _aligned(64), kind
    plan = net.plan("train")
    assert plan.arena_bytes() < plan.naive_bytes()


def test_declared_inplace_pairs_are_used_where_safe():
    spec = network([affine("fc", "x", 6, bias=False), node("bn", "batchnorm", "fc"), node("h", "relu", "bn"),
                    node("d", "dropout", "h", rate=0.5), affine("head", "d", 3)], ["head"],
                   loss_inputs=["head", "y"])
    memory = gn.compile(spec, batch_size=4).plan("train").memory
    pairs = {(read, write) for _, read, write in memory.inplace_pairs}
    assert ("fc", "bn") in pairs  # batchnorm over its input (fc is not read by backward)
    assert ("bn", "h") in pairs  # relu over batchnorm's output
    assert ("dd", "dh") in pairs and ("dh", "dbn") in pairs  # backward chain in place
    # dropout must not overwrite h: relu's backward reads h
    assert ("h", "d") not in pairs


def test_inplace_never_where_the_input_is_still_read_later():
    spec = network([affine("fc", "x", 5), node("r", "relu", "fc"), node("s", "add", "r", "fc"),
                    affine("head", "s", 3)], ["head"], loss_inputs=["head", "y"])
    for kind in ("train", "infer"):
        memory = gn.compile(spec, batch_size=4).plan(kind).memory
        pairs = {(read, write) for _, read, write in memory.inplace_pairs}
        assert ("fc", "r") not in pairs
        assert memory.buffers[("value", "fc")].offset != memory.buffers[("value", "r")].offset


def assert_memory_plan_is_sound(steps, memory):
    """No two buffers alive at one step overlap in the arena, unless they are one
    in-place chain handing over at a step that declared the pair."""
    buffers = list(memory.buffers.values())
    for buf in buffers:
        assert buf.offset % LINE == 0
        assert buf.offset + buf.size <= memory.arena_size
    for i, a in enumerate(buffers):
        for b in buffers[i + 1:]:
            if a.storage == b.storage:
                continue
            overlap_time = a.first <= b.last and b.first <= a.last
            overlap_space = a.offset < b.offset + b.size and b.offset < a.offset + a.size
            assert not (overlap_time and overlap_space), (a, b)
    groups = {}
    for buf in buffers:
        groups.setdefault(buf.storage, []).append(buf)
    for members in groups.values():
        members.sort(key=lambda b: b.first)
        for before, after in zip(members, members[1:]):
            assert after.first == before.last, (before, after)
            t = after.first
            declared = {(steps[t].args[r], steps[t].args[w]) for r, w in steps[t].inplace}
            names = {((x.kind, x.name), (y.kind, y.name)) for x, y in declared if x is not None and y is not None}
            assert (before.key, after.key) in names, (before, after, steps[t])
            # and nothing else in that step reads the storage being overwritten
            others = [ref for j, ref in enumerate(steps[t].args) if ref is not None and ref.kind in PLANNED_KINDS
                      and (ref.kind, ref.name) == before.key]
            assert len(others) == 1, steps[t]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=strategies.network_specs())
def test_memory_plans_of_random_dags_are_sound(case):
    net = gn.compile(case.spec, batch_size=4)
    for kind in ("train", "train_sgd", "train_loss", "eval_loss", "infer"):
        plan = net.plan(kind)
        assert_memory_plan_is_sound(plan.schedule.steps, plan.memory)
        assert plan.memory.arena_size <= plan.memory.naive_size() + LINE * len(plan.memory.buffers)


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
