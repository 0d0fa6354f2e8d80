"""Graph-level checks of a network spec: names, references, arity, labels,
cycles, shapes, loss and outputs. All problems are collected and raised at
once as a pydantic ValidationError whose locations point into the JSON
(`nodes[3].inputs[0]`), so they read the same as field errors.
"""
from __future__ import annotations

import warnings
from collections import deque
from math import prod
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from ..errors import SpecWarning, did_you_mean
from ..ops import OPS, ShapeError, Value
from ..system.limits import ENV_VAR as LIMIT_ENV_VAR
from ..system.limits import format_bytes, max_bytes

if TYPE_CHECKING:
    from . import NetworkSpec


def located(loc: tuple[Any, ...], message: str, value: Any = None) -> InitErrorDetails:
    """A problem at JSON location `loc` (("nodes", 3, "inputs", 0)), as a detail of a pydantic
    ValidationError (ValidationError.from_exception_data), so it reads as field errors do."""
    error = PydanticCustomError("custom_graph_error", "{message}", {"message": message})
    return InitErrorDetails(type=error, loc=loc, input=value)


class _Problems:
    def __init__(self) -> None:
        self.details: list[InitErrorDetails] = []

    def add(self, loc: tuple[Any, ...], message: str, value: Any = None) -> None:
        self.details.append(located(loc, message, value))

    def raise_if_any(self) -> None:
        if self.details:
            raise ValidationError.from_exception_data("NetworkSpec", self.details)


def _defined_list(known: list[str]) -> str:
    shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
    return f" (defined: {shown})"


def check_network(spec: "NetworkSpec") -> tuple[list[int], dict[str, Value]]:
    """The nodes' topological order and every value's per-example shape, or ValidationError."""
    problems = _Problems()
    index_of = _check_names(spec, problems)
    _check_references(spec, index_of, problems)
    problems.raise_if_any()  # the checks below need resolvable references
    order = _topological_order(spec, index_of, problems)
    problems.raise_if_any()
    values = _infer_values(spec, order, problems)
    _check_loss_and_outputs(spec, index_of, problems)
    problems.raise_if_any()
    _check_parameter_memory(spec, values, problems)
    problems.raise_if_any()
    _warn_unconnected(spec, index_of)
    return order, values


def _warn_unconnected(spec: "NetworkSpec", index_of: dict[str, int]) -> None:
    """A SpecWarning for each node whose value reaches neither an output nor the loss."""
    pending = [name for name in [*spec.outputs, spec.loss] if name in index_of]
    used: set[str] = set()
    while pending:
        name = pending.pop()
        if name not in used:
            used.add(name)
            pending.extend(ref for ref in spec.nodes[index_of[name]].inputs if ref in index_of)
    for i, node in enumerate(spec.nodes):
        if node.id not in used:
            warnings.warn(SpecWarning(f"nodes[{i}]: node '{node.id}' ({node.op}) is not connected: its value "
                                      "reaches no output and not the loss (remove it, or list it in \"outputs\")"),
                          stacklevel=2)


def _check_names(spec: "NetworkSpec", problems: _Problems) -> dict[str, int]:
    index_of: dict[str, int] = {}
    for name in spec.labels:
        if name in spec.inputs:
            problems.add(("labels", name), f"'{name}' is already an input name", name)
    for i, node in enumerate(spec.nodes):
        if node.id in spec.inputs or node.id in spec.labels:
            kind = "an input" if node.id in spec.inputs else "a label"
            problems.add(("nodes", i, "id"), f"node id '{node.id}' is already {kind} name", node.id)
        elif node.id in index_of:
            first = index_of[node.id]
            problems.add(("nodes", i, "id"), f"duplicate id '{node.id}' (first used by nodes[{first}])", node.id)
        else:
            index_of[node.id] = i
    return index_of


