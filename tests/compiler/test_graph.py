"""graphnet.compiler.graph: a valid spec for every registered op (table-driven over OPS),
topological order, consumers, parameter and state declarations, the printed
table, and a long chain.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from graphnet.compiler.graph import build_graph, describe_graph
from graphnet.ops import OPS
from graphnet.spec import NetworkSpec, RunSpec, load, parse_network

from tests._support.paths import SPECS

ZOO = sorted(p for p in SPECS.glob("*.json") if p.name != "schema.json")


class Case:
    """One op in a small valid network: node `n` and what the graph should know of it."""

    def __init__(self, node: dict[str, Any], shape: tuple[int, ...], params: dict[str, tuple[int, ...]] | None = None,
                 state: dict[str, tuple[int, ...]] | None = None, inputs: dict[str, list[int]] | None = None,
                 labels: dict[str, dict[str, Any]] | None = None):
        self.node = {"id": "n", **node}
        self.shape = shape
        self.params = params or {}
        self.state = state or {}
        self.inputs = inputs or {"x": [4]}
        self.labels = labels or {}

    def document(self) -> dict[str, Any]:
        loss = OPS[self.node["op"]].is_loss
        doc: dict[str, Any] = {
            "name": f"case_{self.node['op']}",
            "inputs": {name: {"shape": shape} for name, shape in self.inputs.items()},
            "labels": self.labels,
            "nodes": [self.node],
            "outputs": [next(iter(self.inputs))] if loss else ["n"],
        }
        if loss:
            doc["loss"] = "n"
        return doc


def _elementwise(op: str, **fields: Any) -> Case:
    return Case({"op": op, "inputs": ["img"], **fields}, (2, 3), inputs={"img": [2, 3]})


CLASSES = {"y": {"classes": 4}}
TARGETS = {"t": {"shape": [4]}}

# Every registered op needs at least one case here: a new op without one fails
# test_every_registered_op_has_a_case.
OP_CASES: dict[str, list[Case]] = {
    "affine": [
        Case({"op": "affine", "inputs": ["x"], "units": 3}, (3,), {"n.W": (4, 3), "n.b": (3,)}),
        Case({"op": "affine", "inputs": ["img"], "units": 5, "bias": False, "activation": "relu"}, (5,),
             {"n.W": (6, 5)}, inputs={"img": [2, 3]}),
    ],
    "relu": [_elementwise("relu")],
    "leaky_relu": [_elementwise("leaky_relu", alpha=0.2)],
    "sigmoid": [_elementwise("sigmoid")],
    "tanh": [_elementwise("tanh")],
    "identity": [_elementwise("identity")],
    "softmax": [Case({"op": "softmax", "inputs": ["x"]}, (4,))],
    "batchnorm": [Case({"op": "batchnorm", "inputs": ["x"], "momentum": 0.5}, (4,),
                       {"n.gamma": (4,), "n.beta": (4,)}, {"n.running_mean": (4,), "n.running_var": (4,)})],
    "layernorm": [Case({"op": "layernorm", "inputs": ["x"]}, (4,), {"n.gamma": (4,), "n.beta": (4,)})],
    "dropout": [Case({"op": "dropout", "inputs": ["img"], "rate": 0.5}, (2, 3), inputs={"img": [2, 3]}),
                Case({"op": "dropout", "inputs": ["x"], "rate": 0.0}, (4,))],
    "flatten": [Case({"op": "flatten", "inputs": ["img"]}, (24,), inputs={"img": [2, 3, 4]}),
                Case({"op": "flatten", "inputs": ["x"]}, (4,))],
    "add": [Case({"op": "add", "inputs": ["a", "b"]}, (2, 2), inputs={"a": [2, 2], "b": [2, 2]}),
            Case({"op": "add", "inputs": ["a", "b", "a"]}, (3,), inputs={"a": [3], "b": [3]})],
    "concat": [Case({"op": "concat", "inputs": ["a", "b"]}, (8,), inputs={"a": [3], "b": [5]}),
               Case({"op": "concat", "inputs": ["a", "b", "a"]}, (11,), inputs={"a": [3], "b": [5]})],
    "softmax_cross_entropy": [
        Case({"op": "softmax_cross_entropy", "inputs": ["x", "y"]}, (), labels=CLASSES),
        Case({"op": "softmax_cross_entropy", "inputs": ["x", "y"], "class_weight": [1, 2, 3, 4]}, (),
             state={"n.class_weight": (4,)}, labels=CLASSES)],
    "cross_entropy": [Case({"op": "cross_entropy", "inputs": ["x", "y"]}, (), labels=CLASSES)],
    "svm": [Case({"op": "svm", "inputs": ["x", "y"]}, (), labels=CLASSES)],
    "mse": [Case({"op": "mse", "inputs": ["x", "t"]}, (), labels=TARGETS),
            Case({"op": "mse", "inputs": ["img", "t"]}, (), inputs={"img": [2, 2]}, labels={"t": {"shape": [2, 2]}})],
    "mae": [Case({"op": "mae", "inputs": ["x", "t"]}, (), labels=TARGETS)],
    "conv2d": [
        Case({"op": "conv2d", "inputs": ["img"], "filters": 4, "kernel": 3}, (4, 3, 4), {"n.W": (4, 2, 3, 3), "n.b": (4,)},
             inputs={"img": [2, 5, 6]}),
        Case({"op": "conv2d", "inputs": ["img"], "filters": 3, "kernel": [1, 3], "stride": 2, "padding": "same",
              "bias": False, "activation": "relu"}, (3, 3, 3), {"n.W": (3, 2, 1, 3)}, inputs={"img": [2, 5, 6]})],
    "max_pool2d": [Case({"op": "max_pool2d", "inputs": ["img"], "kernel": 2}, (2, 2, 3), inputs={"img": [2, 5, 6]})],
    "avg_pool2d": [Case({"op": "avg_pool2d", "inputs": ["img"], "kernel": 3, "stride": 1, "padding": 1}, (2, 5, 6),
                        inputs={"img": [2, 5, 6]})],
    "global_avg_pool": [Case({"op": "global_avg_pool", "inputs": ["img"]}, (2,), inputs={"img": [2, 5, 6]})],
    "huber": [Case({"op": "huber", "inputs": ["x", "t"], "delta": 0.5}, (), labels=TARGETS)],
    "sigmoid_binary_cross_entropy": [
        Case({"op": "sigmoid_binary_cross_entropy", "inputs": ["x", "t"]}, (), labels=TARGETS),
        Case({"op": "sigmoid_binary_cross_entropy", "inputs": ["x", "t"], "class_weight": [1, 4]}, (),
             state={"n.class_weight": (2,)}, labels=TARGETS)],
}


def test_every_registered_op_has_a_case():
    missing = sorted(set(OPS) - set(OP_CASES))
    assert not missing, f"add a valid case to OP_CASES in tests/compiler/test_graph.py for: {missing}"
    assert not set(OP_CASES) - set(OPS), "OP_CASES names an op that is not registered"


@pytest.mark.parametrize("op", sorted(OPS))
def test_each_op_in_a_small_valid_network(op):
    assert op in OP_CASES, f"no valid case for registered op '{op}'"
    for case in OP_CASES[op]:
        spec = parse_network(case.document())
        node = spec.node("n")
        assert type(node) is OPS[op].model
        assert spec.value("n").shape == case.shape
        graph = build_graph(spec)
        assert {p.name: p.shape for p in graph.params} == case.params
        assert all(p.node == "n" and p.name.startswith("n.") for p in graph.params)
        assert {s.name: s.shape for s in graph.state} == case.state
        assert graph.num_params == sum(p.size for p in graph.params)
        gnode = graph.node("n")
        assert gnode.op == op and gnode.record is OPS[op]
        assert gnode.input_values == tuple(spec.value(ref) for ref in node.inputs)
        assert gnode.value.shape == case.shape
        assert spec.to_json() and parse_network(spec.to_json()) == spec


def test_only_affine_weights_are_regularized():
    spec = parse_network({
        "inputs": {"x": {"shape": [4]}},
        "nodes": [{"id": "fc", "op": "affine", "inputs": ["x"], "units": 3, "init": "normal", "std": 0.1},
                  {"id": "bn", "op": "batchnorm", "inputs": ["fc"]},
                  {"id": "ln", "op": "layernorm", "inputs": ["bn"]}],
        "outputs": ["ln"],
    })
    params = {p.name: p.decl for p in build_graph(spec).params}
    assert [name for name, decl in params.items() if decl.regularized] == ["fc.W"]
    assert params["fc.W"].init == "normal" and params["fc.W"].std == 0.1
    assert (params["fc.W"].fan_in, params["fc.W"].fan_out) == (4, 3)
    assert params["fc.b"].init == "zeros"
    assert params["bn.gamma"].init == "ones" and params["ln.beta"].init == "zeros"
    state = {s.name: s.decl for s in build_graph(spec).state}
    assert state["bn.running_mean"].fill == 0.0 and state["bn.running_var"].fill == 1.0


# ---- order and consumers -------------------------------------------------------------------------


def out_of_order() -> NetworkSpec:
    return parse_network({
        "inputs": {"x": {"shape": [4]}},
        "labels": {"y": {"classes": 2}},
        "nodes": [
            {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["head", "y"]},
            {"id": "head", "op": "affine", "inputs": ["sum"], "units": 2},
            {"id": "sum", "op": "add", "inputs": ["a", "b"]},
            {"id": "b", "op": "tanh", "inputs": ["a"]},
            {"id": "a", "op": "affine", "inputs": ["x"], "units": 4},
        ],
        "outputs": ["head", "a"],
        "loss": "loss",
    })


def test_topological_order_of_nodes_listed_out_of_order():
    spec = out_of_order()
    assert [node.id for node in spec.topological_nodes()] == ["a", "b", "sum", "head", "loss"]
    graph = build_graph(spec)
    assert [node.id for node in graph.nodes] == ["a", "b", "sum", "head", "loss"]
    assert [node.id for node in spec.nodes][0] == "loss"  # the spec keeps the author's order


def test_ties_keep_the_listed_order():
    spec = parse_network({
        "inputs": {"x": {"shape": [2]}},
        "nodes": [{"id": n, "op": "relu", "inputs": ["x"]} for n in ("c", "a", "b")],
        "outputs": ["a", "b", "c"],
    })
    assert [node.id for node in build_graph(spec).nodes] == ["c", "a", "b"]


def test_consumers():
    graph = build_graph(out_of_order())
    assert graph.consumers["x"] == [("a", 0)]
    assert graph.consumers["a"] == [("b", 0), ("sum", 0)]
    assert graph.consumers["b"] == [("sum", 1)]
    assert graph.consumers["y"] == [("loss", 1)]
    assert graph.consumers["head"] == [("loss", 0)]
    assert graph.consumers["loss"] == []


def test_graph_fields():
    graph = build_graph(out_of_order())
    assert graph.outputs == ("head", "a") and graph.loss == "loss" and graph.l2 == 0.0
    assert set(graph.values) == {"x", "y", "a", "b", "sum", "head", "loss"}
    assert graph.inputs["x"].shape == (4,)
    assert graph.labels["y"].kind == "classes" and graph.labels["y"].classes == 2
    assert graph.node("sum").inputs == ("a", "b")
    assert graph.num_params == (4 * 4 + 4) + (4 * 2 + 2)
    fewer = graph.with_nodes(graph.nodes[:2])
    assert [n.id for n in fewer.nodes] == ["a", "b"] and [n.id for n in graph.nodes][-1] == "loss"


@pytest.mark.parametrize("path", ZOO, ids=lambda p: p.name)
def test_zoo_graphs(path: Path):
    spec = load(path)
    network = spec.network if isinstance(spec, RunSpec) else spec
    graph = build_graph(network)
    order = [node.id for node in graph.nodes]
    assert sorted(order) == sorted(node.id for node in network.nodes)
    seen = set(graph.inputs) | set(graph.labels)
    for node in graph.nodes:
        assert set(node.inputs) <= seen
        seen.add(node.id)
    names = [p.name for p in graph.params]
    assert len(names) == len(set(names))


def test_parameter_count_of_two_layer_net():
    spec = load(next(p for p in ZOO if p.name == "two_layer_net.json"))
    assert build_graph(spec).num_params == 784 * 100 + 100 + 100 * 10 + 10


# ---- describe_graph ----------------------------------------------------------------------------


def test_describe_graph_shows_ids_shapes_and_parameter_count():
    spec = out_of_order()
    text = describe_graph(build_graph(spec))
    lines = text.splitlines()
    assert lines[0].split() == ["node", "op", "inputs", "shape", "params"]
    assert set(lines[1]) <= {"-", " "}
    for node_id in ("x", "y", "a", "b", "sum", "head", "loss"):
        assert any(line.split()[0] == node_id for line in lines[2:-1]), node_id
    assert any(line.startswith("a ") and "(4,)" in line and "20" in line for line in lines)
    assert any(line.startswith("loss ") and "scalar (loss)" in line for line in lines)
    assert any(line.startswith("y ") and "labels in [0, 2)" in line for line in lines)
    assert lines[-1] == "30 parameters; outputs: head, a; loss: loss"


def test_describe_graph_big_counts_use_thousands_separators_and_show_l2():
    spec = load(next(p for p in ZOO if p.name == "residual_mlp.json"))
    graph = build_graph(spec)
    text = describe_graph(graph)
    assert f"{graph.num_params:,} parameters" in text
    assert "100,480" in text  # stem: 784 * 128 + 128
    assert "l2 = 0.0001" in text


def test_describe_graph_without_loss():
    spec = parse_network({"inputs": {"x": {"shape": [3]}}, "nodes": [{"id": "h", "op": "relu", "inputs": ["x"]}],
                          "outputs": ["h"]})
    assert describe_graph(build_graph(spec)).splitlines()[-1] == "0 parameters; outputs: h; loss: (none)"


# ---- scale ------------------------------------------------------------------------------------------


def _chain(n: int) -> dict[str, Any]:
    nodes = [{"id": f"n{i}", "op": "relu", "inputs": [f"n{i - 1}" if i else "x"]} for i in range(n)]
    return {"inputs": {"x": {"shape": [3]}}, "nodes": nodes, "outputs": [f"n{n - 1}"]}


def test_ten_thousand_node_chain_validates_without_recursion_and_fast():
    doc = _chain(10_000)
    doc["nodes"].reverse()  # worst case for a naive order
    started = time.perf_counter()
    spec = parse_network(doc)
    graph = build_graph(spec)
    text = describe_graph(graph)
    elapsed = time.perf_counter() - started
    assert [node.id for node in graph.nodes[:3]] == ["n0", "n1", "n2"]
    assert graph.node("n9999").value.shape == (3,)
    assert text.count("\n") > 10_000
    assert elapsed < 10, f"10,000-node chain took {elapsed:.1f} s"
