"""The end of a run, on every route (one process, MPI rank 0): the final metrics computed,
written to the run folder with the learning curve, and the test score said."""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ..runs.folder import write_metrics
from .plot import plot_learning_curve
from .records import TrainResult, final_metrics


def finish(result: TrainResult, dataset: dict[str, np.ndarray], started: float,
           say: Callable[[str], None]) -> TrainResult:
    """`result` with its final metrics; the run folder's metrics and learning curve written
    (history.json was, when the epoch loop was left); the test score said (unless interrupted)."""
    wall = time.perf_counter() - started
    metrics = result.metrics = final_metrics(result, dataset, wall)
    if result.out is not None:
        write_metrics(result.out, metrics)
        note = plot_learning_curve(result.history, result.out / "learning_curve.png")
        if note:
            say(note)
    if not result.interrupted and metrics.get("test_accuracy") is not None:
        say(f"test accuracy {100 * metrics['test_accuracy']:.2f}%  ({wall:.1f} s)")
    elif not result.interrupted and metrics.get("test_rmse") is not None:
        say(f"test RMSE {metrics['test_rmse']:.4g}  R2 {metrics['test_r2']:.4f}  ({wall:.1f} s)")
    return result
