"""The folding rules of ONNX import: one function per ONNX op type, in the `IMPORTERS` table.

Each rule reads an ONNX node's operands from the `Importer` and either records a
graphnet node (`Importer.add`) or folds the node away (an alias, a constant, a
transposed value).
"""
from __future__ import annotations

from math import prod
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..ops.images import window_of
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
    """Vectors along the features, or images along the channels: axis 1 either way."""
    axis = attributes(imp.onnx, node).get("axis")
    values = [imp.value(node, k, where) for k in range(len(node.input))]
    rank = len(values[0].shape)
    if axis not in (1, -rank) or any(v.shape[1:] != values[0].shape[1:] for v in values):
        shapes = ", ".join(str(v.shape) for v in values)
        raise imp.error(where, f"Concat along axis {axis} of per-example shapes {shapes} is not supported "
                        "(only axis 1, the features or the channels, of equal other axes)")
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
    """Per feature of a vector, or per channel of (C, ...) values."""
    attrs = attributes(imp.onnx, node)
    if attrs.get("training_mode", 0):
        raise imp.error(where, "BatchNormalization with training_mode=1 is not supported (export in eval mode)")
    value = imp.value(node, 0, where)
    names = ("gamma", "beta", "running_mean", "running_var")
    arrays = {}
    for slot, name in enumerate(names, start=1):
        array = imp.weight(node, slot, where, name)
        if array is None or array.shape != value.shape[:1]:
            raise imp.error(where, f"BatchNormalization's {name} must be a constant of shape {value.shape[:1]}")
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


def _window(imp: Importer, node: Any, where: str, attrs: dict[str, Any], kernel: list[int],
            shape: tuple[int, ...]) -> dict[str, Any]:
    """graphnet's kernel, stride and padding fields from an ONNX window op's attributes; GraphnetError
    naming the attribute for what graphnet has no field for (dilations, ceil_mode, asymmetric pads)."""
    if len(kernel) != 2:
        raise imp.error(where, f"{node.op_type} with a kernel of {len(kernel)} axes is not supported (only 2-D)")
    if any(d != 1 for d in attrs.get("dilations", [1, 1])):
        raise imp.error(where, f"{node.op_type} with dilations {list(attrs['dilations'])} is not supported")
    if attrs.get("ceil_mode", 0):
        raise imp.error(where, f"{node.op_type} with ceil_mode=1 is not supported")
    strides = [int(s) for s in attrs.get("strides", [1, 1])]
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    fields: dict[str, Any] = {"kernel": [int(k) for k in kernel], "stride": strides}
    if auto_pad == "VALID":
        return {**fields, "padding": "valid"}
    if auto_pad == "SAME_UPPER" and node.op_type == "Conv":
        return {**fields, "padding": "same"}
    if auto_pad not in ("NOTSET", "VALID"):
        raise imp.error(where, f"{node.op_type} with auto_pad={auto_pad} is not supported (give explicit pads)")
    top, left, bottom, right = (int(p) for p in attrs.get("pads", [0, 0, 0, 0]))
    if (top, left) == (bottom, right):
        return {**fields, "padding": [top, left]}
    if node.op_type == "Conv":
        same = window_of(SimpleNamespace(kernel=fields["kernel"], stride=strides), "same", shape[1], shape[2])
        if same.pads == [top, left, bottom, right]:
            return {**fields, "padding": "same"}
    raise imp.error(where, f"{node.op_type} with pads {[top, left, bottom, right]} is not supported "
                    "(only the same padding before and after, or a convolution's 'same')")


def _conv(imp: Importer, node: Any, where: str) -> None:
    """Conv with a constant weight (F, C, kh, kw) and bias (F,): a conv2d."""
    attrs = attributes(imp.onnx, node)
    x = imp.image(node, 0, where)
    W = imp.weight(node, 1, where, "the weight W")
    if W is None or W.ndim != 4:
        raise imp.error(where, "Conv needs a constant 4-D weight (filters, C, kh, kw)")
    if attrs.get("group", 1) != 1:
        raise imp.error(where, f"Conv with group={attrs['group']} is not supported (only group=1)")
    if W.shape[1] != x.shape[0]:
        raise imp.error(where, f"the weight has {W.shape[1]} input channels but input '{node.input[0]}' has "
                        f"{x.shape[0]} (shape {x.shape})")
    kernel = list(attrs.get("kernel_shape", W.shape[2:]))
    if kernel != list(W.shape[2:]):
        raise imp.error(where, f"kernel_shape {kernel} differs from the weight's {list(W.shape[2:])}")
    fields = _window(imp, node, where, attrs, kernel, x.shape)
    arrays = {"W": np.ascontiguousarray(W)}
    B = imp.weight(node, 2, where, "the bias B")
    if B is not None:
        arrays["b"] = bias_vector(imp, where, B, W.shape[0])
    imp.add(node, where, "conv2d", [x], filters=W.shape[0], bias=B is not None, arrays=arrays,
            weight_name=node.input[1], **fields)


def _pool(op: str) -> Rule:
    def rule(imp: Importer, node: Any, where: str) -> None:
        attrs = attributes(imp.onnx, node)
        x = imp.image(node, 0, where)
        if len(node.output) > 1 and node.output[1]:
            raise imp.error(where, "MaxPool's Indices output is not supported")
        if attrs.get("storage_order", 0):
            raise imp.error(where, "MaxPool with storage_order=1 is not supported")
        if "kernel_shape" not in attrs:
            raise imp.error(where, f"{node.op_type} needs kernel_shape")
        fields = _window(imp, node, where, attrs, list(attrs["kernel_shape"]), x.shape)
        if op == "avg_pool2d" and fields["padding"] not in ("valid", [0, 0]) and not attrs.get("count_include_pad", 0):
            raise imp.error(where, "AveragePool with pads and count_include_pad=0 is not supported (graphnet "
                            "counts the padding as zeros: count_include_pad=1)")
        if fields["padding"] == "valid":
            fields["padding"] = 0
        imp.add(node, where, op, [x], **fields)

    return rule


def _global_average_pool(imp: Importer, node: Any, where: str) -> None:
    """(N, C, H, W) -> (N, C, 1, 1), held as the vector (N, C) a Flatten or Reshape then keeps."""
    imp.add(node, where, "global_avg_pool", [imp.image(node, 0, where)])


def _reduce_mean(imp: Importer, node: Any, where: str) -> None:
    """The mean of an image over its height and width (what torch.export writes for a global average
    pooling): a global_avg_pool. Axes come from the attribute (opset < 18) or the second input."""
    x = imp.image(node, 0, where)
    attrs = attributes(imp.onnx, node)
    axes = imp.constant(node, 1, where, "the axes") if imp.opset >= 18 else attrs.get("axes")
    found = sorted(int(a) % 4 for a in np.asarray(axes).reshape(-1)) if axes is not None else None
    if found != [2, 3]:
        raise imp.error(where, f"ReduceMean over axes {None if axes is None else list(np.asarray(axes).reshape(-1))}"
                        " is not supported (only the height and width of an image, [2, 3]: a global average pooling)")
    imp.add(node, where, "global_avg_pool", [x])


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
    "Conv": _conv,
    "MaxPool": _pool("max_pool2d"),
    "AveragePool": _pool("avg_pool2d"),
    "GlobalAveragePool": _global_average_pool,
    "ReduceMean": _reduce_mean,
    "LayerNormalization": _layernorm,
    "Sub": _sub,
    "Div": _div,
}
