"""What a run folder holds, and the checks made before training writes into one.

    runs/spiral/
      run.json  history.json  metrics.json  learning_curve.png  checkpoint/
      .lock     while a trainer holds the folder (graphnet.runlock)

A fresh run refuses a folder that already holds something, unless asked to
overwrite it; overwriting removes only the files graphnet writes, so a user's
own files in the folder survive. The data path stored in `run.json` is
absolute, so `graphnet eval` and `--resume` work from any directory.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from . import data as data_module
from .errors import DataError, RunFolderError
from .fileio import remove_stale_temporaries, write_text_atomic
from .runlock import LOCK_FILE
from .spec import RunSpec, parse_run

RUN_FILES = ("run.json", "history.json", "metrics.json", "learning_curve.png")
CHECKPOINT_FOLDER = "checkpoint"
CHECKPOINT_FILES = ("network.json", "weights.npz")


def refuse_existing(out: Path, overwrite: bool = False) -> None:
    """RunFolderError if `out` is not a folder, or (unless `overwrite`) is one holding
    anything besides a lock file."""
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"{out}: exists and is not a folder")
    if not overwrite and out.is_dir() and any(entry.name != LOCK_FILE for entry in out.iterdir()):
        raise RunFolderError(f"{out}: run folder exists (pass resume={str(out)!r} to continue it or overwrite=True "
                             "to replace it)",
                             cli=f"{out}: run folder exists (use --resume to continue it or --overwrite to replace it)")


def clear_run_files(out: Path) -> None:
    """Remove what graphnet wrote in `out` (run.json, history.json, metrics.json,
    learning_curve.png, checkpoint/); any other file stays."""
    checkpoint = out / CHECKPOINT_FOLDER
    for folder, names in ((out, RUN_FILES), (checkpoint, CHECKPOINT_FILES)):
        for name in names:
            _remove_file(folder / name)
        if folder.is_dir():
            remove_stale_temporaries(folder, list(names))
    if checkpoint.is_dir() and not any(checkpoint.iterdir()):
        checkpoint.rmdir()


def write_run_spec(out: Path, run: RunSpec) -> None:
    """Write `run.json`: the run spec as trained."""
    write_text_atomic(out / "run.json", run.to_json() + "\n")


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
    is there, no checkpoint and no epoch in history.json."""
    if not (out / "run.json").is_file() or has_checkpoint(out):
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
