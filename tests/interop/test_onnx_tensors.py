"""Hostile ONNX models (graphnet.interop.onnx_tensors and the import's graph checks): each is
refused with one line naming the file and the initializer or node, exit 1 -- never exit 3,
a MemoryError or gigabytes read first -- through `graphnet import` and through `init_from`."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

import graphnet as gn
from graphnet.cli import main

from tests._support.onnx_checks import write_model
from tests._support.task_data import linear_data, task_run, write_npz

onnx = pytest.importorskip("onnx", reason="the onnx package is in the [onnx] extra: pip install 'graphnet[onnx]'")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

W = np.arange(6, dtype=np.float32).reshape(3, 2) / 10


def gemm(weight: str = "W") -> list:
    return [helper.make_node("Gemm", ["x", weight], ["y"], name="fc")]


def tensor(name: str, data_type: int, dims: list[int], field: str | None = None, values: list | None = None):
    """A TensorProto made by hand (onnx.helper would check what these cases get wrong)."""
    made = TensorProto(name=name, data_type=data_type, dims=dims)
    if field is not None:
        getattr(made, field).extend(values or [])
    return made


def external(name: str, dims: list[int], location: str, length: int | None = None):
    """A float tensor whose data is declared to be in the file `location` (beside the model)."""
    made = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=dims, data_location=TensorProto.EXTERNAL)
    entries = [("location", location), ("offset", "0")] + ([("length", str(length))] if length is not None else [])
    for key, value in entries:
        made.external_data.add(key=key, value=value)
    return made


def model(folder: Path, nodes: list | None = None, tensors: list | None = None, **kwargs) -> Path:
    return write_model(folder / "model.onnx", nodes if nodes is not None else gemm(), {"x": [3]}, ["y"],
                       tensors=tensors, **kwargs)


def dims_disagree_raw(folder: Path) -> Path:
    made = numpy_helper.from_array(W, "W")  # 24 bytes of data
    made.dims[:] = [3, 3]
    return model(folder, tensors=[made])


def two_writers(folder: Path) -> Path:
    return model(folder, [helper.make_node("Relu", ["x"], ["h"], name="a"),
                          helper.make_node("Sigmoid", ["x"], ["h"], name="b"),
                          helper.make_node("Gemm", ["h", "W"], ["y"], name="fc")], [numpy_helper.from_array(W, "W")])


def external_file(folder: Path, dims: list[int], data: bytes = W.tobytes(), **kwargs) -> Path:
    (folder / "w.bin").write_bytes(data)
    return model(folder, tensors=[external("W", dims, "w.bin", **kwargs)])


def outside_the_folder(folder: Path) -> Path:
    (folder.parent / "outside.bin").write_bytes(W.tobytes())
    return model(folder, tensors=[external("W", [3, 2], "../outside.bin")])


# case -> (the model it writes into a folder, what the error says after "<model path>: ")
HOSTILE: dict[str, tuple[Callable[[Path], Path], str]] = {
    "dims-and-raw-data-disagree": (dims_disagree_raw,
                                   "initializer 'W': its dims [3, 3] declare 9 values (36 bytes) but its data "
                                   "holds 24 bytes"),
    "dims-and-values-disagree": (lambda f: model(f, tensors=[tensor("W", TensorProto.FLOAT, [3, 2], "float_data",
                                                                    [0.5] * 5)]),
                                 "initializer 'W': its dims [3, 2] declare 6 values (24 bytes) but its data "
                                 "holds 5 values"),
    "negative-dim": (lambda f: model(f, tensors=[tensor("W", TensorProto.FLOAT, [3, -2])]),
                     "initializer 'W': has a negative dim in [3, -2]"),
    "string-initializer": (lambda f: model(f, tensors=[tensor("W", TensorProto.STRING, [2], "string_data",
                                                              [b"a", b"b"])]),
                           "initializer 'W': has type STRING; graphnet reads tensors of real numbers"),
    "complex-initializer": (lambda f: model(f, tensors=[tensor("W", TensorProto.COMPLEX64, [3, 2], "float_data",
                                                               [0.5] * 12)]),
                            "initializer 'W': has type COMPLEX64"),
    "string-constant": (lambda f: model(f, [helper.make_node("Constant", [], ["W"], name="c",
                                                             value=tensor("v", TensorProto.STRING, [1],
                                                                          "string_data", [b"s"]))] + gemm()),
                        "node 'c' attribute 'value': has type STRING"),
    "transpose-perm-out-of-range": (lambda f: model(f, [helper.make_node("Transpose", ["W"], ["Wt"], name="t",
                                                                         perm=[0, 5])] + gemm("Wt"),
                                                    [numpy_helper.from_array(W.T.copy(), "W")]),
                                    "node 't': Transpose perm [0, 5] is not an order of the 2 axes of 'W'"),
    "two-nodes-write-one-value": (two_writers,
                                  "node 'b': writes 'h', already written by node 'a': an ONNX value has one "
                                  "producer"),
    "a-node-writes-an-input": (lambda f: model(f, [helper.make_node("Relu", ["x"], ["x"], name="r")] + gemm(),
                                               [numpy_helper.from_array(W, "W")]),
                               "node 'r': writes 'x', already written by graph input 'x'"),
    "integer-weights": (lambda f: model(f, tensors=[numpy_helper.from_array(W.view(np.int32), "W")]),
                        "node 'fc': the weight B ('W') holds int32 values; the graph's values are floating point"),
    "attribute-of-another-type": (lambda f: model(f, [helper.make_node("Gemm", ["x", "W"], ["y"], name="g",
                                                                       alpha="2")], [numpy_helper.from_array(W, "W")]),
                                  "node 'g': attribute 'alpha' has type STRING; Gemm's alpha has type FLOAT"),
    "a-node-without-output": (lambda f: model(f, [helper.make_node("Relu", ["x"], [], name="r")] + gemm(),
                                              [numpy_helper.from_array(W, "W")]),
                              "node 'r': Relu has no output"),
    "a-node-without-inputs": (lambda f: model(f, [helper.make_node("Sum", [], ["y"], name="s")]),
                              "node 's': Sum has no input"),
    "deeply-nested-metadata": (lambda f: model(f, tensors=[numpy_helper.from_array(W, "W")],
                                               metadata={"graphnet.class_names": "[" * 100_000 + "]" * 100_000}),
                               "metadata graphnet.class_names is nested too deeply to read"),
    "external-1.5e9-elements": (lambda f: external_file(f, [3, 500_000_000]),
                                "initializer 'W' declares 5.6 GB, the model's tensors 5.6 GB: more than the "
                                "memory limit of 1.0 GB (GRAPHNET_MAX_BYTES); refused before reading them"),
    "external-1e12-elements": (lambda f: external_file(f, [1_000_000, 1_000_000]),
                               "initializer 'W' declares 3.6 TB"),
    "external-length-disagrees": (lambda f: external_file(f, [3, 2], length=10),
                                  "initializer 'W': its dims [3, 2] declare 24 bytes but its external data "
                                  "length is 10"),
    "external-file-too-short": (lambda f: external_file(f, [3, 2], data=b"\0" * 8),
                                "initializer 'W': external data 'w.bin': "),
    "external-data-outside-the-folder": (outside_the_folder, "initializer 'W': external data '../outside.bin': "),
}


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """The tensors whose external data gets read (onnx.load reads them through the same function);
    the memory limit set to 1 GB."""
    monkeypatch.setenv("GRAPHNET_MAX_BYTES", "1G")
    seen: list[str] = []
    real = onnx.external_data_helper.load_external_data_for_tensor

    def spy(tensor, base_dir):
        seen.append(tensor.name)
        return real(tensor, base_dir)

    monkeypatch.setattr(onnx.external_data_helper, "load_external_data_for_tensor", spy)
    return seen


def one_line(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err, captured.err
    return captured.err.strip()


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_model_is_refused_naming_the_file_and_the_place(case, tmp_path, reads, capsys):
    write, message = HOSTILE[case]
    folder = tmp_path / "model"
    folder.mkdir()
    path = write(folder)
    assert main(["import", str(path), str(tmp_path / "imported")]) == 1
    assert one_line(capsys).startswith(f"graphnet import: {path}: {message}")
    assert not (tmp_path / "imported").exists()
    if case.startswith("external-1"):
        assert reads == []  # refused by the declared size: no byte of the data read

    X, y = linear_data(100)
    run = task_run("regression", str(write_npz(tmp_path / "data.npz", X, y, test=20)), features=3, epochs=1)
    run["train"]["init_from"] = str(path)
    (tmp_path / "run.json").write_text(json.dumps(run))
    assert main(["train", str(tmp_path / "run.json"), "--out", str(tmp_path / "run"), "--no-progress"]) == 1
    assert one_line(capsys).startswith(f"graphnet train: {path}: {message}")


def test_external_data_inside_the_folder_still_loads(tmp_path, reads):
    path = external_file(tmp_path, [3, 2])
    net = gn.from_onnx(path)
    x = np.array([[1.0, 2.0, 3.0]], np.float32)
    np.testing.assert_allclose(net.forward(x), x @ W, rtol=1e-6)
    assert reads == ["W"]
