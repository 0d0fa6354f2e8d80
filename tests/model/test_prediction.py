"""graphnet predict: raw examples from a CSV, npz/npy or IDX file in, a CSV of predictions out, streamed."""
from __future__ import annotations

import csv
import gzip
import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest

import graphnet as gn
from graphnet.cli import main
from graphnet.data.preprocessing import Preprocessing
from graphnet.model.prediction import read_examples

from tests._support.task_data import SPECIES, new_raw_csv, task_run, trained_flowers, write_csv


@pytest.fixture(scope="module")
def flowers(tmp_path_factory) -> Path:
    """A run folder trained via the CLI on a CSV with text labels and standardized features."""
    return trained_flowers(tmp_path_factory.mktemp("flowers"))


def read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_predict_gives_the_class_names_of_new_raw_features(flowers, tmp_path, capsys):
    data, X, names = new_raw_csv(tmp_path / "new.csv")
    out = tmp_path / "pred.csv"
    assert main(["predict", str(flowers), "--data", str(data), "--out", str(out)]) == 0
    rows = read_rows(out)
    assert rows[0] == ["prediction"]
    predicted = np.array([r[0] for r in rows[1:]])
    net = gn.load_checkpoint(flowers)
    np.testing.assert_array_equal(predicted, net.predict(X))
    assert set(predicted) <= set(SPECIES) and (predicted == names).mean() > 0.9


def test_predict_streams_in_chunks_with_the_same_result(flowers, tmp_path, capsys):
    data, X, _ = new_raw_csv(tmp_path / "new.csv", n=103)
    net = gn.load_checkpoint(flowers)
    chunks = list(read_examples(net, data, chunk=10))
    assert [len(c) for c in chunks] == [10] * 10 + [3]
    np.testing.assert_array_equal(np.concatenate(chunks), X)
    assert main(["predict", str(flowers), "--data", str(data), "--batch-size", "10", "--out", str(tmp_path / "a.csv")]) == 0
    assert main(["predict", str(flowers), "--data", str(data), "--out", str(tmp_path / "b.csv")]) == 0
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    assert len(read_rows(tmp_path / "a.csv")) == 104


def test_predict_proba_adds_a_column_per_class_summing_to_one(flowers, tmp_path, capsys):
    data, X, _ = new_raw_csv(tmp_path / "new.csv")
    assert main(["predict", str(flowers), "--data", str(data), "--proba"]) == 0  # stdout
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["prediction"] + [f"p_{name}" for name in SPECIES]
    p = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(SPECIES)[p.argmax(axis=1)], [r[0] for r in rows[1:]])
    np.testing.assert_allclose(p, gn.load_checkpoint(flowers).predict_proba(X), rtol=1e-6)


