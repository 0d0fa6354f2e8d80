"""init_from: a run starts from the weights of a checkpoint, run folder or ONNX model and fine-tunes them."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import graphnet as gn
from graphnet.cli import main

from tests._support.onnx_checks import assert_close
from tests._support.paths import ONNX_FIXTURES

pytest.importorskip("onnx")


def imported_spec(name: str = "mlp_bn_dynamo") -> dict:
    from graphnet.interop.onnx_import import read_onnx

    return json.loads(read_onnx(ONNX_FIXTURES / f"{name}.onnx").spec.to_json())


def fine_tune_run(data: str, init_from: str, epochs: int = 30, learning_rate: float = 1e-2,
                  rule: str = "adam", network: dict | None = None) -> dict:
    """The imported MLP (6 -> 8 -> 3) with a label and a loss added, trained from `init_from`."""
    network = network or imported_spec()
    network["labels"] = {"target": {"classes": 3}}
    network["nodes"].append({"id": "loss", "op": "softmax_cross_entropy", "inputs": ["y", "target"]})
    network["loss"] = "loss"
    return {"network": network,
            "train": {"data": {"name": data, "normalize": "none"}, "init_from": init_from, "epochs": epochs,
                      "batch_size": 32, "seed": 0, "optimizer": {"rule": rule, "learning_rate": learning_rate}}}


@pytest.fixture(scope="module")
def task(tmp_path_factory) -> Path:
    """An npz of 6 features and 3 classes the imported model does not know (a linear rule of its own)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 6)).astype(np.float32)
    y = (X @ rng.standard_normal((6, 3))).argmax(axis=1)
    path = tmp_path_factory.mktemp("task") / "task.npz"
    np.savez(path, X_train=X[:500], y_train=y[:500], X_test=X[500:], y_test=y[500:])
    return path


def test_init_from_an_onnx_model_starts_at_torchs_weights(task, tmp_path):
    fixture = np.load(ONNX_FIXTURES / "mlp_bn.npz")
    notes: list[str] = []
    run = gn.parse_run(fine_tune_run(str(task), str(ONNX_FIXTURES / "mlp_bn_dynamo.onnx"), epochs=1,
                                     learning_rate=1e-12, rule="sgd"))
    result = gn.train(run, log=notes.append, progress=False)
    assert any("loaded 4 of 4 arrays" in note for note in notes), notes
    assert_close(result.net.forward(fixture["X"]), fixture["y"], rtol=1e-4, what="after init_from")


def test_a_pytorch_model_imported_by_the_cli_fine_tunes(task, tmp_path, monkeypatch, capsys):
    from graphnet.interop.onnx_import import from_onnx

    monkeypatch.chdir(tmp_path)
    assert main(["import", str(ONNX_FIXTURES / "mlp_bn_torchscript.onnx"), "imported"]) == 0
    (tmp_path / "run.json").write_text(json.dumps(fine_tune_run(str(task), "imported", epochs=30)))
    assert main(["train", "run.json", "--out", "tuned", "--no-progress"]) == 0
    saved = json.loads((tmp_path / "tuned" / "run.json").read_text())
    assert saved["train"]["init_from"] == str(tmp_path / "imported")
    history = json.loads((tmp_path / "tuned" / "history.json").read_text())
    losses = [epoch["train_loss"] for epoch in history]
    assert losses[-1] < 0.5 * losses[0]
    data = np.load(task)
    before = (from_onnx(ONNX_FIXTURES / "mlp_bn_torchscript.onnx").predict(data["X_test"]) == data["y_test"]).mean()
    after = (gn.load_checkpoint(tmp_path / "tuned").predict(data["X_test"]) == data["y_test"]).mean()
    assert after > before + 0.2


