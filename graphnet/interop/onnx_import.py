"""ONNX import: an ONNX model of an MLP -> a network spec with its weights.

    net = gn.from_onnx("model.onnx", batch_size=128)     # a CompiledNetwork
    imported = read_onnx("model.onnx")                   # spec + arrays, not compiled

Accepted: the graphs PyTorch's exporters write for MLPs (TorchScript: Gemm
with transB, Identity, BatchNormalization, Flatten; torch.export: Gemm or
MatMul + Add, Reshape to (batch, features), constants as initializers) and
graphnet's own export. Folded away on the way in: Identity, Dropout, Reshape
or Flatten to (batch, features), Transpose of a weight or of the input of a
Gemm with transA, Gemm's alpha/beta/transA/transB, Constant nodes, and an Add
of a constant after a MatMul (its bias). An affine followed by its only reader,
an elementwise activation, becomes one affine with that activation.

The spec has no labels and no loss: it is an inference network. To train it,
add labels and a loss node that reads an output (see README).
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from math import prod
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..errors import GraphnetError, SpecError, SpecWarning
from . import require_onnx

if TYPE_CHECKING:
    from ..network import CompiledNetwork
    from ..spec import NetworkSpec

AFFINE_ACTIVATIONS = {"relu", "leaky_relu", "sigmoid", "tanh"}
MAX_ID = 64


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


@dataclass
class ImportedModel:
    """What an ONNX file turns into: the network spec, its arrays by name (`fc1.W`,
    `bn.running_mean`) and the dtype of the model's inputs."""

    spec: "NetworkSpec"
    arrays: dict[str, np.ndarray]
    dtype: np.dtype
    renamed: dict[str, str] = field(default_factory=dict)  # ONNX input/output name -> spec name, where changed


class Importer:
    """Walks an ONNX graph node by node (ONNX keeps them in topological order)."""

    def __init__(self, onnx: Any, model: Any, source: str):
        self.onnx, self.model, self.source = onnx, model, source
        self.values: dict[str, Val | Const | Transposed] = {}
        self.nodes: dict[str, Pending] = {}  # by output key
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.fixed_batches: set[int] = set()  # the batch sizes of inputs exported with a fixed one

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

    def constant(self, node: Any, slot: int, where: str, what: str) -> np.ndarray | None:
        found = self.operand(node, slot, where)
        if found is None:
            return None
        if not isinstance(found, Const):
            raise self.error(where, f"{what} ('{node.input[slot]}') must be a constant (an initializer), "
                             "not a value computed from the inputs")
        return found.array

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
            return (sum(v.shape[0] for v in inputs),)
        return inputs[0].shape

    # ---- the walk ---------------------------------------------------------------------------

    def run(self) -> None:
        graph = self.model.graph
        initializers = {t.name: t for t in graph.initializer}
        for name, tensor in initializers.items():
            self.values[name] = Const(self.onnx.numpy_helper.to_array(tensor))
        for value_info in graph.input:
            if value_info.name not in initializers:
                self.values[value_info.name] = Val(value_info.name, self.input_shape(value_info))
        for index, node in enumerate(graph.node):
            where = f"node '{node.name or f'#{index}'}'"
            standard = node.domain in ("", "ai.onnx")
            rule = IMPORTERS.get(node.op_type) if standard else None
            if rule is None:
                op_type = node.op_type if standard else f"{node.domain}.{node.op_type}"
                raise self.error(where, f"op type {op_type} is not supported "
                                 f"(supported: {', '.join(sorted(IMPORTERS))})")
            rule(self, node, where)

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


FLOAT_TYPES = {1: np.dtype(np.float32), 11: np.dtype(np.float64)}  # TensorProto.FLOAT, DOUBLE


def _attributes(onnx: Any, node: Any) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _float_attribute(value: float) -> float:
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


