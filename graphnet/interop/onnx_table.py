"""A table model in ONNX: its column encoding and target scaling (graphnet.model.record) as
standard ops, so ONNX Runtime takes the raw columns and gives outputs in the targets' units.

Inputs of an exported table model (ModelProto metadata "graphnet.encoding" names them):

- the network input's name (e.g. "x"): the number columns, (N, numbers) floats in the
  encoding's order; NaN is a missing cell, replaced by the column's fill (IsNaN, Where);
- one string tensor (N, 1) per categorical column, named by the column (or
  "<input>/<column>" when that name is taken): a cell's category by ai.onnx.ml
  LabelEncoder (the categories, and the missing markers to the missing slot; any other
  text to the unknown slot), then one-hot (Equal against 0..k+1, Cast).

Their features are concatenated in the encoding's order and go on to the input's
preprocessing (Sub, Div). Cells are compared as given: graphnet's readers drop the
whitespace around a cell, an ONNX caller passes cells without it.

A regression output the model scaled for training gets Mul (std) and Add (mean) after it
(metadata "graphnet.target_scaling"). `strip_table` cuts both off an exported model, so
the importer reads the bare network, and returns them for the imported model's record.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..data.columns import ColumnEncoding
from ..data.targets import TargetScaling
from ..errors import GraphnetError

ENCODING_PROP = "graphnet.encoding"
TARGET_SCALING_PROP = "graphnet.target_scaling"
ML_DOMAIN, ML_OPSET = "ai.onnx.ml", 3  # LabelEncoder (version 2: string keys to int64 values)


def export_encoding(ctx: Any, encoding: ColumnEncoding, input_name: str, taken: set[str],
                    batch: str) -> tuple[list[Any], str, dict[str, Any]]:
    """Emit the nodes that encode a table's raw columns into `ctx` (an ExportContext):
    returns the graph inputs, the tensor of the encoded features (N, D) and the metadata
    that names the inputs. `taken`: names a categorical column's input must not take."""
    onnx = ctx.onnx
    elem_type = onnx.helper.np_dtype_to_tensor_dtype(ctx.net.dtype)
    inputs, pieces, names = [], [], column_inputs(encoding, input_name, taken)
    numbers = encoding.numbers()
    if numbers:
        inputs.append(onnx.helper.make_tensor_value_info(input_name, elem_type, [batch, len(numbers)]))
        fill = ctx.constant(f"encode/{input_name}/fill", np.array([encoding.columns[j].fill for j in numbers]))
        missing = ctx.emit("IsNaN", [input_name], f"encode/{input_name}/missing")
        pieces.append(ctx.emit("Where", [missing, fill, input_name], f"encode/{input_name}/numbers"))
    for j in encoding.categorical():
        column = encoding.columns[j]
        name = names[column.name]
        inputs.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.STRING, [batch, 1]))
        k = len(column.categories)
        markers = [m for m in encoding.missing if m not in column.categories]
        slot = ctx.emit("LabelEncoder", [name], f"encode/{name}/slot", domain=ML_DOMAIN,
                        keys_strings=[*column.categories, *markers], values_int64s=[*range(k), *[k] * len(markers)],
                        default_int64=k + 1)
        every = f"encode/{name}/slots"
        ctx.initializers.append(onnx.numpy_helper.from_array(np.arange(k + 2, dtype=np.int64), every))
        lit = ctx.emit("Equal", [slot, every], f"encode/{name}/lit")
        pieces.append(ctx.emit("Cast", [lit], f"encode/{name}/onehot", to=elem_type))
    encoded = f"encode/{input_name}"
    if len(pieces) == 1:
        ctx.emit("Identity", pieces, encoded)
    else:
        ctx.emit("Concat", pieces, encoded, axis=1)
    return inputs, encoded, {"input": input_name, "encoded": encoded, "inputs": names, "elem_type": elem_type,
                             "encoding": encoding.description()}


def column_inputs(encoding: ColumnEncoding, input_name: str, taken: set[str]) -> dict[str, str]:
    """{categorical column: the name of its ONNX input}: the column's name, or
    "<input>/<column>" when the graph has that name already (`taken`, or `input_name`)."""
    names = {}
    for j in encoding.categorical():
        column = encoding.columns[j].name
        names[column] = column if column not in taken and column != input_name else f"{input_name}/{column}"
    return names


