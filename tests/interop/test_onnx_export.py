"""ONNX export (graphnet.interop.onnx_export): every op, every zoo spec and random DAGs
exported, checked by onnx.checker (full check) and run in ONNX Runtime at batch sizes
other than the compiled one, against net.forward within 1e-4 relative (float32)."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphnet as gn
from graphnet.cli import main
from graphnet.interop.onnx_export import ONNX_EXPORTERS, export_onnx, onnx_model
from graphnet.ops import OPS

from tests._support import strategies
from tests._support.onnx_checks import assert_close, forward_dict, random_inputs, run_ort
from tests._support.zoo import ZOO, randomize, zoo_network

CAPACITY = 8
BATCHES = (1, 5, 37)  # below, and above, the compiled capacity
CASES = [(op, name, example.network()) for op, record in OPS.items() for name, example in record.examples.items()]


@pytest.fixture
def onnx():
    pytest.importorskip("onnxruntime", reason="ONNX Runtime is in the [onnx] extra: pip install 'graphnet[onnx]'")
    return pytest.importorskip("onnx", reason="the onnx package is in the [onnx] extra: pip install 'graphnet[onnx]'")


def compiled(spec, dtype="float32", seed=1) -> gn.CompiledNetwork:
    net = gn.compile(spec, batch_size=CAPACITY, dtype=dtype)
    randomize(net, seed)
    return net


def check_against_ort(onnx, net: gn.CompiledNetwork, model, rtol: float = 1e-4) -> None:
    """The full checker passes, and ORT's outputs equal net.forward's at every batch size of BATCHES."""
    onnx.checker.check_model(model, full_check=True)
    for n in BATCHES:
        inputs = random_inputs(net, n, seed=n)
        expected = forward_dict(net, inputs)
        got = run_ort(model, inputs)
        assert list(got) == list(net.graph.outputs)
        for name in net.graph.outputs:
            assert got[name].dtype == net.dtype
            assert_close(got[name], expected[name], rtol, what=f"output '{name}' at batch {n}")


# ---- the table covers the registry -----------------------------------------------------------


def test_every_registered_op_has_an_onnx_mapping():
    missing = sorted(set(OPS) - set(ONNX_EXPORTERS))
    assert not missing, f"ops without an ONNX mapping (graphnet.interop.onnx_export.ONNX_EXPORTERS): {missing}"
    assert set(ONNX_EXPORTERS) == set(OPS), "ONNX_EXPORTERS names ops the registry does not have"


@pytest.mark.parametrize("op, case, doc", CASES, ids=[f"{op}-{name}" for op, name, _ in CASES])
def test_every_op_example_matches_onnxruntime(onnx, op, case, doc):
    net = compiled(gn.parse_network(doc))
    check_against_ort(onnx, net, onnx_model(net))


@pytest.mark.parametrize("path", ZOO, ids=[p.stem for p in ZOO])
def test_every_zoo_spec_matches_onnxruntime(onnx, path, tmp_path):
    net = compiled(zoo_network(path))
    written = export_onnx(net, tmp_path / "model.onnx")
    check_against_ort(onnx, net, onnx.load(str(written)))


@pytest.mark.parametrize("name", ["fc_bn_dropout", "wide_concat", "residual_mlp"])
def test_float64_networks_export_as_double(onnx, name):
    net = compiled(zoo_network(f"specs/{name}.json"), dtype="float64")
    model = onnx_model(net)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    check_against_ort(onnx, net, model, rtol=1e-9)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=strategies.network_specs(), seed=st.integers(0, 2**16))
def test_random_dags_match_onnxruntime(case, seed):
    onnx = pytest.importorskip("onnx", reason="the onnx package is in the [onnx] extra")
    pytest.importorskip("onnxruntime", reason="ONNX Runtime is in the [onnx] extra")
    net = compiled(case.spec, seed=seed)
    check_against_ort(onnx, net, onnx_model(net))


# ---- what the exported graph is --------------------------------------------------------------


def test_inference_graph_names_batch_dim_and_initializers(onnx):
    """Spec names for inputs/outputs, a symbolic batch dimension, parameters and running
    statistics as initializers; no dropout, no loss, batchnorm in inference mode."""
    net = compiled(zoo_network("specs/fc_bn_dropout.json"))
    model = onnx_model(net)
    graph = model.graph
    assert [i.name for i in graph.input] == list(net.graph.inputs)
    assert [o.name for o in graph.output] == list(net.graph.outputs)
    for value in [*graph.input, *graph.output]:
        assert value.type.tensor_type.shape.dim[0].dim_param == "N"
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim[1:]] == [784]
    initializers = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    assert set(initializers) == set(net.params) | set(net.state)
    for name in net.state:
        np.testing.assert_array_equal(initializers[name], net.state[name])
    op_types = {node.op_type for node in graph.node}
    assert "Dropout" not in op_types and "BatchNormalization" in op_types
    assert op_types <= {"Gemm", "Relu", "BatchNormalization", "Identity"}
    assert model.opset_import[0].version == 17


def test_several_outputs_an_input_output_and_a_dropout_output(onnx):
    doc = {"name": "multi", "inputs": {"a": {"shape": [3]}, "b": {"shape": [2, 2]}},
           "nodes": [{"id": "flat", "op": "flatten", "inputs": ["b"]},
                     {"id": "cat", "op": "concat", "inputs": ["a", "flat"]},
                     {"id": "fc", "op": "affine", "inputs": ["cat"], "units": 4, "activation": "leaky_relu",
                      "alpha": 0.3},
                     {"id": "drop", "op": "dropout", "inputs": ["fc"], "rate": 0.5},
                     {"id": "sum", "op": "add", "inputs": ["drop", "fc", "fc"]}],
           "outputs": ["sum", "drop", "a"]}
    net = compiled(doc)
    check_against_ort(onnx, net, onnx_model(net))


def test_later_opsets_export_and_earlier_ones_are_refused(onnx):
    net = compiled(zoo_network("specs/wide_concat.json"))
    model = onnx_model(net, opset=18)
    assert model.opset_import[0].version == 18
    check_against_ort(onnx, net, model)
    with pytest.raises(gn.GraphnetError, match="opset 17 or later"):
        onnx_model(net, opset=16)
    newest = onnx.defs.onnx_opset_version()
    with pytest.raises(gn.GraphnetError, match=f"opset {newest + 1} is newer than the installed onnx"):
        onnx_model(net, opset=newest + 1)


def test_cli_export_refuses_an_old_opset_in_one_line(onnx, tmp_path, capsys):
    compiled(zoo_network("specs/spiral_mlp.json")).save(tmp_path / "ckpt")
    assert main(["export", str(tmp_path / "ckpt"), str(tmp_path / "m.onnx"), "--opset", "16"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "opset 17 or later" in err
    assert not (tmp_path / "m.onnx").exists()


# ---- preprocessing as the first nodes --------------------------------------------------------


def test_preprocessing_becomes_the_first_nodes(onnx):
    net = compiled(zoo_network("specs/spiral_mlp.json"))
    mean, std = np.array([0.5, -2.0]), np.array([2.0, 0.25])
    model = onnx_model(net, preprocessing={"x": (mean, std)})
    onnx.checker.check_model(model, full_check=True)
    assert [node.op_type for node in model.graph.node[:2]] == ["Sub", "Div"]
    raw = random_inputs(net, 9)["x"] * 3 + 1
    got = run_ort(model, {"x": raw})["fc2"]
    assert_close(got, net.forward(((raw - mean) / std).astype(np.float32)))


@pytest.mark.parametrize("preprocessing, message", [
    ({"z": (0.0, 1.0)}, "'z', which is not an input of network 'spiral_mlp'"),
    ({"x": (np.zeros(3), 1.0)}, r"mean must be numbers of a shape that broadcasts to the input's \(2,\)"),
    ({"x": (0.0, np.array([1.0, 0.0]))}, "std has zeros"),
    ({"x": (np.array([np.nan, 0.0]), 1.0)}, "mean has NaN or infinite values"),
])
def test_bad_preprocessing_is_refused_clearly(onnx, preprocessing, message):
    net = compiled(zoo_network("specs/spiral_mlp.json"))
    with pytest.raises(gn.GraphnetError, match=message):
        onnx_model(net, preprocessing=preprocessing)


# ---- the command line and the missing extra --------------------------------------------------


def test_cli_export_of_a_run_folder(onnx, tmp_path, capsys):
    net = compiled(zoo_network("specs/fc_bn_dropout.json"))
    net.save(tmp_path / "run" / "checkpoint")
    out = tmp_path / "model.onnx"
    assert main(["export", str(tmp_path / "run"), str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    check_against_ort(onnx, gn.load_checkpoint(tmp_path / "run"), onnx.load(str(out)))


def test_cli_export_of_a_missing_folder_is_one_line(onnx, tmp_path, capsys):
    assert main(["export", str(tmp_path / "nothing"), str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "graphnet export:" in err and "missing" in err


def test_without_onnx_export_names_the_extra(monkeypatch, tmp_path, capsys):
    net = gn.compile(zoo_network("specs/spiral_mlp.json"), batch_size=4)
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    with pytest.raises(gn.GraphnetError, match=r"pip install 'graphnet\[onnx\]'"):
        export_onnx(net, tmp_path / "m.onnx")
    net.save(tmp_path / "ckpt")
    assert main(["export", str(tmp_path / "ckpt"), str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'graphnet[onnx]'" in err
    assert not (tmp_path / "m.onnx").exists()


def test_gn_export_onnx_is_the_exporter(onnx, tmp_path):
    net = gn.compile(gn.load("spiral_mlp").network, batch_size=8, seed=3)
    written = gn.export_onnx(net, tmp_path / "top.onnx")
    export_onnx(net, tmp_path / "function.onnx")
    assert written == tmp_path / "top.onnx"
    assert onnx.load(written).SerializeToString() == onnx.load(tmp_path / "function.onnx").SerializeToString()
