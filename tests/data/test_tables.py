"""A regression table (issue 23) whose targets are standardized for training: it reports and
predicts in the targets' units, through `net.predict`, `graphnet predict`, `graphnet eval` and
ONNX Runtime. The Adult-like classification journey, trained in a child process:
tests/system/data/test_tables.py."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

import graphnet as gn
from graphnet.cli import main

from tests._support.extras import HAVE_ONNX
from tests._support.task_data import write_table_csv


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
    from tests._support.onnx_checks import run_ort, table_feeds

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
