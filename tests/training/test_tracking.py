"""Where practitioners watch runs (graphnet.training.tracking): TensorBoard event files read back
by TensorBoard's own reader, MLflow runs read back with MlflowClient from a real local store, both
continued by a resume; sweeps' trials as child runs; the extras named when absent."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import graphnet as gn
from graphnet.cli import main

from tests._support.extras import HAVE_MLFLOW, HAVE_TENSORBOARD, HAVE_TENSORBOARDX
from tests._support.sweep_cases import optuna, spiral_run, sweep_doc, write  # noqa: F401 (optuna: a fixture)

needs_tensorboard = pytest.mark.skipif(not (HAVE_TENSORBOARDX and HAVE_TENSORBOARD),
                                       reason="needs tensorboardX (graphnet[tensorboard]) and tensorboard (test)")
needs_mlflow = pytest.mark.skipif(not HAVE_MLFLOW, reason="needs mlflow: pip install 'graphnet[mlflow]'")


def run_file(folder: Path, epochs: int = 4, **train) -> Path:
    document = spiral_run(epochs=epochs, units=16)
    document["train"].update({"data": {"name": "spiral", "val_size": 0.2}, **train})
    return write(folder / "run.json", document)


def scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar TensorBoard's own reader finds in `logdir`: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    reader = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "histograms": 0})
    reader.Reload()
    return {tag: [(event.step, event.value) for event in reader.Scalars(tag)] for tag in reader.Tags()["scalars"]}


@needs_tensorboard
def test_tensorboard_reads_every_epoch_back_and_a_resume_continues(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = run_file(tmp_path, epochs=2, tensorboard={"dir": str(tmp_path / "tb"), "histograms": True})
    assert main(["train", str(run), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    assert main(["train", "--resume", str(tmp_path / "run"), "--epochs", "4", "--no-progress"]) == 0
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    found = scalars(tmp_path / "tb")
    for tag, field in (("loss/train", "train_loss"), ("loss/val", "val_loss"), ("accuracy/val", "val_accuracy"),
                       ("f1_macro/val", "val_f1_macro"), ("learning_rate", "learning_rate"), ("seconds", "seconds")):
        assert [step for step, _ in found[tag]] == [1, 2, 3, 4], tag
        assert [value for _, value in found[tag]] == pytest.approx([r[field] for r in history], rel=1e-6), tag
    reader = EventAccumulator(str(tmp_path / "tb"), size_guidance={"histograms": 0})
    reader.Reload()
    assert "parameters/fc1.W" in reader.Tags()["histograms"]
    assert [event.step for event in reader.Histograms("parameters/fc2.b")] == [1, 2, 3, 4]


def test_the_cli_sets_the_trackers_in_run_json(tmp_path):
    from graphnet.cli.train_commands import _with_trackers

    run = _with_trackers(str(run_file(tmp_path)), str(tmp_path / "tb"), "")
    assert run.train.tensorboard.dir == str(tmp_path / "tb") and run.train.mlflow.tracking_uri is None
    run = _with_trackers(run, None, "http://127.0.0.1:5000")
    assert run.train.mlflow.tracking_uri == "http://127.0.0.1:5000" and run.train.tensorboard is not None


@pytest.mark.parametrize("flag, module, extra", [("--tensorboard", "tensorboardX", "tensorboard"),
                                                 ("--mlflow", "mlflow", "mlflow")])
def test_without_the_extra_the_flag_names_it(flag, module, extra, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, module, None)
    arguments = [flag, str(tmp_path / "tb")] if flag == "--tensorboard" else [flag]
    assert main(["train", str(run_file(tmp_path)), "--out", str(tmp_path / "run"), "--no-progress",
                 *arguments]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"pip install 'graphnet[{extra}]'" in err, err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
@needs_mlflow
def test_mlflow_logs_params_every_epoch_and_the_run_folder(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)  # the default store: ./mlruns
    run = run_file(tmp_path, epochs=2, early_stopping={"metric": "val_accuracy", "patience": 5})
    assert main(["train", str(run), "--out", "run", "--no-progress", "--mlflow"]) == 0
    assert main(["train", "--resume", "run", "--epochs", "3", "--no-progress"]) == 0
    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("graphnet")
    [logged] = client.search_runs([experiment.experiment_id])
    assert logged.info.run_id == json.loads((tmp_path / "run" / "mlflow_run.json").read_text())["run_id"]
    assert logged.info.status == "FINISHED" and logged.info.run_name == "run"
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    for key in ("train_loss", "val_loss", "val_accuracy", "val_log_loss", "learning_rate"):
        steps = client.get_metric_history(logged.info.run_id, key)
        assert [(m.step, m.value) for m in steps] == [(r["epoch"], pytest.approx(r[key], rel=1e-6))
                                                      for r in history], key
    params = logged.data.params
    assert params["train.optimizer.rule"] == "adam" and params["train.epochs"] == "2"  # params are set once
    assert params["train.early_stopping.metric"] == "val_accuracy"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert logged.data.metrics["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    artifacts = {item.path for item in client.list_artifacts(logged.info.run_id)}
    assert {"metrics.json", "history.json", "run.json", "checkpoint"} <= artifacts


@pytest.mark.slow
@needs_mlflow
def test_a_sweeps_trials_are_child_runs_scored_by_their_best_epoch(optuna, tmp_path):
    from mlflow import MlflowClient

    from graphnet.sweep import run_sweep

    uri = (tmp_path / "store").as_uri()
    base = spiral_run(epochs=6, units=16)
    base["train"]["mlflow"] = {"tracking_uri": uri, "experiment": "sweeps"}
    base["train"]["early_stopping"] = {"metric": "val_loss", "patience": 2}
    source = write(tmp_path / "sweep.json", sweep_doc(run=base, metric="val_loss", direction="minimize"))
    result = run_sweep(source, trials=2, out=tmp_path / "sweep", log=lambda text: None)
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("sweeps").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == 2 and {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    for row in result.rows:  # each trial scored by its best epoch: the least val_loss of its history
        history = json.loads((tmp_path / "sweep" / f"trial-{row.number}" / "history.json").read_text())
        assert row.value == min(record["val_loss"] for record in history)


@needs_mlflow
def test_a_tracking_uri_mlflow_cannot_use_is_a_located_error(tmp_path, capsys):
    run = run_file(tmp_path, epochs=1)
    assert main(["train", str(run), "--out", str(tmp_path / "run"), "--no-progress", "--mlflow", "zz://nowhere"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("graphnet train: --mlflow (train.mlflow.tracking_uri) zz://nowhere: ")
    assert "internal error" not in err[-1]
    assert not (tmp_path / "run").exists()


@needs_mlflow
def test_a_tracking_server_lost_mid_run_stops_with_a_located_error_and_the_run_resumes(tmp_path, monkeypatch, capsys):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    monkeypatch.chdir(tmp_path)
    calls = []
    log_batch = MlflowClient.log_batch

    def failing_after_the_params(self, *args, **kwargs):  # noqa: ANN001, ANN202
        calls.append(1)
        if len(calls) > 2:  # the params, then epoch 1, then the server is gone
            raise MlflowException("API request to endpoint /api/2.0/mlflow/runs/log-batch failed: Connection refused")
        return log_batch(self, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_batch", failing_after_the_params)
    run = run_file(tmp_path, epochs=3)
    assert main(["train", str(run), "--out", "run", "--no-progress", "--mlflow"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("graphnet train: --mlflow (train.mlflow.tracking_uri) file://")
    assert err[-1].endswith("Connection refused") and "internal error" not in err[-1]
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert [record["epoch"] for record in history] == [1, 2]  # epoch 2 was kept before it was logged
    monkeypatch.setattr(MlflowClient, "log_batch", log_batch)
    assert main(["train", "--resume", "run", "--no-progress"]) == 0
