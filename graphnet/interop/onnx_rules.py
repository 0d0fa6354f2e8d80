"""The folding rules of ONNX import: one function per ONNX op type, in the `IMPORTERS` table.

Each rule reads an ONNX node's operands from the `Importer` and either records a
graphnet node (`Importer.add`) or folds the node away (an alias, a constant, a
transposed value).
"""
from __future__ import annotations

from math import prod
from typing import Any

import numpy as np

from .onnx_graph import Const, Importer, Rule, Transposed, Val, attributes, float_attribute


def _alias(imp: Importer, node: Any, where: str) -> None:
    """Identity, and Dropout at inference: the output is the input."""
    found = imp.operand(node, 0, where)
    if found is None:
        raise imp.error(where, "has no input")
    imp.values[node.output[0]] = found


def _constant(imp: Importer, node: Any, where: str) -> None:
    attrs = attributes(imp.onnx, node)
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


def bias_vector(imp: Importer, where: str, bias: np.ndarray, units: int) -> np.ndarray:
    """A bias of shape (units,), (1, units) or a scalar, as (units,)."""
    if bias.size not in (1, units) or (bias.ndim == 2 and bias.shape[0] != 1) or bias.ndim > 2:
        raise imp.error(where, f"bias of shape {bias.shape} does not broadcast as one value per unit ({units})")
    return np.broadcast_to(bias.reshape(-1), (units,)).copy()


def _gemm(imp: Importer, node: Any, where: str) -> None:
    """Y = alpha * op(A) @ op(B) + beta * C, with B (and C) constants: an affine."""
    attrs = attributes(imp.onnx, node)
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    a = imp.operand(node, 0, where)
    if attrs.get("transA", 0):
        if not isinstance(a, Transposed):
            raise imp.error(where, "Gemm with transA=1 reads a (batch, features) value as (features, batch): "
                            "not an affine layer")
        a = a.value
    else:
        a = imp.vector(node, 0, where)
    B = imp.weight(node, 1, where, "the weight B")
    if B is None or B.ndim != 2:
        raise imp.error(where, "Gemm needs a 2-D constant weight B")
    W = B.T if attrs.get("transB", 0) else B
    if alpha != 1.0:
        W = W * np.asarray(alpha, W.dtype)
    _check_fan_in(imp, node, where, a, W)
    arrays = {"W": np.ascontiguousarray(W)}
    C = imp.weight(node, 2, where, "the bias C")
    if C is not None:
        b = bias_vector(imp, where, C, W.shape[1])
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
    W = imp.weight(node, 1, where, "the right operand")
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
        bias = imp.floating((right if slot == 0 else left).array, where,  # type: ignore[union-attr]
                            f"the constant '{node.input[1 - slot]}'")
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
    axis = attributes(imp.onnx, node).get("axis")
    values = [imp.vector(node, k, where) for k in range(len(node.input))]
    if axis not in (1, -1):
        raise imp.error(where, f"Concat along axis {axis} is not supported (only the feature axis, 1)")
    imp.add(node, where, "concat", values)


def _activation(op: str) -> Rule:
    def rule(imp: Importer, node: Any, where: str) -> None:
        fields = {}
        if op == "leaky_relu":
            fields["alpha"] = float_attribute(attributes(imp.onnx, node).get("alpha", 0.01))
        imp.add(node, where, op, [imp.value(node, 0, where)], **fields)

    return rule


def _softmax(imp: Importer, node: Any, where: str) -> None:
    axis = attributes(imp.onnx, node).get("axis", -1 if imp.opset >= 13 else 1)
    value = imp.vector(node, 0, where)
    if axis not in (1, -1):
        raise imp.error(where, f"Softmax along axis {axis} is not supported (only the feature axis, 1 or -1)")
    imp.add(node, where, "softmax", [value])


def _flatten(imp: Importer, node: Any, where: str) -> None:
    value = imp.value(node, 0, where)
    axis = attributes(imp.onnx, node).get("axis", 1)
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
    allow_zero = attributes(imp.onnx, node).get("allowzero", 0)
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
    perm = attributes(imp.onnx, node).get("perm")
    if isinstance(found, Const):
        if perm is not None and sorted(perm) != list(range(found.array.ndim)):
            raise imp.error(where, f"Transpose perm {list(perm)} is not an order of the {found.array.ndim} axes of "
                            f"'{node.input[0]}'")
        imp.values[node.output[0]] = Const(np.transpose(found.array, perm))
        return
    value = imp.vector(node, 0, where)
    if perm not in (None, [1, 0]):
        raise imp.error(where, f"Transpose with perm {perm} of a value is not supported")
    imp.values[node.output[0]] = Transposed(value, where)


