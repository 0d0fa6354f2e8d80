"""Pass 2, lowering and autodiff: Graph -> Schedule.

Each op's forward hook, in topological order, then (train mode) each backward
hook in reverse order. Gradients of values read by several nodes are
accumulated; only values on a path from a parameter to the loss get
gradients; nodes no target needs are dropped. The hooks speak the vocabulary
of `graphnet.ops.lowering` (Ref, Step, LowerContext).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

from ..ops.lowering import ALIAS, SGD_LEARNING_RATE, Ref, Step
from ..ops.target import Target
from .graph import Graph, GraphNode, upstream
from .kinds import Mode


@dataclass(frozen=True)
class Schedule:
    """The lowered plan before memory planning."""

    graph: Graph
    mode: Mode
    steps: list[Step]
    n_forward: int  # steps[:n_forward] are forward steps
    outputs: dict[str, Ref]  # network output name -> its ref
    loss: str | None  # the loss node, when the plan computes a loss
    backward: bool
    written_param_grads: frozenset[str] = frozenset()  # parameters whose gradient a backward step writes
    updated_params: frozenset[str] = frozenset()  # parameters the backward steps update with SGD


def ancestors(graph: Graph, targets: list[str]) -> set[str]:
    """The targets and every value they are computed from."""
    return upstream(targets, lambda name: node.inputs if (node := graph.find_node(name)) is not None else ())


def _needs_grad(graph: Graph, frozen: frozenset[str] = frozenset()) -> set[str]:
    """Values on a path from a trainable parameter (one not in `frozen`) to the loss."""
    if graph.loss is None:
        return set()
    owners = {param.node for param in graph.params if param.name not in frozen}
    depends: set[str] = set()
    for node in graph.nodes:
        if node.id in owners or any(ref in depends for ref in node.inputs):
            depends.add(node.id)
    return depends & ancestors(graph, [graph.loss])


class _Context:
    """The LowerContext handed to one node's hooks."""

    def __init__(self, lowerer: "_Lowerer", node: GraphNode):
        self._lowerer, self._node = lowerer, node
        self.mode, self.target, self.rng = lowerer.mode, lowerer.target, lowerer.rng
        self.kernels, self.dtype = lowerer.target.kernels, lowerer.target.dtype
        self.inputs, self.output = list(node.input_values), node.value

    def x(self, k: int, shape: tuple[int, ...] | None = None) -> Ref:
        value = self._node.inputs[k]
        return self._lowerer.value_ref(value, shape if shape is not None else self.inputs[k].shape)

    def y(self, shape: tuple[int, ...] | None = None) -> Ref:
        return self._lowerer.value_ref(self._node.id, shape if shape is not None else self.output.shape)

    def dx(self, k: int, shape: tuple[int, ...] | None = None) -> Ref | None:
        return self._lowerer.input_grad_ref(self._node, k, shape if shape is not None else self.inputs[k].shape)

    def dy(self, shape: tuple[int, ...] | None = None) -> Ref:
        source = self._lowerer.source(self._node.id)
        return Ref("grad", source, shape if shape is not None else self.output.shape)

    def param(self, name: str) -> Ref:
        return self._lowerer.param_ref("param", f"{self._node.id}.{name}")

    def param_grad(self, name: str) -> Ref:
        full = f"{self._node.id}.{name}"
        self._lowerer.written_param_grads.add(full)
        return self._lowerer.param_ref("param_grad", full)

    def state(self, name: str) -> Ref:
        full = f"{self._node.id}.{name}"
        return Ref("state", full, self._lowerer.state_shapes[full])

    def update_in_backward(self, name: str) -> Ref | None:
        full = f"{self._node.id}.{name}"
        if full not in self._lowerer.update_in_backward:
            return None
        self._lowerer.updated_params.add(full)
        return SGD_LEARNING_RATE

    def at_b_update(self) -> Callable[..., None]:
        return self.target.at_b_update()

    def saved(self, name: str, shape: tuple[int, ...]) -> Ref:
        return Ref("saved", f"{self._node.id}.{name}", tuple(shape))

    def fixed(self, name: str, shape: tuple[int, ...]) -> Ref:
        return Ref("fixed", f"{self._node.id}.{name}", tuple(shape))


