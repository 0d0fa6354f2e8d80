"""ONNX export of a compiled network's inference graph.

    export_onnx(net, "model.onnx")            # also gn.export_onnx

The exported graph computes what `net.forward` computes: dropout is gone,
batchnorm uses the running statistics, losses are left out (outputs only).
Inputs and outputs carry the spec's names, the batch dimension is the
symbolic `N`, and parameters are initializers named as in `net.params`
(`fc1.W`, an (in, out) matrix fed to Gemm as B). Input preprocessing
(x - shift) / scale -- by default the network's own, fitted in training --
becomes the first nodes (Sub, Div). A table model's column encoding comes before
them and its target scaling after its output (graphnet.interop.onnx_table): the
model takes the raw columns (numbers, and a string tensor per categorical column).

Each op of the spec language maps to ONNX nodes through one entry of
`ONNX_EXPORTERS`, keyed by op name like the op registry (`graphnet.ops.OPS`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from ..compiler import ancestors
from ..compiler.graph import GraphNode
from ..errors import GraphnetError, did_you_mean
from ..ops.images import window_of
from ..system.fileio import write_bytes_atomic
from ..version import __version__
from . import require_onnx
from .onnx_table import (
    ENCODING_PROP,
    ML_DOMAIN,
    ML_OPSET,
    TARGET_SCALING_PROP,
    column_inputs,
    export_encoding,
    export_target_scaling,
)

if TYPE_CHECKING:
    from ..model.compiled import CompiledNetwork

MIN_OPSET = 17
BATCH_DIM = "N"

# Elementwise activations: graphnet op name -> ONNX op type (leaky_relu also carries `alpha`).
ACTIVATION_OPS = {"relu": "Relu", "leaky_relu": "LeakyRelu", "sigmoid": "Sigmoid", "tanh": "Tanh",
                  "softmax": "Softmax"}

# Model metadata keys (ModelProto.metadata_props), read back by graphnet.interop.onnx_import.
CLASS_NAMES_PROP = "graphnet.class_names"
FEATURES_PROP = "graphnet.data.features"

# What `preprocessing=` takes per input name: (mean, std), each broadcastable to the input's shape.
Standardization = tuple[Any, Any]


@dataclass
class ExportContext:
    """What the per-op exporters write into: ONNX nodes and initializers, and the
    ONNX tensor that holds each graphnet value (`names`)."""

    onnx: Any
    net: "CompiledNetwork"
    names: dict[str, str] = field(default_factory=dict)
    nodes: list[Any] = field(default_factory=list)
    initializers: list[Any] = field(default_factory=list)

    def tensor(self, ref: str) -> str:
        """The ONNX tensor holding the graphnet value `ref` (an input or a node id)."""
        return self.names[ref]

    def emit(self, op_type: str, inputs: list[str], output: str, name: str | None = None, **attrs: Any) -> str:
        """Append one ONNX node (named `name`, default its output) and return its output tensor."""
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [output], name=name or output, **attrs))
        return output

    def constant(self, name: str, array: np.ndarray) -> str:
        """Add an initializer of the network's dtype and return its name."""
        array = np.ascontiguousarray(array, dtype=self.net.dtype)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def param(self, node_id: str, local: str) -> str:
        name = f"{node_id}.{local}"
        return self.constant(name, self.net.params[name])

    def state(self, node_id: str, local: str) -> str:
        name = f"{node_id}.{local}"
        return self.constant(name, self.net.state[name])


Exporter = Callable[[ExportContext, GraphNode], None]


def _input_as_matrix(ctx: ExportContext, node: GraphNode, slot: int = 0) -> str:
    """The input tensor, flattened to (N, features) when it has more than one axis per example."""
    source = ctx.tensor(node.inputs[slot])
    if len(node.input_values[slot].shape) == 1:
        return source
    return ctx.emit("Flatten", [source], f"{node.id}/flat", axis=1)


def _export_affine(ctx: ExportContext, node: GraphNode) -> None:
    spec = node.spec
    inputs = [_input_as_matrix(ctx, node), ctx.param(node.id, "W")]
    if spec.bias:
        inputs.append(ctx.param(node.id, "b"))
    activation = spec.activation if spec.activation != "identity" else None
    linear = ctx.emit("Gemm", inputs, f"{node.id}/linear" if activation else node.id, name=node.id)
    if activation:
        attrs = {"alpha": spec.alpha} if activation == "leaky_relu" else {}
        ctx.emit(ACTIVATION_OPS[activation], [linear], node.id, name=f"{node.id}/{activation}", **attrs)
    ctx.names[node.id] = node.id


