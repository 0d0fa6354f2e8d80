"""What a training run records: one record per epoch, its console line, the final metrics."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..model.compiled import CompiledNetwork
from ..ops.tasks import Task, evaluate, mean_loss
from ..spec import TrainSpec

DIVERGENCE_FACTOR = 100  # an epoch's loss this many times the starting loss: diverging


@dataclass
class EpochRecord:
    """One epoch of a classification or binary run (accuracy on a training subset and on val)."""

    epoch: int
    train_loss: float
    train_accuracy: float | None
    val_accuracy: float | None
    val_loss: float | None
    learning_rate: float
    seconds: float


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


def epoch_record(task: Task | None, train_metrics: dict[str, float | None], val_metrics: dict[str, float | None],
                 **common: Any) -> AnyEpochRecord:
    """The record that fits the task, from the `evaluate` metrics of the two splits."""
    if task == "regression":
        return RegressionEpochRecord(train_rmse=train_metrics["rmse"], train_r2=train_metrics["r2"],
                                     val_rmse=val_metrics["rmse"], val_r2=val_metrics["r2"], **common)
    return EpochRecord(train_accuracy=train_metrics["accuracy"], val_accuracy=val_metrics["accuracy"], **common)


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


def final_metrics(result: TrainResult, dataset: dict[str, np.ndarray], wall: float) -> dict[str, Any]:
    """metrics.json's content: the task's test/val/train metrics, test and final loss, epochs,
    wall time, whether the run was interrupted, and its warnings."""
    history = result.history
    return {**_split_metrics(result.net, dataset, history),
            "test_loss": mean_loss(result.net, dataset["X_test"], dataset["y_test"]),
            "final_loss": history[-1].train_loss if history else None,
            "epochs": len(history),
            "wall_time_seconds": wall,
            "interrupted": result.interrupted,
            "warnings": result.warnings}


def _split_metrics(net: CompiledNetwork, dataset: dict[str, np.ndarray],
                   history: list[Any]) -> dict[str, float | None]:
    """test_* and val_* metrics of the task (accuracy, or rmse and r2), and train_* from the last epoch."""
    result: dict[str, float | None] = {}
    for split in ("test", "val"):
        for name, value in evaluate(net, dataset[f"X_{split}"], dataset[f"y_{split}"]).items():
            result[f"{split}_{name}"] = value
    names = [name[len("test_"):] for name in result if name.startswith("test_")]
    for name in names:
        result[f"train_{name}"] = getattr(history[-1], f"train_{name}") if history else None
    return result
