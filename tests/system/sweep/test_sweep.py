"""graphnet sweep with worker processes and signals: two jobs, Ctrl-C, a closed stdout, and the CLI as
a child process."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import graphnet as gn
from graphnet.cli import main
from graphnet.sweep import run_sweep
from graphnet.sweep.report import trial_rows
from graphnet.sweep.runner import counted_trials

from tests._support.extras import HAVE_MATPLOTLIB
from tests._support.sweep_cases import ENV, ROOT, spiral_run, study_of, sweep_cli, sweep_doc, wait_for, write
from tests._support.sweep_cases import optuna  # noqa: F401 (a fixture)


def test_a_range_too_wide_is_one_located_line_from_the_cli(tmp_path):
    source = write(tmp_path / "wide.json", sweep_doc(space={"network.l2": {"uniform": [-1e308, 1e308]}}))
    done = sweep_cli(str(source), "--trials", "1", "--out", str(tmp_path / "out"))
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f'graphnet sweep: {source}: space."network.l2": uniform: the range')
    assert not (tmp_path / "out").exists()  # refused before anything ran


# ---- sweeps on Optuna ------------------------------------------------------------------------------


@pytest.mark.slow
def test_six_trials_in_two_jobs_find_a_spiral_run_above_90_percent(optuna, tmp_path, capsys):
    out = tmp_path / "sweep"
    code = main(["sweep", str(write(tmp_path / "sweep.json", sweep_doc())), "--trials", "6", "--jobs", "2",
                 "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [row["trial"] for row in rows] == [str(n) for n in range(6)]
    assert {row["state"] for row in rows} == {"complete"}
    assert len({row["train.optimizer.learning_rate"] for row in rows}) == 6  # the workers sample apart
    assert list(rows[0]) == ["trial", "state", "train.optimizer.learning_rate", "network.nodes[0].units",
                             "val_accuracy", "seconds", "run", "note"]
    best = json.loads((out / "best.json").read_text())
    assert best["value"] == max(float(row["val_accuracy"]) for row in rows) > 0.9
    assert best["run"] == str(out / f"trial-{best['trial']}")
    assert set(best["params"]) == {"train.optimizer.learning_rate", "network.nodes[0].units"}
    # the best trial is a normal run folder: its metrics and its checkpoint agree with the sweep
    assert json.loads((Path(best["run"]) / "metrics.json").read_text())["val_accuracy"] == best["value"]
    assert json.loads((Path(best["run"]) / "run.json").read_text())["network"]["nodes"][0]["units"] == \
        best["params"]["network.nodes[0].units"]
    assert main(["eval", best["run"], "--split", "val"]) == 0
    assert f"best: trial {best['trial']}, val_accuracy" in printed and best["run"] in printed
    assert "trial  state     learning_rate  units  val_accuracy  seconds" in printed
    assert (out / "sweep.png").is_file() == HAVE_MATPLOTLIB


@pytest.mark.slow
def test_another_storage_url_holds_the_study(optuna, tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    out = tmp_path / "sweep"
    done = sweep_cli(str(write(tmp_path / "sweep.json", sweep_doc(run=spiral_run(epochs=3)))), "--trials", "2",
                     "--out", str(out), "--storage", url)
    assert done.returncode == 0, done.stderr
    assert not (out / "study.db").exists()
    assert len(optuna.load_study(study_name="sweep", storage=url).trials) == 2
    assert f"study 'sweep' in {url}" in done.stdout


@pytest.mark.slow
def test_cli_exit_codes(optuna, tmp_path):
    bad = sweep_cli(str(write(tmp_path / "bad.json", sweep_doc(metric="accuracy"))), "--trials", "2")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith(f"graphnet sweep: {tmp_path / 'bad.json'}: metric: a classification run has no "
                                 "metric 'accuracy'; did you mean")
    usage = sweep_cli(str(tmp_path / "bad.json"))
    assert usage.returncode == 2 and "--trials" in usage.stderr
    assert sweep_cli(str(tmp_path / "bad.json"), "--trials", "0").returncode == 2
    missing = sweep_cli(str(tmp_path / "nosuch.json"), "--trials", "1")
    assert missing.returncode == 1 and missing.stderr.strip() == \
        f"graphnet sweep: {tmp_path / 'nosuch.json'}: no such file"
    failing = sweep_doc(run=spiral_run(epochs=2), space={"network.nodes[0].units": {"choice": [0, -1]}})
    failed = sweep_cli(str(write(tmp_path / "fails.json", failing)), "--trials", "2", "--out", str(tmp_path / "f"))
    assert failed.returncode == 1, failed.stderr
    assert failed.stderr.strip() == f"graphnet sweep: no trial completed (see the notes in {tmp_path / 'f' / 'results.csv'})"
    assert failed.stdout.count("failed: network.nodes[0].units") == 2


@pytest.mark.slow
def test_a_closed_stdout_does_not_stop_the_sweep(optuna, tmp_path):
    """`graphnet sweep ... | head -1` with two worker processes: every trial still runs and the
    results are written; stderr says once that the lines stop."""
    out = tmp_path / "sweep"
    source = write(tmp_path / "sweep.json", sweep_doc(run=spiral_run(epochs=3)))
    sweep = subprocess.Popen([sys.executable, "-m", "graphnet", "sweep", str(source), "--trials", "2", "--jobs", "2",
                              "--out", str(out)], cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = sweep.stdout.readline()
        sweep.stdout.close()  # a real pipe, closed by its reader
        stderr = sweep.stderr.read().decode()
        assert sweep.wait(timeout=240) == 0, stderr
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert first.startswith(b"study 'sweep' in ")
    assert stderr == "graphnet sweep: stdout was closed; going on without printing\n"
    with open(out / "results.csv", newline="") as handle:
        assert [row["state"] for row in csv.DictReader(handle)] == ["complete", "complete"]


@pytest.mark.slow
def test_ctrl_c_stops_the_workers_and_the_same_command_resumes(optuna, tmp_path):
    out = tmp_path / "sweep"
    source = write(tmp_path / "sweep.json", sweep_doc(run=spiral_run(epochs=2000)))
    command = [sys.executable, "-m", "graphnet", "sweep", str(source), "--trials", "2", "--jobs", "2",
               "--out", str(out)]
    sweep = subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        wait_for(lambda: all((out / f"trial-{n}" / "checkpoint" / "weights.npz").is_file() for n in (0, 1)))
        os.killpg(sweep.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
        stdout, stderr = sweep.communicate(timeout=120)
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
    assert sweep.returncode == 130, stderr
    assert stderr == ""
    assert "interrupted: 0 of 2 trials done; run the same command again to resume" in stdout
    study = study_of(optuna, out)
    assert [trial.state.name for trial in study.trials] == ["FAIL", "FAIL"]
    assert all(trial.user_attrs["interrupted"] for trial in study.trials) and counted_trials(study) == 0
    rows = trial_rows(study.trials)
    assert [row.state for row in rows] == ["interrupted", "interrupted"]
    assert not any((out / f"trial-{n}" / ".lock").exists() for n in (0, 1))
    # the same command again, with the trials shortened (the study is the same: space, metric, direction)
    write(tmp_path / "sweep.json", sweep_doc(run=spiral_run(epochs=2)))
    again = sweep_cli(str(source), "--trials", "2", "--jobs", "2", "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert "0 trials done, running 2 more" in again.stdout
    assert [trial.state.name for trial in study_of(optuna, out).trials] == ["FAIL", "FAIL", "COMPLETE", "COMPLETE"]


def test_ctrl_c_in_a_one_job_sweep_stops_its_trial_with_a_checkpoint(optuna, tmp_path):
    import threading

    out = tmp_path / "sweep"
    source = write(tmp_path / "sweep.json", sweep_doc(run=spiral_run(epochs=2000)))

    def press_ctrl_c() -> None:
        wait_for(lambda: (out / "trial-0" / "checkpoint" / "weights.npz").is_file())
        os.kill(os.getpid(), signal.SIGINT)

    presser = threading.Thread(target=press_ctrl_c)
    presser.start()
    lines = []
    result = run_sweep(source, trials=2, out=out, log=lines.append)
    presser.join()
    assert result.interrupted and [row.state for row in result.rows] == ["interrupted"]
    assert "interrupted: 0 of 2 trials done; run the same command again to resume" in lines
    assert not (out / "trial-0" / ".lock").exists()
    assert gn.load_checkpoint(out / "trial-0").spec.name == "spiral_mlp"
