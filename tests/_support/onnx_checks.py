"""Test helpers for the ONNX tests: run a model in ONNX Runtime, compare within a relative tolerance."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def run_ort(model: Any, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """{output name: array} of an ONNX model (a ModelProto or a file path) in ONNX Runtime."""
    import onnxruntime

    source = str(model) if isinstance(model, (str, Path)) else model.SerializeToString()
    session = onnxruntime.InferenceSession(source, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs)))


def assert_close(actual: np.ndarray, expected: np.ndarray, rtol: float = 1e-4, what: str = "") -> None:
    """Equal within `rtol` relative to each value, or to the largest magnitude of `expected`
    for values near zero (a difference of two implementations, never bit for bit)."""
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} vs {expected.shape}"
    scale = max(float(np.abs(expected).max(initial=0.0)), 1e-6)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=what)


def forward_dict(net: Any, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """net.forward's outputs as {name: array}, also when there is only one."""
    result = net.forward(inputs)
    return result if isinstance(result, dict) else {net.graph.outputs[0]: result}


def random_inputs(net: Any, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.normal(0, 1.5, (n, *value.shape)).astype(net.dtype) for name, value in net.graph.inputs.items()}


def write_model(path: Path, nodes: list, inputs: dict[str, list], outputs: list[str],
                initializers: dict[str, np.ndarray] | None = None, opset: int = 17,
                elem_type: int | None = None, batch: str | int = "batch", tensors: list | None = None,
                metadata: dict[str, str] | None = None) -> Path:
    """A hand-built model (onnx.helper): `inputs` {name: dims after the batch}, outputs of unknown
    shape, `initializers` from arrays, `tensors` as TensorProtos made by hand, `metadata` props."""
    from onnx import TensorProto, helper, numpy_helper

    elem_type = TensorProto.FLOAT if elem_type is None else elem_type
    graph = helper.make_graph(
        nodes, "handmade",
        [helper.make_tensor_value_info(name, elem_type, [batch, *dims]) for name, dims in inputs.items()],
        [helper.make_tensor_value_info(name, elem_type, None) for name in outputs],
        [numpy_helper.from_array(array, name) for name, array in (initializers or {}).items()] + list(tensors or []))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    helper.set_model_props(model, metadata or {})
    path.write_bytes(model.SerializeToString())
    return path


def table_feeds(model: Any, X: np.ndarray) -> dict[str, np.ndarray]:
    """The inputs of an exported table model (graphnet.interop.onnx_table) for raw rows X
    (n, C), an object array in the model's column order: its number columns as one float
    tensor (NaN where a cell is None), each categorical column a string tensor (n, 1) (a
    missing cell as "")."""
    import json

    import onnx

    proto = onnx.load(str(model)) if isinstance(model, (str, Path)) else model
    table = json.loads({p.key: p.value for p in proto.metadata_props}["graphnet.encoding"])
    columns = table["encoding"]["columns"]
    dtype = onnx.helper.tensor_dtype_to_np_dtype(table["elem_type"])
    numbers = [j for j, column in enumerate(columns) if column["kind"] == "number"]
    feeds = {}
    if numbers:
        feeds[table["input"]] = np.array([[np.nan if row[j] is None else float(row[j]) for j in numbers] for row in X],
                                         dtype=dtype).reshape(len(X), len(numbers))
    for j, column in enumerate(columns):
        if column["kind"] == "category":
            feeds[table["inputs"][column["name"]]] = np.array([["" if v is None else str(v)] for v in X[:, j]],
                                                              dtype=object).reshape(len(X), 1)
    return feeds
