"""The learning-curve figure of a run folder (matplotlib's object API: no pyplot, no global backend)."""
from __future__ import annotations

import io
from pathlib import Path

from ..system.fileio import write_bytes_atomic
from .records import AnyEpochRecord, RegressionEpochRecord

NO_MATPLOTLIB = "learning_curve.png skipped: matplotlib is not installed (pip install 'graphnet[plot]')"


def plot_learning_curve(history: list[AnyEpochRecord], path: Path) -> str | None:
    """Write loss (top) and accuracy or RMSE (bottom) per epoch to the PNG `path`, as the
    homework's learning-curve figure; returns a note instead if matplotlib is absent."""
    if not history:
        return None
    try:
        from matplotlib import figure as mpl_figure  # the package first: None in sys.modules means absent
        from matplotlib.backends.backend_agg import FigureCanvasAgg
    except ImportError:
        return NO_MATPLOTLIB
    figure = mpl_figure.Figure(figsize=(7, 7))
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True)
    _plot_losses(top, history)
    _plot_scores(bottom, history)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    write_bytes_atomic(path, buffer.getvalue())
    return None


def _plot_losses(axes, history: list[AnyEpochRecord]) -> None:
    epochs = [r.epoch for r in history]
    axes.plot(epochs, [r.train_loss for r in history], "o-", label="train loss")
    if any(r.val_loss is not None for r in history):
        axes.plot(epochs, [r.val_loss for r in history], "o-", label="val loss")
    axes.set_ylabel("loss")
    axes.legend()


def _plot_scores(axes, history: list[AnyEpochRecord]) -> None:
    epochs = [r.epoch for r in history]
    metric = "rmse" if isinstance(history[0], RegressionEpochRecord) else "accuracy"
    for label in ("train", "val"):
        values = [getattr(r, f"{label}_{metric}") for r in history]
        if any(v is not None for v in values):
            axes.plot(epochs, values, "o-", label=label)
    axes.set_xlabel("epoch")
    axes.set_ylabel("RMSE" if metric == "rmse" else "accuracy")
    axes.legend()
