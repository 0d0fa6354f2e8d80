"""Pass 1, fusion: Graph -> Graph, driven by the fusion table (`graphnet.compiler.fusion_rules`).

`fuse_epilogues` folds a consumer into its producer as an epilogue (affine ->
relu); `fuse_into_consumers` replaces a producer -> consumer pair by the
table's fused op (softmax -> cross_entropy). Each returns the rewritten graph,
its FusionDecisions (fired, or not and why) and the values it renamed.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, NamedTuple

from ..ops import OPS, NodeModel
from ..ops.lowering import FusionDecision
from .fusion_rules import FUSION_RULES, FusionRule
from .graph import Graph, GraphNode


class Fused(NamedTuple):
    """A fusion pass's result: the rewritten graph, its decisions, and the values it
    renamed (id of a folded node -> id of the node that now produces its value)."""

    graph: Graph
    decisions: list[FusionDecision]
    renamed: dict[str, str]


def _fusable_producer(graph: Graph, node: GraphNode, kind: str,
                      decisions: list[FusionDecision]) -> tuple[GraphNode, FusionRule] | None:
    """The producer of the node's first input and their rule of `kind` in the fusion table,
    if only this node reads it; when a rule matches but cannot fire, the decision says why."""
    producer = graph.find_node(node.inputs[0])
    rule = FUSION_RULES.get((producer.op, node.op)) if producer is not None else None
    if producer is None or rule is None or rule.kind != kind:
        return None
    readers = graph.consumers[producer.id]
    reason = (f"'{producer.id}' is a network output" if producer.id in graph.outputs
              else f"'{producer.id}' has {len(readers)} readers" if len(readers) != 1 else "")
    if reason:
        decisions.append(FusionDecision(rule.name, (producer.id, node.id), False, reason))
        return None
    return producer, rule


def _own_fields(spec: Any) -> dict[str, Any]:
    """The fields a node model adds to every node's `id` and `inputs` (leaky_relu: alpha)."""
    shared = set(NodeModel.model_fields) | {"op"}
    return {name: getattr(spec, name) for name in type(spec).model_fields if name not in shared}


def fuse_epilogues(graph: Graph) -> Fused:
    """producer -> consumer  =>  the producer running the consumer as its epilogue
    (the table's "epilogue" rules: affine -> relu|leaky_relu|sigmoid|tanh).

    The fused node keeps the producer's id (so parameter names don't change) and
    produces the consumer's value; readers of the consumer read it.
    """
    decisions: list[FusionDecision] = []
    nodes = list(graph.nodes)
    renamed: dict[str, str] = {}  # consumer id -> producer id
    for node in nodes:
        match = _fusable_producer(graph, node, "epilogue", decisions)
        if match is None:
            continue
        producer, rule = match
        current = getattr(producer.spec, rule.epilogue_field)
        if current not in (None, "identity"):
            decisions.append(FusionDecision(rule.name, (producer.id, node.id), False,
                                            f"'{producer.id}' already has {rule.epilogue_field} {current}"))
            continue
        update = {rule.epilogue_field: node.op, **_own_fields(node.spec)}
        fused = GraphNode(producer.spec.model_copy(update=update), producer.input_values, node.value)
        index = next(j for j, n in enumerate(nodes) if n.id == producer.id)
        nodes[index] = fused
        renamed[node.id] = producer.id
        decisions.append(FusionDecision(rule.name, (producer.id, node.id), True))
    if not renamed:
        return Fused(graph, decisions, renamed)
    return Fused(_rewire(graph, [n for n in nodes if n.id not in renamed], renamed), decisions, renamed)


def fuse_into_consumers(graph: Graph) -> Fused:
    """producer -> consumer  =>  the consumer as the table's fused op, on the producer's input
    (the table's "replace" rules: softmax -> cross_entropy => softmax_cross_entropy on the
    logits, stable, dX = (p - y) / N). Renames nothing: the consumer keeps its id."""
    decisions: list[FusionDecision] = []
    nodes = list(graph.nodes)
    removed: set[str] = set()
    for i, node in enumerate(nodes):
        match = _fusable_producer(graph, node, "replace", decisions)
        if match is None:
            continue
        producer, rule = match
        inputs = [producer.inputs[0], *node.inputs[1:]]
        spec = OPS[rule.fused_op].model(id=node.id, inputs=inputs)
        nodes[i] = GraphNode(spec, (producer.input_values[0], *node.input_values[1:]), node.value)
        removed.add(producer.id)
        decisions.append(FusionDecision(rule.name, (producer.id, node.id), True))
    if not removed:
        return Fused(graph, decisions, {})
    return Fused(graph.with_nodes([n for n in nodes if n.id not in removed]), decisions, {})


def _rewire(graph: Graph, nodes: list[GraphNode], renamed: dict[str, str]) -> Graph:
    rewired = []
    for node in nodes:
        if any(ref in renamed for ref in node.inputs):
            inputs = [renamed.get(ref, ref) for ref in node.inputs]
            node = replace(node, spec=node.spec.model_copy(update={"inputs": inputs}))
        rewired.append(node)
    outputs = tuple(renamed.get(name, name) for name in graph.outputs)
    return replace(graph.with_nodes(rewired), outputs=outputs)


def fuse(graph: Graph) -> Fused:
    """All fusion passes, in order; `renamed` maps every folded value to the node producing it."""
    first = fuse_epilogues(graph)
    second = fuse_into_consumers(first.graph)
    return Fused(second.graph, first.decisions + second.decisions, {**first.renamed, **second.renamed})
