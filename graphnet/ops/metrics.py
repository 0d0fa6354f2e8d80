"""The metrics practitioners read, in plain NumPy (the definitions scikit-learn uses).

Classification (labels and predictions are class indices (N,), probabilities (N, C)):
accuracy, balanced accuracy (the mean recall over the classes present in the labels),
per-class precision, recall, F1 and support, macro and support-weighted F1, log loss.
Binary (0/1 targets and p(1) scores, (N,)): besides those, ROC AUC and PR AUC (the
average precision: sum over thresholds of (R_n - R_{n-1}) * P_n, scikit-learn's
`average_precision_score`). Regression: RMSE, MAE, R².

A ratio whose denominator is 0 (the precision of a class never predicted) is 0, as
scikit-learn's `zero_division` default scores it; an AUC of labels of one class only is None.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

DECISION_THRESHOLD = 0.5  # binary: predict 1 where p(1) > this (where the logit is > 0)


def confusion_matrix(y: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes) int64 counts: rows the true class, columns the predicted one."""
    matrix = np.zeros((classes, classes), np.int64)
    np.add.at(matrix, (np.asarray(y, np.int64).ravel(), np.asarray(predicted, np.int64).ravel()), 1)
    return matrix


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), 0.0)


@dataclass(frozen=True)
class ClassReport:
    """Per-class precision, recall, F1 (float64) and support (int64), each (C,), from a confusion matrix."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray

    @classmethod
    def of(cls, matrix: np.ndarray) -> "ClassReport":
        true_positive = np.diag(matrix).astype(np.float64)
        predicted, support = matrix.sum(axis=0), matrix.sum(axis=1)
        precision, recall = _ratio(true_positive, predicted), _ratio(true_positive, support)
        return cls(precision, recall, _ratio(2 * precision * recall, precision + recall), support)

    def as_dict(self, names: Sequence[str]) -> dict[str, dict[str, float | int]]:
        """{class name: {"precision", "recall", "f1", "support"}} (JSON-ready)."""
        return {name: {"precision": float(self.precision[c]), "recall": float(self.recall[c]),
                       "f1": float(self.f1[c]), "support": int(self.support[c])} for c, name in enumerate(names)}


def balanced_accuracy(report: ClassReport) -> float:
    """The mean recall over the classes that occur in the labels."""
    present = report.support > 0
    return float(report.recall[present].mean()) if present.any() else 0.0


def f1_scores(report: ClassReport) -> tuple[float, float]:
    """(macro F1: the unweighted mean over all classes, weighted F1: weighted by support)."""
    total = report.support.sum()
    weighted = float((report.f1 * report.support).sum() / total) if total else 0.0
    return float(report.f1.mean()), weighted


def log_loss(y: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean -log p(true class) over the examples; probabilities (N, C) (rows renormalized,
    clipped to [eps, 1 - eps] of float64, as scikit-learn's `log_loss`)."""
    p = np.asarray(probabilities, np.float64)
    p = p / p.sum(axis=1, keepdims=True)
    eps = np.finfo(np.float64).eps
    p = np.clip(p, eps, 1 - eps)
    picked = p[np.arange(len(p)), np.asarray(y, np.int64).ravel()]
    return float(-np.log(picked).mean())