def test_predict_input_errors_are_one_line_naming_the_file(flowers, tmp_path, capsys):
    missing = tmp_path / "missing.csv"
    missing.write_text("f0,f1,f2\n1,2,3\n")
    assert main(["predict", str(flowers), "--data", str(missing)]) == 1
    assert "missing.csv: no column 'f3'" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("f0,f1,f2,f3\n1,2,3,4\n1,2,x,4\n")
    assert main(["predict", str(flowers), "--data", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("bad.csv: line 3, column 'f2': 'x' is text: this model reads numbers only (its training "
                            "data had no text column)")
    assert main(["predict", str(flowers), "--data", str(tmp_path / "nowhere.csv")]) == 1
    assert "nowhere.csv: no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["predict", str(flowers)])  # --data is required
    assert usage.value.code == 2


@pytest.mark.parametrize("name, content", [
    ("layout.csv", "f0,f1,f2\n1,2,3\n"),  # a feature column missing
    ("rows.csv", "f0,f1,f2,f3\n1,2,x,4\n"),  # the first row not numbers
    ("shape.npy", None),  # 3 features for a model of 4
])
def test_predict_to_stdout_writes_nothing_before_the_input_is_checked(flowers, tmp_path, capsys, name, content):
    data = tmp_path / name
    if content is None:
        np.save(data, np.zeros((5, 3)))
    else:
        data.write_text(content)
    assert main(["predict", str(flowers), "--data", str(data)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""  # not even the header
    assert captured.err.count("\n") == 1 and name in captured.err, captured.err


def image_model(folder: Path) -> gn.CompiledNetwork:
    """A 3-class model of 4x3 uint8 images (flattened, scaled by 255), saved to `folder`."""
    spec = gn.parse_network({
        "inputs": {"x": {"shape": [12]}}, "labels": {"y": {"classes": 3}},
        "nodes": [{"id": "fc", "op": "affine", "inputs": ["x"], "units": 3},
                  {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc", "y"]}],
        "outputs": ["fc"], "loss": "loss"})
    net = gn.compile(spec, batch_size=4, seed=1)
    net.preprocessing = Preprocessing("x", (4, 3), "scale", np.zeros(()), np.array(255.0))
    net.save(folder)
    return net


def idx_images(images: np.ndarray) -> bytes:
    return struct.pack(">HBB", 0, 0x08, 3) + struct.pack(">3I", *images.shape) + images.tobytes()


@pytest.mark.parametrize("kind", ["npz", "npy", "idx", "idx.gz"])
def test_predict_reads_arrays_and_idx_images(tmp_path, capsys, kind):
    net = image_model(tmp_path / "model")
    images = np.random.default_rng(0).integers(0, 256, (9, 4, 3), dtype=np.uint8)
    path = tmp_path / {"npz": "x.npz", "npy": "x.npy", "idx": "x-images-idx3-ubyte",
                       "idx.gz": "x-images-idx3-ubyte.gz"}[kind]
    if kind == "npz":
        np.savez(path, X=images)
    elif kind == "npy":
        np.save(path, images)
    else:
        path.write_bytes(gzip.compress(idx_images(images)) if kind == "idx.gz" else idx_images(images))
    assert main(["predict", str(tmp_path / "model"), "--data", str(path), "--batch-size", "4"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    expected = net.forward(images.reshape(9, 12).astype(np.float32) / np.float32(255)).argmax(axis=1)
    assert [int(r[0]) for r in rows[1:]] == expected.tolist()


def cnn_model(folder: Path) -> gn.CompiledNetwork:
    """A saved CNN over images [1, 4, 3] (conv, max pooling, dense) that scales raw pixels by 1/255."""
    spec = gn.parse_network({
        "inputs": {"x": {"shape": [1, 4, 3]}}, "labels": {"y": {"classes": 3}},
        "nodes": [{"id": "c", "op": "conv2d", "inputs": ["x"], "filters": 4, "kernel": 2, "padding": "same",
                   "activation": "relu"},
                  {"id": "p", "op": "max_pool2d", "inputs": ["c"], "kernel": 2},
                  {"id": "fc", "op": "affine", "inputs": ["p"], "units": 3},
                  {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc", "y"]}],
        "outputs": ["fc"], "loss": "loss"})
    net = gn.compile(spec, batch_size=4, seed=1)
    net.preprocessing = Preprocessing("x", (4, 3), "scale", np.zeros(()), np.array(255.0))
    net.save(folder)
    return net


@pytest.mark.parametrize("kind", ["npy-NHW", "npz-NCHW", "idx", "npy-NCHW-float"])
def test_predict_feeds_image_files_to_a_cnn(tmp_path, capsys, kind):
    """Images as (N, H, W) or (N, C, H, W), uint8 raw or float, in .npy, .npz or IDX."""
    net = cnn_model(tmp_path / "model")
    images = np.random.default_rng(0).integers(0, 256, (9, 4, 3), dtype=np.uint8)
    path = tmp_path / {"npy-NHW": "x.npy", "npz-NCHW": "x.npz", "idx": "x-images-idx3-ubyte",
                       "npy-NCHW-float": "f.npy"}[kind]
    if kind == "npy-NHW":
        np.save(path, images)
    elif kind == "npz-NCHW":
        np.savez(path, X=images[:, None])
    elif kind == "idx":
        path.write_bytes(idx_images(images))
    else:
        np.save(path, images[:, None].astype(np.float64))
    assert main(["predict", str(tmp_path / "model"), "--data", str(path), "--batch-size", "4"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    expected = net.forward(images[:, None].astype(np.float32) / np.float32(255)).argmax(axis=1)
    assert [int(r[0]) for r in rows[1:]] == expected.tolist()
    loaded = gn.load_checkpoint(tmp_path / "model")
    np.testing.assert_array_equal(loaded.params["c.W"], net.params["c.W"])
    assert loaded.params["c.W"].shape == (4, 1, 2, 2)


def test_predict_refuses_images_of_another_size_naming_both_shapes(tmp_path, capsys):
    cnn_model(tmp_path / "model")
    np.save(tmp_path / "big.npy", np.zeros((2, 5, 5), np.uint8))
    assert main(["predict", str(tmp_path / "model"), "--data", str(tmp_path / "big.npy")]) == 1
    err = capsys.readouterr().err
    assert "(5, 5)" in err and "(4, 3)" in err and "Traceback" not in err


def test_predict_regression_values_and_binary_0_1(tmp_path, capsys):
    from tests._support.task_data import linear_data, separable_blobs

    X, y = linear_data(200)
    csv_path = write_csv(tmp_path / "lin.csv", X, y)
    (tmp_path / "reg.json").write_text(json.dumps(task_run("regression", str(csv_path), 3, epochs=5)))
    assert main(["train", str(tmp_path / "reg.json"), "--out", str(tmp_path / "reg"), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "reg"), "--data", str(csv_path)]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["prediction"]
    values = np.array([float(r[0]) for r in rows[1:]])
    written = np.loadtxt(csv_path, delimiter=",", skiprows=1)[:, :3]  # the features as the CSV rounds them
    np.testing.assert_allclose(values, gn.load_checkpoint(tmp_path / "reg").predict(written)[:, 0], rtol=1e-6)
    assert main(["predict", str(tmp_path / "reg"), "--data", str(csv_path), "--proba"]) == 1
    assert "regression" in capsys.readouterr().err
    Xb, yb = separable_blobs(200)
    bin_csv = write_csv(tmp_path / "bin.csv", Xb, yb, integer=True)
    (tmp_path / "bin.json").write_text(json.dumps(task_run("binary", str(bin_csv), 2, epochs=5)))
    assert main(["train", str(tmp_path / "bin.json"), "--out", str(tmp_path / "bin"), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "bin"), "--data", str(bin_csv), "--proba"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["prediction", "p_0", "p_1"]
    assert {r[0] for r in rows[1:]} <= {"0", "1"}
    assert np.mean([int(r[0]) == t for r, t in zip(rows[1:], yb)]) > 0.9
    np.testing.assert_allclose([float(r[1]) + float(r[2]) for r in rows[1:]], 1.0, rtol=1e-6)


def test_done_when_text_labels_train_predict_names_and_onnx_agrees(flowers, tmp_path, capsys):
    """Issue 13's scenario: a CSV with text labels trained by the CLI (fixture), `graphnet predict` on
    new raw features gives class names, and the exported ONNX model in ONNX Runtime gives the same."""
    pytest.importorskip("onnxruntime")
    from tests._support.onnx_checks import run_ort

    data, X, _ = new_raw_csv(tmp_path / "new.csv", n=80, seed=11)
    assert main(["predict", str(flowers), "--data", str(data), "--out", str(tmp_path / "pred.csv")]) == 0
    names = [r[0] for r in read_rows(tmp_path / "pred.csv")[1:]]
    assert set(names) <= set(SPECIES)
    assert main(["export", str(flowers), str(tmp_path / "flowers.onnx")]) == 0
    scores = run_ort(tmp_path / "flowers.onnx", {"x": X.astype(np.float32)})["fc2"]
    assert [SPECIES[i] for i in scores.argmax(axis=1)] == names


def test_an_exported_model_imports_with_its_preprocessing_and_class_names(flowers, tmp_path, capsys):
    """export -> import keeps what predictions need: the fitted standardization (the graph's
    Sub/Div) and the class names and CSV columns (model metadata); predict on raw features agrees."""
    pytest.importorskip("onnxruntime")
    data, _, _ = new_raw_csv(tmp_path / "new.csv", n=60, seed=5)
    assert main(["predict", str(flowers), "--data", str(data), "--out", str(tmp_path / "original.csv")]) == 0
    assert main(["export", str(flowers), str(tmp_path / "flowers.onnx")]) == 0
    assert main(["import", str(tmp_path / "flowers.onnx"), str(tmp_path / "imported")]) == 0
    assert main(["predict", str(tmp_path / "imported"), "--data", str(data), "--out", str(tmp_path / "again.csv")]) == 0
    assert read_rows(tmp_path / "again.csv") == read_rows(tmp_path / "original.csv")
    original, imported = gn.load_checkpoint(flowers), gn.load_checkpoint(tmp_path / "imported")
    assert imported.class_names == original.class_names
    assert imported.preprocessing.feature_names == original.preprocessing.feature_names
    for key in ("shift", "scale"):  # the ONNX graph holds them in the network's dtype (float32)
        saved = getattr(original.preprocessing, key).astype(np.float32).astype(np.float64)
        np.testing.assert_array_equal(getattr(imported.preprocessing, key), saved)