def identifier(text: str, prefix: str) -> str:
    """`text` made into a valid node id: other characters become `_`, a leading digit gets `prefix_`."""
    cleaned = re.sub(r"[^\w\-]+", "_", text).strip("_")
    if not cleaned:
        return prefix
    if not re.match(r"[^\W\d]", cleaned):
        cleaned = f"{prefix}_{cleaned}"
    return cleaned[:MAX_ID]


# ---- per-op rules (keyed by ONNX op type) ----------------------------------------------------


def _alias(imp: Importer, node: Any, where: str) -> None:
    """Identity, and Dropout at inference: the output is the input."""
    found = imp.operand(node, 0, where)
    if found is None:
        raise imp.error(where, "has no input")
    imp.values[node.output[0]] = found


def _constant(imp: Importer, node: Any, where: str) -> None:
    attrs = _attributes(imp.onnx, node)
    if "value" in attrs:
        array = imp.onnx.numpy_helper.to_array(attrs["value"])
    else:
        kinds = {"value_float": np.float32, "value_floats": np.float32, "value_int": np.int64,
                 "value_ints": np.int64}
        present = [k for k in kinds if k in attrs]
        if not present:
            raise imp.error(where, f"Constant with attribute {', '.join(attrs) or '(none)'} is not supported")
        array = np.asarray(attrs[present[0]], dtype=kinds[present[0]])
    imp.values[node.output[0]] = Const(array)


def _bias_vector(imp: Importer, where: str, bias: np.ndarray, units: int) -> np.ndarray:
    """A bias of shape (units,), (1, units) or a scalar, as (units,)."""
    if bias.size not in (1, units) or (bias.ndim == 2 and bias.shape[0] != 1) or bias.ndim > 2:
        raise imp.error(where, f"bias of shape {bias.shape} does not broadcast as one value per unit ({units})")
    return np.broadcast_to(bias.reshape(-1), (units,)).copy()


def _gemm(imp: Importer, node: Any, where: str) -> None:
    """Y = alpha * op(A) @ op(B) + beta * C, with B (and C) constants: an affine."""
    attrs = _attributes(imp.onnx, node)
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    a = imp.operand(node, 0, where)
    if attrs.get("transA", 0):
        if not isinstance(a, Transposed):
            raise imp.error(where, "Gemm with transA=1 reads a (batch, features) value as (features, batch): "
                            "not an affine layer")
        a = a.value
    else:
        a = imp.vector(node, 0, where)
    B = imp.constant(node, 1, where, "the weight B")
    if B is None or B.ndim != 2:
        raise imp.error(where, "Gemm needs a 2-D constant weight B")
    W = B.T if attrs.get("transB", 0) else B
    if alpha != 1.0:
        W = W * np.asarray(alpha, W.dtype)
    _check_fan_in(imp, node, where, a, W)
    arrays = {"W": np.ascontiguousarray(W)}
    C = imp.constant(node, 2, where, "the bias C")
    if C is not None:
        b = _bias_vector(imp, where, C, W.shape[1])
        arrays["b"] = b * np.asarray(beta, b.dtype) if beta != 1.0 else b
    imp.add(node, where, "affine", [a], units=W.shape[1], bias=C is not None, arrays=arrays,
            weight_name=node.input[1])


def _check_fan_in(imp: Importer, node: Any, where: str, a: Val, W: np.ndarray) -> None:
    if a.shape[0] != W.shape[0]:
        raise imp.error(where, f"the weight has {W.shape[0]} rows but input '{node.input[0]}' has "
                        f"{a.shape[0]} features")


def _matmul(imp: Importer, node: Any, where: str) -> None:
    """X @ W with W a 2-D constant: an affine without bias (a following Add of a constant becomes its bias)."""
    a = imp.vector(node, 0, where)
    W = imp.constant(node, 1, where, "the right operand")
    if W is None or W.ndim != 2:
        raise imp.error(where, "MatMul needs a 2-D constant right operand")
    _check_fan_in(imp, node, where, a, W)
    imp.add(node, where, "affine", [a], units=W.shape[1], bias=False, arrays={"W": np.ascontiguousarray(W)},
            weight_name=node.input[1])


