"""Early stopping: watch a validation metric of the epoch records, keep the best epoch's whole
state, stop after `patience` epochs without improvement (Keras's `EarlyStopping(
restore_best_weights=True)`).

    "early_stopping": {"metric": "val_loss", "patience": 5, "min_delta": 0.0}

An epoch improves when its metric beats the best so far by more than `min_delta`
(lower for losses and errors, higher for the other scores; `mode` says which when
given). The count of epochs since the best is not saved: it is replayed from the
history on resume, so a resumed run stops where an uninterrupted one would. The best
state travels in every checkpoint beside the last (graphnet.model.snapshot); the
checkpoint serves it, and the network holds it once training ends.
"""
from __future__ import annotations

from typing import Any, Literal

from ..errors import SpecError, did_you_mean
from ..model.snapshot import Snapshot
from ..ops.tasks import Task, metric_names
from ..spec import EarlyStopping

LOWER_IS_BETTER = ("loss", "rmse", "mae")  # metric name endings for which mode "min" is inferred


def mode_of(settings: EarlyStopping) -> Literal["min", "max"]:
    """`settings.mode`, else min for losses and errors (val_loss, val_log_loss, val_rmse, val_mae), max otherwise."""
    if settings.mode is not None:
        return settings.mode
    return "min" if settings.metric.endswith(LOWER_IS_BETTER) else "max"


def watched_metrics(task: Task | None, classes: int | None = None) -> tuple[str, ...]:
    """The validation metrics an epoch record of a `task` run (of `classes` classes) holds."""
    return ("val_loss",) + tuple(f"val_{name}" for name in metric_names(task, classes))


def check_early_stopping(settings: EarlyStopping, task: Task | None, validation_examples: int,
                         source: str | None = None, classes: int | None = None) -> None:
    """SpecError (at train.early_stopping) when the metric is not one the epochs record for
    this task, or when there is no validation split to watch."""
    known = watched_metrics(task, classes)
    if settings.metric not in known:
        raise SpecError([("train.early_stopping.metric",
                          f"a {task or 'classification'} run has no per-epoch metric '{settings.metric}'"
                          f"{did_you_mean(settings.metric, known)} (known: {', '.join(known)})")], source)
    if validation_examples == 0:
        raise SpecError([("train.early_stopping", "early stopping watches the validation split, which is empty: "
                                                  "set train.data.val_size (or give X_val)")], source)


class EarlyStopper:
    """Tracks the best epoch of a run and the epochs since; `best` holds its state."""

    def __init__(self, settings: EarlyStopping, history: list[Any], best: Snapshot | None) -> None:
        self.settings, self.mode = settings, mode_of(settings)
        self.best_epoch: int | None = None
        self.best_value: float | None = None
        self.wait = 0
        for record in history:  # replay: the patience count is the history's
            self._judge(record)
        self.best = best if self.best_epoch is not None else None

    def _judge(self, record: Any) -> bool:
        value = getattr(record, self.settings.metric, None)
        delta = self.settings.min_delta
        improved = value is not None and (
            self.best_value is None
            or (value < self.best_value - delta if self.mode == "min" else value > self.best_value + delta))
        if improved:
            self.best_epoch, self.best_value, self.wait = record.epoch, value, 0
        else:
            self.wait += 1
        return improved

    def update(self, record: Any, net: Any) -> bool:
        """Judge a finished epoch; when it is the best so far, copy `net`'s state. True if it was."""
        improved = self._judge(record)
        if improved:
            if self.best is None:
                self.best = Snapshot.of(net)
            else:
                self.best.take(net)
        return improved

    @property
    def should_stop(self) -> bool:
        """`patience` epochs have passed since the best one."""
        return self.wait >= self.settings.patience

    def stop_line(self) -> str:
        """What the log says when the run stops early."""
        return (f"early stopping: {self.settings.metric} has not improved by more than {self.settings.min_delta:g} "
                f"for {self.wait} epochs; the best was epoch {self.best_epoch} ({self.settings.metric} "
                f"{self.best_value:.6g}), whose state the model keeps")

    def meta(self) -> dict[str, Any]:
        """What the checkpoint meta and metrics.json say of the served state."""
        return {"served": "best" if self.best is not None else "last", "best_epoch": self.best_epoch,
                "best_metric": self.settings.metric, "best_value": self.best_value}
