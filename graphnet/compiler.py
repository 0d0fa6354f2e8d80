"""The compiler: Graph -> Plan, as a few small passes.

1. `fuse_epilogues`, `fuse_into_consumers`: Graph -> Graph, driven by the
   fusion table (`graphnet.fusion_rules`), each returning its FusionDecisions
   (fired, or not and why) and the values it renamed.
2. `lower`: Graph -> Schedule. Each op's forward hook, in topological order,
   then (train mode) each backward hook in reverse order. Gradients of values
   read by several nodes are accumulated; only values on a path from a
   parameter to the loss get gradients; nodes no target needs are dropped.
3. `plan_memory`: Schedule -> buffer offsets. Each buffer lives from its first
   to its last step; buffers whose lifetimes don't overlap share storage;
   declared in-place pairs share storage when the input dies at that step.
4. `graphnet.plan.Plan` binds the steps to views of the allocated arena.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from math import prod
from typing import Any, Callable, Literal, NamedTuple

from .blas import at_b_update
from .fusion_rules import FUSION_RULES, FusionRule
from .graph import Graph, GraphNode
from .lowering import ALIAS, FusionDecision, Ref, Step
from .ops import OPS, NodeModel

Mode = Literal["train", "eval"]


# ---- pass 1: fusion --------------------------------------------------------------------------


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
    producer = graph._by_id.get(node.inputs[0])
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


# ---- pass 2: lowering and autodiff -----------------------------------------------------------


@dataclass
class Schedule:
    """The lowered plan before memory planning."""

    graph: Graph
    mode: Mode
    steps: list[Step]
    n_forward: int  # steps[:n_forward] are forward steps
    outputs: dict[str, Ref]  # network output name -> its ref
    loss: str | None  # the loss node, when the plan computes a loss
    backward: bool
    written_param_grads: set[str] = field(default_factory=set)
    updated_params: frozenset[str] = frozenset()  # parameters the backward steps update with SGD


def ancestors(graph: Graph, targets: list[str]) -> set[str]:
    """The targets and every value they are computed from."""
    needed, stack = set(), list(targets)
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        if name in graph._by_id:
            stack.extend(graph.node(name).inputs)
    return needed


def _needs_grad(graph: Graph) -> set[str]:
    """Values on a path from a parameter to the loss."""
    if graph.loss is None:
        return set()
    owners = {param.node for param in graph.params}
    depends: set[str] = set()
    for node in graph.nodes:
        if node.id in owners or any(ref in depends for ref in node.inputs):
            depends.add(node.id)
    return depends & ancestors(graph, [graph.loss])


# The one-element array a plan's SGD-in-backward steps read the learning rate from.
SGD_LEARNING_RATE = Ref("fixed", "(sgd).learning_rate", (1,))


class _Context:
    """The LowerContext handed to one node's hooks."""

    def __init__(self, lowerer: "_Lowerer", node: GraphNode):
        self._lowerer, self._node = lowerer, node
        self.mode, self.kernels, self.dtype, self.rng = lowerer.mode, lowerer.kernels, lowerer.dtype, lowerer.rng
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
        return at_b_update(self.dtype)

    def saved(self, name: str, shape: tuple[int, ...]) -> Ref:
        return Ref("saved", f"{self._node.id}.{name}", tuple(shape))

    def fixed(self, name: str, shape: tuple[int, ...]) -> Ref:
        return Ref("fixed", f"{self._node.id}.{name}", tuple(shape))


class _Lowerer:
    def __init__(self, graph: Graph, mode: Mode, kernels: Any, dtype: Any, rng: Any):
        self.graph, self.mode, self.kernels, self.dtype, self.rng = graph, mode, kernels, dtype, rng
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


def lower(graph: Graph, mode: Mode, kernels: Any, dtype: Any, rng: Any, *,
          with_loss: bool, with_backward: bool, update_in_backward: frozenset[str] = frozenset()) -> Schedule:
    """Graph -> Schedule of forward steps in `mode`, then (with_backward) backward steps.

    `with_loss` includes the loss node (an eval plan can report the loss too);
    `with_backward` needs train mode and a loss. `update_in_backward` names the
    parameters whose op may apply the SGD update itself, inside its backward
    step, with the learning rate read from `SGD_LEARNING_RATE` (the op then
    writes no gradient for it; `Schedule.updated_params` lists those that did).
    """
    if with_backward and (mode != "train" or graph.loss is None or not with_loss):
        raise ValueError(f"network '{graph.name}': a backward pass needs train mode and a loss")
    targets = list(graph.outputs) + ([graph.loss] if with_loss and graph.loss else [])
    needed = ancestors(graph, targets)
    nodes = [node for node in graph.nodes if node.id in needed]
    lowerer = _Lowerer(graph, mode, kernels, dtype, rng)
    lowerer.update_in_backward = update_in_backward if with_backward else frozenset()
    loss_node = graph.node(graph.loss) if with_backward else None
    if loss_node is not None:
        lowerer.needs_grad = _needs_grad(graph)
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
                    with_backward, lowerer.written_param_grads, frozenset(lowerer.updated_params))


# ---- pass 3: memory planning -----------------------------------------------------------------

PLANNED_KINDS = frozenset({"value", "grad", "saved"})
ALIGN = 64  # bytes: every buffer starts on a cache line


@dataclass
class Buffer:
    """A planned buffer: `size` elements per example, alive over steps [first, last]."""

    key: tuple[str, str]  # (kind, name)
    size: int
    first: int
    last: int
    storage: int = -1  # index of the storage group it lives in
    offset: int = 0  # element offset of the group in the arena (per unit of capacity)

    @property
    def label(self) -> str:
        kind, name = self.key
        return {"grad": "d", "saved": "~"}.get(kind, "") + name


