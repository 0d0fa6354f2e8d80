"""`train.class_weight` (graphnet.training.class_weights): "balanced" or a mapping, resolved
on the training split into the loss node's weights, said in the run log, kept by the
checkpoint and by a resume."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import graphnet as gn
from graphnet.spec import parse_run


def imbalanced_csv(path: Path, n: int = 200) -> Path:
    """Two features, a text label: "rare" for one example in five."""
    rng = np.random.default_rng(0)
    rare = rng.permutation(n) < n // 5
    X = rng.standard_normal((n, 2)) + np.where(rare[:, None], 1.5, -0.5)
    rows = [f"{'rare' if r else 'common'},{a:.5f},{b:.5f}" for r, (a, b) in zip(rare, X)]
    path.write_text("label,a,b\n" + "\n".join(rows) + "\n")
    return path


def run_document(data: Path, loss: str = "softmax_cross_entropy", **train: object) -> dict:
    binary = loss == "sigmoid_binary_cross_entropy"
    return {
        "network": {"inputs": {"x": {"shape": [2]}},
                    "labels": {"y": {"shape": [1]} if binary or loss == "mse" else {"classes": 2}},
                    "nodes": [{"id": "fc", "op": "affine", "inputs": ["x"], "units": 1 if binary or loss == "mse" else 2},
                              {"id": "loss", "op": loss, "inputs": ["fc", "y"]}],
                    "outputs": ["fc"], "loss": "loss"},
        "train": {"data": {"name": str(data), "options": {"test_size": 0.2}}, "epochs": 2, "batch_size": 16,
                  "optimizer": {"rule": "adam", "learning_rate": 0.01}, **train},
    }


def test_balanced_weights_are_n_over_classes_times_count_on_the_training_split(tmp_path):
    data = imbalanced_csv(tmp_path / "t.csv")
    lines: list[str] = []
    gn.train(parse_run(run_document(data, class_weight="balanced")), out=tmp_path / "run", log=lines.append,
             progress=False)
    y_train = gn.data.load(data, test_size=0.2)["y_train"]  # the run's split: same seed, stratified
    counts = np.bincount(y_train)
    expected = len(y_train) / (2 * counts)
    assert f'class weights (train.class_weight "balanced"): common {expected[0]:.4g}, rare {expected[1]:.4g}' in lines
    net = gn.load_checkpoint(tmp_path / "run")
    np.testing.assert_allclose(net.state["loss.class_weight"], expected, rtol=1e-6)
    saved = json.loads((tmp_path / "run" / "checkpoint" / "network.json").read_text())
    np.testing.assert_allclose(saved["nodes"][1]["class_weight"], expected, rtol=1e-12)
    assert "class_weight" not in json.loads((tmp_path / "run" / "run.json").read_text())["network"]["nodes"][1]
    gn.train(None, resume=tmp_path / "run", epochs=3, log=None, progress=False)  # the checkpoint's weights


def test_a_mapping_weighs_classes_by_name_and_the_others_by_one(tmp_path):
    data = imbalanced_csv(tmp_path / "t.csv")
    gn.train(parse_run(run_document(data, class_weight={"rare": 4})), out=tmp_path / "run", log=None,
             progress=False)
    np.testing.assert_array_equal(gn.load_checkpoint(tmp_path / "run").state["loss.class_weight"], [1, 4])
    with pytest.raises(gn.SpecError, match=r"train\.class_weight\.rarre: 'rarre' is not a class \(classes: 'common', "
                                           r"'rare'\).*did you mean 'rare'"):
        gn.train(parse_run(run_document(data, class_weight={"rarre": 4})), log=None, progress=False)


def test_a_sigmoid_loss_weighs_targets_zero_and_one(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text(imbalanced_csv(tmp_path / "t.csv").read_text().replace("rare,", "1,").replace("common,", "0,"))
    gn.train(parse_run(run_document(path, "sigmoid_binary_cross_entropy", class_weight="balanced")),
             out=tmp_path / "run", log=None, progress=False)
    y = gn.data.load(path, test_size=0.2, target_shape=[1], stratify=True)["y_train"]
    ones = float(y.sum())
    np.testing.assert_allclose(gn.load_checkpoint(tmp_path / "run").state["loss.class_weight"],
                               [len(y) / (2 * (len(y) - ones)), len(y) / (2 * ones)], rtol=1e-6)


def test_class_weights_are_refused_where_they_do_not_apply(tmp_path):
    data = imbalanced_csv(tmp_path / "t.csv")
    regression = data.with_name("r.csv")
    regression.write_text(data.read_text().replace("rare,", "1.5,").replace("common,", "0.5,"))
    with pytest.raises(gn.SpecError, match=r"train\.class_weight: class weights apply to the losses "
                                           r"softmax_cross_entropy and sigmoid_binary_cross_entropy; this network's "
                                           r"loss is mse"):
        gn.train(parse_run(run_document(regression, "mse", class_weight="balanced")), log=None, progress=False)
    document = run_document(data, class_weight="balanced")
    document["network"]["nodes"][1]["class_weight"] = [1, 2]
    with pytest.raises(gn.SpecError, match=r"the loss node 'loss' has class_weight already"):
        gn.train(parse_run(document), log=None, progress=False)
    with pytest.raises(gn.SpecError, match=r"train\.class_weight"):
        parse_run(run_document(data, class_weight="even"))