def _batchnorm(imp: Importer, node: Any, where: str) -> None:
    attrs = attributes(imp.onnx, node)
    if attrs.get("training_mode", 0):
        raise imp.error(where, "BatchNormalization with training_mode=1 is not supported (export in eval mode)")
    value = imp.vector(node, 0, where)
    names = ("gamma", "beta", "running_mean", "running_var")
    arrays = {}
    for slot, name in enumerate(names, start=1):
        array = imp.weight(node, slot, where, name)
        if array is None or array.shape != value.shape:
            raise imp.error(where, f"BatchNormalization's {name} must be a constant of shape {value.shape}")
        arrays[name] = array
    momentum = float_attribute(attrs.get("momentum", 0.9))
    imp.add(node, where, "batchnorm", [value], eps=float_attribute(attrs.get("epsilon", 1e-5)),
            momentum=momentum if 0 <= momentum < 1 else 0.9, arrays=arrays, weight_name=node.input[1])


def _layernorm(imp: Importer, node: Any, where: str) -> None:
    attrs = attributes(imp.onnx, node)
    value = imp.vector(node, 0, where)
    if attrs.get("axis", -1) not in (1, -1):
        raise imp.error(where, f"LayerNormalization over axis {attrs['axis']} is not supported (only -1)")
    gamma = imp.weight(node, 1, where, "the scale")
    beta = imp.weight(node, 2, where, "the bias")
    if beta is None and gamma is not None:
        beta = np.zeros_like(gamma)
    for name, array in (("scale", gamma), ("bias", beta)):
        if array is None or array.size != value.shape[0]:
            raise imp.error(where, f"LayerNormalization's {name} must be a constant of {value.shape[0]} values")
    imp.add(node, where, "layernorm", [value], eps=float_attribute(attrs.get("epsilon", 1e-5)),
            arrays={"gamma": gamma.reshape(-1), "beta": beta.reshape(-1)},  # type: ignore[union-attr]
            weight_name=node.input[1])


def _readers(imp: Importer, name: str) -> int:
    """How many ONNX nodes (and graph outputs) read the value `name`."""
    graph = imp.model.graph
    return sum(name in node.input for node in graph.node) + sum(o.name == name for o in graph.output)


def _preprocessing_step(imp: Importer, node: Any, where: str, part: str) -> None:
    """Sub (the shift) and Div (the scale) of a graph input by constants: the input's
    preprocessing, as graphnet's own export writes it (`(x - shift) / scale` first).
    Refused anywhere else: inside a network they are not ops of the spec language."""
    op = node.op_type
    x, c = imp.operand(node, 0, where), imp.operand(node, 1, where)
    source = node.input[0]
    state = imp.preprocessing.get(x.key) if isinstance(x, Val) else None
    at_raw_input = isinstance(x, Val) and source == x.key and x.key in imp.raw_inputs and state is None
    after_shift = part == "scale" and state is not None and state.get("scale") is None and source == state["at"]
    if not isinstance(c, Const) or not (at_raw_input or after_shift) or _readers(imp, source) != 1:
        raise imp.error(where, f"op type {op} is supported only as input preprocessing: a graph input "
                        f"{'minus' if op == 'Sub' else 'divided by'} a constant, read by nothing else")
    entry = state if state is not None else imp.preprocessing.setdefault(x.key, {})
    entry[part], entry["at"] = imp.floating(c.array, where, f"the constant '{node.input[1]}'"), node.output[0]
    imp.values[node.output[0]] = x


def _sub(imp: Importer, node: Any, where: str) -> None:
    _preprocessing_step(imp, node, where, "shift")


def _div(imp: Importer, node: Any, where: str) -> None:
    _preprocessing_step(imp, node, where, "scale")


IMPORTERS: dict[str, Rule] = {
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
    "Sub": _sub,
    "Div": _div,
}
