"""What a network is trained for, read from its loss, and the metrics that fit it.

| task             | loss ops                                      | labels               | metrics (graphnet.ops.metrics)  |
|------------------|-----------------------------------------------|----------------------|---------------------------------|
| "classification" | softmax_cross_entropy, cross_entropy, svm     | class indices (N,)   | accuracy, balanced accuracy, F1 macro/weighted, log loss |
| "binary"         | sigmoid_binary_cross_entropy                  | 0/1 targets (N, *s)  | the same, and ROC AUC, PR AUC   |
| "regression"     | any loss on float targets (mse, mae, huber)   | float targets (N, *s)| RMSE, MAE, R²                   |

Binary predictions are 1 where sigmoid(logit) > 0.5, i.e. where the logit is > 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..errors import GraphnetError
from . import OPS
from .metrics import (
    binary_metrics,
    classification_metrics,
    confusion_matrix,
    ranking_metrics,
    regression_metrics,
)

Task = Literal["classification", "binary", "regression"]
BINARY_LOSSES = frozenset({"sigmoid_binary_cross_entropy"})


def task_of_loss(op: str) -> Task:
    """The task a loss op trains for: class labels -> classification, sigmoid BCE -> binary, else regression."""
    if op in BINARY_LOSSES:
        return "binary"
    return "classification" if OPS[op].label_kind == "classes" else "regression"


def task_of(network: Any) -> Task | None:
    """The task of a network (a NetworkSpec or a Graph) from its loss node; None without a loss."""
    if network.loss is None:
        return None
    return task_of_loss(network.node(network.loss).op)


def output_task(network: Any, output: str) -> Task | None:
    """The task of `output`: that of the loss node reading it as its scores, else None."""
    if network.loss is None:
        return None
    loss = network.node(network.loss)
    return task_of_loss(loss.op) if loss.inputs[0] == output else None


# ---- predictions and metrics ---------------------------------------------------------------


def predictions(scores: np.ndarray, task: Task | None) -> np.ndarray:
    """What a network predicts from its scores: (N, *shape) -> classification (and no task):
    argmax class indices (N,) int64; binary: 0/1 int64, (N,) for one logit per example,
    else (N, *shape); regression: the scores themselves."""
    if task == "regression":
        return scores
    if task == "binary":
        labels = (scores > 0).astype(np.int64)
        return labels[:, 0] if labels.ndim == 2 and labels.shape[1] == 1 else labels
    return scores.argmax(axis=-1)


def is_probability_output(network: Any, output: str) -> bool:
    """True when `output` already holds probabilities: a softmax node (or an affine with a
    fused softmax), or the input of a cross_entropy loss."""
    if network.loss is not None:
        loss = network.node(network.loss)
        if loss.op == "cross_entropy" and loss.inputs[0] == output:
            return True
    if output not in {node.id for node in network.nodes}:
        return False
    node = network.node(output)
    return node.op == "softmax" or getattr(node.spec, "activation", None) == "softmax"


def probabilities(scores: np.ndarray, network: Any, output: str) -> np.ndarray:
    """Class probabilities from the scores (N, *shape) of `output`: classification (and no
    loss): softmax over the last axis, (N, C) -- unless the output is a softmax already;
    binary: for one logit per example (N, 2), the columns p(0) and p(1) (as scikit-learn's
    predict_proba and `graphnet predict --proba`'s p_0, p_1), else the sigmoid of each logit
    (N, *shape).
    Regression has none: GraphnetError."""
    task = output_task(network, output)
    if task == "regression":
        raise GraphnetError(f"'{output}' is a regression output (an mse, mae or huber loss): it has values, "
                            "not class probabilities; use predict")
    scores = np.asarray(scores)
    if task == "binary":
        p = 0.5 * (1.0 + np.tanh(0.5 * scores))  # the sigmoid, stable for any logit
        return np.concatenate([1.0 - p, p], axis=1) if p.ndim == 2 and p.shape[1] == 1 else p
    if is_probability_output(network, output):
        return scores
    shifted = scores - scores.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def accuracy(predicted: np.ndarray, y: np.ndarray) -> float:
    """Fraction of predicted class indices (N,) equal to labels y (N,)."""
    return float((np.asarray(predicted) == np.asarray(y)).mean())


def binary_accuracy(predicted: np.ndarray, targets: np.ndarray) -> float:
    """Fraction of 0/1 predictions (N,) or (N, *shape) equal to targets of the same size
    (targets count as 1 above 0.5), over all elements."""
    predicted = np.asarray(predicted).reshape(len(predicted), -1)
    truth = (np.asarray(targets).reshape(len(targets), -1) > 0.5)
    return float((predicted == truth).mean())


def rmse(predicted: np.ndarray, targets: np.ndarray) -> float:
    """Root mean squared error over all elements of predicted and targets, both (N, *shape)."""
    return regression_metrics(predicted, targets)["rmse"]


def r2(predicted: np.ndarray, targets: np.ndarray) -> float:
    """Coefficient of determination 1 - SS_res / SS_tot of predicted vs targets (N, *shape),
    per output value and averaged over them (scikit-learn's default); an output with
    constant targets scores 1 if predicted exactly, else 0."""
    return regression_metrics(predicted, targets)["r2"]


def metric_names(task: Task | None, classes: int | None = None) -> tuple[str, ...]:
    """The metrics `evaluate` reports for a task (see graphnet.ops.metrics): the ranking ones
    (ROC AUC, PR AUC) for binary targets and for two classes (class 1 the positive one)."""
    if task == "regression":
        return REGRESSION_METRICS
    return CLASSIFICATION_METRICS + (BINARY_METRICS if _two_sided(task, classes) else ())


def _two_sided(task: Task | None, classes: int | None) -> bool:
    return task == "binary" or (task in (None, "classification") and classes == 2)


CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "log_loss")
BINARY_METRICS = ("roc_auc", "pr_auc")
REGRESSION_METRICS = ("rmse", "mae", "r2")


def score(task: Task | None, predicted: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The metrics that predictions alone give (see `predictions`) against labels or targets:
    accuracy, or rmse, mae and r2."""
    if task == "regression":
        return regression_metrics(predicted, y)
    if task == "binary":
        return {"accuracy": binary_accuracy(predicted, y)}
    return {"accuracy": accuracy(predicted, y)}


@dataclass(frozen=True)
class Outputs:
    """What a network says on a split: the task, its predictions (see `predictions`; a
    regression's in the targets' own units when the network trained on scaled targets), the
    scores the ranking metrics read -- classification: probabilities (N, C); binary: p(1)
    (N, *s); regression: None -- and the target scaling the network trained with (a
    graphnet.data.targets.TargetScaling, else None)."""

    task: Task | None
    predicted: np.ndarray
    probabilities: np.ndarray | None
    target_scaling: Any = None


def outputs_of(net: Any, X: np.ndarray, batch_size: int = 1000) -> Outputs:
    """The first output of a CompiledNetwork on network inputs X (N, ...), in eval mode."""
    first = net.graph.outputs[0]
    task = output_task(net.graph, first)
    scores = net.forward(X, output=first, batch_size=batch_size)
    if task == "regression":
        scaling = getattr(net, "target_scaling", None)
        return Outputs(task, scores if scaling is None else scaling.unscale(scores), None, scaling)
    if task == "binary":
        return Outputs(task, predictions(scores, task), 0.5 * (1.0 + np.tanh(0.5 * np.asarray(scores, np.float64))))
    return Outputs(task, predictions(scores, task), np.asarray(probabilities(scores, net.graph, first), np.float64))


def metrics_of(outputs: Outputs, y: np.ndarray, classes: int) -> dict[str, float | None]:
    """The task's metrics (`metric_names`) of `outputs` against labels or targets y, as the
    network trains on them (scaled targets scaled back: a regression is scored in its
    targets' units)."""
    if outputs.task == "regression":
        if outputs.target_scaling is not None:
            y = outputs.target_scaling.unscale(y)
        return dict(regression_metrics(outputs.predicted, y))
    if outputs.task == "binary":
        return binary_metrics(y, outputs.probabilities)  # type: ignore[arg-type]
    result = classification_metrics(y, outputs.predicted, outputs.probabilities, classes)
    if _two_sided(outputs.task, classes):  # two classes: class 1's probability ranks the examples
        p1 = None if outputs.probabilities is None else outputs.probabilities[:, 1]
        result.update(ranking_metrics(np.asarray(y).ravel() == 1, p1))
    return result


def class_count(graph: Any) -> int:
    """The number of classes of the first label of a network (a Graph or a NetworkSpec);
    2 for binary and float targets."""
    label = next(iter(graph.labels.values()), None)
    classes = getattr(label, "classes", None)
    return classes if isinstance(classes, int) and classes > 0 else 2


def evaluate(net: Any, X: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> dict[str, float | None]:
    """The task's metrics (`metric_names`) of a CompiledNetwork on network inputs X (N, ...)
    (already preprocessed) and y (class indices or targets, as the network trains on them),
    in eval mode; None for each on an empty split (and for an AUC whose labels hold one
    class). A regression whose targets were scaled for training is scored in their units."""
    task = task_of(net.graph)
    if len(X) == 0:
        return {name: None for name in metric_names(task, class_count(net.graph))}
    return metrics_of(outputs_of(net, X, batch_size), y, class_count(net.graph))


def mean_loss(net: Any, X: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> float | None:
    """The eval-mode loss (l2 term included) averaged over all of X (N, ...), run in
    batches of `batch_size`; None for an empty split."""
    if len(X) == 0:
        return None
    total = 0.0
    for start in range(0, len(X), batch_size):
        stop = min(start + batch_size, len(X))
        total += net.evaluate_loss(X[start:stop], y[start:stop]) * (stop - start)
    return total / len(X)


def confusion_of(outputs: Outputs, y: np.ndarray, classes: int) -> np.ndarray:
    """The confusion matrix (classes, classes) of classification or binary `outputs` against
    labels y (binary: 0/1 targets, every element one decision)."""
    if outputs.task == "binary":
        return confusion_matrix((np.asarray(y).ravel() > 0.5).astype(np.int64), outputs.predicted.ravel(), 2)
    return confusion_matrix(y, outputs.predicted, classes)


def class_labels(net: Any, classes: int) -> tuple[str, ...]:
    """The names of a network's classes (its class names, else the class indices as text)."""
    names = getattr(net, "class_names", None)
    return tuple(names) if names is not None and len(names) == classes else tuple(str(c) for c in range(classes))