def test_init_from_with_another_shape_names_the_parameter_and_both_shapes(task, tmp_path, capsys):
    network = imported_spec()
    network["nodes"][0]["units"] = 9
    (tmp_path / "run.json").write_text(json.dumps(
        fine_tune_run(str(task), str(ONNX_FIXTURES / "mlp_bn_dynamo.onnx"), network=network)))
    assert main(["train", str(tmp_path / "run.json"), "--out", str(tmp_path / "run"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'affine_0.W' has shape (6, 8) there, the network's is (6, 9)" in err[0]


def test_init_from_keeps_the_initial_values_of_a_new_head_and_says_so(task, tmp_path):
    network = imported_spec()
    network["nodes"][-1] = {"id": "head", "op": "affine", "inputs": ["affine_0"], "units": 3}
    network["nodes"].append({"id": "y", "op": "identity", "inputs": ["head"]})
    del network["nodes"][1]  # affine_4: the old head, replaced
    fresh = gn.compile(fine_tune_run("x", "y", network=json.loads(json.dumps(network)))["network"], seed=0)
    notes: list[str] = []
    run = gn.parse_run(fine_tune_run(str(task), str(ONNX_FIXTURES / "mlp_bn_dynamo.onnx"), epochs=1,
                                     learning_rate=1e-12, rule="sgd", network=network))
    result = gn.train(run, log=notes.append, progress=False)
    note = next(n for n in notes if "init_from" in n)
    assert "kept the initial values of head.W, head.b" in note and "ignored affine_4.W, affine_4.b" in note
    np.testing.assert_allclose(result.net.params["head.W"], fresh.params["head.W"], atol=1e-6)
    with pytest.raises(gn.CheckpointError, match="no such checkpoint folder"):
        gn.train(gn.parse_run(fine_tune_run(str(task), str(tmp_path / "nothing"))), log=None, progress=False)


# ---- the source's model record: preprocessing and class names are kept --------------------------

def flowers_run(data: Path, **train: object) -> dict:
    """A classifier of the three named classes of task_data.named_classes (raw features on very different scales)."""
    return {"network": {"inputs": {"x": {"shape": [4]}}, "labels": {"y": {"classes": 3}},
                        "nodes": [{"id": "fc1", "op": "affine", "inputs": ["x"], "units": 16, "activation": "relu"},
                                  {"id": "fc2", "op": "affine", "inputs": ["fc1"], "units": 3},
                                  {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc2", "y"]}],
                        "outputs": ["fc2"], "loss": "loss"},
            "train": {"data": {"name": str(data), "options": {"label_column": "species"}},
                      "optimizer": {"rule": "adam", "learning_rate": 1e-2}, "epochs": 10, "batch_size": 16,
                      "seed": 0, **train}}


@pytest.fixture(scope="module")
def standardized_source(tmp_path_factory) -> tuple[Path, Path]:
    """(a run folder trained with "standardize" on a CSV of text labels, the CSV)."""
    from tests._support.task_data import named_classes, write_named_csv

    root = tmp_path_factory.mktemp("source")
    X, names = named_classes(240, seed=1)
    data = write_named_csv(root / "flowers.csv", X, names)
    run = flowers_run(data)
    run["train"]["data"]["normalize"] = "standardize"
    gn.train(gn.parse_run(run), out=root / "source", progress=False, log=None)
    return root / "source", data


@pytest.mark.parametrize("source_kind", ["checkpoint", "onnx"])
def test_init_from_keeps_the_sources_preprocessing_and_class_names(standardized_source, source_kind, tmp_path):
    source, data = standardized_source
    if source_kind == "onnx":
        assert main(["export", str(source), str(tmp_path / "source.onnx")]) == 0
        source = tmp_path / "source.onnx"
    notes: list[str] = []
    run = gn.parse_run(flowers_run(data, init_from=str(source), epochs=1,
                                   optimizer={"rule": "sgd", "learning_rate": 1e-12}))  # the weights stay put
    result = gn.train(run, log=notes.append, progress=False)
    trained = gn.load_checkpoint(standardized_source[0])
    assert any("keeps its input preprocessing 'standardize' over 4 features of columns f0, f1, f2, f3" in note
               for note in notes), notes
    assert result.net.class_names == trained.class_names == ("setosa", "versicolor", "virginica")
    np.testing.assert_allclose(result.net.preprocessing.shift, trained.preprocessing.shift, rtol=1e-6)
    assert result.history[0].train_loss < 0.5  # the loss of the weights on the data they were trained for
    from tests._support.task_data import named_classes

    X, names = named_classes(240, seed=1)
    np.testing.assert_array_equal(result.net.predict(X), trained.predict(X))


def test_init_from_refuses_a_normalize_that_contradicts_the_sources(standardized_source, tmp_path):
    source, data = standardized_source
    run = flowers_run(data, init_from=str(source))
    run["train"]["data"]["normalize"] = "scale"
    with pytest.raises(gn.SpecError, match=r"normalize is 'scale', but the model training starts from "
                                           rf"\(init_from {source}\) has its own input preprocessing, "
                                           r"'standardize'"):
        gn.train(gn.parse_run(run), out=tmp_path / "run", progress=False, log=None)
    assert not (tmp_path / "run").exists()  # refused before a run folder is made


def test_init_from_reads_the_sources_columns_by_name(standardized_source, tmp_path):
    """Fine-tuning data whose columns come in another order: the model's columns, by name."""
    source, data = standardized_source
    lines = data.read_text().splitlines()
    order = [4, 0, 2, 1, 3]  # f3, species, f1, f0, f2
    data2 = tmp_path / "reordered.csv"
    data2.write_text("\n".join(",".join(line.split(",")[i] for i in order) for line in lines) + "\n")
    run = gn.parse_run(flowers_run(data2, init_from=str(source), epochs=1,
                                   optimizer={"rule": "sgd", "learning_rate": 1e-12}))
    result = gn.train(run, log=None, progress=False)
    assert result.net.preprocessing.feature_names == ("f0", "f1", "f2", "f3")
    assert result.history[0].train_loss < 0.5
    assert result.metrics["test_accuracy"] > 0.9


def test_an_imported_models_head_fine_tunes_with_its_body_frozen(task, tmp_path):
    """The usual fine-tuning: the ONNX import's body kept as PyTorch trained it, its head trained."""
    from graphnet.interop.onnx_import import from_onnx

    imported = from_onnx(ONNX_FIXTURES / "mlp_bn_dynamo.onnx")
    document = fine_tune_run(str(task), str(ONNX_FIXTURES / "mlp_bn_dynamo.onnx"), epochs=3)
    document["train"]["freeze"] = ["affine_0"]
    result = gn.train(gn.parse_run(document), out=tmp_path / "run", log=None, progress=False)
    net = result.net
    for name in ("affine_0.W", "affine_0.b"):
        np.testing.assert_array_equal(net.params[name], imported.params[name])
    assert not np.allclose(net.params["affine_4.W"], imported.params["affine_4.W"])
    head = net.params["affine_4.W"].size + net.params["affine_4.b"].size
    optimizer_state = np.load(tmp_path / "run" / "checkpoint" / "weights.npz")
    assert optimizer_state["optim/m"].shape == optimizer_state["optim/v"].shape == (head,)  # the head's alone
    served = gn.load_checkpoint(tmp_path / "run")
    np.testing.assert_array_equal(served.params["affine_0.W"], imported.params["affine_0.W"])


def test_an_imported_pytorch_cnn_fine_tunes_from_its_weights(tmp_path):
    """A CNN torch.export wrote (conv, max/avg pooling, flatten, dense): init_from starts at torch's
    outputs, and training on images of its input shape moves it."""
    fixture = np.load(ONNX_FIXTURES / "cnn_bn.npz")
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 1, 10, 10)).astype(np.float32)
    y = (X[:, 0, :5].mean(axis=(1, 2)) > 0).astype(np.int64) + (X[:, 0, 5:].mean(axis=(1, 2)) > 0)
    path = tmp_path / "images.npz"
    np.savez(path, X_train=X[:160], y_train=y[:160], X_test=X[160:], y_test=y[160:])
    network = imported_spec("cnn_bn_dynamo")
    assert {"conv2d", "max_pool2d", "avg_pool2d"} <= {n["op"] for n in network["nodes"]}
    start = gn.parse_run(fine_tune_run(str(path), str(ONNX_FIXTURES / "cnn_bn_dynamo.onnx"), epochs=1,
                                       learning_rate=1e-12, rule="sgd", network=imported_spec("cnn_bn_dynamo")))
    assert_close(gn.train(start, progress=False).net.forward(fixture["X"]), fixture["y"], rtol=1e-4,
                 what="after init_from")
    tuned = gn.train(gn.parse_run(fine_tune_run(str(path), str(ONNX_FIXTURES / "cnn_bn_dynamo.onnx"), epochs=3,
                                                network=network)), progress=False)
    assert not np.allclose(tuned.net.forward(fixture["X"]), fixture["y"], atol=1e-3)
    assert tuned.net.params[next(n for n in tuned.net.params if n.endswith(".W"))].ndim == 4
