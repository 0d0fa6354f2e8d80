"""What a sweep leaves in its folder: results.csv, best.json and sweep.png, and the table it prints.

Rows come from the study's trials (Optuna FrozenTrial objects, read by attribute), so
a resumed or shared study reports every trial it holds, not only this run's.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..system.fileio import write_bytes_atomic, write_text_atomic
from .trials import is_lost

RESULTS_FILE, BEST_FILE, PLOT_FILE = "results.csv", "best.json", "sweep.png"


@dataclass
class TrialRow:
    """One trial: number, state (complete, pruned, failed, interrupted, lost, running), parameters
    {path: value}, the metric's value (pruned: the last one reported), seconds, run folder, and a
    note (why it failed, or the epoch it was pruned at)."""

    number: int
    state: str
    params: dict[str, Any] = field(default_factory=dict)
    value: float | None = None
    seconds: float | None = None
    run: str | None = None
    note: str = ""


def trial_rows(trials: Iterable[Any]) -> list[TrialRow]:
    """Rows of Optuna trials (FrozenTrial), by trial number."""
    return sorted((_row(trial) for trial in trials), key=lambda row: row.number)


def _row(trial: Any) -> TrialRow:
    attrs = trial.user_attrs
    state = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running",
             "WAITING": "waiting"}.get(trial.state.name, trial.state.name.lower())
    note = attrs.get("error", "")
    if state == "failed" and attrs.get("interrupted"):
        state, note = "interrupted", "interrupted (does not count; re-running the sweep resumes)"
    elif is_lost(trial):
        state, note = "lost", "its worker stopped without a result (killed?); does not count: re-running the " \
                              "sweep replaces it"
    if state == "pruned" and "pruned_at" in attrs:
        note = f"pruned at epoch {attrs['pruned_at']}"
    return TrialRow(trial.number, state, dict(trial.params), trial.value if state != "failed" else None,
                    attrs.get("seconds"), attrs.get("run"), note)


def best_row(rows: list[TrialRow], direction: str) -> TrialRow | None:
    """The complete trial with the best value (the earliest among equals); None if none completed."""
    complete = [row for row in rows if row.state == "complete" and row.value is not None]
    if not complete:
        return None
    sign = -1.0 if direction == "maximize" else 1.0
    return min(complete, key=lambda row: (sign * row.value, row.number))  # type: ignore[operator]


def short_names(paths: list[str]) -> dict[str, str]:
    """Column titles: each path's last key when that is unique, else the whole path."""
    last = {path: path.rsplit(".", 1)[-1] for path in paths}
    counts = {name: list(last.values()).count(name) for name in last.values()}
    return {path: name if counts[name] == 1 else path for path, name in last.items()}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(rows: list[TrialRow], paths: list[str], metric: str) -> str:
    """The results as an aligned text table: trial, state, parameters, metric, seconds, note."""
    titles = ["trial", "state", *short_names(paths).values(), metric, "seconds", "note"]
    body = [[str(row.number), row.state, *(_cell(row.params.get(path)) for path in paths), _cell(row.value),
             "" if row.seconds is None else f"{row.seconds:.1f}", row.note] for row in rows]
    widths = [max(len(line[i]) for line in [titles, *body]) for i in range(len(titles))]
    return "\n".join("  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip()
                     for line in [titles, *body])


def write_results_csv(path: Path, rows: list[TrialRow], paths: list[str], metric: str) -> None:
    """results.csv: trial, state, one column per parameter path, the metric, seconds, run, note."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["trial", "state", *paths, metric, "seconds", "run", "note"])
    for row in rows:
        writer.writerow([row.number, row.state, *(_csv_value(row.params.get(path)) for path in paths),
                         _csv_value(row.value), _csv_value(row.seconds), row.run or "", row.note])
    write_text_atomic(path, buffer.getvalue())


def _csv_value(value: Any) -> Any:
    return "" if value is None else value


def best_document(best: TrialRow, metric: str, direction: str, study_name: str, trials: int) -> dict[str, Any]:
    """best.json's content: the best trial's run folder, parameters and metric value."""
    return {"trial": best.number, "run": best.run, "params": best.params, "metric": metric,
            "value": best.value, "direction": direction, "study_name": study_name, "trials": trials}


def write_best_json(path: Path, document: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(document, indent=2) + "\n")


def best_so_far(values: list[float | None], direction: str) -> list[float | None]:
    """The best value among the first i+1 entries, for each i (None before the first value)."""
    best: float | None = None
    curve = []
    for value in values:
        if value is not None and math.isfinite(value) and (
                best is None or (value > best if direction == "maximize" else value < best)):
            best = value
        curve.append(best)
    return curve


def plot_sweep(path: Path, rows: list[TrialRow], metric: str, direction: str) -> str | None:
    """sweep.png: each complete trial's metric by trial number and the best-so-far curve;
    a note instead if matplotlib is absent or no trial completed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return f"{PLOT_FILE} skipped: matplotlib is not installed (pip install 'graphnet[plot]')"
    complete = [row for row in rows if row.state == "complete" and row.value is not None]
    if not complete:
        return None
    figure = Figure(figsize=(7, 4))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot([row.number for row in complete], [row.value for row in complete], "o", label="trial")
    values = [row.value if row.state == "complete" else None for row in rows]
    curve = [math.nan if value is None else value for value in best_so_far(values, direction)]
    axes.step([row.number for row in rows], curve, where="post",
              label="best so far")
    pruned = [row for row in rows if row.state == "pruned" and row.value is not None]
    if pruned:
        axes.plot([row.number for row in pruned], [row.value for row in pruned], "x", label="pruned (last epoch)")
    axes.set_xlabel("trial")
    axes.set_ylabel(metric)
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    write_bytes_atomic(path, buffer.getvalue())
    return None