def _window_attrs(node: GraphNode) -> dict[str, Any]:
    """kernel_shape, strides and pads ([top, left, bottom, right]) of a conv or pooling node."""
    geometry = window_of(node.spec, node.spec.padding, *node.input_values[0].shape[1:])
    return {"kernel_shape": [geometry.kh, geometry.kw], "strides": [geometry.sh, geometry.sw], "pads": geometry.pads}


def _export_conv(ctx: ExportContext, node: GraphNode) -> None:
    spec = node.spec
    inputs = [ctx.tensor(node.inputs[0]), ctx.param(node.id, "W")]
    if spec.bias:
        inputs.append(ctx.param(node.id, "b"))
    activation = spec.activation if spec.activation != "identity" else None
    conv = ctx.emit("Conv", inputs, f"{node.id}/conv" if activation else node.id, name=node.id,
                    **_window_attrs(node))
    if activation:
        attrs = {"alpha": spec.alpha} if activation == "leaky_relu" else {}
        ctx.emit(ACTIVATION_OPS[activation], [conv], node.id, name=f"{node.id}/{activation}", **attrs)
    ctx.names[node.id] = node.id


def _export_pool(ctx: ExportContext, node: GraphNode) -> None:
    if node.op == "max_pool2d":
        ctx.names[node.id] = ctx.emit("MaxPool", [ctx.tensor(node.inputs[0])], node.id, **_window_attrs(node))
    else:  # the padding counts as zeros, as in graphnet (ONNX's default leaves it out)
        ctx.names[node.id] = ctx.emit("AveragePool", [ctx.tensor(node.inputs[0])], node.id, count_include_pad=1,
                                      **_window_attrs(node))


def _export_global_avg_pool(ctx: ExportContext, node: GraphNode) -> None:
    pooled = ctx.emit("GlobalAveragePool", [ctx.tensor(node.inputs[0])], f"{node.id}/pooled", name=node.id)
    ctx.names[node.id] = ctx.emit("Flatten", [pooled], node.id, name=f"{node.id}/flat", axis=1)  # (N, C, 1, 1) -> (N, C)


def _export_activation(ctx: ExportContext, node: GraphNode) -> None:
    attrs: dict[str, Any] = {}
    if node.op == "leaky_relu":
        attrs["alpha"] = node.spec.alpha
    if node.op == "softmax":
        attrs["axis"] = -1
    ctx.names[node.id] = ctx.emit(ACTIVATION_OPS[node.op], [ctx.tensor(node.inputs[0])], node.id, **attrs)


def _export_identity(ctx: ExportContext, node: GraphNode) -> None:
    ctx.names[node.id] = ctx.emit("Identity", [ctx.tensor(node.inputs[0])], node.id)


def _export_dropout(ctx: ExportContext, node: GraphNode) -> None:
    ctx.names[node.id] = ctx.tensor(node.inputs[0])  # the identity at inference


def _export_batchnorm(ctx: ExportContext, node: GraphNode) -> None:
    inputs = [ctx.tensor(node.inputs[0]), ctx.param(node.id, "gamma"), ctx.param(node.id, "beta"),
              ctx.state(node.id, "running_mean"), ctx.state(node.id, "running_var")]
    # ONNX's momentum has graphnet's meaning (the weight of the old running statistics).
    ctx.names[node.id] = ctx.emit("BatchNormalization", inputs, node.id, epsilon=node.spec.eps,
                                  momentum=node.spec.momentum)


def _export_layernorm(ctx: ExportContext, node: GraphNode) -> None:
    inputs = [ctx.tensor(node.inputs[0]), ctx.param(node.id, "gamma"), ctx.param(node.id, "beta")]
    ctx.names[node.id] = ctx.emit("LayerNormalization", inputs, node.id, axis=-1, epsilon=node.spec.eps)


def _export_flatten(ctx: ExportContext, node: GraphNode) -> None:
    if len(node.input_values[0].shape) == 1:
        ctx.names[node.id] = ctx.tensor(node.inputs[0])  # a vector already
    else:
        ctx.names[node.id] = ctx.emit("Flatten", [ctx.tensor(node.inputs[0])], node.id, axis=1)


def _export_add(ctx: ExportContext, node: GraphNode) -> None:
    inputs = [ctx.tensor(ref) for ref in node.inputs]
    ctx.names[node.id] = ctx.emit("Add" if len(inputs) == 2 else "Sum", inputs, node.id)


def _export_concat(ctx: ExportContext, node: GraphNode) -> None:
    ctx.names[node.id] = ctx.emit("Concat", [ctx.tensor(ref) for ref in node.inputs], node.id, axis=1)


def _loss_not_exported(ctx: ExportContext, node: GraphNode) -> None:
    raise GraphnetError(f"node '{node.id}': the loss {node.op} is not part of the inference graph")