def export_target_scaling(ctx: Any, scaling: TargetScaling, output: str) -> dict[str, Any]:
    """Emit Mul (std) and Add (mean) after the output `output`: the tensor the network
    computes is renamed "<output>/scaled" (in the network's units), the Add writes
    `output`. Returns the metadata."""
    tensor, scaled = ctx.tensor(output), f"{output}/scaled"
    _rename(ctx.nodes, tensor, scaled)
    std = ctx.constant(f"unscale/{output}/std", scaling.std)
    mean = ctx.constant(f"unscale/{output}/mean", scaling.mean)
    ctx.emit("Add", [ctx.emit("Mul", [scaled, std], f"unscale/{output}/times_std"), mean], output,
             name=f"unscale/{output}/plus_mean")
    ctx.names[output] = output
    return {"output": output, "scaled": scaled, "target_scaling": scaling.description()}


def _rename(nodes: Any, old: str, new: str) -> None:
    """Every node input and output named `old` named `new`."""
    for node in nodes:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]


def strip_table(onnx: Any, model: Any, props: dict[str, str],
                source: str) -> tuple[Any, ColumnEncoding | None, TargetScaling | None, str | None]:
    """`model` without what `export_encoding` and `export_target_scaling` added (a copy: the
    encoded features become the graph input named as the network input, the scaled output
    the output), the encoding, the target scaling and the label column they name (all None
    when the metadata has none); GraphnetError when the metadata does not fit the graph."""
    table, target = (_prop(props, key, source) for key in (ENCODING_PROP, TARGET_SCALING_PROP))
    if table is None and target is None:
        return model, None, None, None
    model = type(model).FromString(model.SerializeToString())
    graph = model.graph
    encoding = scaling = label = None
    try:
        if table is not None:
            encoding = ColumnEncoding.from_saved(table["encoding"])
            label = table.get("label_column")
            _cut_inputs(onnx, graph, table["input"], table["encoded"], encoding.width, int(table["elem_type"]))
        if target is not None:
            scaling = TargetScaling.from_saved(target["target_scaling"])
            _cut_output(graph, target["output"], target["scaled"])
    except (KeyError, TypeError, ValueError) as error:
        raise GraphnetError(f"{source}: metadata {ENCODING_PROP if table is not None else TARGET_SCALING_PROP} does "
                            f"not describe this graph: {error}") from None
    return model, encoding, scaling, label if isinstance(label, str) else None


def _cut_inputs(onnx: Any, graph: Any, input_name: str, encoded: str, width: int, elem_type: int) -> None:
    """The nodes computing `encoded` from the graph's inputs removed, and `encoded` a graph
    input named `input_name` of `width` features of `elem_type`."""
    producers = {out: node for node in graph.node for out in node.output}
    drop, pending = set(), [encoded]
    while pending:
        node = producers.get(pending.pop())
        if node is not None and id(node) not in drop:
            drop.add(id(node))
            pending.extend(node.input)
    _keep(graph, [node for node in graph.node if id(node) not in drop])
    _rename(graph.node, encoded, input_name)
    used = {name for node in graph.node for name in node.input}
    inputs = [i for i in graph.input if i.name in used and i.name != input_name]
    del graph.input[:]
    graph.input.extend([onnx.helper.make_tensor_value_info(input_name, elem_type, ["N", width]), *inputs])
    initializers = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def _cut_output(graph: Any, output: str, scaled: str) -> None:
    """The Mul and Add after `scaled` (the output in the network's units) removed, and
    `scaled` named `output` again."""
    _keep(graph, [node for node in graph.node if not any(out == output or out.startswith(f"unscale/{output}/")
                                                         for out in node.output)])
    _rename(graph.node, scaled, output)
    names = {f"unscale/{output}/std", f"unscale/{output}/mean"}
    initializers = [t for t in graph.initializer if t.name not in names]
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def _keep(graph: Any, nodes: list[Any]) -> None:
    """The graph's nodes replaced by `nodes` (copies: a repeated field keeps its own)."""
    copies = [type(node).FromString(node.SerializeToString()) for node in nodes]
    del graph.node[:]
    graph.node.extend(copies)


def _prop(props: dict[str, str], key: str, source: str) -> Any:
    if key not in props:
        return None
    try:
        value = json.loads(props[key])
    except (ValueError, RecursionError):
        raise GraphnetError(f"{source}: metadata {key} is not JSON") from None
    if not isinstance(value, dict):
        raise GraphnetError(f"{source}: metadata {key} is not an object")
    return value
