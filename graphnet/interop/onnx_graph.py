"""Reading an ONNX model: the file, its inputs and initializers, and the walk over its nodes.

`Importer` holds what the walk has found so far: each ONNX value as a per-example
`Val`, a `Const` (initializer, Constant node or fold of constants) or a
`Transposed` value, and the graphnet nodes being built (`Pending`). The rule
applied to each node comes from a table keyed by ONNX op type (`onnx_rules`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import GraphnetError
from ..ops import OPS, Value
from .onnx_tensors import node_where


# The ops whose output shape the walk asks their record for (the window ops' arithmetic).
WINDOW_OPS = ("conv2d", "max_pool2d", "avg_pool2d", "global_avg_pool")


@dataclass(frozen=True)
class Val:
    """A value computed per example: the key of the node (or input) producing it, its per-example shape."""

    key: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Const:
    """A constant: an initializer, a Constant node, or a fold of constants."""

    array: np.ndarray


@dataclass(frozen=True)
class Transposed:
    """A value transposed to (features, batch): only a Gemm with transA=1 may read it."""

    value: Val
    where: str


@dataclass
class Pending:
    """A graphnet node being built: `inputs` are value keys, `arrays` its params/state by local name."""

    op: str
    inputs: list[str]
    output: str
    fields: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    # names the node id may come from: (name, prefix for a leading digit, from a weight's name?)
    hints: list[tuple[str, str, bool]] = field(default_factory=list)
    where: str = ""


class Importer:
    """Walks an ONNX graph node by node (ONNX keeps them in topological order)."""

    def __init__(self, onnx: Any, model: Any, source: str):
        self.onnx, self.model, self.source = onnx, model, source
        self.values: dict[str, Val | Const | Transposed] = {}
        self.nodes: dict[str, Pending] = {}  # by output key
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.fixed_batches: set[int] = set()  # the batch sizes of inputs exported with a fixed one
        self.raw_inputs: set[str] = set()  # the graph's inputs (not initializers)
        # input -> {"shift": array, "scale": array, "at": the ONNX value after the last step}
        self.preprocessing: dict[str, dict[str, Any]] = {}

    # ---- errors and operands ------------------------------------------------------------------

    def error(self, where: str, message: str) -> GraphnetError:
        return GraphnetError(f"{self.source}: {where}: {message}")

    def operand(self, node: Any, slot: int, where: str) -> Val | Const | Transposed | None:
        """Input `slot` of `node` (None if absent or empty)."""
        if slot >= len(node.input) or not node.input[slot]:
            return None
        name = node.input[slot]
        if name not in self.values:
            raise self.error(where, f"reads '{name}', which no supported node produces")
        return self.values[name]

    def value(self, node: Any, slot: int, where: str) -> Val:
        found = self.operand(node, slot, where)
        if isinstance(found, Transposed):
            raise self.error(found.where, "a transposed value may only feed a Gemm with transA=1")
        if found is None:
            raise self.error(where, f"{node.op_type} has no input {slot}")
        if not isinstance(found, Val):
            raise self.error(where, f"input {slot} ('{node.input[slot]}') must be computed from the graph's "
                             "inputs, not a constant")
        return found

    def vector(self, node: Any, slot: int, where: str) -> Val:
        """A value with one axis per example (a (batch, features) tensor)."""
        found = self.value(node, slot, where)
        if len(found.shape) != 1:
            raise self.error(where, f"input '{node.input[slot]}' has per-example shape {found.shape}; "
                             "only (batch, features) tensors are supported here (flatten first)")
        return found

    def image(self, node: Any, slot: int, where: str) -> Val:
        """A value with three axes per example (a (batch, C, H, W) tensor)."""
        found = self.value(node, slot, where)
        if len(found.shape) != 3:
            raise self.error(where, f"input '{node.input[slot]}' has per-example shape {found.shape}; "
                             f"{node.op_type} is supported on images (batch, C, H, W) only")
        return found

    def constant(self, node: Any, slot: int, where: str, what: str) -> np.ndarray | None:
        found = self.operand(node, slot, where)
        if found is None:
            return None
        if not isinstance(found, Const):
            raise self.error(where, f"{what} ('{node.input[slot]}') must be a constant (an initializer), "
                             "not a value computed from the inputs")
        return found.array

    def weight(self, node: Any, slot: int, where: str, what: str) -> np.ndarray | None:
        """A constant holding parameters (a weight, a bias, a scale): see `floating`."""
        array = self.constant(node, slot, where, what)
        return None if array is None else self.floating(array, where, f"{what} ('{node.input[slot]}')")

    def floating(self, array: np.ndarray, where: str, what: str) -> np.ndarray:
        """`array` when it holds floating-point numbers, as the graph's values do; GraphnetError
        otherwise (integer weights would be read as numbers they were never meant to be)."""
        if array.dtype.kind != "f":
            raise self.error(where, f"{what} holds {array.dtype} values; the graph's values are floating "
                             "point, and so must its weights be")
        return array

    def add(self, onnx_node: Any, where: str, op: str, inputs: list[Val], **extra: Any) -> None:
        """Record a graphnet node producing the ONNX node's first output."""
        output = onnx_node.output[0]
        arrays = extra.pop("arrays", {})
        weight_name = extra.pop("weight_name", None)
        pending = Pending(op, [v.key for v in inputs], output, extra, arrays, where=where)
        if weight_name and "." in weight_name:
            pending.hints.append((weight_name.rsplit(".", 1)[0], op, True))
        pending.hints.append((_node_name_hint(onnx_node.name), op, False))
        pending.hints.append((output, op, False))
        self.nodes[output] = pending
        self.values[output] = Val(output, self.shape_of(op, inputs, extra, arrays))

    @staticmethod
    def shape_of(op: str, inputs: list[Val], fields: dict[str, Any], arrays: dict[str, np.ndarray]) -> tuple[int, ...]:
        if op == "affine":
            return (arrays["W"].shape[1],)
        if op == "flatten":
            return (prod(inputs[0].shape),)
        if op == "concat":
            return (sum(v.shape[0] for v in inputs), *inputs[0].shape[1:])
        if op in WINDOW_OPS:
            spec = OPS[op].model(id="shape", inputs=["x"], **fields)
            return OPS[op].infer_shape(spec, [Value(inputs[0].shape)]).shape
        return inputs[0].shape

    # ---- the walk ---------------------------------------------------------------------------

    def run(self, rules: Mapping[str, Rule]) -> None:
        """Apply `rules[op_type]` to every node; an op type without a rule is an error."""
        graph = self.model.graph
        self.check_one_writer_per_value()
        initializers = {t.name: t for t in graph.initializer}
        for name, tensor in initializers.items():
            self.values[name] = Const(self.onnx.numpy_helper.to_array(tensor))
        for value_info in graph.input:
            if value_info.name not in initializers:
                self.values[value_info.name] = Val(value_info.name, self.input_shape(value_info))
                self.raw_inputs.add(value_info.name)
        for index, node in enumerate(graph.node):
            where = node_where(node, index)
            standard = node.domain in ("", "ai.onnx")
            rule = rules.get(node.op_type) if standard else None
            if rule is None:
                op_type = node.op_type if standard else f"{node.domain}.{node.op_type}"
                raise self.error(where, f"op type {op_type} is not supported "
                                 f"(supported: {', '.join(sorted(rules))})")
            self.check_node_form(node, where)
            rule(self, node, where)

    def check_node_form(self, node: Any, where: str) -> None:
        """GraphnetError for a node without an output, without inputs (but a Constant), or with
        an attribute of another type than ONNX gives it (a STRING alpha, a FLOAT axis)."""
        if not node.output or not node.output[0]:
            raise self.error(where, f"{node.op_type} has no output")
        if node.op_type != "Constant" and not any(node.input):
            raise self.error(where, f"{node.op_type} has no input")
        kinds = self.onnx.AttributeProto.AttributeType
        for attribute in node.attribute:
            expected = ATTRIBUTE_TYPES.get(attribute.name)
            if expected is not None and kinds.Name(attribute.type) != expected:
                raise self.error(where, f"attribute '{attribute.name}' has type {kinds.Name(attribute.type)}; "
                                 f"{node.op_type}'s {attribute.name} has type {expected}")

    def check_one_writer_per_value(self) -> None:
        """GraphnetError naming both writers when two nodes (or a node and a graph input or
        initializer, or two initializers) write one value: ONNX values have one producer."""
        graph = self.model.graph
        writers = {value_info.name: f"graph input '{value_info.name}'" for value_info in graph.input}
        for tensor in graph.initializer:  # (an initializer may also be listed as a graph input)
            where = f"initializer '{tensor.name}'"
            if writers.get(tensor.name, "").startswith("initializer"):
                raise self.error(where, "is given twice: an ONNX value has one producer")
            writers[tensor.name] = where
        for index, node in enumerate(graph.node):
            where = node_where(node, index)
            for name in filter(None, node.output):
                if name in writers:
                    raise self.error(where, f"writes '{name}', already written by {writers[name]}: an ONNX value "
                                     "has one producer")
                writers[name] = where

    def input_shape(self, value_info: Any) -> tuple[int, ...]:
        """The per-example shape of a graph input (the dims after the batch dim)."""
        where = f"input '{value_info.name}'"
        tensor_type = value_info.type.tensor_type
        if not value_info.type.HasField("tensor_type") or tensor_type.elem_type not in FLOAT_TYPES:
            raise self.error(where, "only float and double tensor inputs are supported")
        dims = list(tensor_type.shape.dim)
        if len(dims) < 2:
            raise self.error(where, f"has {len(dims)} axes; expected (batch, features...)")
        if dims[0].HasField("dim_value") and dims[0].dim_value > 0:
            self.fixed_batches.add(dims[0].dim_value)
        shape = []
        for axis, dim in enumerate(dims[1:], start=1):
            if not dim.HasField("dim_value") or dim.dim_value < 1:
                raise self.error(where, f"axis {axis} has no fixed size ({dim.dim_param or '?'}); "
                                 "graphnet needs a fixed per-example shape")
            shape.append(dim.dim_value)
        return tuple(shape)