# One entry per op of the registry (tests/interop/test_onnx_export.py checks that none is missing).
ONNX_EXPORTERS: dict[str, Exporter] = {
    "affine": _export_affine,
    "relu": _export_activation,
    "leaky_relu": _export_activation,
    "sigmoid": _export_activation,
    "tanh": _export_activation,
    "softmax": _export_activation,
    "identity": _export_identity,
    "conv2d": _export_conv,
    "max_pool2d": _export_pool,
    "avg_pool2d": _export_pool,
    "global_avg_pool": _export_global_avg_pool,
    "batchnorm": _export_batchnorm,
    "layernorm": _export_layernorm,
    "dropout": _export_dropout,
    "flatten": _export_flatten,
    "add": _export_add,
    "concat": _export_concat,
    "softmax_cross_entropy": _loss_not_exported,
    "cross_entropy": _loss_not_exported,
    "svm": _loss_not_exported,
    "mse": _loss_not_exported,
    "mae": _loss_not_exported,
    "huber": _loss_not_exported,
    "sigmoid_binary_cross_entropy": _loss_not_exported,
}


def _export_preprocessing(ctx: ExportContext, preprocessing: Mapping[str, Standardization]) -> None:
    """(x - mean) / std for every input named in `preprocessing`, as the graph's first nodes."""
    inputs = ctx.net.graph.inputs
    for name, (mean, std) in preprocessing.items():
        if name not in inputs:
            raise GraphnetError(f"preprocessing names '{name}', which is not an input of network "
                                f"'{ctx.net.graph.name}'{did_you_mean(name, inputs)} (inputs: {', '.join(inputs)})")
        shape = inputs[name].shape
        mean, std = (_standardization_array(name, what, array, shape) for what, array in
                     (("mean", mean), ("std", std)))
        if np.any(std == 0):
            raise GraphnetError(f"preprocessing of '{name}': std has zeros (a constant feature divides by zero)")
        centered = ctx.emit("Sub", [ctx.tensor(name), ctx.constant(f"preprocess/{name}/mean", mean)],
                            f"{name}/centered")
        ctx.names[name] = ctx.emit("Div", [centered, ctx.constant(f"preprocess/{name}/std", std)],
                                   f"{name}/standardized")


