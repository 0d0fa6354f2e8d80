"""Reading an ONNX file's tensors safely: each tensor's type, dims and data are checked,
and the sizes its dims declare are held against the memory limit, before any external
data is read.

`onnx.load` would read every external data file first (a weight declaring 1.5e9
elements takes 13 GB before anything can object), so the model is loaded without
them; the initializers and the tensors of node attributes (Constant's `value`) are
then checked: a type graphnet can hold (no STRING, no COMPLEX), non-negative dims,
embedded data of the length the dims declare, external data of that length
(read only up to it, as ONNX Runtime does, from inside the model's folder), and
the total within `graphnet.system.limits.max_bytes()`. Each refusal is a GraphnetError
naming the file and the tensor.
"""
from __future__ import annotations

from math import prod
from pathlib import Path
from typing import Any, Iterator

from ..errors import GraphnetError
from ..system.limits import ENV_VAR, format_bytes, max_bytes

# TensorProto data types an initializer or constant may have: real numbers and booleans
_SUPPORTED = ("FLOAT", "DOUBLE", "FLOAT16", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32",
              "UINT64", "BOOL")


def load_model(onnx: Any, path: Path) -> Any:
    """The ONNX ModelProto in `path`, its external data loaded once every tensor has been
    checked (see the module docstring); GraphnetError naming the file (and tensor) otherwise."""
    if not path.is_file():
        raise GraphnetError(f"{path}: no such file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # protobuf's DecodeError and friends
        raise GraphnetError(f"{path}: not an ONNX model ({type(error).__name__}: {error})") from None
    tensors = [(where, tensor, _declared_bytes(onnx, tensor, f"{path}: {where}"))
               for where, tensor in model_tensors(model)]
    _check_memory([(where, size) for where, _, size in tensors], str(path))
    for where, tensor, size in tensors:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            _load_external(onnx, tensor, size, path, where)
    return model


def model_tensors(model: Any) -> Iterator[tuple[str, Any]]:
    """(where, TensorProto) of the graph's initializers and of its nodes' tensor attributes."""
    graph = model.graph
    for tensor in graph.initializer:
        yield f"initializer '{tensor.name}'", tensor
    for index, node in enumerate(graph.node):
        for attribute in node.attribute:
            found = ([attribute.t] if attribute.HasField("t") else []) + list(attribute.tensors)
            for tensor in found:
                yield f"{node_where(node, index)} attribute '{attribute.name}'", tensor


def node_where(node: Any, index: int) -> str:
    """How messages name a node: `node 'fc1/Gemm'`, or `node '#3'` when it has no name."""
    return f"node '{node.name or f'#{index}'}'"


def _declared_bytes(onnx: Any, tensor: Any, where: str) -> int:
    """The bytes the tensor's dims declare; GraphnetError if its type is not one graphnet can
    hold, a dim is negative, or its embedded data has another length."""
    type_name = onnx.TensorProto.DataType.Name(tensor.data_type) \
        if tensor.data_type in onnx.TensorProto.DataType.values() else str(tensor.data_type)
    if type_name not in _SUPPORTED:
        raise GraphnetError(f"{where}: has type {type_name}; graphnet reads tensors of real numbers and "
                            f"booleans ({', '.join(_SUPPORTED)})")
    dims = list(tensor.dims)
    if any(d < 0 for d in dims):
        raise GraphnetError(f"{where}: has a negative dim in {dims}")
    count = prod(dims)
    size = count * onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        return size
    if tensor.HasField("raw_data"):
        held, unit = len(tensor.raw_data), "bytes"
        expected = size
    else:
        held, unit = len(getattr(tensor, onnx.helper.tensor_dtype_to_field(tensor.data_type))), "values"
        expected = count
    if held != expected:
        raise GraphnetError(f"{where}: its dims {dims} declare {count} values ({size} bytes) but its data holds "
                            f"{held} {unit}")
    return size


def _check_memory(sizes: list[tuple[str, int]], source: str) -> None:
    """GraphnetError naming the largest tensor when the tensors (where, bytes) together exceed
    the memory limit."""
    limit, total = max_bytes(), sum(size for _, size in sizes)
    if total > limit:
        where, largest = max(sizes, key=lambda item: item[1])
        raise GraphnetError(f"{source}: {where} declares {format_bytes(largest)}, the model's tensors "
                            f"{format_bytes(total)}: more than the memory limit of {format_bytes(limit)} "
                            f"({ENV_VAR}); refused before reading them")


def _load_external(onnx: Any, tensor: Any, size: int, path: Path, where: str) -> None:
    """Read a tensor's external data (`size` bytes, the length its dims declare) into it."""
    entries = {entry.key: entry for entry in tensor.external_data}
    length = entries.get("length")
    if length is None:  # read what the dims declare, not the rest of the file (as ONNX Runtime does)
        tensor.external_data.add(key="length", value=str(size))
    elif not length.value.isdigit() or int(length.value) != size:
        raise GraphnetError(f"{path}: {where}: its dims {list(tensor.dims)} declare {size} bytes but its "
                            f"external data length is {length.value}")
    try:
        onnx.external_data_helper.load_external_data_for_tensor(tensor, str(path.parent))
    except Exception as error:  # a file outside the model's folder, missing or too short; onnx's own errors
        location = entries["location"].value if "location" in entries else "?"
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise GraphnetError(f"{path}: {where}: external data '{location}': {reason}") from None