Rule = Callable[[Importer, Any, str], None]  # an ONNX node -> graphnet node(s) or a fold

FLOAT_TYPES = {1: np.dtype(np.float32), 11: np.dtype(np.float64)}  # TensorProto.FLOAT, DOUBLE

# the AttributeProto type of each attribute the rules read (the ONNX operators' definitions)
ATTRIBUTE_TYPES = {"alpha": "FLOAT", "beta": "FLOAT", "epsilon": "FLOAT", "momentum": "FLOAT", "axis": "INT",
                   "transA": "INT", "transB": "INT", "training_mode": "INT", "allowzero": "INT", "perm": "INTS",
                   "value": "TENSOR", "value_float": "FLOAT", "value_floats": "FLOATS", "value_int": "INT",
                   "value_ints": "INTS"}


def attributes(onnx: Any, node: Any) -> dict[str, Any]:
    """An ONNX node's attributes by name, as Python values."""
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def float_attribute(value: float) -> float:
    """An ONNX float attribute (stored as float32) as the shortest decimal that reads back
    to the same float32: 1e-05 rather than 9.999999747378752e-06."""
    return float(str(np.float32(value)))


def _node_name_hint(name: str) -> str:
    """A readable id from an exporter's node name: TorchScript's `/fc1/Gemm` -> `fc1`,
    torch.export's `node_linear_1` -> `linear_1`."""
    if name.startswith("/") and name.count("/") >= 2:
        name = name.rsplit("/", 1)[0]
    if name.startswith("node_"):
        name = name[len("node_"):]
    return name