def _add(imp: Importer, node: Any, where: str) -> None:
    left, right = imp.operand(node, 0, where), imp.operand(node, 1, where)
    if isinstance(left, Const) and isinstance(right, Const):
        imp.values[node.output[0]] = Const(left.array + right.array)
    elif isinstance(left, Const) or isinstance(right, Const):
        slot = 0 if isinstance(right, Const) else 1
        value = imp.vector(node, slot, where)
        bias = (right if slot == 0 else left).array  # type: ignore[union-attr]
        imp.add(node, where, "bias_add", [value], arrays={"b": bias})
    else:
        imp.add(node, where, "add", [imp.value(node, 0, where), imp.value(node, 1, where)])


def _sum(imp: Importer, node: Any, where: str) -> None:
    values = [imp.value(node, k, where) for k in range(len(node.input))]
    if len(values) == 1:
        imp.values[node.output[0]] = values[0]
    else:
        imp.add(node, where, "add", values)


def _concat(imp: Importer, node: Any, where: str) -> None:
    axis = _attributes(imp.onnx, node).get("axis")
    values = [imp.vector(node, k, where) for k in range(len(node.input))]
    if axis not in (1, -1):
        raise imp.error(where, f"Concat along axis {axis} is not supported (only the feature axis, 1)")
    imp.add(node, where, "concat", values)


def _activation(op: str) -> Callable[[Importer, Any, str], None]:
    def rule(imp: Importer, node: Any, where: str) -> None:
        fields = {}
        if op == "leaky_relu":
            fields["alpha"] = _float_attribute(_attributes(imp.onnx, node).get("alpha", 0.01))
        imp.add(node, where, op, [imp.value(node, 0, where)], **fields)

    return rule


def _softmax(imp: Importer, node: Any, where: str) -> None:
    axis = _attributes(imp.onnx, node).get("axis", -1 if imp.opset >= 13 else 1)
    value = imp.vector(node, 0, where)
    if axis not in (1, -1):
        raise imp.error(where, f"Softmax along axis {axis} is not supported (only the feature axis, 1 or -1)")
    imp.add(node, where, "softmax", [value])


def _flatten(imp: Importer, node: Any, where: str) -> None:
    value = imp.value(node, 0, where)
    axis = _attributes(imp.onnx, node).get("axis", 1)
    if axis < 0:
        axis += len(value.shape) + 1
    if axis != 1:
        raise imp.error(where, f"Flatten with axis {axis} is not supported (only axis 1: (batch, features))")
    _flatten_to(imp, node, where, value)


def _flatten_to(imp: Importer, node: Any, where: str, value: Val) -> None:
    if len(value.shape) == 1:
        imp.values[node.output[0]] = value
    else:
        imp.add(node, where, "flatten", [value])


def _reshape(imp: Importer, node: Any, where: str) -> None:
    """Reshape to (batch, features) is a flatten; nothing else is supported."""
    value = imp.value(node, 0, where)
    target = imp.constant(node, 1, where, "the target shape")
    if target is None:
        raise imp.error(where, "Reshape needs a target shape")
    allow_zero = _attributes(imp.onnx, node).get("allowzero", 0)
    dims = [int(d) for d in target.reshape(-1)]
    features = prod(value.shape)
    if not _is_flatten(dims, features, value.shape, allow_zero, imp.fixed_batches):
        raise imp.error(where, f"Reshape to {dims} is not a flatten to (batch, {features}); "
                        "only that reshape is supported")
    _flatten_to(imp, node, where, value)


def _is_flatten(dims: list[int], features: int, shape: tuple[int, ...], allow_zero: int,
                fixed_batches: set[int]) -> bool:
    """Whether Reshape to `dims` turns (batch, *shape) into (batch, features); a positive first
    dim is the batch only where an input was exported with that fixed batch size."""
    if len(dims) != 2:
        return False
    batch, width = dims
    if width == 0 and not allow_zero:
        width = shape[0]  # 0 copies the input's dimension
    if batch == -1:
        return width == features
    batch_ok = batch in fixed_batches or (batch == 0 and not allow_zero)
    return batch_ok and width in (-1, features)


