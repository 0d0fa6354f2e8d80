"""ONNX import (graphnet.interop.onnx_import, gn.from_onnx, graphnet import).

Hand-built graphs (onnx.helper) for each folding rule, checked against ONNX Runtime
running the same file; the PyTorch-exported fixtures of tests/fixtures/onnx (TorchScript
and torch.export, see make_fixtures.py) against torch's saved outputs; graphnet's own
export round-tripped (parameters bit for bit); unsupported graphs refused by name.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import graphnet as gn
from graphnet.cli import main
from graphnet.interop.onnx_export import export_onnx
from graphnet.interop.onnx_import import read_onnx

from tests._support import strategies
from tests._support.onnx_checks import assert_close, forward_dict, random_inputs, run_ort, write_model
from tests._support.paths import ONNX_FIXTURES
from tests._support.zoo import ZOO, randomize, zoo_network

TORCH_MODELS = sorted(ONNX_FIXTURES.glob("*.onnx"))

onnx = pytest.importorskip("onnx", reason="the onnx package is in the [onnx] extra: pip install 'graphnet[onnx]'")
pytest.importorskip("onnxruntime", reason="ONNX Runtime is in the [onnx] extra: pip install 'graphnet[onnx]'")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

RNG = np.random.default_rng(7)


def weights(*shape: int) -> np.ndarray:
    return RNG.normal(0, 0.7, shape).astype(np.float32)


def check_like_ort(path: Path, batch: int = 5, rtol: float = 1e-5) -> gn.CompiledNetwork:
    """from_onnx's forward equals ONNX Runtime's on the same file; returns the network."""
    net = gn.from_onnx(path, batch_size=3)
    inputs = random_inputs(net, batch)
    expected = run_ort(path, inputs)
    got = forward_dict(net, inputs)
    assert list(got) == list(expected)
    for name in expected:
        assert_close(got[name], expected[name], rtol, what=name)
    return net


def ops_of(net: gn.CompiledNetwork) -> list[str]:
    return [node.op for node in net.spec.nodes]


# ---- folding rules, on hand-built graphs -----------------------------------------------------


@pytest.mark.parametrize("alpha, beta", [(1.0, 1.0), (0.5, 2.0)])
def test_gemm_trans_b_alpha_beta_fold_into_the_affine(tmp_path, alpha, beta):
    B, C = weights(4, 3), weights(4)
    path = write_model(tmp_path / "m.onnx", [
        helper.make_node("Gemm", ["x", "fc.weight", "fc.bias"], ["y"], name="gemm", alpha=alpha, beta=beta,
                         transB=1)], {"x": [3]}, ["y"], {"fc.weight": B, "fc.bias": C})
    net = check_like_ort(path)
    assert ops_of(net) == ["affine", "identity"]  # the identity names the output 'y'
    np.testing.assert_allclose(net.params["fc.W"], alpha * B.T, rtol=1e-6)
    np.testing.assert_allclose(net.params["fc.b"], beta * C, rtol=1e-6)


def test_gemm_trans_a_of_a_transposed_input_folds(tmp_path):
    path = write_model(tmp_path / "m.onnx", [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0]),
        helper.make_node("Gemm", ["xt", "W", "b"], ["y"], transA=1)],
        {"x": [3]}, ["y"], {"W": weights(3, 4), "b": weights(1, 4)})
    assert ops_of(check_like_ort(path)) == ["affine"]


def test_transpose_of_a_constant_weight_folds(tmp_path):
    path = write_model(tmp_path / "m.onnx", [
        helper.make_node("Transpose", ["w"], ["wt"], perm=[1, 0]),
        helper.make_node("MatMul", ["x", "wt"], ["y"])], {"x": [3]}, ["y"], {"w": weights(4, 3)})
    assert ops_of(check_like_ort(path)) == ["affine"]


def test_identity_and_dropout_fold_away(tmp_path):
    path = write_model(tmp_path / "m.onnx", [
        helper.make_node("Gemm", ["x", "fc.weight"], ["h"], transB=1),
        helper.make_node("Identity", ["h"], ["h2"]),
        helper.make_node("Dropout", ["h2"], ["h3", "mask"], name="drop"),
        helper.make_node("Relu", ["h3"], ["y"])], {"x": [3]}, ["y"], {"fc.weight": weights(4, 3)})
    net = check_like_ort(path)
    assert ops_of(net) == ["affine", "identity"]
    assert net.spec.nodes[0].activation == "relu" and not net.spec.nodes[0].bias


@pytest.mark.parametrize("target, batch", [([-1, 6], "batch"), ([0, -1], "batch"), ([0, 6], "batch"),
                                           ([4, 6], 4), ([4, -1], 4)])
def test_reshape_to_batch_by_features_is_a_flatten(tmp_path, target, batch):
    path = write_model(tmp_path / "m.onnx", [
        helper.make_node("Reshape", ["x", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "W"], ["z"]),
        helper.make_node("Add", ["z", "b"], ["y"])],
        {"x": [2, 3]}, ["y"], {"shape": np.array(target, np.int64), "W": weights(6, 2), "b": weights(2)},
        batch=batch)  # a fixed batch of 4 is how an export without a dynamic batch spells it
    net = check_like_ort(path, batch=4)
    assert ops_of(net) == ["flatten", "affine"] and net.spec.nodes[1].bias


def test_reshape_with_a_positive_first_dim_of_a_dynamic_batch_is_refused(tmp_path):
    path = write_model(tmp_path / "m.onnx", [helper.make_node("Reshape", ["x", "s"], ["y"], name="r")],
                       {"x": [2, 3]}, ["y"], {"s": np.array([4, 6], np.int64)})
    with pytest.raises(gn.GraphnetError, match=re.escape("node 'r': Reshape to [4, 6] is not a flatten")):
        read_onnx(path)


def test_flatten_folds_and_bias_from_a_constant_node_before_the_value(tmp_path):
    bias = numpy_helper.from_array(weights(2), "bias")
    path = write_model(tmp_path / "m.onnx", [
        helper.make_node("Flatten", ["x"], ["flat"], axis=1),
        helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(weights(6, 2), "w")),
        helper.make_node("Constant", [], ["b"], value=bias),
        helper.make_node("MatMul", ["flat", "w"], ["z"]),
        helper.make_node("Add", ["b", "z"], ["y"])], {"x": [2, 3]}, ["y"])
    net = check_like_ort(path)
    assert ops_of(net) == ["flatten", "affine"]


def test_constant_floats_and_every_supported_op(tmp_path):
    """Sigmoid, Tanh, LeakyRelu, Concat, Sum, LayerNormalization (no bias), BatchNormalization, Softmax."""
    path = write_model(tmp_path / "m.onnx", [
        helper.make_node("Constant", [], ["ln_scale"], value_floats=[1.5, 0.5, 1.0, 2.0]),
        helper.make_node("Gemm", ["x", "a.W", "a.b"], ["a"]),
        helper.make_node("Sigmoid", ["a"], ["sa"]),
        helper.make_node("Tanh", ["x"], ["tx"]),
        helper.make_node("LeakyRelu", ["x"], ["lx"], alpha=0.3),
        helper.make_node("Concat", ["sa", "tx"], ["cat"], axis=1),
        helper.make_node("Sum", ["tx", "lx", "x"], ["s"]),
        helper.make_node("Concat", ["cat", "s"], ["cat2"], axis=-1),
        helper.make_node("Gemm", ["cat2", "c.W"], ["c"]),
        helper.make_node("LayerNormalization", ["c", "ln_scale"], ["ln"], epsilon=1e-3),
        helper.make_node("BatchNormalization", ["ln", "bn.gamma", "bn.beta", "bn.mean", "bn.var"], ["bn"]),
        helper.make_node("Softmax", ["bn"], ["y"], axis=1)],
        {"x": [3]}, ["y", "cat"],
        {"a.W": weights(3, 2), "a.b": weights(2), "c.W": weights(8, 4), "bn.gamma": weights(4),
         "bn.beta": weights(4), "bn.mean": weights(4), "bn.var": np.float32(1) + weights(4) ** 2})
    net = check_like_ort(path)
    assert ops_of(net) == ["affine", "tanh", "leaky_relu", "concat", "add", "concat", "affine", "layernorm",
                           "batchnorm", "softmax"]
    assert net.spec.nodes[0].activation == "sigmoid"
    assert net.spec.nodes[7].eps == 1e-3


def test_softmax_of_opset_11_defaults_to_axis_1(tmp_path):
    path = write_model(tmp_path / "m.onnx", [helper.make_node("Softmax", ["x"], ["y"])], {"x": [4]}, ["y"],
                       opset=11)
    assert ops_of(check_like_ort(path)) == ["softmax"]


def test_a_double_model_imports_as_float64(tmp_path):
    path = write_model(tmp_path / "m.onnx", [helper.make_node("Gemm", ["x", "W"], ["y"])], {"x": [3]}, ["y"],
                       {"W": weights(3, 2).astype(np.float64)}, elem_type=TensorProto.DOUBLE)
    net = check_like_ort(path, rtol=1e-12)
    assert net.dtype == np.float64
    assert gn.from_onnx(path, dtype="float32").dtype == np.float32


def test_awkward_names_become_valid_ids(tmp_path):
    path = write_model(tmp_path / "m.onnx", [
        helper.make_node("Gemm", ["input.1", "0.weight"], ["/0/Gemm_output_0"], name="/0/Gemm", transB=1),
        helper.make_node("Relu", ["/0/Gemm_output_0"], ["17"], name="/1/Relu")],
        {"input.1": [3]}, ["17"], {"0.weight": weights(2, 3)})
    imported = read_onnx(path)
    assert list(imported.spec.inputs) == ["input_1"]
    assert imported.renamed == {"input.1": "input_1", "17": "output_17"}
    assert set(imported.arrays) == {"affine_0.W"}


# ---- refused, by name ------------------------------------------------------------------------


def test_an_unsupported_op_names_its_type_and_node(tmp_path, capsys):
    path = write_model(tmp_path / "weird.onnx", [
        helper.make_node("Gemm", ["x", "W"], ["h"]),
        helper.make_node("Erf", ["h"], ["y"], name="weird_node")], {"x": [3]}, ["y"], {"W": weights(3, 2)})
    with pytest.raises(gn.GraphnetError) as caught:
        gn.from_onnx(path)
    assert not isinstance(caught.value, KeyError)
    message = str(caught.value)
    assert message.startswith(f"{path}: node 'weird_node': op type Erf is not supported (supported: ")
    assert "Gemm" in message
    assert main(["import", str(path), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "op type Erf" in err and "weird_node" in err
    assert not (tmp_path / "out").exists()


def bad_graph(case: str) -> tuple[list, dict, dict]:
    """(nodes, inputs, initializers) of a graph import must refuse; outputs are ['y']."""
    W = {"W": weights(3, 2)}
    return {
        "gemm-trans-a-on-rows": ([helper.make_node("Gemm", ["x", "W"], ["y"], name="g", transA=1)],
                                 {"x": [3]}, {"W": weights(5, 2)}),
        "gemm-computed-weight": ([helper.make_node("Relu", ["x"], ["r"]),
                                  helper.make_node("Gemm", ["x", "r"], ["y"], name="g")], {"x": [3]}, {}),
        "reshape-not-flatten": ([helper.make_node("Reshape", ["x", "s"], ["y"], name="r")],
                                {"x": [6]}, {"s": np.array([-1, 3, 2], np.int64)}),
        "flatten-axis-2": ([helper.make_node("Flatten", ["x"], ["y"], name="f", axis=2)], {"x": [2, 3]}, {}),
        "softmax-axis-0": ([helper.make_node("Softmax", ["x"], ["y"], name="s", axis=0)], {"x": [3]}, {}),
        "bias-after-relu": ([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "b"], ["y"],
                                                                                      name="a")],
                            {"x": [3]}, {"b": weights(3)}),
        "mask-read": ([helper.make_node("Dropout", ["x"], ["d", "mask"]),
                       helper.make_node("Relu", ["mask"], ["y"], name="r")], {"x": [3]}, {}),
        "symbolic-feature-dim": ([helper.make_node("Relu", ["x"], ["y"])], {"x": ["D"]}, {}),
        "fan-in-mismatch": ([helper.make_node("MatMul", ["x", "W"], ["y"], name="m")], {"x": [4]}, W),
        "custom-domain": ([helper.make_node("FusedGemm", ["x", "W"], ["y"], name="fg", domain="com.microsoft")],
                          {"x": [3]}, W),
        "batchnorm-training": ([helper.make_node("BatchNormalization", ["x", "g", "g", "g", "g"], ["y"],
                                                 name="bn", training_mode=1)], {"x": [3]}, {"g": weights(3)}),
    }[case]


REFUSALS = {
    "gemm-trans-a-on-rows": "node 'g': Gemm with transA=1 reads a (batch, features) value",
    "gemm-computed-weight": "node 'g': the weight B ('r') must be a constant",
    "reshape-not-flatten": "node 'r': Reshape to [-1, 3, 2] is not a flatten to (batch, 6)",
    "flatten-axis-2": "node 'f': Flatten with axis 2 is not supported",
    "softmax-axis-0": "node 's': Softmax along axis 0 is not supported",
    "bias-after-relu": "node 'a': Add of a constant is only supported as the bias of a MatMul",
    "mask-read": "node 'r': reads 'mask', which no supported node produces",
    "symbolic-feature-dim": "input 'x': axis 1 has no fixed size (D)",
    "fan-in-mismatch": "node 'm': the weight has 3 rows but input 'x' has 4 features",
    "custom-domain": "node 'fg': op type com.microsoft.FusedGemm is not supported",
    "batchnorm-training": "node 'bn': BatchNormalization with training_mode=1 is not supported",
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_unsupported_graphs_are_refused_with_the_node(tmp_path, case):
    nodes, inputs, initializers = bad_graph(case)
    path = write_model(tmp_path / "m.onnx", nodes, inputs, ["y"], initializers)
    with pytest.raises(gn.GraphnetError, match=f"^{re.escape(f'{path}: {REFUSALS[case]}')}"):
        read_onnx(path)


def test_integer_inputs_missing_and_foreign_files_are_refused(tmp_path):
    path = write_model(tmp_path / "m.onnx", [helper.make_node("Relu", ["x"], ["y"])], {"x": [3]}, ["y"],
                       elem_type=TensorProto.INT64)
    with pytest.raises(gn.GraphnetError, match="input 'x': only float and double tensor inputs"):
        read_onnx(path)
    with pytest.raises(gn.GraphnetError, match="no such file"):
        read_onnx(tmp_path / "absent.onnx")
    (tmp_path / "text.onnx").write_text("hello, not a protobuf at all \x00\xff", encoding="latin-1")
    with pytest.raises(gn.GraphnetError, match="text.onnx: not an ONNX model"):
        read_onnx(tmp_path / "text.onnx")


def test_non_finite_weights_are_refused(tmp_path):
    W = weights(3, 2)
    W[1, 0] = np.nan
    path = write_model(tmp_path / "m.onnx", [helper.make_node("Gemm", ["x", "fc.W"], ["y"])], {"x": [3]}, ["y"],
                       {"fc.W": W})
    with pytest.raises(gn.GraphnetError, match=r"non-finite weights in 'fc.W'"):
        read_onnx(path)


# ---- round trip through graphnet's own export ------------------------------------------------


def check_round_trip(net: gn.CompiledNetwork, path: Path, rtol: float = 1e-6) -> gn.CompiledNetwork:
    """Export then import: the same parameters and running stats bit for bit, the same forward."""
    export_onnx(net, path)
    back = gn.from_onnx(path, batch_size=net.capacity)
    assert back.dtype == net.dtype
    kept = set(back.params) | set(back.state)
    assert kept and kept <= set(net.params) | set(net.state)
    for name in back.params:
        np.testing.assert_array_equal(back.params[name], net.params[name], err_msg=name)
    for name in back.state:
        np.testing.assert_array_equal(back.state[name], net.state[name], err_msg=name)
    inputs = random_inputs(net, 6)
    expected, got = forward_dict(net, inputs), forward_dict(back, inputs)
    assert list(got) == list(expected)
    for name in expected:
        assert_close(got[name], expected[name], rtol, what=name)
    return back


@pytest.mark.parametrize("path", ZOO, ids=[p.stem for p in ZOO])
def test_zoo_round_trip_keeps_the_parameters_exactly(path, tmp_path):
    net = gn.compile(zoo_network(path), batch_size=8)
    randomize(net)
    back = check_round_trip(net, tmp_path / "model.onnx")
    assert set(back.params) == set(net.params) and set(back.state) == set(net.state)


def test_float64_round_trip(tmp_path):
    net = gn.compile(zoo_network("specs/fc_bn_dropout.json"), batch_size=8, dtype="float64")
    randomize(net)
    check_round_trip(net, tmp_path / "model.onnx", rtol=1e-12)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(case=strategies.network_specs())
def test_random_dags_round_trip(case, tmp_path):
    net = gn.compile(case.spec, batch_size=4)
    randomize(net)
    check_round_trip(net, tmp_path / "model.onnx", rtol=1e-5)


def test_the_imported_spec_extends_with_a_loss(tmp_path):
    """No labels, no loss: adding both makes a trainable network that starts from the imported weights."""
    net = gn.compile(zoo_network("specs/spiral_mlp.json"), batch_size=8)
    randomize(net)
    imported = read_onnx(export_onnx(net, tmp_path / "m.onnx"))
    assert imported.spec.loss is None and not imported.spec.labels
    doc = json.loads(imported.spec.to_json())
    doc["labels"] = {"y": {"classes": 3}}
    doc["nodes"].append({"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc2", "y"]})
    doc["loss"] = "loss"
    trainable = gn.compile(doc, batch_size=8)
    trainable.load_state_dict(imported.arrays)
    loss, grads = trainable.loss(random_inputs(net, 8)["x"], np.arange(8) % 3)
    assert np.isfinite(loss) and set(grads) == set(net.params)


# ---- PyTorch's exporters -------------------------------------------------------------------


@pytest.mark.parametrize("path", TORCH_MODELS, ids=[p.stem for p in TORCH_MODELS])
def test_pytorch_exports_match_torch(path):
    sample = np.load(ONNX_FIXTURES / f"{path.stem.rsplit('_', 1)[0]}.npz")
    net = gn.from_onnx(path, batch_size=2)  # the sample has 7 rows: a batch size other than the compiled one
    assert_close(net.forward(sample["X"]), sample["y"], what=path.name)
    ops = ops_of(net)
    assert "dropout" not in ops
    if path.stem == "mlp_bn_torchscript":  # TorchScript keeps BatchNormalization; torch.export folds it
        assert "batchnorm" in ops and not np.allclose(net.state["batchnorm_1.running_var"], 1)
    if path.stem == "mlp_bn_dynamo":
        assert "batchnorm" not in ops


def test_fixtures_cover_both_pytorch_exporters():
    assert len(TORCH_MODELS) == 10
    for path in TORCH_MODELS:
        version = onnx.load(str(path)).opset_import[0].version
        assert version == (18 if path.stem.endswith("_dynamo") else 17)


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_live_pytorch_export_imports(tmp_path, dynamo):
    torch = pytest.importorskip("torch", reason="torch is an optional test dependency (pip install torch)")
    if dynamo:
        pytest.importorskip("onnxscript", reason="torch.onnx.export(dynamo=True) needs onnxscript")
    import warnings

    torch.manual_seed(3)
    module = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.BatchNorm1d(7), torch.nn.ReLU(),
                                 torch.nn.Dropout(0.2), torch.nn.Linear(7, 4), torch.nn.Softmax(dim=1))
    module.train()
    with torch.no_grad():
        module(torch.randn(32, 5) * 3 + 1)  # running statistics away from (0, 1)
    module.eval()
    X = torch.randn(9, 5)
    options = (dict(opset_version=18, dynamic_shapes=({0: torch.export.Dim("batch")},)) if dynamo
               else dict(opset_version=17, dynamic_axes={"x": {0: "batch"}}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (X,), str(tmp_path / "m.onnx"), input_names=["x"], output_names=["probs"],
                          dynamo=dynamo, **options)
    with torch.no_grad():
        expected = module(X).numpy()
    assert_close(gn.from_onnx(tmp_path / "m.onnx", batch_size=4).forward(X.numpy()), expected)


# ---- the command line -------------------------------------------------------------------------


def test_cli_import_writes_a_checkpoint_folder(tmp_path, capsys):
    model = ONNX_FIXTURES / "mlp_bn_torchscript.onnx"
    out = tmp_path / "ckpt"
    assert main(["import", str(model), str(out)]) == 0
    assert "wrote checkpoint" in capsys.readouterr().out
    assert (out / "network.json").is_file() and (out / "weights.npz").is_file()
    sample = np.load(ONNX_FIXTURES / "mlp_bn.npz")
    assert_close(gn.load_checkpoint(out).forward(sample["X"]), sample["y"])
    assert main(["import", str(model), str(out)]) == 1  # not over an existing checkpoint
    assert "not an empty folder" in capsys.readouterr().err
    assert main(["eval", str(out), "--data", "spiral"]) == 1  # no labels: a user error, not a crash
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no labels" in err
    assert main(["import", str(model), str(tmp_path / "f64"), "--dtype", "float64"]) == 0
    assert gn.load_checkpoint(tmp_path / "f64").dtype == np.float64


def test_sub_and_div_of_a_graph_input_are_its_preprocessing(tmp_path):
    W, shift, scale = weights(3, 2), np.array([1.0, -2.0, 0.5], np.float32), np.array([2.0, 4.0, 0.25], np.float32)
    path = write_model(tmp_path / "pre.onnx",
                       [helper.make_node("Sub", ["x", "shift"], ["centered"]),
                        helper.make_node("Div", ["centered", "scale"], ["scaled"]),
                        helper.make_node("MatMul", ["scaled", "W"], ["y"])],
                       {"x": [3]}, ["y"], {"W": W, "shift": shift, "scale": scale})
    net = gn.from_onnx(path, batch_size=4)
    np.testing.assert_array_equal(net.preprocessing.shift, shift.astype(np.float64))
    np.testing.assert_array_equal(net.preprocessing.scale, scale.astype(np.float64))
    X = RNG.normal(size=(6, 3)).astype(np.float32)
    expected = run_ort(path, {"x": X})["y"]
    assert_close(net.forward(net.prepare(X)), expected)  # raw features in, as ONNX Runtime takes them


@pytest.mark.parametrize("nodes, why", [
    ([helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Sub", ["h", "c"], ["y"])], "inside"),
    ([helper.make_node("Sub", ["x", "c"], ["s"]), helper.make_node("MatMul", ["x", "W"], ["h"]),
      helper.make_node("Add", ["h", "s"], ["y"])], "raw input read twice"),
])
def test_sub_anywhere_but_on_a_graph_input_is_refused(tmp_path, nodes, why):
    path = write_model(tmp_path / "sub.onnx", nodes, {"x": [3]}, ["y"],
                       {"W": weights(3, 3), "c": np.ones(3, np.float32)})
    with pytest.raises(gn.GraphnetError, match="op type Sub is supported only as input preprocessing"):
        read_onnx(path)
