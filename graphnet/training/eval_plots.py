"""The evaluation figures of a classifier: its confusion matrix and, for a binary one, the
ROC and precision-recall curves (matplotlib's object API: no pyplot, no global backend).

Written into a run folder when training ends (for the test split) and by `graphnet eval
--plot`: confusion_matrix.png, roc_curve.png, pr_curve.png.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..ops.metrics import average_precision, precision_recall_curve, roc_auc, roc_curve
from ..ops.tasks import class_count, class_labels, confusion_of, outputs_of
from ..runs.folder import EVALUATION_PLOTS
from ..system.fileio import write_bytes_atomic

CONFUSION_FILE, ROC_FILE, PR_FILE = EVALUATION_PLOTS
NO_MATPLOTLIB = "evaluation plots skipped: matplotlib is not installed (pip install 'graphnet[plot]')"


def _new_figure(size: tuple[float, float]) -> Any:
    from matplotlib import figure as mpl_figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = mpl_figure.Figure(figsize=size)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Any, path: Path) -> None:
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    write_bytes_atomic(path, buffer.getvalue())


def plot_evaluation(folder: Path, matrix: np.ndarray, names: Sequence[str], title: str,
                    binary: tuple[np.ndarray, np.ndarray] | None = None) -> list[Path] | str:
    """Write the confusion matrix (classes, classes) and, given `binary` = (0/1 labels (N,),
    p(1) scores (N,)), the ROC and PR curves into `folder`; the paths written, or a note
    saying which extra to install when matplotlib is absent."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return NO_MATPLOTLIB
    written = [folder / CONFUSION_FILE]
    _confusion_figure(written[0], matrix, names, title)
    if binary is not None and roc_auc(*binary) is not None:
        written += [folder / ROC_FILE, folder / PR_FILE]
        _curve_figures(written[1], written[2], *binary, title)
    return written


def _confusion_figure(path: Path, matrix: np.ndarray, names: Sequence[str], title: str) -> None:
    size = min(12.0, 3.0 + 0.5 * len(names))
    figure = _new_figure((size + 1, size))
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes)
    ticks = np.arange(len(names))
    axes.set_xticks(ticks, labels=list(names), rotation=45 if len(names) > 4 else 0)
    axes.set_yticks(ticks, labels=list(names))
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(f"confusion matrix: {title}")
    if len(names) <= 20:
        threshold = matrix.max() / 2 if matrix.size else 0
        for (row, column), count in np.ndenumerate(matrix):
            axes.text(column, row, str(count), ha="center", va="center",
                      color="white" if count > threshold else "black")
    _save(figure, path)


def _curve_figures(roc_path: Path, pr_path: Path, y: np.ndarray, scores: np.ndarray, title: str) -> None:
    fpr, tpr = roc_curve(y, scores)
    figure = _new_figure((5, 5))
    axes = figure.subplots()
    axes.plot(fpr, tpr, label=f"ROC AUC {roc_auc(y, scores):.4f}")
    axes.plot([0, 1], [0, 1], "--", color="gray")
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.set_title(f"ROC: {title}")
    axes.legend(loc="lower right")
    _save(figure, roc_path)
    precision, recall = precision_recall_curve(y, scores)
    figure = _new_figure((5, 5))
    axes = figure.subplots()
    axes.step(np.r_[0.0, recall], np.r_[precision[0], precision], where="post",
              label=f"PR AUC (average precision) {average_precision(y, scores):.4f}")
    axes.axhline(float(np.mean(np.asarray(y).ravel() > 0.5)), linestyle="--", color="gray")
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_ylim(0, 1.02)
    axes.set_title(f"precision-recall: {title}")
    axes.legend(loc="lower left")
    _save(figure, pr_path)


def plot_split(net: Any, X: np.ndarray, y: np.ndarray, folder: Path, title: str,
               batch_size: int = 1000) -> list[Path] | str | None:
    """`plot_evaluation` of a classifier's predictions on network inputs X (N, ...) and labels y;
    None (nothing to draw) for a regression network or an empty split."""
    if len(X) == 0:
        return None
    outputs = outputs_of(net, X, batch_size)
    if outputs.task == "regression":
        return None
    classes = class_count(net.graph)
    binary = None
    if outputs.task == "binary" and outputs.probabilities is not None:
        binary = ((np.asarray(y).ravel() > 0.5).astype(np.int64), outputs.probabilities.ravel())
    elif classes == 2 and outputs.probabilities is not None:  # two classes: class 1 the positive one
        binary = ((np.asarray(y).ravel() == 1).astype(np.int64), outputs.probabilities[:, 1])
    return plot_evaluation(folder, confusion_of(outputs, y, classes), class_labels(net, classes), title, binary)
