"""The journey of a table like UCI Adult (issue 23): numbers, text categories and missing
cells, an imbalanced label. `graphnet train` reads the raw CSV; `graphnet predict`,
`net.predict`, `graphnet eval --data` and the ONNX export under ONNX Runtime take raw rows
-- with categories training never saw and empty cells -- and agree. A regression table
whose targets are standardized for training reports and predicts in the targets' units."""
from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from extras import HAVE_ONNX
from task_data import ADULT_CLASSES, ADULT_COLUMNS, ADULT_WIDTH, adult_like, write_table_csv

import graphnet as gn
from graphnet.cli import main

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(ROOT / ".numba_cache"))}
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
    done = subprocess.run([sys.executable, "-m", "graphnet", "train", str(root / "run.json"), "--out",
                           str(root / "run"), "--no-progress"], capture_output=True, text=True, env=ENV, timeout=300)
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
    found = re.search(r"accuracy ([0-9.]+)% on 200 examples", capsys.readouterr().out)
    expected = np.mean(gn.load_checkpoint(adult["run"]).predict(X) == income)
    assert found and float(found.group(1)) == pytest.approx(100 * expected, abs=0.005)


@pytest.mark.skipif(not HAVE_ONNX, reason="ONNX is in the [onnx] extra: pip install 'graphnet[onnx]'")
def test_onnx_runtime_agrees_with_net_predict_on_raw_rows(adult, tmp_path):
    import onnx
    from onnx_checks import run_ort, table_feeds

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


# ---- a regression table ------------------------------------------------------------------------


def price_table(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """X (n, 3): two numbers (some missing) and a colour; prices (n,) in the thousands."""
    rng = np.random.default_rng(seed)
    X = np.empty((n, 3), dtype=object)
    X[:, 0], X[:, 1] = rng.standard_normal(n), rng.standard_normal(n)
    X[:, 2] = rng.choice(["red", "blue", "green"], n)
    price = 5000 + 800 * X[:, 0].astype(float) - 500 * X[:, 1].astype(float) + np.where(X[:, 2] == "red", 600, 0)
    X[rng.random(n) < 0.05, 1] = None
    return X, price + rng.normal(0, 20, n)


def price_run(train: Path, test: Path, loss: str = "huber", **options: object) -> dict:
    return {
        "network": {"name": "prices", "inputs": {"x": {"shape": [2 + 3 + 2]}}, "labels": {"y": {"shape": [1]}},
                    "nodes": [{"id": "fc1", "op": "affine", "inputs": ["x"], "units": 16, "activation": "relu"},
                              {"id": "fc2", "op": "affine", "inputs": ["fc1"], "units": 1},
                              {"id": "loss", "op": loss, "inputs": ["fc2", "y"]}],
                    "outputs": ["fc2"], "loss": "loss"},
        "train": {"data": {"name": str(train), "normalize": "standardize",
                           "options": {"label_column": "price", "test_file": str(test), "target_scaling": True,
                                       **options}},
                  "optimizer": {"rule": "adam", "learning_rate": 0.01}, "epochs": 20, "batch_size": 32},
    }


@pytest.fixture(scope="module")
def prices(tmp_path_factory):
    root = tmp_path_factory.mktemp("prices")
    X, price = price_table(400, seed=1)
    X_test, price_test = price_table(80, seed=2)
    train = write_table_csv(root / "train.csv", X, price, ["a", "b", "colour"], label="price")
    test = write_table_csv(root / "test.csv", X_test, price_test, ["a", "b", "colour"], label="price")
    lines: list[str] = []
    gn.train(gn.parse_run(price_run(train, test)), out=root / "run", log=lines.append, progress=False)
    return {"root": root, "run": root / "run", "X_test": X_test, "y_test": price_test, "log": lines}


def test_scaled_targets_are_reported_and_predicted_in_their_own_units(prices, capsys):
    assert any(line.startswith("data: regression targets standardized for training (mean ± std of the training "
                               "split: 5") for line in prices["log"])
    net = gn.load_checkpoint(prices["run"])
    predicted = net.predict(prices["X_test"])
    assert predicted.shape == (80, 1) and abs(float(predicted.mean()) - 5000) < 300  # prices, not z-scores
    rmse = float(np.sqrt(np.mean((predicted[:, 0] - prices["y_test"]) ** 2)))
    metrics = json.loads((prices["run"] / "metrics.json").read_text())
    assert metrics["test_rmse"] == pytest.approx(rmse, rel=1e-4)
    capsys.readouterr()
    assert main(["eval", str(prices["run"])]) == 0
    found = re.search(r"RMSE ([0-9.]+)", capsys.readouterr().out)
    assert found and float(found.group(1)) == pytest.approx(rmse, rel=1e-3)


def test_graphnet_predict_and_onnx_give_the_targets_units(prices, tmp_path):
    rows = prices["root"] / "test.csv"
    out = tmp_path / "pred.csv"
    assert main(["predict", str(prices["run"]), "--data", str(rows), "--out", str(out)]) == 0
    net = gn.load_checkpoint(prices["run"])
    expected = net.predict(prices["X_test"])[:, 0]
    with open(out, newline="") as handle:
        np.testing.assert_allclose([float(row["prediction"]) for row in csv.DictReader(handle)], expected, rtol=1e-6)
    if not HAVE_ONNX:
        pytest.skip("ONNX is in the [onnx] extra: pip install 'graphnet[onnx]'")
    from onnx_checks import run_ort, table_feeds

    model = tmp_path / "prices.onnx"
    assert main(["export", str(prices["run"]), str(model)]) == 0
    np.testing.assert_allclose(run_ort(model, table_feeds(model, prices["X_test"]))["fc2"][:, 0], expected, rtol=1e-5)
    np.testing.assert_allclose(gn.from_onnx(model).target_scaling.mean, net.target_scaling.mean)


def test_target_scaling_is_for_regressions(prices):
    document = price_run(prices["root"] / "train.csv", prices["root"] / "test.csv")
    document["network"]["labels"] = {"y": {"classes": 2}}
    document["network"]["nodes"][1]["units"] = 2
    document["network"]["nodes"][2]["op"] = "softmax_cross_entropy"
    with pytest.raises(gn.SpecError, match=r"train\.data\.options\.target_scaling: target_scaling standardizes "
                                           r"regression targets \(an mse, mae or huber loss\); this network's task is "
                                           r"classification"):
        gn.train(gn.parse_run(document), log=None, progress=False)


def test_an_input_of_the_wrong_width_is_told_the_table_s_width(prices):
    document = price_run(prices["root"] / "train.csv", prices["root"] / "test.csv")
    document["network"]["inputs"]["x"]["shape"] = [3]
    with pytest.raises(gn.DataError, match=r"train examples have 7 features \(2 numeric columns, one each; categorical "
                                           r"columns, their categories \+ missing \+ unknown: colour: 5\): declare the "
                                           r"input with \"shape\": \[7\]"):
        gn.train(gn.parse_run(document), log=None, progress=False)