def _check_references(spec: "NetworkSpec", index_of: dict[str, int], problems: _Problems) -> None:
    known = [*spec.inputs, *spec.labels, *index_of]
    for i, node in enumerate(spec.nodes):
        record = OPS[node.op]
        count = len(node.inputs)
        if count < record.min_inputs or (record.max_inputs is not None and count > record.max_inputs):
            hint = " (scores, labels): the label input is missing" if record.is_loss and count == 1 else ""
            problems.add(("nodes", i, "inputs"),
                         f"node '{node.id}' ({node.op}) takes {record.arity_text()}{hint}, got {count}",
                         node.inputs)
            continue
        for k, ref in enumerate(node.inputs):
            loc = ("nodes", i, "inputs", k)
            if ref not in spec.inputs and ref not in spec.labels and ref not in index_of:
                problems.add(loc, f"node '{node.id}' ({node.op}) reads '{ref}', which is not defined"
                                  f"{did_you_mean(ref, known, cutoff=0.5)}{_defined_list(known)}", ref)
            elif ref == node.id and index_of.get(ref) == i:  # not a clash with an input or an earlier duplicate
                problems.add(loc, f"node '{node.id}' reads its own output (cycle: {ref} -> {ref})", ref)
            elif record.is_loss and k == 1 and ref not in spec.labels:
                hint = "declare it under \"labels\"" if not spec.labels else \
                    f"labels are: {', '.join(spec.labels)}"
                problems.add(loc, f"loss '{node.id}' ({node.op}) needs a label input as its second input, "
                                  f"but '{ref}' is not a label; {hint}", ref)
            elif ref in spec.labels and not (record.is_loss and k == 1):
                problems.add(loc, f"node '{node.id}' ({node.op}) reads label '{ref}'; labels can only be the "
                                  "second input of a loss node", ref)
            elif ref in index_of and OPS[spec.nodes[index_of[ref]].op].is_loss:
                problems.add(loc, f"node '{node.id}' reads '{ref}', a loss; a loss value can only be the "
                                  "network's \"loss\"", ref)


def _topological_order(spec: "NetworkSpec", index_of: dict[str, int], problems: _Problems) -> list[int]:
    """Kahn's algorithm (iterative: no recursion limit on long chains); a cycle is reported with its path."""
    pending = [0] * len(spec.nodes)
    readers: list[list[int]] = [[] for _ in spec.nodes]
    for i, node in enumerate(spec.nodes):
        for ref in node.inputs:
            if ref in index_of:
                pending[i] += 1
                readers[index_of[ref]].append(i)
    ready = deque(i for i, count in enumerate(pending) if count == 0)
    order: list[int] = []
    while ready:
        i = ready.popleft()
        order.append(i)
        for reader in readers[i]:
            pending[reader] -= 1
            if pending[reader] == 0:
                ready.append(reader)
    if len(order) < len(spec.nodes):
        _report_cycle(spec, index_of, {i for i, count in enumerate(pending) if count > 0}, problems)
    return order


def _report_cycle(spec: "NetworkSpec", index_of: dict[str, int], stuck: set[int], problems: _Problems) -> None:
    # Every stuck node reads at least one stuck node; walking those edges must revisit a node.
    start = min(stuck)
    path, seen = [start], {start: 0}
    while True:
        node = spec.nodes[path[-1]]
        nxt = next(index_of[ref] for ref in node.inputs if ref in index_of and index_of[ref] in stuck)
        if nxt in seen:
            cycle = path[seen[nxt]:]
            break
        seen[nxt] = len(path)
        path.append(nxt)
    # Report in data-flow order (producer -> consumer), starting at the input the location names.
    first = cycle[0]
    names = [spec.nodes[i].id for i in reversed(cycle)]
    names = names[-2:] + names[:-2] if len(names) > 1 else names
    k = next(k for k, ref in enumerate(spec.nodes[first].inputs) if ref == spec.nodes[cycle[1 % len(cycle)]].id)
    problems.add(("nodes", first, "inputs", k),
                 f"cycle: {' -> '.join(names + [names[0]])}", spec.nodes[first].inputs[k])


