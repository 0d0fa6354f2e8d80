"""graphnet sweep as processes: it stops on SIGINT and SIGTERM however it was started, its
workers die with it even when it is SIGKILLed, and a rerun recovers the trials of workers
that were killed (they stay `running` no more)."""
from __future__ import annotations

import csv
import os
import signal
import subprocess

import pytest

from graphnet.sweep.runner import counted_trials

from tests._support.processes import HAVE_PROC, NEEDS_PROC, descendants, kill_all, still_running
from tests._support.sweep_cases import spiral_run, start_sweep, study_of, sweep_cli, sweep_doc, wait_for, write
from tests._support.sweep_cases import optuna  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.skipif(os.name != "posix", reason="POSIX signals"), pytest.mark.slow]


def long_sweep(tmp_path, **popen) -> tuple[subprocess.Popen, object, object]:
    """A 2-trial, 2-job sweep of long trials, once both trials are training: (process, out, source)."""
    out = tmp_path / "sweep"
    source = write(tmp_path / "sweep.json", sweep_doc(run=spiral_run(epochs=2000)))
    sweep = start_sweep(str(source), "--trials", "2", "--jobs", "2", "--out", str(out), **popen)
    try:
        wait_for(lambda: all((out / f"trial-{n}" / "checkpoint" / "weights.npz").is_file() for n in (0, 1)))
    except BaseException:
        os.killpg(sweep.pid, signal.SIGKILL)
        sweep.communicate()
        raise
    return sweep, out, source


def rerun_shortened(tmp_path, source, out) -> subprocess.CompletedProcess:
    """The same command again, with the trials shortened (the study is the same: space, metric, direction)."""
    write(tmp_path / "sweep.json", sweep_doc(run=spiral_run(epochs=2)))
    return sweep_cli(str(source), "--trials", "2", "--jobs", "2", "--out", str(out))


def ignore_sigint() -> None:
    """What `graphnet sweep ... &` in a script gets: SIGINT ignored from the start."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_sweep_started_with_sigint_ignored_stops_on_a_signal_to_it_alone(optuna, tmp_path, signum):
    sweep, out, _ = long_sweep(tmp_path, preexec_fn=ignore_sigint)
    try:
        sweep.send_signal(signum)  # `kill -INT` or a scheduler's stop, to the parent process only
        stdout, stderr = sweep.communicate(timeout=120)
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
            sweep.communicate()
    assert sweep.returncode == 128 + signum and stderr == "", stderr
    assert "interrupted: 0 of 2 trials done; run the same command again to resume" in stdout
    assert [trial.user_attrs.get("interrupted") for trial in study_of(optuna, out).trials] == [True, True]


@pytest.mark.skipif(not HAVE_PROC, reason=NEEDS_PROC)
def test_the_workers_of_a_sigkilled_sweep_stop_and_the_rerun_reaches_the_total(optuna, tmp_path):
    """kill -9 of the sweep: its workers must not run on as orphans (a rerun beside them ended
    with more trials than asked)."""
    sweep, out, source = long_sweep(tmp_path)
    workers = descendants(sweep.pid)
    try:
        assert len(workers) >= 2
        sweep.kill()
        sweep.wait()  # not communicate(): orphaned workers would hold its pipes open
        assert still_running(workers, timeout=60) == [], "workers outlived the sweep"
    finally:
        kill_all(workers)
        sweep.communicate()
    study = study_of(optuna, out)
    # the workers got SIGTERM: each stopped its trial with a checkpoint, as on Ctrl-C
    assert [trial.user_attrs.get("interrupted") for trial in study.trials] == [True, True]
    assert not any((out / f"trial-{n}" / ".lock").exists() for n in (0, 1))
    again = rerun_shortened(tmp_path, source, out)
    assert again.returncode == 0, again.stderr
    states = [trial.state.name for trial in study_of(optuna, out).trials]
    assert states == ["FAIL", "FAIL", "COMPLETE", "COMPLETE"] and counted_trials(study_of(optuna, out)) == 2


def test_a_rerun_recovers_the_trials_of_killed_workers(optuna, tmp_path):
    sweep, out, source = long_sweep(tmp_path)
    os.killpg(sweep.pid, signal.SIGKILL)  # the sweep and its workers, at once: no one marks their trials
    sweep.communicate()
    assert [trial.state.name for trial in study_of(optuna, out).trials] == ["RUNNING", "RUNNING"]
    dead = sweep.pid  # reaped: a process id of no process
    stale = [out / f".results.csv.{dead}.x1.tmp", out / "trial-0" / f".history.json.{dead}.x2.tmp",
             out / "trial-1" / "checkpoint" / f".weights.npz.{dead}.x3.tmp"]
    for path in stale:
        path.write_text("half written")
    assert (out / "trial-0" / ".lock").is_file()
    again = rerun_shortened(tmp_path, source, out)  # at once: the heartbeats are not stale yet
    assert again.returncode == 0, again.stderr
    assert "trials 0, 1: lost (the worker process is gone); a run of the sweep replaces them" in again.stdout
    assert "0 trials done, running 2 more" in again.stdout
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [row["state"] for row in rows] == ["lost", "lost", "complete", "complete"]
    assert rows[0]["note"].startswith("its worker stopped without a result (killed?); does not count")
    assert not any(path.exists() for path in stale)
    assert not any((out / f"trial-{n}" / ".lock").exists() for n in (0, 1))
    assert (out / "trial-0" / "checkpoint" / "weights.npz").is_file()  # what a lost trial trained is kept
    nothing = sweep_cli(str(source), "--trials", "2", "--out", str(out))
    assert "study 'sweep' has 2 trials, the 2 asked for: nothing to run" in nothing.stdout