def _transpose(imp: Importer, node: Any, where: str) -> None:
    found = imp.operand(node, 0, where)
    perm = _attributes(imp.onnx, node).get("perm")
    if isinstance(found, Const):
        imp.values[node.output[0]] = Const(np.transpose(found.array, perm))
        return
    value = imp.vector(node, 0, where)
    if perm not in (None, [1, 0]):
        raise imp.error(where, f"Transpose with perm {perm} of a value is not supported")
    imp.values[node.output[0]] = Transposed(value, where)


def _batchnorm(imp: Importer, node: Any, where: str) -> None:
    attrs = _attributes(imp.onnx, node)
    if attrs.get("training_mode", 0):
        raise imp.error(where, "BatchNormalization with training_mode=1 is not supported (export in eval mode)")
    value = imp.vector(node, 0, where)
    names = ("gamma", "beta", "running_mean", "running_var")
    arrays = {}
    for slot, name in enumerate(names, start=1):
        array = imp.constant(node, slot, where, name)
        if array is None or array.shape != value.shape:
            raise imp.error(where, f"BatchNormalization's {name} must be a constant of shape {value.shape}")
        arrays[name] = array
    momentum = _float_attribute(attrs.get("momentum", 0.9))
    imp.add(node, where, "batchnorm", [value], eps=_float_attribute(attrs.get("epsilon", 1e-5)),
            momentum=momentum if 0 <= momentum < 1 else 0.9, arrays=arrays, weight_name=node.input[1])


def _layernorm(imp: Importer, node: Any, where: str) -> None:
    attrs = _attributes(imp.onnx, node)
    value = imp.vector(node, 0, where)
    if attrs.get("axis", -1) not in (1, -1):
        raise imp.error(where, f"LayerNormalization over axis {attrs['axis']} is not supported (only -1)")
    gamma = imp.constant(node, 1, where, "the scale")
    beta = imp.constant(node, 2, where, "the bias")
    if beta is None and gamma is not None:
        beta = np.zeros_like(gamma)
    for name, array in (("scale", gamma), ("bias", beta)):
        if array is None or array.size != value.shape[0]:
            raise imp.error(where, f"LayerNormalization's {name} must be a constant of {value.shape[0]} values")
    imp.add(node, where, "layernorm", [value], eps=_float_attribute(attrs.get("epsilon", 1e-5)),
            arrays={"gamma": gamma.reshape(-1), "beta": beta.reshape(-1)},  # type: ignore[union-attr]
            weight_name=node.input[1])


IMPORTERS: dict[str, Callable[[Importer, Any, str], None]] = {
    "Identity": _alias,
    "Dropout": _alias,
    "Constant": _constant,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Add": _add,
    "Sum": _sum,
    "Concat": _concat,
    "Relu": _activation("relu"),
    "LeakyRelu": _activation("leaky_relu"),
    "Sigmoid": _activation("sigmoid"),
    "Tanh": _activation("tanh"),
    "Softmax": _softmax,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "BatchNormalization": _batchnorm,
    "LayerNormalization": _layernorm,
}


# ---- from pending nodes to a spec ------------------------------------------------------------


def _readers(nodes: dict[str, Pending], outputs: list[str]) -> dict[str, int]:
    """How many node inputs and graph outputs read each value key."""
    count: dict[str, int] = {}
    for pending in nodes.values():
        for key in pending.inputs:
            count[key] = count.get(key, 0) + 1
    for key in outputs:
        count[key] = count.get(key, 0) + 1
    return count


def _merge_into_producer(nodes: dict[str, Pending], consumer: Pending, producer: Pending) -> None:
    """`producer` takes over `consumer`'s output (and its place in the graph)."""
    del nodes[producer.output]
    producer.output = consumer.output
    producer.hints += consumer.hints
    nodes[consumer.output] = producer


