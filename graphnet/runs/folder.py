"""What a run folder holds, and the checks made before training writes into one.

    runs/spiral/
      run.json       the run spec as trained: every train setting, defaults included
      run_id.txt     the run's random id, also in every checkpoint (graphnet.training.identity)
      history.jsonl  one epoch record a line, appended at each epoch end (graphnet.training.history)
      history.json   the whole history as one JSON array, written when training stops
      metrics.json  learning_curve.png  checkpoint/
      confusion_matrix.png (and roc_curve.png, pr_curve.png for a binary classifier): the test split
      .lock          while a trainer holds the folder (graphnet.runs.lock)

A fresh run refuses a folder that already holds something, unless asked to
overwrite it, or unless all it holds is a run that never trained (no
checkpoint: a run killed before its first epoch ended), which the fresh run
replaces. Overwriting removes only the files graphnet writes, so a user's own
files in the folder survive. The data path stored in `run.json` is absolute,
so `graphnet eval` and `--resume` work from any directory.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from .. import data as data_module
from ..errors import DataError, RunFolderError
from ..system.fileio import remove_stale_temporaries, write_text_atomic
from .lock import LOCK_FILE
from ..spec import RunSpec, parse_run

HISTORY_LOG = "history.jsonl"
RUN_ID_FILE = "run_id.txt"
MLFLOW_RUN_FILE = "mlflow_run.json"  # the MLflow run a run folder logs to (graphnet.training.tracking)
EVALUATION_PLOTS = ("confusion_matrix.png", "roc_curve.png", "pr_curve.png")  # graphnet.training.eval_plots
RUN_FILES = ("run.json", RUN_ID_FILE, HISTORY_LOG, "history.json", "metrics.json", "learning_curve.png",
             *EVALUATION_PLOTS, MLFLOW_RUN_FILE)
CHECKPOINT_FOLDER = "checkpoint"
CHECKPOINT_FILES = ("network.json", "weights.npz")


def refuse_existing(out: Path, overwrite: bool = False) -> None:
    """RunFolderError if `out` is not a folder, or (unless `overwrite`) is one holding
    anything besides a lock file and a run that never trained (see `holds_untrained_run`)."""
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"{out}: exists and is not a folder")
    if not overwrite and out.is_dir() and any(entry.name != LOCK_FILE for entry in out.iterdir()) \
            and not holds_untrained_run(out):
        raise RunFolderError(f"{out}: run folder exists (pass resume={str(out)!r} to continue it or overwrite=True "
                             "to replace it)",
                             cli=f"{out}: run folder exists (use --resume to continue it or --overwrite to replace it)")


def holds_untrained_run(out: Path) -> bool:
    """True when `out` holds a run that never trained (see `interrupted_before_first_epoch`)
    and nothing but graphnet's files: a fresh run may take its place, as nothing is lost."""
    if not interrupted_before_first_epoch(out):
        return False
    for folder, names in ((out, RUN_FILES + (LOCK_FILE, CHECKPOINT_FOLDER)), (out / CHECKPOINT_FOLDER, CHECKPOINT_FILES)):
        if folder.is_dir() and not all(_is_graphnets(entry.name, names) for entry in folder.iterdir()):
            return False
    return True


def _is_graphnets(name: str, names: tuple[str, ...]) -> bool:
    """`name` is one of `names`, or a temporary file of one (fileio's `.<name>.<pid>.<random>.tmp`)."""
    return name in names or any(name.startswith(f".{known}.") and name.endswith(".tmp") for known in names)


def clear_run_files(out: Path) -> None:
    """Remove what graphnet wrote in `out` (RUN_FILES and checkpoint/); any other file stays."""
    checkpoint = out / CHECKPOINT_FOLDER
    for folder, names in ((out, RUN_FILES), (checkpoint, CHECKPOINT_FILES)):
        for name in names:
            _remove_file(folder / name)
        if folder.is_dir():
            remove_stale_temporaries(folder, list(names))
    if checkpoint.is_dir() and not any(checkpoint.iterdir()):
        checkpoint.rmdir()


def remove_folder_if_empty(out: Path) -> None:
    """Remove the folder `out` if it is empty (a run folder a failed fresh run had created)."""
    try:
        out.rmdir()
    except OSError:  # not empty, or gone
        pass


def write_run_spec(out: Path, run: RunSpec) -> None:
    """Write `run.json`: the run spec as trained (see RunSpec.as_trained_json)."""
    write_text_atomic(out / "run.json", run.as_trained_json() + "\n")


def read_run_id(out: Path) -> str | None:
    """The run id in `out`'s run_id.txt, or None when there is none (a folder written before
    run ids, or never trained)."""
    try:
        text = (out / RUN_ID_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text or None


def write_run_id(out: Path, run_id: str) -> None:
    """Write `run_id.txt`: the id of the run this folder holds."""
    write_text_atomic(out / RUN_ID_FILE, run_id + "\n")


def write_history(out: Path, history: Sequence[Any]) -> None:
    """Write `history.json`: one object per epoch record (a dataclass)."""
    write_text_atomic(out / "history.json", json.dumps([asdict(record) for record in history], indent=2) + "\n")


def write_metrics(out: Path, metrics: dict[str, Any]) -> None:
    """Write `metrics.json`: the final metrics of a run."""
    write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")


def _remove_file(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():  # a folder in its place is not graphnet's: left alone
        path.unlink(missing_ok=True)


def has_checkpoint(out: Path) -> bool:
    """True once training has saved a checkpoint in the run folder `out`."""
    return (out / CHECKPOINT_FOLDER / "weights.npz").is_file()


def interrupted_before_first_epoch(out: Path) -> bool:
    """True for a run folder whose training was killed before its first checkpoint: run.json
    is there, no checkpoint and no epoch in history.json or history.jsonl (epochs there
    without a checkpoint mean a lost checkpoint, not a run that never trained)."""
    if not (out / "run.json").is_file() or has_checkpoint(out):
        return False
    try:
        if (out / HISTORY_LOG).stat().st_size > 0:
            return False
    except FileNotFoundError:
        pass
    except OSError:
        return False
    try:
        history = json.loads((out / "history.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return True
    except (OSError, ValueError):
        return False
    return history == []


def no_checkpoint_yet(out: Path) -> RunFolderError:
    return RunFolderError(f"{out}: no checkpoint yet (training was interrupted before the first epoch finished)")


def with_absolute_data(run: RunSpec) -> RunSpec:
    """`run` with its data path (and a CSV `test_file` option) made absolute; data set names
    (spiral, fashion-mnist, a name found in $GRAPHNET_DATA) are kept as they are."""
    spec = run.train.data_spec()
    name = _absolute_source(spec.name)
    options = dict(spec.options)
    test_file = options.get("test_file")
    if isinstance(test_file, str) and Path(test_file).expanduser().exists():
        options["test_file"] = str(Path(test_file).expanduser().resolve())
    if name == spec.name and options == spec.options:
        return run
    document = json.loads(run.model_dump_json())
    data = {**json.loads(spec.model_dump_json()), "name": name, "options": options}
    if not isinstance(run.train.data, str):
        document["train"]["data"] = data
    else:
        document["train"]["data"] = name if options == spec.options else data
    return parse_run(document)


def _absolute_source(name: str) -> str:
    try:
        source = data_module.source_path(name)
    except DataError:  # load() reports it, with the places searched
        return name
    if source is None or source != Path(name).expanduser():  # a synthetic set, or a name found by search
        return name
    return str(source.resolve())