def roc_auc(y: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve of 0/1 labels y (N,) ranked by scores (N,): the probability that
    a positive outranks a negative, ties counting half (Mann-Whitney U); None without both classes."""
    y, scores = np.asarray(y).ravel() > 0.5, np.asarray(scores, np.float64).ravel()
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), np.float64)
    sorted_scores = scores[order]
    # average ranks over ties
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], len(scores)]
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    u = ranks[y].sum() - positives * (positives + 1) / 2.0
    return float(u / (positives * negatives))


def _descending_counts(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true positives, false positives, thresholds) at each distinct score, highest first."""
    y, scores = np.asarray(y).ravel() > 0.5, np.asarray(scores, np.float64).ravel()
    order = np.argsort(-scores, kind="mergesort")
    y, scores = y[order], scores[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    true_positives = np.cumsum(y)[last]
    return true_positives, (last + 1) - true_positives, scores[last]


def roc_curve(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rates, true positive rates), from (0, 0) to (1, 1), one point per distinct score."""
    tp, fp, _ = _descending_counts(y, scores)
    return np.r_[0.0, fp / max(fp[-1], 1)], np.r_[0.0, tp / max(tp[-1], 1)]


def precision_recall_curve(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(precisions, recalls), one point per distinct score, highest score first."""
    tp, fp, _ = _descending_counts(y, scores)
    return tp / (tp + fp), tp / max(tp[-1], 1)


def average_precision(y: np.ndarray, scores: np.ndarray) -> float | None:
    """PR AUC as the average precision, sum of (R_n - R_{n-1}) * P_n over the distinct scores,
    highest first; None without a positive label."""
    tp, fp, _ = _descending_counts(y, scores)
    if tp[-1] == 0:
        return None
    precision, recall = tp / (tp + fp), tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def classification_metrics(y: np.ndarray, predicted: np.ndarray, probabilities: np.ndarray | None,
                           classes: int) -> dict[str, float | None]:
    """accuracy, balanced_accuracy, f1_macro, f1_weighted and log_loss (None without
    probabilities (N, C)) of class indices `predicted` (N,) against labels y (N,)."""
    report = ClassReport.of(confusion_matrix(y, predicted, classes))
    macro, weighted = f1_scores(report)
    return {"accuracy": float((np.asarray(predicted).ravel() == np.asarray(y).ravel()).mean()),
            "balanced_accuracy": balanced_accuracy(report), "f1_macro": macro, "f1_weighted": weighted,
            "log_loss": None if probabilities is None else log_loss(y, probabilities)}


def binary_metrics(y: np.ndarray, p1: np.ndarray) -> dict[str, float | None]:
    """The classification metrics of 0/1 targets y and p(1) scores p1 (both (N,), or (N, k) for k
    labels per example, every element one decision), at DECISION_THRESHOLD; and roc_auc, pr_auc."""
    truth = (np.asarray(y).ravel() > 0.5).astype(np.int64)
    p1 = np.asarray(p1, np.float64).ravel()
    result = classification_metrics(truth, (p1 > DECISION_THRESHOLD).astype(np.int64),
                                    np.stack([1.0 - p1, p1], axis=1), 2)
    return {**result, **ranking_metrics(truth, p1)}


def ranking_metrics(positive: np.ndarray, p1: np.ndarray | None) -> dict[str, float | None]:
    """roc_auc and pr_auc of scores p1 (N,) for the examples marked `positive` (N,) (None
    without scores, or when one side is empty)."""
    if p1 is None:
        return {"roc_auc": None, "pr_auc": None}
    return {"roc_auc": roc_auc(positive, p1), "pr_auc": average_precision(positive, p1)}


def regression_metrics(predicted: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """rmse, mae (over all elements) and r2 (per output value, averaged, as scikit-learn's
    default) of predictions against targets, both (N, *shape)."""
    p = np.asarray(predicted, np.float64).reshape(len(predicted), -1)
    t = np.asarray(targets, np.float64).reshape(p.shape)
    residual = ((t - p) ** 2).sum(axis=0)
    total = ((t - t.mean(axis=0)) ** 2).sum(axis=0)
    constant = total == 0
    r2 = np.where(constant, np.where(residual == 0, 1.0, 0.0), 1.0 - residual / np.where(constant, 1.0, total))
    return {"rmse": float(np.sqrt(np.mean((t - p) ** 2))), "mae": float(np.mean(np.abs(t - p))),
            "r2": float(r2.mean())}


def report_table(report: ClassReport, names: Sequence[str], summary: dict[str, Any]) -> str:
    """A table like scikit-learn's `classification_report`: one row per class (precision,
    recall, f1-score, support), then accuracy and the macro and weighted averages."""
    width = max(12, *(len(name) for name in names))
    total = int(report.support.sum())
    head = f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}"
    rows = [head, ""]
    for c, name in enumerate(names):
        rows.append(f"{name:>{width}} {report.precision[c]:9.4f} {report.recall[c]:9.4f} {report.f1[c]:9.4f} "
                    f"{int(report.support[c]):9d}")
    weights = report.support / total if total else np.zeros(len(names))
    rows += ["", f"{'accuracy':>{width}} {'':>9} {'':>9} {summary['accuracy']:9.4f} {total:9d}",
             f"{'macro avg':>{width}} {report.precision.mean():9.4f} {report.recall.mean():9.4f} "
             f"{report.f1.mean():9.4f} {total:9d}",
             f"{'weighted avg':>{width}} {(report.precision * weights).sum():9.4f} "
             f"{(report.recall * weights).sum():9.4f} {(report.f1 * weights).sum():9.4f} {total:9d}"]
    return "\n".join(rows)
