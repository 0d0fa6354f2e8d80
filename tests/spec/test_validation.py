"""Graph-level checks (graphnet.spec.validation): names, references, arity, labels,
cycles, shapes, loss and outputs. Each error kind is checked for its JSON
location and for what its message says.
"""
from __future__ import annotations

import copy
import time
import warnings
from typing import Any

import pytest

from graphnet import SpecError, SpecWarning
from graphnet.ops import OPS
from graphnet.spec import NetworkSpec, parse, parse_network


def net(*nodes: dict[str, Any], outputs: list[str] | None = None, loss: str | None = "loss",
        inputs: dict[str, Any] | None = None, labels: dict[str, Any] | None = None) -> dict[str, Any]:
    """A network over input x (4,) and labels y (3 classes); the nodes are given."""
    doc: dict[str, Any] = {
        "inputs": inputs if inputs is not None else {"x": {"shape": [4]}},
        "labels": labels if labels is not None else {"y": {"classes": 3}},
        "nodes": list(nodes),
        "outputs": outputs or [nodes[0]["id"]],
    }
    if loss is not None:
        doc["loss"] = loss
    return doc


def fc(node_id: str, source: str, units: int = 3) -> dict[str, Any]:
    return {"id": node_id, "op": "affine", "inputs": [source], "units": units}


def sce(scores: str, labels: str = "y", node_id: str = "loss") -> dict[str, Any]:
    return {"id": node_id, "op": "softmax_cross_entropy", "inputs": [scores, labels]}


def relu(node_id: str, *sources: str) -> dict[str, Any]:
    return {"id": node_id, "op": "relu", "inputs": list(sources)}


def problems_of(doc: Any) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as info:
        parse(doc)
    assert info.value.problems
    return info.value.problems


def assert_problem(problems: list[tuple[str, str]], location: str, *parts: str) -> None:
    at = [message for loc, message in problems if loc == location]
    assert at, f"no problem at {location!r}; got {problems}"
    assert any(all(part in message for part in parts) for message in at), (
        f"no problem at {location!r} mentions {parts}; got {at}")


def test_the_base_network_is_valid():
    spec = parse(net(fc("fc1", "x"), sce("fc1"), outputs=["fc1"]))
    assert [node.id for node in spec.topological_nodes()] == ["fc1", "loss"]


# ---- names and references ---------------------------------------------------------------------


def test_unknown_reference_suggests_a_close_name():
    problems = problems_of(net(fc("fc1", "x"), relu("h", "fc_1"), sce("fc1")))
    assert_problem(problems, "nodes[1].inputs[0]", "node 'h' (relu) reads 'fc_1', which is not defined",
                   "did you mean 'fc1'?", "defined: x, y, fc1")


def test_unknown_reference_without_a_close_name_lists_what_is_defined():
    problems = problems_of(net(fc("fc1", "zzzzzz"), sce("fc1")))
    assert_problem(problems, "nodes[0].inputs[0]", "'zzzzzz', which is not defined", "(defined: x, y, fc1, loss)")
    assert "did you mean" not in problems[0][1]


def test_duplicate_id_names_the_first_use():
    problems = problems_of(net(fc("fc1", "x"), relu("fc1", "x"), sce("fc1")))
    assert_problem(problems, "nodes[1].id", "duplicate id 'fc1'", "first used by nodes[0]")


def test_node_id_that_is_an_input_or_label_name():
    problems = problems_of(net(fc("fc1", "x"), relu("x", "fc1"), relu("y", "fc1"), sce("fc1")))
    assert_problem(problems, "nodes[1].id", "'x' is already an input name")
    assert_problem(problems, "nodes[2].id", "'y' is already a label name")


def test_label_name_that_is_an_input_name():
    problems = problems_of(net(fc("fc1", "x"), sce("fc1"), labels={"y": {"classes": 3}, "x": {"classes": 2}}))
    assert_problem(problems, "labels.x", "'x' is already an input name")


