"""Which trials of a study count toward the total, and recovering those whose worker died.

A trial counts when it is complete, pruned, or failed by its run (it then has an `error`).
Two kinds of failed trials don't count, so running the sweep again runs replacements:
`interrupted` ones (stopped by Ctrl-C or SIGTERM, with a checkpoint) and lost ones, whose
worker vanished without a word (SIGKILL, a crash, a machine gone).

A worker notes `<pid> <host>` on each trial it runs (`worker`). `recover_lost_trials`
fails, as lost, every running trial whose worker process is gone from this machine, and
(through Optuna's heartbeats) every running trial that stopped beating on any machine.
It then cleans up lost trials' run folders: a stale `.lock` and stale temporary files
are removed, and a folder its trial left before the first checkpoint (`run.json` and a
lock: nothing trained) is removed whole.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Callable

from ..errors import RunFolderError
from ..runs.folder import CHECKPOINT_FILES, CHECKPOINT_FOLDER, RUN_FILES, clear_run_files, has_checkpoint
from ..runs.lock import host_name, run_lock
from ..system.fileio import process_alive, remove_stale_temporaries

WORKER_ATTR = "worker"


def worker_label() -> str:
    """`<pid> <host>` of this process, as trials record their worker."""
    return f"{os.getpid()} {host_name()}"


def is_lost(trial: Any) -> bool:
    """A failed trial with no error and not interrupted: its worker died before it ended."""
    attrs = trial.user_attrs
    return trial.state.name == "FAIL" and not attrs.get("interrupted") and "error" not in attrs


def counted_trials(study: Any) -> int:
    """Trials that count toward the target: complete, pruned and failed, not those interrupted or lost."""
    from optuna.trial import TrialState

    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return sum(1 for trial in study.get_trials(deepcopy=False, states=states)
               if not trial.user_attrs.get("interrupted") and not is_lost(trial))


def worker_gone(label: Any) -> bool:
    """Whether the worker `<pid> <host>` is known to be dead: its host is this machine and the
    process is gone (this very process id counts as gone: no trial of this process runs when
    asked). A worker on another machine is left to the heartbeats."""
    if not isinstance(label, str):
        return False
    pid, _, host = label.partition(" ")
    if not pid.isdigit() or host != host_name():
        return False
    return int(pid) == os.getpid() or not process_alive(int(pid))


def recover_lost_trials(optuna: Any, study: Any, log: Callable[[str], None]) -> list[int]:
    """Fail the running trials whose worker is gone (see the module docstring) and clean up
    the run folders of lost trials; the numbers of the trials failed now."""
    from optuna.trial import TrialState

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # heartbeats that stopped, on any machine
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if worker_gone(trial.user_attrs.get(WORKER_ATTR)):
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            failed.append(trial.number)
    if failed:
        log(f"trial{'s' if len(failed) > 1 else ''} {', '.join(map(str, failed))}: "
            "lost (the worker process is gone); a run of the sweep replaces them")
    for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        if is_lost(trial) and isinstance(trial.user_attrs.get("run"), str):
            clean_run_folder(Path(trial.user_attrs["run"]), log)
    return failed


def clean_run_folder(folder: Path, log: Callable[[str], None]) -> None:
    """Remove a dead trainer's leftovers in `folder`: its stale lock and temporary files, and
    the folder itself if it holds no checkpoint (nothing was trained). A live lock (another
    process at work) or a folder this process may not change is left as it is."""
    if not folder.is_dir():
        return
    try:
        with run_lock(folder, note=lambda text: None):
            if not has_checkpoint(folder):
                clear_run_files(folder)
            else:
                remove_stale_temporaries(folder, list(RUN_FILES))
                remove_stale_temporaries(folder / CHECKPOINT_FOLDER, list(CHECKPOINT_FILES))
    except (RunFolderError, OSError):  # held by a live process (here or elsewhere), or not ours to change
        return
    if not has_checkpoint(folder):
        try:
            folder.rmdir()
        except OSError:  # a user's file is left in it
            return
        log(f"removed {folder}: its trial was lost before the first checkpoint")