def _fold_biases(imp: Importer, output_keys: list[str]) -> None:
    """An Add of a constant after a bias-less affine (MatMul) that nothing else reads becomes its bias."""
    readers = _readers(imp.nodes, output_keys)
    for pending in list(imp.nodes.values()):
        if pending.op != "bias_add":
            continue
        producer = imp.nodes.get(pending.inputs[0])
        if producer is None or producer.op != "affine" or producer.fields["bias"] or readers[producer.output] != 1:
            raise imp.error(pending.where, "Add of a constant is only supported as the bias of a MatMul "
                                  "(or Gemm without bias) that nothing else reads")
        producer.arrays["b"] = _bias_vector(imp, pending.where, pending.arrays["b"], producer.fields["units"])
        producer.fields["bias"] = True
        _merge_into_producer(imp.nodes, pending, producer)


def _fuse_activations(imp: Importer, output_keys: list[str]) -> None:
    """An affine whose only reader is an elementwise activation runs it as its epilogue."""
    readers = _readers(imp.nodes, output_keys)
    for pending in list(imp.nodes.values()):
        if pending.op not in AFFINE_ACTIVATIONS:
            continue
        producer = imp.nodes.get(pending.inputs[0])
        if producer is None or producer.op != "affine" or "activation" in producer.fields \
                or readers[producer.output] != 1:
            continue
        producer.fields["activation"] = pending.op
        if pending.op == "leaky_relu":
            producer.fields["alpha"] = pending.fields["alpha"]
        _merge_into_producer(imp.nodes, pending, producer)


def _needed(nodes: dict[str, Pending], output_keys: list[str]) -> list[Pending]:
    """The nodes the outputs are computed from, in the graph's order."""
    needed, stack = set(), list(output_keys)
    while stack:
        key = stack.pop()
        if key in needed:
            continue
        needed.add(key)
        if key in nodes:
            stack.extend(nodes[key].inputs)
    return [pending for key, pending in nodes.items() if key in needed]


def _assign_ids(nodes: list[Pending], taken: set[str], outputs: set[str]) -> dict[str, str]:
    """value key -> node id: the first free name among the module path of its weight
    (`fc1.weight` -> `fc1`), the graph output it is, its ONNX node name, its output's name."""
    ids = {}
    for pending in nodes:
        hints = [(name, prefix) for name, prefix, from_weight in pending.hints if from_weight and name]
        if pending.output in outputs:
            hints.append((pending.output, "output"))
        hints += [(name, prefix) for name, prefix, from_weight in pending.hints if not from_weight and name]
        candidates = [identifier(name, prefix) for name, prefix in hints]
        chosen = next((c for c in candidates if c not in taken), None)
        if chosen is None:
            base = (candidates[0] if candidates else pending.op)[:MAX_ID - 6]
            chosen = next(f"{base}_{k}" for k in range(2, 1 << 30) if f"{base}_{k}" not in taken)
        taken.add(chosen)
        ids[pending.output] = chosen
    return ids