def test_node_named_like_an_input_that_reads_the_input_is_not_a_cycle():
    """Regression: a node `x` reading input `x` was also reported as `cycle: x -> x`."""
    problems = problems_of(net(relu("x", "x"), fc("fc1", "x"), sce("fc1"), outputs=["fc1"]))
    assert_problem(problems, "nodes[0].id", "already an input name")
    assert not any("cycle" in message for _, message in problems), problems


def test_duplicate_reading_the_first_of_its_name_is_not_a_cycle():
    problems = problems_of(net(fc("a", "x"), relu("a", "a"), sce("a"), outputs=["a"]))
    assert_problem(problems, "nodes[1].id", "duplicate id 'a'")
    assert not any("cycle" in message for _, message in problems), problems


# ---- cycles --------------------------------------------------------------------------------------


def test_self_loop():
    problems = problems_of(net(fc("fc1", "x"), {"id": "h", "op": "add", "inputs": ["fc1", "h"]}, sce("h"),
                               outputs=["h"]))
    assert_problem(problems, "nodes[1].inputs[1]", "node 'h' reads its own output", "cycle: h -> h")


def test_three_node_cycle_names_the_path():
    doc = net(relu("a", "c"), relu("b", "a"), relu("c", "b"), fc("fc1", "x"), sce("fc1"), outputs=["fc1"])
    problems = problems_of(doc)
    assert len(problems) == 1
    assert_problem(problems, "nodes[0].inputs[0]", "cycle: c -> a -> b -> c")


def test_cycle_path_follows_data_flow_whatever_the_node_order():
    doc = net(relu("c", "b"), relu("a", "c"), relu("b", "a"), fc("fc1", "x"), sce("fc1"), outputs=["fc1"])
    problems = problems_of(doc)
    location, message = problems[0]
    assert location == "nodes[0].inputs[0]"
    assert message == "cycle: b -> c -> a -> b"


def test_cycle_with_a_tail_reports_only_the_cycle():
    # t reads the cycle a -> b -> a but is not part of it
    doc = net(relu("t", "b"), {"id": "a", "op": "add", "inputs": ["x", "b"]}, relu("b", "a"),
              fc("fc1", "x"), sce("fc1"), outputs=["fc1"])
    problems = problems_of(doc)
    assert len(problems) == 1
    _, message = problems[0]
    assert message.startswith("cycle: ") and "t" not in message.removeprefix("cycle: ").split(" -> ")
    assert set(message.removeprefix("cycle: ").split(" -> ")) == {"a", "b"}


def test_long_cycle_is_found_without_recursion():
    n = 5000
    nodes = [relu(f"n{i}", f"n{(i - 1) % n}") for i in range(n)]
    started = time.perf_counter()
    problems = problems_of(net(*nodes, fc("fc1", "x"), sce("fc1"), outputs=["fc1"]))
    assert time.perf_counter() - started < 10
    assert problems[0][1].startswith("cycle: ")
    assert problems[0][1].count(" -> ") == n


# ---- arity --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "node, location, parts",
    [
        (relu("h", "x", "x"), "nodes[0].inputs", ("node 'h' (relu) takes exactly 1 input, got 2",)),
        (relu("h"), "nodes[0].inputs", ("node 'h' (relu) takes exactly 1 input, got 0",)),
        ({"id": "h", "op": "add", "inputs": ["x"]}, "nodes[0].inputs", ("(add) takes at least 2 inputs, got 1",)),
        ({"id": "h", "op": "concat", "inputs": []}, "nodes[0].inputs", ("(concat) takes at least 2 inputs, got 0",)),
        ({"id": "h", "op": "affine", "inputs": ["x", "x"], "units": 3}, "nodes[0].inputs",
         ("(affine) takes exactly 1 input, got 2",)),
    ],
)
def test_wrong_arity(node, location, parts):
    problems = problems_of(net(node, fc("fc1", "x"), sce("fc1"), outputs=["fc1"]))
    assert_problem(problems, location, *parts)