def _standardization_array(name: str, what: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """`value` as a float64 array broadcastable to the per-example `shape`, finite (GraphnetError if not)."""
    try:
        array = np.asarray(value, dtype=np.float64)
        fits = np.broadcast_shapes(array.shape, shape) == shape
    except (TypeError, ValueError):
        fits = False
    if not fits:
        got = getattr(np.asarray(value, dtype=object), "shape", ())
        raise GraphnetError(f"preprocessing of '{name}': {what} must be numbers of a shape that broadcasts "
                            f"to the input's {shape} per example, got shape {got}")
    if not np.isfinite(array).all():
        raise GraphnetError(f"preprocessing of '{name}': {what} has NaN or infinite values")
    return array


def _saved_preprocessing(net: "CompiledNetwork") -> dict[str, Standardization]:
    """The network's own preprocessing (`net.preprocessing`, fitted in training) as
    {input: (shift, scale)}; {} when it has none or it is the identity."""
    record = getattr(net, "preprocessing", None)
    if record is None:
        return {}
    return record.standardization(net.graph.inputs[record.input].shape)


def _value_info(onnx: Any, name: str, elem_type: int, shape: tuple[int, ...]) -> Any:
    return onnx.helper.make_tensor_value_info(name, elem_type, [BATCH_DIM, *shape])


def onnx_model(net: "CompiledNetwork", preprocessing: Mapping[str, Standardization] | None = None,
               opset: int = MIN_OPSET) -> Any:
    """The inference graph of `net` as an `onnx.ModelProto` (see the module docstring).

    Inputs: the spec's inputs, (N, *input shape); outputs: the spec's outputs,
    (N, *output shape), of the network's dtype (float32 -> float, float64 -> double).
    `preprocessing` maps input names to (mean, std): the model standardizes those
    inputs first. None (the default) exports the network's own preprocessing
    (`net.preprocessing`, fitted on the training split: standardize, or scale as
    shift 0 / min and scale 255 / range), so the model takes raw features -- flattened to
    the input's shape (an image as 784 values), and with them the network's column
    encoding and target scaling (graphnet.interop.onnx_table); `{}` exports the bare
    network.
    """
    onnx = require_onnx("ONNX export")
    if opset < MIN_OPSET:
        raise GraphnetError(f"ONNX export needs opset {MIN_OPSET} or later (LayerNormalization), got {opset}")
    if opset > onnx.defs.onnx_opset_version():
        raise GraphnetError(f"opset {opset} is newer than the installed onnx package knows "
                            f"(up to {onnx.defs.onnx_opset_version()})")
    graph = net.graph
    own = preprocessing is None
    if preprocessing is None:
        preprocessing = _saved_preprocessing(net)
    ctx = ExportContext(onnx, net, names={name: name for name in graph.inputs})
    elem_type = onnx.helper.np_dtype_to_tensor_dtype(net.dtype)
    inputs = {name: _value_info(onnx, name, elem_type, value.shape) for name, value in graph.inputs.items()}
    props: dict[str, str] = {}
    encoding = net.encoding if own and net.preprocessing is not None else None
    if encoding is not None:
        name = net.preprocessing.input
        table_inputs, ctx.names[name], table = export_encoding(ctx, encoding, name, _names_taken(net), BATCH_DIM)
        table["label_column"] = net.preprocessing.label_column
        inputs = {**{i.name: i for i in table_inputs}, **{k: v for k, v in inputs.items() if k != name}}
        props[ENCODING_PROP] = json.dumps(table)
    _export_preprocessing(ctx, preprocessing)
    needed = ancestors(graph, list(graph.outputs))
    for node in graph.nodes:
        if node.id in needed:
            ONNX_EXPORTERS[node.op](ctx, node)
    scaled = _scaled_output(net) if own else None
    if scaled is not None:
        props[TARGET_SCALING_PROP] = json.dumps(export_target_scaling(ctx, net.target_scaling, scaled))
    outputs = []
    for name in graph.outputs:
        tensor = ctx.tensor(name)
        if tensor != name:
            if name in graph.inputs:
                raise GraphnetError(f"output '{name}' is a preprocessed input: ONNX cannot give it its own name")
            ctx.emit("Identity", [tensor], name)
        outputs.append(_value_info(onnx, name, elem_type, graph.values[name].shape))
    onnx_graph = onnx.helper.make_graph(ctx.nodes, graph.name, list(inputs.values()), outputs, ctx.initializers,
                                        doc_string=net.spec.description)
    opsets = [onnx.helper.make_opsetid("", opset)]
    if encoding is not None and encoding.categorical():
        opsets.append(onnx.helper.make_opsetid(ML_DOMAIN, ML_OPSET))
    model = onnx.helper.make_model(onnx_graph, opset_imports=opsets, producer_name="graphnet",
                                   producer_version=__version__,
                                   ir_version=onnx.helper.find_min_ir_version_for(opsets))
    onnx.helper.set_model_props(model, {**_model_props(net, preprocessing), **props})
    onnx.checker.check_model(model)
    return model


def onnx_input_names(net: "CompiledNetwork") -> list[str]:
    """The inputs of `net`'s export (with its own preprocessing): the spec's, and for a table
    model one per categorical column after its numbers' input (if it has numbers)."""
    if net.encoding is None or net.preprocessing is None:
        return list(net.graph.inputs)
    name = net.preprocessing.input
    own = [name] if net.encoding.numbers() else []
    columns = list(column_inputs(net.encoding, name, _names_taken(net)).values())
    return own + columns + [other for other in net.graph.inputs if other != name]


def _names_taken(net: "CompiledNetwork") -> set[str]:
    """The names of the network's inputs, outputs and nodes (an ONNX input must differ)."""
    return {*net.graph.inputs, *net.graph.outputs, *(node.id for node in net.graph.nodes)}


def _scaled_output(net: "CompiledNetwork") -> str | None:
    """The output a regression model scaled its targets for (`net.target_scaling`): the
    one its loss reads; None when there is none."""
    scaling, loss = getattr(net, "target_scaling", None), net.graph.loss
    if scaling is None or loss is None:
        return None
    scores = net.graph.node(loss).inputs[0]
    return scores if scores in net.graph.outputs else None


def _model_props(net: "CompiledNetwork", preprocessing: Mapping[str, Standardization]) -> dict[str, str]:
    """What the graph cannot say, as metadata `graphnet import` reads back: the class names
    and, when the graph starts with the network's own preprocessing, the CSV columns it reads."""
    props = {}
    if net.class_names is not None:
        props[CLASS_NAMES_PROP] = json.dumps(list(net.class_names))
    record = net.preprocessing
    if record is not None and record.input in preprocessing and record.feature_names is not None:
        props[FEATURES_PROP] = json.dumps({"input": record.input, "feature_names": list(record.feature_names),
                                           "label_column": record.label_column})
    return props


def export_onnx(net: "CompiledNetwork", path: str | Path,
                preprocessing: Mapping[str, Standardization] | None = None, opset: int = MIN_OPSET) -> Path:
    """Write the inference graph of `net` to `path` (atomically) as an ONNX model; see `onnx_model`."""
    model = onnx_model(net, preprocessing=preprocessing, opset=opset)
    path = Path(path)
    write_bytes_atomic(path, model.SerializeToString())
    return path
