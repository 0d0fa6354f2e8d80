"""What a training run records: one record per epoch, its console line, the final metrics."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..model.compiled import CompiledNetwork
from ..ops.metrics import DECISION_THRESHOLD, ClassReport
from ..ops.tasks import (
    Task,
    class_count,
    class_labels,
    confusion_of,
    mean_loss,
    metric_names,
    metrics_of,
    outputs_of,
    task_of,
)
from ..spec import TrainSpec

DIVERGENCE_FACTOR = 100  # an epoch's loss this many times the starting loss: diverging


@dataclass
class EpochRecord:
    """One epoch of a classification or binary run: accuracy on a training subset, and the
    validation split's loss and metrics (graphnet.ops.metrics; roc_auc and pr_auc for binary
    runs and two classes only; None without a validation split)."""

    epoch: int
    train_loss: float
    train_accuracy: float | None
    val_accuracy: float | None
    val_loss: float | None
    learning_rate: float
    seconds: float
    val_balanced_accuracy: float | None = None
    val_f1_macro: float | None = None
    val_f1_weighted: float | None = None
    val_log_loss: float | None = None
    val_roc_auc: float | None = None
    val_pr_auc: float | None = None


@dataclass
class RegressionEpochRecord:
    """One epoch of a regression run (RMSE and R² on a training subset and on val)."""

    epoch: int
    train_loss: float
    train_rmse: float | None
    train_r2: float | None
    val_rmse: float | None
    val_r2: float | None
    val_loss: float | None
    learning_rate: float
    seconds: float
    val_mae: float | None = None


AnyEpochRecord = EpochRecord | RegressionEpochRecord


@dataclass
class TrainResult:
    """What a training run produced."""

    net: CompiledNetwork
    history: list[AnyEpochRecord] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    out: Path | None = None
    interrupted: bool = False
    warnings: list[str] = field(default_factory=list)
    served: dict[str, Any] = field(default_factory=dict)  # with early stopping: the best epoch the model holds
    stopped_early: bool = False


def epoch_record(task: Task | None, train_metrics: dict[str, float | None], val_metrics: dict[str, float | None],
                 **common: Any) -> AnyEpochRecord:
    """The record that fits the task, from the `evaluate` metrics of the two splits: every
    train_<metric> and val_<metric> field of the record that the metrics hold."""
    kind = RegressionEpochRecord if task == "regression" else EpochRecord
    scores = {f"{split}_{name}": value for split, metrics in (("train", train_metrics), ("val", val_metrics))
              for name, value in metrics.items()}
    return kind(**{name: scores[name] for name in kind.__dataclass_fields__ if name in scores}, **common)


def record_from_dict(record: dict[str, Any]) -> AnyEpochRecord:
    """An epoch record read back from history JSON."""
    return RegressionEpochRecord(**record) if "train_rmse" in record else EpochRecord(**record)


def epoch_line(record: AnyEpochRecord, epochs: int) -> str:
    """The console line of one epoch: loss, the task's scores, learning rate, seconds."""
    def pct(value: float | None) -> str:
        return "  n/a" if value is None else f"{100 * value:5.1f}%"

    def num(value: float | None, form: str) -> str:
        return "n/a" if value is None else format(value, form)

    if isinstance(record, RegressionEpochRecord):
        scores = (f"train RMSE {num(record.train_rmse, '.4g')}  val RMSE {num(record.val_rmse, '.4g')}  "
                  f"val R2 {num(record.val_r2, '.4f')}")
    else:
        scores = f"train {pct(record.train_accuracy)}  val {pct(record.val_accuracy)}"
    return (f"epoch {record.epoch:>3}/{epochs}  loss {record.train_loss:.4f}  {scores}  "
            f"lr {record.learning_rate:.2e}  {record.seconds:.1f} s")


