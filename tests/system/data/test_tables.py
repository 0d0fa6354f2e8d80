"""The journey of a table like UCI Adult (issue 23), trained by `graphnet train` in a child
process: numbers, text categories and missing cells, an imbalanced label. `graphnet predict`,
`net.predict`, `graphnet eval --data` and the ONNX export under ONNX Runtime take raw rows
-- with categories training never saw and empty cells -- and agree. The regression table, in
this process: tests/data/test_tables.py."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

import graphnet as gn
from graphnet.cli import main

from tests._support.commands import graphnet
from tests._support.extras import HAVE_ONNX
from tests._support.task_data import ADULT_CLASSES, ADULT_COLUMNS, ADULT_WIDTH, adult_like, write_table_csv

# every test here reads the run one `graphnet train` child process trains (about 3 s)
pytestmark = pytest.mark.slow

# rows to serve: an unseen workclass and education, empty and "?" cells, a missing age
NEW_ROWS = np.array([[52.0, "Private", "Masters", "Female", 45.0],
                     [None, "Unknown-job", "PhD", "Male", 38.5],
                     [23.0, None, "HS-grad", None, None],
                     [61.0, "Self-emp", "Doctorate", "Male", 60.0]], dtype=object)


def adult_run(data: Path, **train: object) -> dict:
    return {
        "network": {"name": "adult", "inputs": {"x": {"shape": [ADULT_WIDTH]}}, "labels": {"y": {"classes": 2}},
                    "nodes": [{"id": "fc1", "op": "affine", "inputs": ["x"], "units": 32, "activation": "relu"},
                              {"id": "fc2", "op": "affine", "inputs": ["fc1"], "units": 2},
                              {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc2", "y"]}],
                    "outputs": ["fc2"], "loss": "loss"},
        "train": {"data": {"name": str(data), "normalize": "standardize", "options": {"label_column": "income"}},
                  "optimizer": {"rule": "adam", "learning_rate": 0.01}, "epochs": 8, "batch_size": 64, "seed": 0,
                  "class_weight": "balanced", **train},
    }


@pytest.fixture(scope="module")
def adult(tmp_path_factory):
    """An Adult-like CSV trained by `graphnet train` in its own process."""
    root = tmp_path_factory.mktemp("adult")
    X, income = adult_like(1500, seed=0)
    data = write_table_csv(root / "adult.csv", X, income, ADULT_COLUMNS, label="income")
    (root / "run.json").write_text(json.dumps(adult_run(data)))
    done = graphnet("train", str(root / "run.json"), "--out", str(root / "run"), "--no-progress", timeout=300)
    assert done.returncode == 0, done.stderr
    return {"root": root, "run": root / "run", "log": done.stdout.splitlines()}


def test_graphnet_train_reads_the_raw_table_and_says_how(adult):
    log = adult["log"]
    assert log[0] == ("data: table columns: 2 numeric columns (missing cells -> the training split's median); "
                      "categorical, inferred from text: workclass (4), education (5), sex (2) -> 19 features (each "
                      "category one slot, plus <missing> and <unknown>)")
    assert re.fullmatch(r"data: missing cells imputed: \d+ \((age|workclass): \d+, (age|workclass): \d+\)", log[1])
    assert log[2] == "data: train/validation/test splits stratified by class (train.data.options.stratify)"
    assert log[3].startswith('class weights (train.class_weight "balanced"): <=50K 0.6')
    metrics = json.loads((adult["run"] / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.85  # beyond the 80% of always answering <=50K


def test_predict_takes_raw_rows_with_unseen_categories_and_empty_cells(adult, tmp_path, capsys):
    rows = tmp_path / "new.csv"  # other column order, an extra column, no label
    with open(rows, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["hours", "id", "sex", "education", "workclass", "age"])
        for i, (age, work, edu, sex, hours) in enumerate(NEW_ROWS):
            writer.writerow(["" if hours is None else hours, i, "?" if sex is None else sex, edu,
                             "?" if work is None else work, "" if age is None else age])
    out = tmp_path / "pred.csv"
    assert main(["predict", str(adult["run"]), "--data", str(rows), "--out", str(out), "--proba"]) == 0
    err = capsys.readouterr().err
    assert ("predict: missing cells imputed: 4 (age: 1, hours: 1, workclass: 1, sex: 1); categories unseen in "
            "training, read as <unknown>: 2 (workclass: 1, education: 1)") in err
    with open(out, newline="") as handle:
        served = list(csv.DictReader(handle))
    net = gn.load_checkpoint(adult["run"])
    assert [row["prediction"] for row in served] == net.predict(NEW_ROWS).tolist()
    np.testing.assert_allclose([[float(row[f"p_{c}"]) for c in ADULT_CLASSES] for row in served],
                               net.predict_proba(NEW_ROWS), rtol=1e-6)


def test_an_array_file_is_refused_by_a_model_whose_categories_are_texts(adult, tmp_path, capsys):
    """An .npy holds numbers without column names: every text category would be read as unseen."""
    np.save(tmp_path / "rows.npy", np.zeros((3, len(ADULT_COLUMNS))))
    assert main(["predict", str(adult["run"]), "--data", str(tmp_path / "rows.npy")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert ("rows.npy: this model reads a table whose categories are texts (columns 'workclass', 'education', "
            "'sex'); give a CSV file with a header naming its columns") in captured.err


def test_eval_of_a_raw_labelled_csv_scores_what_net_predict_predicts(adult, tmp_path, capsys):
    X, income = adult_like(200, seed=7)
    data = write_table_csv(tmp_path / "more.csv", X, income, ADULT_COLUMNS, label="income")
    capsys.readouterr()
    assert main(["eval", str(adult["run"]), "--data", str(data)]) == 0
    out = capsys.readouterr().out
    found = re.search(r"accuracy ([0-9.]+)% on 200 examples", out)
    net = gn.load_checkpoint(adult["run"])
    expected = np.mean(net.predict(X) == income)
    assert found and float(found.group(1)) == pytest.approx(100 * expected, abs=0.005)
    sklearn_metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is in the [test] extra")
    positive = income == ADULT_CLASSES[1]  # the second class, as scikit-learn takes the greater label
    p1 = net.predict_proba(X)[:, 1]
    summary = re.search(r"F1 macro ([0-9.]+) .*\nROC AUC ([0-9.]+)  PR AUC ([0-9.]+)", out)
    assert summary, out
    assert float(summary.group(1)) == pytest.approx(
        sklearn_metrics.f1_score(income, net.predict(X), average="macro"), abs=5e-5)
    assert float(summary.group(2)) == pytest.approx(sklearn_metrics.roc_auc_score(positive, p1), abs=5e-5)
    assert float(summary.group(3)) == pytest.approx(sklearn_metrics.average_precision_score(positive, p1), abs=5e-5)
    metrics = json.loads((adult["run"] / "metrics.json").read_text())
    assert {"test_roc_auc", "test_pr_auc", "val_roc_auc"} <= set(metrics)


@pytest.mark.skipif(not HAVE_ONNX, reason="ONNX is in the [onnx] extra: pip install 'graphnet[onnx]'")
def test_onnx_runtime_agrees_with_net_predict_on_raw_rows(adult, tmp_path):
    import onnx
    from tests._support.onnx_checks import run_ort, table_feeds

    model = tmp_path / "adult.onnx"
    assert main(["export", str(adult["run"]), str(model)]) == 0
    inputs = [i.name for i in onnx.load(str(model)).graph.input]
    assert inputs == ["x", "workclass", "education", "sex"]
    X, _ = adult_like(300, seed=11)
    rows = np.concatenate([NEW_ROWS, X])
    net = gn.load_checkpoint(adult["run"])
    scores = run_ort(model, table_feeds(model, rows))["fc2"]
    np.testing.assert_allclose(scores, net.forward(net.prepare(rows)), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(ADULT_CLASSES)[scores.argmax(axis=1)], net.predict(rows))
    again = gn.from_onnx(model)  # the import reads the encoding back
    np.testing.assert_allclose(again.predict_proba(rows), net.predict_proba(rows), rtol=1e-5, atol=1e-6)
