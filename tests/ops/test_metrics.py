"""The metrics practitioners read (graphnet.ops.metrics), checked against scikit-learn's own
functions on the same labels and scores, and what `graphnet eval` prints of them."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

import graphnet as gn
from graphnet.cli import main
from graphnet.ops import metrics

from tests._support.extras import HAVE_MATPLOTLIB, HAVE_SKLEARN
from tests._support.task_data import separable_blobs, task_run, write_npz

needs_sklearn = pytest.mark.skipif(not HAVE_SKLEARN, reason="scikit-learn (the test extra) is the oracle")


def three_classes(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels of 4 classes, probabilities (N, 4), and predictions that never say class 3."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    p = rng.dirichlet(np.ones(4), n) + 0.8 * np.eye(4)[y]
    p /= p.sum(axis=1, keepdims=True)
    return y, p, p[:, :3].argmax(axis=1)


@needs_sklearn
def test_classification_metrics_equal_scikit_learns():
    from sklearn import metrics as sk

    y, p, predicted = three_classes()
    got = metrics.classification_metrics(y, predicted, p, 4)
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(y, predicted), rel=1e-12)
    assert got["balanced_accuracy"] == pytest.approx(sk.balanced_accuracy_score(y, predicted), rel=1e-12)
    assert got["f1_macro"] == pytest.approx(sk.f1_score(y, predicted, average="macro", labels=range(4),
                                                        zero_division=0), rel=1e-12)
    assert got["f1_weighted"] == pytest.approx(sk.f1_score(y, predicted, average="weighted", zero_division=0),
                                               rel=1e-12)
    assert got["log_loss"] == pytest.approx(sk.log_loss(y, p, labels=range(4)), rel=1e-12)
    report = metrics.ClassReport.of(metrics.confusion_matrix(y, predicted, 4))
    precision, recall, f1, support = sk.precision_recall_fscore_support(y, predicted, labels=range(4),
                                                                        zero_division=0)
    for ours, theirs in ((report.precision, precision), (report.recall, recall), (report.f1, f1),
                         (report.support, support)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert report.precision[3] == 0.0  # a class never predicted: 0, as zero_division=0 scores it
    np.testing.assert_array_equal(metrics.confusion_matrix(y, predicted, 4), sk.confusion_matrix(y, predicted,
                                                                                                  labels=range(4)))


@needs_sklearn
@pytest.mark.parametrize("decimals", [1, 6])  # 1: many tied scores
def test_binary_metrics_equal_scikit_learns(decimals):
    from sklearn import metrics as sk

    rng = np.random.default_rng(decimals)
    y = (rng.random(500) < 0.2).astype(np.int64)  # imbalanced 1:4
    p1 = np.round(np.clip(0.35 * y + 0.65 * rng.random(500), 0, 1), decimals)
    got = metrics.binary_metrics(y.astype(np.float32).reshape(-1, 1), p1.reshape(-1, 1))
    predicted = (p1 > 0.5).astype(np.int64)
    assert got["roc_auc"] == pytest.approx(sk.roc_auc_score(y, p1), rel=1e-12)
    assert got["pr_auc"] == pytest.approx(sk.average_precision_score(y, p1), rel=1e-12)
    assert got["f1_macro"] == pytest.approx(sk.f1_score(y, predicted, average="macro"), rel=1e-12)
    assert got["log_loss"] == pytest.approx(sk.log_loss(y, p1), rel=1e-9)
    fpr, tpr, _ = sk.roc_curve(y, p1, drop_intermediate=False)
    ours = metrics.roc_curve(y, p1)
    np.testing.assert_allclose(ours[0], fpr[-len(ours[0]):], rtol=1e-12)
    np.testing.assert_allclose(ours[1], tpr[-len(ours[1]):], rtol=1e-12)


def test_an_auc_needs_both_classes():
    assert metrics.roc_auc(np.ones(5), np.arange(5.0)) is None
    assert metrics.average_precision(np.zeros(5), np.arange(5.0)) is None
    assert metrics.roc_auc(np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.2, 0.8])) == 1.0


@needs_sklearn
def test_regression_metrics_equal_scikit_learns():
    from sklearn import metrics as sk

    rng = np.random.default_rng(3)
    t = rng.standard_normal((200, 2))
    p = t + 0.3 * rng.standard_normal((200, 2))
    got = metrics.regression_metrics(p, t)
    assert got["rmse"] == pytest.approx(np.sqrt(sk.mean_squared_error(t, p)), rel=1e-12)
    assert got["mae"] == pytest.approx(sk.mean_absolute_error(t, p), rel=1e-12)
    assert got["r2"] == pytest.approx(sk.r2_score(t, p), rel=1e-12)


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory):
    """A binary classifier trained on blobs 1:4 imbalanced, and its data file."""
    folder = tmp_path_factory.mktemp("binary")
    X, y = separable_blobs(n=500, seed=1)
    keep = (y == 0) | (np.arange(len(y)) % 8 == 1)  # about one positive to four negatives
    X, y = X[keep] + np.random.default_rng(2).standard_normal((keep.sum(), 2)) * 1.5, y[keep]
    data = write_npz(folder / "blobs.npz", X, y, test=80)
    run = folder / "run.json"
    run.write_text(json.dumps(task_run("binary", str(data), features=2, epochs=5)))
    assert main(["train", str(run), "--out", str(folder / "run"), "--no-progress"]) == 0
    return folder / "run", data


@needs_sklearn
def test_eval_prints_a_classification_report_and_the_aucs_scikit_learn_computes(binary_run, capsys):
    from sklearn import metrics as sk

    run, data = binary_run
    capsys.readouterr()
    assert main(["eval", str(run)]) == 0
    out = capsys.readouterr().out
    net = gn.load_checkpoint(run)
    test = np.load(data)
    X, y = test["X_test"], test["y_test"].astype(np.int64)
    logits = net.forward(net.prepare(X.astype(np.float32)))[:, 0].astype(np.float64)
    predicted = (logits > 0).astype(np.int64)
    report = sk.classification_report(y, predicted, digits=4, output_dict=True, zero_division=0)
    for name in ("0", "1"):
        row = re.search(rf"^\s+{name}\s+(\d\.\d{{4}})\s+(\d\.\d{{4}})\s+(\d\.\d{{4}})\s+(\d+)$", out, re.M)
        assert row, out
        assert [float(v) for v in row.groups()] == pytest.approx(
            [report[name]["precision"], report[name]["recall"], report[name]["f1-score"], report[name]["support"]],
            abs=5e-5)
    macro = re.search(r"F1 macro ([\d.]+)", out)
    assert float(macro.group(1)) == pytest.approx(sk.f1_score(y, predicted, average="macro"), abs=5e-5)
    auc = re.search(r"ROC AUC ([\d.]+)\s+PR AUC ([\d.]+)", out)
    assert float(auc.group(1)) == pytest.approx(sk.roc_auc_score(y, logits), abs=5e-5)
    assert float(auc.group(2)) == pytest.approx(sk.average_precision_score(y, logits), abs=5e-5)
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["test_roc_auc"] == pytest.approx(sk.roc_auc_score(y, logits), rel=1e-9)
    assert saved["test_f1_weighted"] == pytest.approx(sk.f1_score(y, predicted, average="weighted"), rel=1e-9)
    assert saved["decision_threshold"] == 0.5
    assert saved["test_per_class"]["1"]["support"] == int(y.sum())


@pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="needs matplotlib: pip install 'graphnet[plot]'")
def test_eval_plot_draws_the_confusion_matrix_and_the_curves(binary_run, tmp_path, capsys):
    run, _ = binary_run
    assert {"confusion_matrix.png", "roc_curve.png", "pr_curve.png"} <= {p.name for p in run.iterdir()}
    assert main(["eval", str(run), "--plot", str(tmp_path / "plots")]) == 0
    for name in ("confusion_matrix.png", "roc_curve.png", "pr_curve.png"):
        assert (tmp_path / "plots" / name).read_bytes().startswith(b"\x89PNG"), name
    assert f"wrote {tmp_path / 'plots' / 'roc_curve.png'}" in capsys.readouterr().out


def test_eval_plot_without_matplotlib_names_the_extra(binary_run, tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["eval", str(binary_run[0]), "--plot", str(tmp_path)]) == 1
    assert "pip install 'graphnet[plot]'" in capsys.readouterr().err
