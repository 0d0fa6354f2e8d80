"""A validated network as a graph: nodes in topological order with their
per-example values, the consumers of every value, and the declarations of
parameters and persistent state. Compiler passes map Graph -> Graph.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from math import prod
from typing import Callable, Iterable

from ..errors import SpecError, did_you_mean
from ..ops import OPS, NodeModel, OpRecord, ParamDecl, StateDecl, Value
from ..spec import NetworkSpec
from .describe import text_table


@dataclass(frozen=True)
class GraphNode:
    """One node: its spec model, the values it reads and the value it produces."""

    spec: NodeModel
    input_values: tuple[Value, ...]
    value: Value

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def op(self) -> str:
        return self.spec.op  # type: ignore[attr-defined]

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(self.spec.inputs)

    @property
    def record(self) -> OpRecord:
        return OPS[self.op]


@dataclass(frozen=True)
class Param:
    """A parameter: full name `<node id>.<local name>` and its declaration."""

    name: str
    node: str
    decl: ParamDecl

    @property
    def shape(self) -> tuple[int, ...]:
        return self.decl.shape

    @property
    def size(self) -> int:
        return prod(self.decl.shape)


@dataclass(frozen=True)
class State:
    """Persistent non-trainable state: full name `<node id>.<local name>`."""

    name: str
    node: str
    decl: StateDecl

    @property
    def shape(self) -> tuple[int, ...]:
        return self.decl.shape


@dataclass(frozen=True)
class Graph:
    name: str
    inputs: dict[str, Value]
    labels: dict[str, Value]
    nodes: tuple[GraphNode, ...]  # topological order
    outputs: tuple[str, ...]
    loss: str | None
    l2: float

    def node(self, node_id: str) -> GraphNode:
        return self._by_id[node_id]

    def find_node(self, node_id: str) -> GraphNode | None:
        """The node `node_id`; None for an input, a label or an unknown name."""
        return self._by_id.get(node_id)

    @cached_property
    def _by_id(self) -> dict[str, GraphNode]:
        return {node.id: node for node in self.nodes}

    @cached_property
    def values(self) -> dict[str, Value]:
        """Every input, label and node output, per example."""
        result = {**self.inputs, **self.labels}
        result.update({node.id: node.value for node in self.nodes})
        return result

    @cached_property
    def consumers(self) -> dict[str, list[tuple[str, int]]]:
        """value name -> [(node id, input slot)] of the nodes that read it, in order."""
        result: dict[str, list[tuple[str, int]]] = {name: [] for name in self.values}
        for node in self.nodes:
            for slot, ref in enumerate(node.inputs):
                result[ref].append((node.id, slot))
        return result

    @cached_property
    def params(self) -> tuple[Param, ...]:
        """The parameters the nodes declare (their records' `params`), in node order."""
        return self._declared(Param, "params")

    @cached_property
    def state(self) -> tuple[State, ...]:
        """The persistent state the nodes declare (their records' `state`), in node order."""
        return self._declared(State, "state")

    def _declared(self, kind: Callable[[str, str, ParamDecl | StateDecl], Param | State], field: str) -> tuple:
        """kind(`<node id>.<local name>`, node id, declaration) for each declaration of the
        op record's `field` ("params" or "state"), node by node."""
        return tuple(
            kind(f"{node.id}.{decl.name}", node.id, decl)
            for node in self.nodes
            for decl in getattr(node.record, field)(node.spec, list(node.input_values))
        )

    @property
    def num_params(self) -> int:
        return sum(param.size for param in self.params)

    def with_nodes(self, nodes: list[GraphNode] | tuple[GraphNode, ...]) -> "Graph":
        """The same graph with other nodes (for compiler passes)."""
        return replace(self, nodes=tuple(nodes))


def build_graph(spec: NetworkSpec) -> Graph:
    """A validated NetworkSpec -> Graph (the spec has already checked everything)."""
    nodes = []
    for node in spec.topological_nodes():
        input_values = tuple(spec.value(ref) for ref in node.inputs)
        nodes.append(GraphNode(node, input_values, spec.value(node.id)))
    return Graph(
        name=spec.name,
        inputs={name: spec.value(name) for name in spec.inputs},
        labels={name: spec.value(name) for name in spec.labels},
        nodes=tuple(nodes),
        outputs=tuple(spec.outputs),
        loss=spec.loss,
        l2=spec.l2,
    )


def describe_graph(graph: Graph) -> str:
    """A table of the nodes with their inferred shapes and parameter counts."""
    rows = [("node", "op", "inputs", "shape", "params")]
    for name, value in {**graph.inputs, **graph.labels}.items():
        kind = "input" if name in graph.inputs else "label"
        rows.append((name, kind, "", value.describe(), ""))
    counts: dict[str, int] = {}
    for param in graph.params:
        counts[param.node] = counts.get(param.node, 0) + param.size
    for node in graph.nodes:
        shape = "scalar (loss)" if node.record.is_loss else str(node.value.shape)
        rows.append((node.id, node.op, ", ".join(node.inputs), shape, f"{counts.get(node.id, 0):,}" if node.id in counts else ""))
    lines = text_table(rows)
    lines.append(f"{graph.num_params:,} parameters; outputs: {', '.join(graph.outputs)}; "
                 f"loss: {graph.loss or '(none)'}" + (f"; l2 = {graph.l2:g}" if graph.l2 else ""))
    return "\n".join(lines)


def upstream(targets: Iterable[str], inputs_of: Callable[[str], Iterable[str]]) -> set[str]:
    """The targets and every name they are computed from, following `inputs_of(name)`
    (the names a value reads; empty for an input or a constant)."""
    found: set[str] = set()
    stack = list(targets)
    while stack:
        name = stack.pop()
        if name not in found:
            found.add(name)
            stack.extend(inputs_of(name))
    return found


def frozen_params(spec: NetworkSpec, graph: Graph, names: Iterable[str] = ()) -> frozenset[str]:
    """The parameters training keeps fixed: those of nodes with `"trainable": false`, and
    `names` (a run's `"freeze"`: parameter names, or node ids for all of a node's parameters).
    SpecError naming the place when a name is neither, or a node frozen has no parameters."""
    owners: dict[str, list[str]] = {}
    for param in graph.params:
        owners.setdefault(param.node, []).append(param.name)
    frozen: set[str] = set()
    problems = []
    for index, node in enumerate(spec.nodes):
        if not node.trainable:
            if node.id not in owners:
                problems.append((f"nodes[{index}].trainable", f"node '{node.id}' ({node.op}) has no parameters "
                                                              "to keep fixed"))
            frozen.update(owners.get(node.id, ()))
    every = [param.name for param in graph.params]
    for index, name in enumerate(names):
        if name in owners:
            frozen.update(owners[name])
        elif name in every:
            frozen.add(name)
        else:
            problems.append((f"train.freeze[{index}]", f"'{name}' is neither a parameter nor a node with parameters"
                                                       f"{did_you_mean(name, every + list(owners))} (parameters: "
                                                       f"{', '.join(every) or 'none'})"))
    if problems:
        raise SpecError(problems)
    return frozenset(frozen)