def test_loss_with_its_label_input_missing():
    problems = problems_of(net(fc("fc1", "x"), {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc1"]}))
    assert_problem(problems, "nodes[1].inputs", "takes exactly 2 inputs", "the label input is missing", "got 1")


def test_loss_with_too_many_inputs():
    doc = net(fc("fc1", "x"), {"id": "loss", "op": "svm", "inputs": ["fc1", "y", "y"]})
    assert_problem(problems_of(doc), "nodes[1].inputs", "(svm) takes exactly 2 inputs, got 3")


@pytest.mark.parametrize("op", sorted(name for name, record in OPS.items() if record.is_loss))
def test_every_loss_op_needs_two_inputs(op):
    doc = net(fc("fc1", "x"), {"id": "loss", "op": op, "inputs": ["fc1"]})
    assert_problem(problems_of(doc), "nodes[1].inputs", f"({op}) takes exactly 2 inputs")


# ---- labels ------------------------------------------------------------------------------------


def test_loss_whose_second_input_is_not_a_label():
    problems = problems_of(net(fc("fc1", "x"), sce("fc1", labels="x")))
    assert_problem(problems, "nodes[1].inputs[1]", "needs a label input as its second input",
                   "'x' is not a label", "labels are: y")


def test_loss_without_any_declared_labels():
    problems = problems_of(net(fc("fc1", "x"), sce("fc1", labels="x"), labels={}))
    assert_problem(problems, "nodes[1].inputs[1]", "'x' is not a label", 'declare it under "labels"')


def test_label_read_by_a_non_loss_node():
    problems = problems_of(net(fc("fc1", "x"), relu("h", "y"), sce("fc1"), outputs=["fc1"]))
    assert_problem(problems, "nodes[1].inputs[0]", "node 'h' (relu) reads label 'y'",
                   "only be the second input of a loss")


def test_label_as_the_first_input_of_a_loss():
    problems = problems_of(net(fc("fc1", "x"), {"id": "loss", "op": "softmax_cross_entropy",
                                                 "inputs": ["y", "y"]}, outputs=["fc1"]))
    assert_problem(problems, "nodes[1].inputs[0]", "reads label 'y'")


def test_loss_value_read_by_another_node():
    problems = problems_of(net(fc("fc1", "x"), sce("fc1"), relu("h", "loss"), outputs=["fc1"]))
    assert_problem(problems, "nodes[2].inputs[0]", "reads 'loss', a loss")


def test_class_loss_with_float_targets_and_target_loss_with_classes():
    doc = net(fc("fc1", "x"), sce("fc1"), labels={"y": {"shape": [3]}})
    assert_problem(problems_of(doc), "nodes[1].inputs[1]", "needs integer class labels", '"classes"')
    doc = net(fc("fc1", "x"), {"id": "loss", "op": "mse", "inputs": ["fc1", "y"]})
    assert_problem(problems_of(doc), "nodes[1].inputs[1]", "(mse): mse needs float targets", '"shape"')


# ---- shapes --------------------------------------------------------------------------------------


def test_add_shape_mismatch_names_both_shapes():
    doc = net(fc("fc1", "x", 5), {"id": "sum", "op": "add", "inputs": ["fc1", "x"]}, fc("fc2", "sum"), sce("fc2"),
              outputs=["fc2"])
    problems = problems_of(doc)
    assert_problem(problems, "nodes[1].inputs[1]", "node 'sum' (add)", "'x' has shape (4,)", "'fc1' has shape (5,)")


def test_add_mismatch_on_the_third_input():
    doc = net(fc("a", "x", 4), {"id": "sum", "op": "add", "inputs": ["x", "a", "y2"]}, fc("fc2", "sum"),
              sce("fc2"), outputs=["fc2"], inputs={"x": {"shape": [4]}, "y2": {"shape": [2, 2]}})
    assert_problem(problems_of(doc), "nodes[1].inputs[2]", "'y2' has shape (2, 2)", "(4,)")


def test_concat_of_non_vectors():
    doc = net(fc("fc1", "x"), {"id": "cat", "op": "concat", "inputs": ["fc1", "img"]}, fc("fc2", "cat"),
              sce("fc2"), outputs=["fc2"], inputs={"x": {"shape": [4]}, "img": {"shape": [2, 3]}})
    assert_problem(problems_of(doc), "nodes[1].inputs[1]", "concat joins vectors", "'img' has shape (2, 3)",
                   "flatten")


@pytest.mark.parametrize("op", ["softmax", "layernorm"])
def test_vector_ops_refuse_images(op):
    doc = net({"id": "v", "op": op, "inputs": ["img"]}, fc("fc1", "x"), sce("fc1"), outputs=["fc1"],
              inputs={"x": {"shape": [4]}, "img": {"shape": [2, 3]}})
    assert_problem(problems_of(doc), "nodes[0].inputs[0]", f"({op})", "vector per example", "(2, 3)", "flatten")


def test_loss_class_count_mismatch():
    problems = problems_of(net(fc("fc1", "x", 5), sce("fc1")))
    assert_problem(problems, "nodes[1].inputs[1]", "'fc1' has 5 scores per example", "labels 'y' have 3 classes")


def test_class_loss_on_non_vector_scores():
    doc = net(relu("h", "img"), sce("h"), outputs=["h"], inputs={"img": {"shape": [3, 1]}})
    assert_problem(problems_of(doc), "nodes[1].inputs[0]", "expects a vector of class scores", "(3, 1)")


def test_target_loss_shape_mismatch():
    doc = net(fc("fc1", "x"), {"id": "loss", "op": "mse", "inputs": ["fc1", "t"]}, labels={"t": {"shape": [2]}})
    assert_problem(problems_of(doc), "nodes[1].inputs[1]", "targets 't' have shape (2,)", "'fc1' have shape (3,)")


def test_shape_errors_downstream_of_a_failed_node_are_not_cascaded():
    doc = net(fc("fc1", "x", 5), {"id": "sum", "op": "add", "inputs": ["fc1", "x"]}, relu("h", "sum"),
              fc("fc2", "h"), sce("fc2"), outputs=["fc2"])
    problems = problems_of(doc)
    assert [loc for loc, _ in problems] == ["nodes[1].inputs[1]"]


# ---- loss and outputs -------------------------------------------------------------------------


def test_loss_that_is_not_a_loss_node():
    problems = problems_of(net(fc("fc1", "x"), sce("fc1"), loss="fc1"))
    assert_problem(problems, "loss", "'fc1' is an affine node, not a loss", "loss ops: softmax_cross_entropy")
    assert_problem(problems, "nodes[1]", "loss node 'loss' is not the network's loss", "\"loss\" names 'fc1'")


def test_loss_that_is_not_defined():
    problems = problems_of(net(fc("fc1", "x"), sce("fc1"), loss="los"))
    assert_problem(problems, "loss", "'los' is not a node", "did you mean 'loss'?")


def test_loss_node_without_a_network_loss():
    problems = problems_of(net(fc("fc1", "x"), sce("fc1"), loss=None))
    assert_problem(problems, "nodes[1]", "is not the network's loss", 'set "loss": "loss"')


def test_two_loss_nodes():
    problems = problems_of(net(fc("fc1", "x"), sce("fc1"), sce("fc1", node_id="loss2")))
    assert_problem(problems, "nodes[2]", "loss node 'loss2' is not the network's loss")


def test_output_not_defined():
    problems = problems_of(net(fc("fc1", "x"), sce("fc1"), outputs=["fc2"]))
    assert_problem(problems, "outputs[0]", "'fc2' is not a node", "did you mean 'fc1'?")


def test_bad_outputs_of_every_kind():
    problems = problems_of(net(fc("fc1", "x"), sce("fc1"), outputs=["fc1", "fc1", "y", "loss"]))
    assert_problem(problems, "outputs[1]", "'fc1' is listed twice")
    assert_problem(problems, "outputs[2]", "'y' is a label")
    assert_problem(problems, "outputs[3]", "'loss' is the loss")


def test_an_input_may_be_an_output_and_a_network_may_have_no_loss():
    spec = parse(net(relu("h", "x"), outputs=["h", "x"], loss=None, labels={}))
    assert spec.loss is None and spec.outputs == ["h", "x"]


# ---- several problems at once ------------------------------------------------------------------


def test_name_and_reference_problems_are_reported_together():
    doc = net(fc("fc1", "x"), relu("fc1", "x"), relu("h", "fc2"), relu("g", "y"), sce("fc1"), outputs=["fc1"])
    problems = problems_of(doc)
    assert [loc for loc, _ in problems] == ["nodes[1].id", "nodes[2].inputs[0]", "nodes[3].inputs[0]"]


def test_shape_loss_and_output_problems_are_reported_together():
    doc = net(fc("fc1", "x", 5), {"id": "sum", "op": "add", "inputs": ["fc1", "x"]}, sce("fc1"),
              outputs=["sum", "nope"], loss="sum")
    locations = [loc for loc, _ in problems_of(doc)]
    assert locations == ["nodes[1].inputs[1]", "nodes[2].inputs[1]", "loss", "nodes[2]", "outputs[1]"]


def test_every_problem_is_one_line_with_a_location():
    doc = net(fc("fc1", "x", 5), {"id": "sum", "op": "add", "inputs": ["fc1", "x"]}, sce("fc1"),
              outputs=["sum", "nope"], loss="sum")
    with pytest.raises(SpecError) as info:
        parse(doc, source="net.json")
    lines = info.value.lines()
    assert len(lines) == len(info.value.problems) == 5
    assert all(line.startswith("net.json: ") and "\n" not in line for line in lines)
    assert str(info.value) == "\n".join(lines)


# ---- Python construction -------------------------------------------------------------------------


def test_graph_errors_from_python_construction_are_spec_errors():
    doc = net(fc("fc1", "x"), relu("h", "fc_1"), sce("fc1"))
    with pytest.raises(SpecError) as info:
        NetworkSpec(**copy.deepcopy(doc))
    assert_problem(info.value.problems, "nodes[1].inputs[0]", "did you mean 'fc1'?")


def test_parameters_over_the_memory_limit_are_refused_with_an_estimate(monkeypatch) -> None:
    doc = {
        "inputs": {"x": {"shape": [784]}},
        "nodes": [{"id": "fc1", "op": "affine", "inputs": ["x"], "units": 1000},
                  {"id": "huge", "op": "affine", "inputs": ["fc1"], "units": 1_000_000_000}],
        "outputs": ["huge"],
    }
    with pytest.raises(SpecError) as caught:
        parse_network(doc)
    (location, message), = caught.value.problems
    assert location == "nodes[1].units"
    assert "1,001,000,000,000 parameters" in message and "TB" in message and "GRAPHNET_MAX_BYTES" in message

    monkeypatch.setenv("GRAPHNET_MAX_BYTES", "1M")  # configurable: a small net now exceeds it
    doc["nodes"][1]["units"] = 1000
    with pytest.raises(SpecError, match=r"over the limit of 1.0 MB"):
        parse_network(doc)
    monkeypatch.setenv("GRAPHNET_MAX_BYTES", "1G")
    assert parse_network(doc).value("huge").shape == (1000,)


# ---- warnings -----------------------------------------------------------------------------------


def test_a_node_that_reaches_no_output_and_not_the_loss_is_a_warning():
    doc = net(fc("fc1", "x"), relu("stray", "fc1"), fc("dead_end", "stray"), sce("fc1"), outputs=["fc1"])
    with pytest.warns(SpecWarning) as caught:
        parse_network(doc)
    messages = [str(w.message) for w in caught if issubclass(w.category, SpecWarning)]
    assert messages == [
        "nodes[1]: node 'stray' (relu) is not connected: its value reaches no output and not the loss "
        "(remove it, or list it in \"outputs\")",
        "nodes[2]: node 'dead_end' (affine) is not connected: its value reaches no output and not the loss "
        "(remove it, or list it in \"outputs\")"]


def test_nodes_feeding_only_the_loss_or_only_an_output_are_connected():
    doc = net(fc("fc1", "x"), relu("h", "fc1"), fc("head", "h"), fc("aux", "fc1"), sce("head"), outputs=["aux"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpecWarning)
        parse_network(doc)
