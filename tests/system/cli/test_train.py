"""The CLI's train / eval / gradcheck commands as a user runs them, in child processes (`python -m
graphnet`), and on runs trained by one; in this process: tests/cli/test_train.py."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import graphnet as gn
from graphnet.cli import main
from graphnet.model.checkpoint import ARRAYS_FILE

from tests._support.commands import ENV, graphnet, one_error_line
from tests._support.commands import in_the_repository  # noqa: F401 (autouse: each test runs in the checkout)
from tests._support.extras import HAVE_MATPLOTLIB
from tests._support.paths import ROOT
from tests._support.task_data import classifier_run, linear_data, separable_blobs, task_run, write_csv, write_npz


@pytest.fixture(scope="module")
def spiral_run(tmp_path_factory) -> Path:
    """`graphnet train specs/spiral_mlp.json --out DIR --no-progress`, the zoo's run as shipped."""
    out = tmp_path_factory.mktemp("cli") / "spiral"
    done = graphnet("train", "specs/spiral_mlp.json", "--out", str(out), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress bar, no warnings
    assert f"run folder: {out}" in done.stdout
    assert re.search(r"^epoch 100/100 ", done.stdout, re.M)
    return out


@pytest.mark.slow
def test_train_writes_the_run_folder(spiral_run):
    assert sorted(p.name for p in spiral_run.iterdir()) == sorted(
        ["checkpoint", "history.json", "history.jsonl", "metrics.json", "run.json", "run_id.txt"]
        + (["learning_curve.png", "confusion_matrix.png"] if HAVE_MATPLOTLIB else []))
    assert sorted(p.name for p in (spiral_run / "checkpoint").iterdir()) == ["network.json", ARRAYS_FILE]
    metrics = json.loads((spiral_run / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.9, metrics
    assert metrics["epochs"] == 100 and metrics["interrupted"] is False
    assert len(json.loads((spiral_run / "history.json").read_text())) == 100
    as_shipped = gn.load("specs/spiral_mlp.json")
    assert gn.parse_run((spiral_run / "run.json").read_text()) == as_shipped.model_copy(update={"schema_ref": None})


@pytest.mark.slow
def test_eval_prints_accuracy_and_confusion_matrix(spiral_run, capsys):
    assert main(["eval", str(spiral_run)]) == 0
    out = capsys.readouterr().out.splitlines()
    match = re.fullmatch(r"spiral test: accuracy (\d+\.\d\d)% on (\d+) examples", out[0])
    assert match, out[0]
    metrics = json.loads((spiral_run / "metrics.json").read_text())
    assert float(match.group(1)) == pytest.approx(100 * metrics["test_accuracy"], abs=0.005)
    assert out[1].startswith("confusion matrix (rows: true class, columns: predicted)")
    assert out[2].split() == ["0", "1", "2"]
    rows = [[int(v) for v in line.split()] for line in out[3:6]]
    assert [row[0] for row in rows] == [0, 1, 2]
    matrix = np.array([row[1:] for row in rows])
    assert matrix.sum() == int(match.group(2)) == 60
    assert np.trace(matrix) / matrix.sum() == pytest.approx(metrics["test_accuracy"])
    assert out[6] == "" and out[7].split() == ["precision", "recall", "f1-score", "support"]  # the report follows


@pytest.mark.slow
def test_eval_other_split_and_a_bare_checkpoint(spiral_run, capsys):
    assert main(["eval", str(spiral_run), "--split", "val"]) == 0
    assert capsys.readouterr().out.startswith("spiral val: accuracy ")
    assert main(["eval", str(spiral_run / "checkpoint"), "--data", "spiral"]) == 0
    assert "on 60 examples" in capsys.readouterr().out.splitlines()[0]


# ---- regression and binary runs from the CLI --------------------------------------------------


def train_task(folder: Path, task: str, data: Path, features: int) -> Path:
    """`graphnet train RUN.json --out folder/run` in a child process; the run folder."""
    run_file = folder / f"{task}.json"
    run_file.write_text(json.dumps(task_run(task, str(data), features)))
    done = graphnet("train", str(run_file), "--out", str(folder / "run"), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return folder / "run"


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("regression")
    return train_task(folder, "regression", write_csv(folder / "linear.csv", *linear_data()), features=3)


@pytest.fixture(scope="module")
def binary_csv_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("binary")
    data = write_csv(folder / "blobs.csv", *separable_blobs(), label="label", integer=True)
    return train_task(folder, "binary", data, features=2)


@pytest.mark.slow
def test_cli_trains_regression_on_a_csv_float_target(regression_run):
    metrics = json.loads((regression_run / "metrics.json").read_text())
    assert {"test_loss", "test_rmse", "test_r2", "val_rmse", "val_r2", "train_rmse", "train_r2"} <= set(metrics)
    assert "test_accuracy" not in metrics
    assert metrics["test_r2"] > 0.5 and metrics["test_rmse"] < 1.0, metrics
    history = json.loads((regression_run / "history.json").read_text())
    assert {"train_rmse", "val_rmse", "val_r2"} <= set(history[-1]) and "val_accuracy" not in history[-1]


@pytest.mark.slow
def test_cli_trains_binary_on_a_csv_of_0_1_labels(binary_csv_run):
    metrics = json.loads((binary_csv_run / "metrics.json").read_text())
    assert {"test_loss", "test_accuracy", "val_accuracy", "train_accuracy"} <= set(metrics)
    assert metrics["test_accuracy"] > 0.8, metrics


@pytest.mark.slow
def test_cli_trains_regression_on_an_npz(tmp_path):
    run = train_task(tmp_path, "regression", write_npz(tmp_path / "linear.npz", *linear_data()), features=3)
    assert json.loads((run / "metrics.json").read_text())["test_r2"] > 0.5


@pytest.mark.slow
def test_eval_of_a_regression_run_prints_loss_rmse_and_r2(regression_run, capsys):
    assert main(["eval", str(regression_run)]) == 0
    out = capsys.readouterr().out.splitlines()
    match = re.fullmatch(r".*linear\.csv test: loss (\S+)  RMSE (\S+)  MAE \S+  R2 (\S+) on 80 examples", out[0])
    assert match and len(out) == 1, out
    metrics = json.loads((regression_run / "metrics.json").read_text())
    assert float(match.group(1)) == pytest.approx(metrics["test_loss"], rel=1e-3)
    assert float(match.group(2)) == pytest.approx(metrics["test_rmse"], rel=1e-3)
    assert float(match.group(3)) == pytest.approx(metrics["test_r2"], abs=1e-4)


@pytest.mark.slow
def test_eval_of_a_binary_run_prints_accuracy_and_a_2x2_confusion_matrix(binary_csv_run, capsys):
    assert main(["eval", str(binary_csv_run)]) == 0
    out = capsys.readouterr().out.splitlines()
    match = re.fullmatch(r".*blobs\.csv test: accuracy (\d+\.\d\d)% on 80 examples", out[0])
    assert match, out
    metrics = json.loads((binary_csv_run / "metrics.json").read_text())
    assert float(match.group(1)) == pytest.approx(100 * metrics["test_accuracy"], abs=0.005)
    assert out[2].split() == ["0", "1"] and out[5] == "" and "ROC AUC" in out[-1]
    matrix = np.array([[int(v) for v in line.split()[1:]] for line in out[3:5]])
    assert matrix.sum() == 80 and np.trace(matrix) / 80 == pytest.approx(metrics["test_accuracy"])


def test_eval_errors_are_one_line(tmp_path):
    done = graphnet("eval", str(tmp_path / "nowhere"))
    assert done.returncode == 1
    assert one_error_line(done.stderr).startswith("graphnet eval: ")


@pytest.mark.slow
def test_resume_after_completion_does_nothing_harmful(spiral_run, capsys):
    before = {p.name: p.read_bytes() for p in (spiral_run / "checkpoint").iterdir()}
    history = (spiral_run / "history.json").read_text()
    metrics = json.loads((spiral_run / "metrics.json").read_text())
    assert main(["train", "--resume", str(spiral_run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"{spiral_run} has finished its 100 epochs: nothing to train" in out and "epoch 101" not in out
    assert {p.name: p.read_bytes() for p in (spiral_run / "checkpoint").iterdir()} == before
    assert (spiral_run / "history.json").read_text() == history
    again = json.loads((spiral_run / "metrics.json").read_text())
    assert again["test_accuracy"] == metrics["test_accuracy"] and again["epochs"] == 100
    assert not [p for p in spiral_run.rglob("*.tmp")]


def test_training_a_network_spec_is_a_clear_error(tmp_path):
    done = graphnet("train", "specs/two_layer_net.json", "--out", str(tmp_path / "r"))
    assert done.returncode == 1
    line = one_error_line(done.stderr)
    assert line.startswith("graphnet train: specs/two_layer_net.json: this is a network spec")
    assert not (tmp_path / "r").exists()


def test_non_finite_loss_exits_1_with_one_line(tmp_path):
    run = json.loads((ROOT / "specs" / "spiral_mlp.json").read_text())
    del run["$schema"]
    run["train"]["optimizer"] = {"rule": "sgd", "learning_rate": 0.1}
    (tmp_path / "sgd.json").write_text(json.dumps(run))
    done = graphnet("train", str(tmp_path / "sgd.json"), "--lr", "1e6", "--epochs", "3", "--out",
                    str(tmp_path / "r"), "--no-progress")
    assert done.returncode == 1
    line = one_error_line(done.stderr)
    assert re.fullmatch(r"graphnet train: epoch 1, iteration \d+ of \d+: loss is nan at step \d+; first non-finite value "
                        r"at node fc\d; no checkpoint was written yet", line), line


def test_gradcheck_one_spec_as_a_child_process():
    done = graphnet("gradcheck", "specs/spiral_mlp.json")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines[1:5]] == ["fc1.W", "fc2.W", "fc1.b", "fc2.b"]
    assert lines[-1].startswith("worst relative error")


def test_overwrite_and_resume_together_is_a_usage_error(tmp_path):
    done = graphnet("train", "--resume", str(tmp_path), "--overwrite")
    assert done.returncode == 2 and "not allowed with argument" in done.stderr


@pytest.mark.slow
def test_resume_into_another_out_folder_is_refused(spiral_run, tmp_path, capsys):
    before = (spiral_run / "history.json").read_bytes()
    assert main(["train", "--resume", str(spiral_run), "--out", str(tmp_path / "elsewhere"), "--epochs", "101"]) == 1
    assert "differs from --resume" in capsys.readouterr().err
    assert not (tmp_path / "elsewhere").exists() and (spiral_run / "history.json").read_bytes() == before


@pytest.mark.slow
@pytest.mark.parametrize("workers", [[], ["--workers", "2"]])
def test_a_run_file_given_with_resume_is_refused(spiral_run, capsys, workers):
    before = (spiral_run / "history.json").read_bytes()
    capsys.readouterr()
    assert main(["train", "specs/binary_mlp.json", "--resume", str(spiral_run), "--epochs", "101", *workers]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line == (f"graphnet train: the run file specs/binary_mlp.json and --resume {spiral_run} cannot go "
                    "together: a resumed run continues with its own run.json (give one or the other)")
    assert (spiral_run / "history.json").read_bytes() == before


@pytest.mark.slow
def test_eval_and_resume_from_another_directory_find_relative_data(tmp_path):
    from graphnet.data import spiral

    X, y = spiral(seed=1)
    (tmp_path / "d.csv").write_text("x0,x1,label\n" + "".join(f"{a:.6f},{b:.6f},{c}\n" for (a, b), c in zip(X, y)))
    run = json.loads((ROOT / "specs" / "spiral_mlp.json").read_text())
    del run["$schema"]
    run["train"].update(data={"name": "d.csv", "val_size": 0.1}, epochs=2)
    (tmp_path / "run.json").write_text(json.dumps(run))
    done = subprocess.run([sys.executable, "-m", "graphnet", "train", "run.json", "--out", "out", "--no-progress"],
                          capture_output=True, text=True, cwd=tmp_path, env=ENV, timeout=120)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    assert gn.parse_run((out / "run.json").read_text()).train.data_spec().name == str(tmp_path / "d.csv")
    evaluated = graphnet("eval", str(out))  # from the repository, not tmp_path
    assert evaluated.returncode == 0, evaluated.stderr
    assert evaluated.stdout.startswith(f"{tmp_path / 'd.csv'} test: accuracy ")
    resumed = graphnet("train", "--resume", str(out), "--epochs", "3", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr


@pytest.mark.slow
def test_a_diverging_run_warns_and_exits_0(tmp_path):
    done = graphnet("train", "specs/spiral_mlp.json", "--lr", "1e6", "--epochs", "3", "--out", str(tmp_path / "r"),
                    "--no-progress")
    assert done.returncode == 0, done.stderr
    warned = [line for line in done.stdout.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "the training loss diverged" in warned[0] and "lower learning rate" in warned[0]


@pytest.mark.slow
@pytest.mark.parametrize("failure", ["labels out of range", "loss not finite"])
def test_a_run_that_never_trained_does_not_block_the_same_command(tmp_path, failure):
    """A failure after the run folder was made, before the first checkpoint: the same command
    again fails the same way (not with "run folder exists"), and leaves no folder behind."""
    if failure == "labels out of range":
        X = np.random.default_rng(0).standard_normal((60, 4))
        data = write_csv(tmp_path / "five.csv", X, np.arange(60) % 5, label="label", integer=True)
        run = classifier_run(str(data), epochs=2)  # 3 classes
    else:
        run = json.loads((ROOT / "specs" / "spiral_mlp.json").read_text())
        run["train"].update(optimizer={"rule": "sgd", "learning_rate": 1e6}, epochs=2)
    (tmp_path / "run.json").write_text(json.dumps(run))
    command = ("train", str(tmp_path / "run.json"), "--out", str(tmp_path / "out"), "--no-progress")
    first, again = graphnet(*command), graphnet(*command)
    assert first.returncode == again.returncode == 1
    assert one_error_line(again.stderr) == one_error_line(first.stderr)
    assert ("out of range 0..2 (3 classes)" if failure == "labels out of range" else "loss is nan") in first.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_closed_stdout_does_not_stop_training(tmp_path):
    """`graphnet train SPEC | head -1`: the reader goes after one line; training goes on to its last
    epoch and writes metrics.json, stderr says once that the lines stop."""
    out = tmp_path / "run"
    train = subprocess.Popen([sys.executable, "-m", "graphnet", "train", "specs/spiral_mlp.json", "--epochs", "300",
                              "--out", str(out), "--no-progress"], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    try:
        first = train.stdout.readline()
        train.stdout.close()  # a real pipe, closed by its reader
        stderr = train.stderr.read().decode()
        assert train.wait(timeout=120) == 0, stderr
    finally:
        if train.poll() is None:
            train.kill()
    assert first.startswith(b"data: train/validation/test splits stratified by class")
    assert stderr == "graphnet train: stdout was closed; going on without printing\n"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 300 and metrics["interrupted"] is False