def divergence_warning(history: list[AnyEpochRecord], first_step_loss: float | None,
                       given: list[str], settings: TrainSpec) -> str | None:
    """A warning when the last epoch's loss is over DIVERGENCE_FACTOR times the starting loss
    (the first step's, else the first epoch's), quoting the learning rate `settings` set (and
    its schedule, if any); None otherwise, or if one was given already."""
    if any(text.startswith("the training loss diverged") for text in given):
        return None
    start = first_step_loss if first_step_loss is not None else history[0].train_loss
    last = history[-1]
    if not (start > 0 and last.train_loss > DIVERGENCE_FACTOR * start):
        return None
    return (f"the training loss diverged: epoch {last.epoch} loss {last.train_loss:.3g} is over "
            f"{DIVERGENCE_FACTOR}x its starting value {start:.3g}; try a lower learning rate "
            f"(it was set to {settings.optimizer.learning_rate:.3g}{_schedule_note(settings, last)})")


def _schedule_note(settings: TrainSpec, last: AnyEpochRecord) -> str:
    """`, with a cosine schedule (... at the end of epoch 3)` when a schedule moves the rate; else ``."""
    schedule = settings.schedule
    if schedule.kind == "constant" and not schedule.warmup_epochs:
        return ""
    warmup = f" after {schedule.warmup_epochs:g} warmup epochs" if schedule.warmup_epochs else ""
    return (f", with the {schedule.kind} schedule{warmup}; {last.learning_rate:.3g} at the end of "
            f"epoch {last.epoch}")


def final_metrics(result: TrainResult, dataset: dict[str, np.ndarray], wall: float,
                  train_sample: tuple[np.ndarray, np.ndarray] | None = None, eval_batch_size: int = 1000,
                  served: dict[str, Any] | None = None) -> dict[str, Any]:
    """metrics.json's content: the served model's test_/val_/train_ metrics (the task's, see
    graphnet.ops.tasks.metric_names; train_ on `train_sample`, the training subset the epochs
    score, else from the last epoch record), per-class scores and the confusion matrix of the
    test split (classification), the decision threshold (binary), test and validation loss,
    final (last epoch's) training loss, epochs, wall time, whether the run was interrupted, its
    warnings, and `served` (which state the checkpoint serves, e.g. best_epoch)."""
    history, net = result.history, result.net
    metrics: dict[str, Any] = {}
    for split in ("test", "val"):
        metrics.update(_split_metrics(net, dataset[f"X_{split}"], dataset[f"y_{split}"], split, eval_batch_size))
    if train_sample is not None:
        metrics.update(_split_metrics(net, *train_sample, "train", eval_batch_size, details=False))
    else:
        names = [name[len("test_"):] for name in metrics if name.startswith("test_") and
                 not isinstance(metrics[name], (dict, list))]
        metrics.update({f"train_{name}": getattr(history[-1], f"train_{name}", None) if history else None
                        for name in names})
    task = task_of(net.graph)
    if task == "binary":
        metrics["decision_threshold"] = DECISION_THRESHOLD
    return {**metrics,
            "test_loss": mean_loss(net, dataset["X_test"], dataset["y_test"], eval_batch_size),
            "val_loss": mean_loss(net, dataset["X_val"], dataset["y_val"], eval_batch_size),
            "final_loss": history[-1].train_loss if history else None,
            "epochs": len(history),
            **(served or {}),
            "wall_time_seconds": wall,
            "interrupted": result.interrupted,
            "warnings": result.warnings}


def _split_metrics(net: CompiledNetwork, X: np.ndarray, y: np.ndarray, split: str, batch_size: int,
                   details: bool = True) -> dict[str, Any]:
    """<split>_<metric> for the task's metrics; with `details`, for classification and binary
    runs, <split>_per_class ({class: precision, recall, f1, support}) and <split>_confusion_matrix
    (rows: true class, columns: predicted)."""
    task = task_of(net.graph)
    if len(X) == 0:
        return {f"{split}_{name}": None for name in metric_names(task, class_count(net.graph))}
    outputs, classes = outputs_of(net, X, batch_size), class_count(net.graph)
    result: dict[str, Any] = {f"{split}_{name}": value for name, value in metrics_of(outputs, y, classes).items()}
    if details and task != "regression":
        matrix = confusion_of(outputs, y, classes)
        result[f"{split}_per_class"] = ClassReport.of(matrix).as_dict(class_labels(net, classes))
        result[f"{split}_confusion_matrix"] = matrix.tolist()
    return result