def _spec_document(imp: Importer, name: str) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, str]]:
    """The spec document, the arrays by parameter/state name, and the renamed inputs/outputs."""
    graph = imp.model.graph
    renamed: dict[str, str] = {}
    input_ids: dict[str, str] = {}
    taken: set[str] = set()
    inputs_doc = {}
    initializers = {t.name for t in graph.initializer}
    for value_info in graph.input:
        if value_info.name in initializers:
            continue
        spec_name = identifier(value_info.name, "input")
        while spec_name in taken:
            spec_name = f"{spec_name}_"
        taken.add(spec_name)
        input_ids[value_info.name] = spec_name
        inputs_doc[spec_name] = {"shape": list(imp.values[value_info.name].shape)}  # type: ignore[union-attr]
        if spec_name != value_info.name:
            renamed[value_info.name] = spec_name
    output_keys = []
    for output in graph.output:
        found = imp.values.get(output.name)
        if not isinstance(found, Val):
            raise imp.error(f"output '{output.name}'", "is a constant or not computed by a supported node")
        output_keys.append(found.key)
    _fold_biases(imp, output_keys)
    _fuse_activations(imp, output_keys)
    nodes = _needed(imp.nodes, output_keys)
    ids = {**input_ids, **_assign_ids(nodes, taken, {o.name for o in graph.output})}
    node_docs, arrays = [], {}
    for pending in nodes:
        node_id = ids[pending.output]
        node_docs.append({"id": node_id, "op": pending.op, "inputs": [ids[k] for k in pending.inputs],
                          **pending.fields})
        arrays.update({f"{node_id}.{local}": array for local, array in pending.arrays.items()})
    outputs = []
    for output, key in zip(graph.output, output_keys):
        wanted = identifier(output.name, "output")
        if ids[key] == wanted or wanted in taken:
            outputs.append(ids[key])
        else:  # name the output as the ONNX model does
            taken.add(wanted)
            node_docs.append({"id": wanted, "op": "identity", "inputs": [ids[key]]})
            outputs.append(wanted)
        if outputs[-1] != output.name:
            renamed[output.name] = outputs[-1]
    document = {"name": name, "description": f"imported from {Path(imp.source).name}", "inputs": inputs_doc,
                "nodes": node_docs, "outputs": outputs}
    return document, arrays, renamed


def _load_model(onnx: Any, path: Path) -> Any:
    if not path.is_file():
        raise GraphnetError(f"{path}: no such file")
    try:
        return onnx.load(str(path))
    except Exception as error:  # protobuf's DecodeError and friends
        raise GraphnetError(f"{path}: not an ONNX model ({type(error).__name__}: {error})") from None


def read_onnx(path: str | Path) -> ImportedModel:
    """The network spec and arrays of an ONNX model (GraphnetError naming the node if unsupported)."""
    from ..checkpoint import nonfinite_arrays
    from ..spec import parse_network

    onnx = require_onnx("ONNX import")
    path = Path(path)
    model = _load_model(onnx, path)
    importer = Importer(onnx, model, str(path))
    importer.run()
    name = model.graph.name or path.stem
    document, arrays, renamed = _spec_document(importer, name[:100])
    bad = nonfinite_arrays(arrays)
    if bad:
        raise GraphnetError(f"{path}: refused: non-finite weights in {'; '.join(bad)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SpecWarning)  # an input the outputs do not read is allowed
            spec = parse_network(document)
    except SpecError as error:
        raise GraphnetError(f"{path}: the imported network is not valid: {error}") from None
    dtype = next((FLOAT_TYPES[i.type.tensor_type.elem_type] for i in model.graph.input
                  if i.name in importer.values and isinstance(importer.values[i.name], Val)), np.dtype(np.float32))
    return ImportedModel(spec, arrays, dtype, renamed)


def from_onnx(path: str | Path, batch_size: int = 128, dtype: Any = None, backend: str | None = None,
              seed: int | None = 0) -> "CompiledNetwork":
    """An ONNX model as a CompiledNetwork with its weights (see `read_onnx`).

    `dtype` defaults to the model's (float -> float32, double -> float64); the
    network has no loss: `forward` and `predict` work, training needs a loss added.
    """
    from ..network import compile

    imported = read_onnx(path)
    net = compile(imported.spec, batch_size=batch_size, dtype=dtype or imported.dtype, backend=backend, seed=seed)
    net.load_state_dict(imported.arrays)
    return net


def import_onnx(path: str | Path, folder: str | Path, dtype: Any = None) -> Path:
    """Write the ONNX model at `path` as a checkpoint folder (network.json + weights.npz)."""
    from ..checkpoint import save_checkpoint

    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise GraphnetError(f"{folder}: exists and is not an empty folder; choose a new folder for the checkpoint")
    net = from_onnx(path, batch_size=1, dtype=dtype)
    return save_checkpoint(folder, net)
