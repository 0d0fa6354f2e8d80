"""The end of a run, on every route (one process, MPI rank 0): the final metrics computed,
written to the run folder with the learning curve and evaluation plots, the test score said,
and the trackers (TensorBoard, MLflow) closed."""
from __future__ import annotations

import time
from typing import Callable

from ..runs.folder import write_metrics
from .loop import EpochLoop
from .eval_plots import plot_split
from .plot import plot_learning_curve
from .records import TrainResult, final_metrics
from .tracking import Trackers


def finish(result: TrainResult, loop: EpochLoop, say: Callable[[str], None]) -> TrainResult:
    """`result` (of `loop`) with its final metrics, those of the model it serves; the run
    folder's metrics and learning curve written (history.json was, when the epoch loop was
    left); the test score said (unless interrupted)."""
    wall = time.perf_counter() - loop.started
    metrics = result.metrics = final_metrics(result, loop.dataset, wall, (loop.X_sub, loop.y_sub),
                                             loop.settings.eval_batch_size, result.served)
    if result.out is not None:
        write_metrics(result.out, metrics)
        note = plot_learning_curve(result.history, result.out / "learning_curve.png")
        if note:
            say(note)
        plot_split(result.net, loop.dataset["X_test"], loop.dataset["y_test"], result.out, "test split",
                   loop.settings.eval_batch_size)  # without matplotlib, the note above said so
    if not result.interrupted and metrics.get("test_accuracy") is not None:
        say(f"test accuracy {100 * metrics['test_accuracy']:.2f}%  ({wall:.1f} s)")
    elif not result.interrupted and metrics.get("test_rmse") is not None:
        say(f"test RMSE {metrics['test_rmse']:.4g}  R2 {metrics['test_r2']:.4f}  ({wall:.1f} s)")
    return result


def track(loop: EpochLoop, trackers: Trackers, say: Callable[[str], None],
          run: Callable[[], TrainResult] | None = None) -> TrainResult:
    """Run `loop` (by `run`, else `loop.run`) and finish the run, logged by `trackers`
    (TensorBoard, MLflow: graphnet.training.tracking), closed however training ends."""
    loop.tracker = trackers
    try:
        result = finish((run or loop.run)(), loop, say)
    except BaseException:
        trackers.finish(None, error=True)
        raise
    trackers.finish(result)
    return result