class _Lowerer:
    def __init__(self, graph: Graph, mode: Mode, target: Target, rng: Any):
        self.graph, self.mode, self.target, self.kernels, self.rng = graph, mode, target, target.kernels, rng
        self.aliases: dict[str, str] = {}  # view node id -> the value it views
        self.param_shapes = {p.name: p.shape for p in graph.params}
        self.state_shapes = {s.name: s.shape for s in graph.state}
        self.written_param_grads: set[str] = set()
        self.update_in_backward: frozenset[str] = frozenset()
        self.updated_params: set[str] = set()
        self.needs_grad: set[str] = set()
        self.contributions: dict[tuple[str, int], int] = {}  # (node, slot) -> index among grad writers
        self.pending_adds: list[Step] = []

    def source(self, value: str) -> str:
        while value in self.aliases:
            value = self.aliases[value]
        return value

    def value_ref(self, value: str, shape: tuple[int, ...]) -> Ref:
        source = self.source(value)
        kind = "input" if source in self.graph.inputs else "label" if source in self.graph.labels else "value"
        return Ref(kind, source, tuple(shape))

    def param_ref(self, kind: Literal["param", "param_grad"], name: str) -> Ref:
        return Ref(kind, name, self.param_shapes[name])

    def input_grad_ref(self, node: GraphNode, k: int, shape: tuple[int, ...]) -> Ref | None:
        source = self.source(node.inputs[k])
        if source not in self.needs_grad:
            return None
        index = self.contributions[(node.id, k)]
        if index == 0:
            return Ref("grad", source, tuple(shape))
        part = Ref("grad", f"{source}#{index}", tuple(shape))
        whole = Ref("grad", source, tuple(shape))
        self.pending_adds.append(Step(node.id, "add_into (gradient of a shared value)", self.kernels.add_into,
                                      (whole, part), writes=frozenset({0})))
        return part

    def count_contributions(self, backward_nodes: list[GraphNode], loss: GraphNode | None) -> None:
        """Number the gradient writers of every value in backward order; writer 0 owns the buffer.

        The loss runs first in backward order (every other node that needs a
        gradient is one of its ancestors), so its score gradient is writer 0.
        """
        seen: dict[str, int] = {}
        if loss is not None:
            seen[self.source(loss.inputs[0])] = 1
        for node in backward_nodes:
            for k, ref in enumerate(node.inputs):
                source = self.source(ref)
                if source in self.needs_grad:
                    self.contributions[(node.id, k)] = seen.get(source, 0)
                    seen[source] = seen.get(source, 0) + 1


def lower(graph: Graph, mode: Mode, target: Target, rng: Any, *,
          with_loss: bool, with_backward: bool, update_in_backward: frozenset[str] = frozenset(),
          frozen: frozenset[str] = frozenset()) -> Schedule:
    """Graph -> Schedule of forward steps in `mode`, then (with_backward) backward steps, each
    op's hooks running on `target` (its kernels, dtype, switches) and drawing from `rng`.

    `with_loss` includes the loss node (an eval plan can report the loss too);
    `with_backward` needs train mode and a loss. `update_in_backward` names the
    parameters whose op may apply the SGD update itself, inside its backward
    step, with the learning rate read from `SGD_LEARNING_RATE` (the op then
    writes no gradient for it; `Schedule.updated_params` lists those that did).
    `frozen` parameters need no gradient: backward runs only where a gradient
    flows from the loss to a trainable parameter (a frozen body under a trained
    head has no backward steps).
    """
    if with_backward and (mode != "train" or graph.loss is None or not with_loss):
        raise ValueError(f"network '{graph.name}': a backward pass needs train mode and a loss")
    targets = list(graph.outputs) + ([graph.loss] if with_loss and graph.loss else [])
    needed = ancestors(graph, targets)
    nodes = [node for node in graph.nodes if node.id in needed]
    lowerer = _Lowerer(graph, mode, target, rng)
    lowerer.update_in_backward = update_in_backward if with_backward else frozenset()
    loss_node = graph.node(graph.loss) if with_backward else None
    if loss_node is not None:
        lowerer.needs_grad = _needs_grad(graph, frozen)
        lowerer.contributions[(loss_node.id, 0)] = 0
    steps: list[Step] = []
    viewed: set[str] = set()
    for node in nodes:
        result = node.record.forward(node.spec, _Context(lowerer, node))
        if result is ALIAS:
            lowerer.aliases[node.id] = node.inputs[0]
            viewed.add(node.id)
        else:
            steps.extend(result)
    n_forward = len(steps)
    if with_backward:
        backward_nodes = [n for n in reversed(nodes) if n.id not in viewed and n.id in lowerer.needs_grad
                          and not n.record.is_loss]
        lowerer.count_contributions(backward_nodes, loss_node)
        for node in backward_nodes:
            steps.extend(node.record.backward(node.spec, _Context(lowerer, node)))
            steps.extend(lowerer.pending_adds)
            lowerer.pending_adds = []
    outputs = {name: lowerer.value_ref(name, graph.values[name].shape) for name in graph.outputs}
    return Schedule(graph, mode, steps, n_forward, outputs, graph.loss if with_loss else None,
                    with_backward, frozenset(lowerer.written_param_grads), frozenset(lowerer.updated_params))