@dataclass
class MemoryPlan:
    buffers: dict[tuple[str, str], Buffer]
    arena_size: int  # elements per unit of capacity (multiply by capacity)
    merged_steps: set[int]  # steps whose in-place pairs were all realized
    inplace_pairs: list[tuple[int, str, str]]  # (step, read buffer, written buffer) merged

    def naive_size(self) -> int:
        """Elements per unit of capacity if every buffer had its own (aligned) storage."""
        return sum(_aligned(buffer.size) for buffer in self.buffers.values())


def _collect_buffers(steps: list[Step], keep_alive: set[tuple[str, str]]) -> dict[tuple[str, str], Buffer]:
    buffers: dict[tuple[str, str], Buffer] = {}
    for t, step in enumerate(steps):
        for ref in step.args:
            if ref is None or ref.kind not in PLANNED_KINDS:
                continue
            key = (ref.kind, ref.name)
            size = prod(ref.shape)
            if key not in buffers:
                buffers[key] = Buffer(key, size, t, t)
            elif buffers[key].size != size:
                raise AssertionError(f"buffer {key} viewed with sizes {buffers[key].size} and {size}")
            buffers[key].last = t
    for key in keep_alive:
        if key in buffers:
            buffers[key].last = len(steps)
    return buffers


def plan_memory(steps: list[Step], keep_alive: set[tuple[str, str]], share: bool = True) -> MemoryPlan:
    """Assign every planned buffer an arena offset (in elements per unit of capacity).

    With `share=False` every buffer gets its own storage (the unplanned
    reference the tests compare against).
    """
    buffers = _collect_buffers(steps, keep_alive)
    # Storage groups: a buffer written in place of an input that dies at that step joins its group.
    group_of = {key: i for i, key in enumerate(buffers)}
    members: dict[int, list[tuple[str, str]]] = {i: [key] for i, key in enumerate(buffers)}
    merged_steps: set[int] = set()
    pairs_done: list[tuple[int, str, str]] = []
    if share:
        for t, step in enumerate(steps):
            realized = 0
            for r, w in step.inplace:
                read, write = step.args[r], step.args[w]
                if read is None or write is None or read.kind not in PLANNED_KINDS or write.kind not in PLANNED_KINDS:
                    continue
                rkey, wkey = (read.kind, read.name), (write.kind, write.name)
                rgroup, wgroup = group_of[rkey], group_of[wkey]
                group_last = max(buffers[k].last for k in members[rgroup])
                # The pair promises only that arg r may be overwritten by arg w; if another
                # arg of the step reads the same storage (add(a, a, a)), writing w would
                # change what that arg reads.
                read_elsewhere = any(
                    j not in (r, w) and ref is not None and ref.kind in PLANNED_KINDS
                    and group_of[(ref.kind, ref.name)] == rgroup
                    for j, ref in enumerate(step.args))
                if (rgroup != wgroup and group_last == t and buffers[wkey].first == t and not read_elsewhere
                        and buffers[rkey].size == buffers[wkey].size and len(members[wgroup]) == 1):
                    members[rgroup].append(wkey)
                    del members[wgroup]
                    group_of[wkey] = rgroup
                    pairs_done.append((t, buffers[rkey].label, buffers[wkey].label))
                    realized += 1
                elif rgroup == wgroup:
                    realized += 1
            if step.inplace and realized == len(step.inplace):
                merged_steps.add(t)
    groups = [
        (min(buffers[k].first for k in keys), max(buffers[k].last for k in keys), buffers[keys[0]].size, gid)
        for gid, keys in members.items()
    ]
    offsets, arena_size = _pack(groups, share)
    for gid, keys in members.items():
        for key in keys:
            buffers[key].storage, buffers[key].offset = gid, offsets[gid]
    return MemoryPlan(buffers, arena_size, merged_steps, pairs_done)


def _pack(groups: list[tuple[int, int, int, int]], share: bool) -> tuple[dict[int, int], int]:
    """Offsets for (first, last, size, id) intervals: best fit in a free list, freed after last use."""
    offsets: dict[int, int] = {}
    free: list[tuple[int, int]] = []  # (offset, size), sorted by offset
    live: list[tuple[int, int, int]] = []  # (last, offset, size)
    end = 0
    for first, last, size, gid in sorted(groups):
        size = _aligned(size)
        if share:
            for item in [item for item in live if item[0] < first]:
                live.remove(item)
                free = _release(free, item[1], item[2])
        fits = [(block_size, offset) for offset, block_size in free if block_size >= size]
        if fits:
            block_size, offset = min(fits)
            free.remove((offset, block_size))
            if block_size > size:
                free = _release(free, offset + size, block_size - size)
        else:
            if free and free[-1][0] + free[-1][1] == end:  # grow the last free block at the end
                offset = free.pop()[0]
            else:
                offset = end
            end = offset + size
        offsets[gid] = offset
        live.append((last, offset, size))
    return offsets, end


def _release(free: list[tuple[int, int]], offset: int, size: int) -> list[tuple[int, int]]:
    """Return a block to the free list, merging neighbours."""
    blocks = sorted(free + [(offset, size)])
    merged: list[tuple[int, int]] = []
    for start, length in blocks:
        if merged and merged[-1][0] + merged[-1][1] == start:
            merged[-1] = (merged[-1][0], merged[-1][1] + length)
        else:
            merged.append((start, length))
    return merged


def _aligned(size: int, itemsize_hint: int = 4) -> int:
    per_line = ALIGN // itemsize_hint
    return -(-size // per_line) * per_line