def _infer_values(spec: "NetworkSpec", order: list[int], problems: _Problems) -> dict[str, Value]:
    values: dict[str, Value] = {name: Value(tuple(s.shape)) for name, s in spec.inputs.items()}
    values.update({name: label.value() for name, label in spec.labels.items()})
    for i in order:
        node = spec.nodes[i]
        if any(ref not in values for ref in node.inputs):
            continue  # an upstream node already failed
        record = OPS[node.op]
        inputs = [values[ref] for ref in node.inputs]
        try:
            values[node.id] = record.infer_shape(node, inputs)
        except ShapeError as error:
            loc: tuple[Any, ...] = ("nodes", i) if error.slot is None else ("nodes", i, "inputs", error.slot)
            problems.add(loc, f"node '{node.id}' ({node.op}): {error.message}")
    return values


def _check_parameter_memory(spec: "NetworkSpec", values: dict[str, Value], problems: _Problems) -> None:
    """Refuse, before anything is allocated, a network whose parameters (float32, with
    their gradients) alone exceed the memory limit; name the largest node."""
    counts: list[tuple[int, int]] = []
    for i, node in enumerate(spec.nodes):
        decls = OPS[node.op].params(node, [values[ref] for ref in node.inputs])
        counts.append((sum(prod(decl.shape) for decl in decls), i))
    total_bytes = sum(count for count, _ in counts) * 4 * 2
    limit = max_bytes()
    if total_bytes > limit:
        count, i = max(counts)
        node = spec.nodes[i]
        loc: tuple[Any, ...] = ("nodes", i, "units") if "units" in type(node).model_fields else ("nodes", i)
        problems.add(loc, f"node '{node.id}' ({node.op}) has {count:,} parameters; the network needs about "
                          f"{format_bytes(total_bytes)} for float32 parameters and gradients, over the limit of "
                          f"{format_bytes(limit)} (set {LIMIT_ENV_VAR} to change it)")


def _check_loss_and_outputs(spec: "NetworkSpec", index_of: dict[str, int], problems: _Problems) -> None:
    node_ids = list(index_of)
    loss_nodes = [node.id for node in spec.nodes if OPS[node.op].is_loss]
    if spec.loss is not None:
        if spec.loss not in index_of:
            problems.add(("loss",), f"'{spec.loss}' is not a node{did_you_mean(spec.loss, node_ids, cutoff=0.5)}", spec.loss)
        elif not OPS[spec.nodes[index_of[spec.loss]].op].is_loss:
            op = spec.nodes[index_of[spec.loss]].op
            losses = ", ".join(name for name, record in OPS.items() if record.is_loss)
            article = "an" if op[0] in "aeiou" else "a"
            problems.add(("loss",), f"'{spec.loss}' is {article} {op} node, not a loss (loss ops: {losses})",
                         spec.loss)
    for node_id in loss_nodes:
        if node_id != spec.loss:
            hint = f"set \"loss\": \"{node_id}\"" if spec.loss is None else f"\"loss\" names '{spec.loss}'"
            problems.add(("nodes", index_of[node_id]), f"loss node '{node_id}' is not the network's loss ({hint})")
    seen: set[str] = set()
    for k, name in enumerate(spec.outputs):
        loc = ("outputs", k)
        if name in seen:
            problems.add(loc, f"'{name}' is listed twice", name)
        elif name in spec.labels:
            problems.add(loc, f"'{name}' is a label, not a value the network computes", name)
        elif name in loss_nodes:
            problems.add(loc, f"'{name}' is the loss; the loss is reported by itself, not as an output", name)
        elif name not in index_of and name not in spec.inputs:
            problems.add(loc, f"'{name}' is not a node{did_you_mean(name, node_ids, cutoff=0.5)}", name)
        seen.add(name)
