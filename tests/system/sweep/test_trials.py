"""graphnet.sweep.trials against real processes: workers gone, their running trials lost and cleaned up."""
from __future__ import annotations

import subprocess
import sys

import pytest

from graphnet.runs.lock import host_name
from graphnet.sweep.report import trial_rows
from graphnet.sweep.trials import WORKER_ATTR, is_lost, recover_lost_trials, worker_gone, worker_label

from tests._support.sweep_cases import optuna  # noqa: F401 (a fixture)


@pytest.fixture
def dead_pid() -> int:
    """The process id of a process that has ended and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def running_trial(study, worker: str, run=None):
    trial = study.ask()
    trial.set_user_attr(WORKER_ATTR, worker)
    if run is not None:
        trial.set_user_attr("run", str(run))
    return trial


def test_a_worker_is_gone_when_its_process_on_this_host_is(dead_pid):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert worker_gone(f"{dead_pid} {host_name()}")
        assert not worker_gone(f"{live.pid} {host_name()}")
        assert not worker_gone(f"{dead_pid} another-host")  # left to the heartbeats
        assert worker_gone(worker_label())  # this process runs no trial while it recovers them
        assert not worker_gone(None) and not worker_gone("garbage")
    finally:
        live.kill()
        live.wait()


def test_the_running_trials_of_dead_workers_are_lost_and_their_leftovers_cleaned(optuna, tmp_path, dead_pid):
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 'study.db'}")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = f"{dead_pid} {host_name()}"
        unfinished, trained = tmp_path / "trial-0", tmp_path / "trial-1"
        for folder in (unfinished, trained):
            folder.mkdir()
            (folder / "run.json").write_text("{}")
            (folder / ".lock").write_text(f"{dead}\n")  # a killed trainer's lock
        (unfinished / f".history.json.{dead_pid}.ab.tmp").write_text("half")
        (trained / "checkpoint").mkdir()
        (trained / "checkpoint" / "weights.npz").write_bytes(b"saved")
        (trained / "checkpoint" / f".weights.npz.{dead_pid}.cd.tmp").write_bytes(b"half")
        running_trial(study, dead, unfinished)
        running_trial(study, dead, trained)
        running_trial(study, f"{live.pid} {host_name()}")  # a live worker of another sweep here
        running_trial(study, f"{dead_pid} another-host")  # elsewhere: its heartbeat will tell
        lines: list[str] = []
        assert recover_lost_trials(optuna, study, lines.append) == [0, 1]
        assert recover_lost_trials(optuna, study, lines.append) == []  # nothing more the second time
    finally:
        live.kill()
        live.wait()
    states = [trial.state.name for trial in study.trials]
    assert states == ["FAIL", "FAIL", "RUNNING", "RUNNING"]
    assert [is_lost(trial) for trial in study.trials[:2]] == [True, True]
    assert [row.state for row in trial_rows(study.trials)] == ["lost", "lost", "running", "running"]
    assert lines[0] == "trials 0, 1: lost (the worker process is gone); a run of the sweep replaces them"
    assert not unfinished.exists() and f"removed {unfinished}: its trial was lost before the first checkpoint" in lines
    assert sorted(p.name for p in trained.rglob("*")) == ["checkpoint", "run.json", "weights.npz"]
