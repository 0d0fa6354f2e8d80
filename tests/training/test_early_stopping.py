"""Early stopping (graphnet.training.early_stopping): it stops, the model serves the best epoch's
whole state (weights and batchnorm statistics) while the checkpoint keeps the last for a resume,
and a resumed run counts its patience on as an uninterrupted one."""
from __future__ import annotations

import json

import numpy as np
import pytest

import graphnet as gn
from graphnet.cli import main
from graphnet.errors import SpecError
from graphnet.model.restore import restore
from graphnet.ops.tasks import mean_loss
from graphnet.spec import EarlyStopping
from graphnet.training.early_stopping import mode_of

NETWORK = {
    "name": "spiral_bn",
    "inputs": {"x": {"shape": [2]}},
    "labels": {"y": {"classes": 3}},
    "nodes": [{"id": "fc1", "op": "affine", "inputs": ["x"], "units": 32},
              {"id": "bn1", "op": "batchnorm", "inputs": ["fc1"]},
              {"id": "h1", "op": "relu", "inputs": ["bn1"]},
              {"id": "fc2", "op": "affine", "inputs": ["h1"], "units": 3},
              {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc2", "y"]}],
    "outputs": ["fc2"],
    "loss": "loss",
}


def run_document(epochs: int = 100, **early_stopping) -> dict:
    """A spiral classifier at a learning rate high enough that its validation loss stops improving."""
    return {"network": NETWORK,
            "train": {"data": {"name": "spiral", "val_size": 0.2}, "epochs": epochs, "batch_size": 32, "seed": 1,
                      "optimizer": {"rule": "adam", "learning_rate": 0.05},
                      "early_stopping": {"metric": "val_loss", "patience": 3, **early_stopping}}}


def val_split(run) -> tuple[np.ndarray, np.ndarray]:
    from graphnet import training

    spec = gn.parse_run(json.loads((run / "run.json").read_text()))
    data = training.load_data(spec.train.data_spec(), spec.train.seed, "float32", (2,),
                              training.label_of(spec.network))
    return data["X_val"], data["y_val"]


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    folder = tmp_path_factory.mktemp("early")
    lines: list[str] = []
    result = gn.train(gn.parse_run(run_document()), out=folder / "run", log=lines.append, progress=False)
    return folder / "run", result, lines


def test_it_stops_and_serves_the_best_epoch(stopped):
    run, result, lines = stopped
    history = json.loads((run / "history.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    losses = [record["val_loss"] for record in history]
    best = int(np.argmin(losses)) + 1
    assert len(history) == best + 3 < 100  # stopped after 3 epochs without improvement
    assert result.stopped_early and any(line.startswith("early stopping: val_loss has not improved") for line in lines)
    assert metrics["best_epoch"] == best and metrics["served"] == "best" and metrics["epochs"] == len(history)
    # the served model's validation metrics are the best epoch's, to the last bit
    assert metrics["val_loss"] == history[best - 1]["val_loss"]
    assert metrics["val_accuracy"] == history[best - 1]["val_accuracy"]
    served = gn.load_checkpoint(run)
    X_val, y_val = val_split(run)
    assert mean_loss(served, X_val, y_val) == history[best - 1]["val_loss"]
    # the checkpoint keeps the last state beside the best (weights and batchnorm statistics)
    last, meta, _ = restore(run / "checkpoint")
    assert meta["position"]["epoch"] == len(history)
    assert not np.array_equal(last.params["fc1.W"], served.params["fc1.W"])
    assert not np.array_equal(last.state["bn1.running_mean"], served.state["bn1.running_mean"])
    np.testing.assert_array_equal(result.net.state["bn1.running_mean"], served.state["bn1.running_mean"])


def test_a_resume_counts_the_patience_on(stopped, tmp_path):
    run, result, _ = stopped
    history = json.loads((run / "history.json").read_text())
    first = max(1, len(history) - 4)  # stop partway, before the run would have stopped
    gn.train(gn.parse_run(run_document(epochs=first)), out=tmp_path / "run", log=None, progress=False)
    lines: list[str] = []
    resumed = gn.train(None, resume=tmp_path / "run", epochs=100, log=lines.append, progress=False)
    assert [record["val_loss"] for record in json.loads((tmp_path / "run" / "history.json").read_text())] == \
        [record["val_loss"] for record in history]
    assert resumed.metrics["best_epoch"] == result.metrics["best_epoch"]
    assert resumed.metrics["val_loss"] == result.metrics["val_loss"]
    again: list[str] = []
    gn.train(None, resume=tmp_path / "run", epochs=200, log=again.append, progress=False)
    assert any("stopped early after epoch" in line and "nothing to train" in line for line in again), again
    assert len(json.loads((tmp_path / "run" / "history.json").read_text())) == len(history)


def test_min_delta_counts_small_gains_as_none(tmp_path):
    result = gn.train(gn.parse_run(run_document(epochs=20, patience=2, min_delta=1e6)), out=tmp_path / "run",
                      log=None, progress=False)
    assert len(result.history) == 3 and result.metrics["best_epoch"] == 1
    assert result.metrics["val_loss"] == result.history[0].val_loss


def test_the_mode_follows_the_metric():
    assert mode_of(EarlyStopping(metric="val_loss")) == "min"
    assert mode_of(EarlyStopping(metric="val_rmse")) == "min"
    assert mode_of(EarlyStopping(metric="val_log_loss")) == "min"
    assert mode_of(EarlyStopping(metric="val_accuracy")) == "max"
    assert mode_of(EarlyStopping(metric="val_roc_auc")) == "max"
    assert mode_of(EarlyStopping(metric="val_accuracy", mode="min")) == "min"


def test_a_metric_the_epochs_do_not_record_is_a_located_error(tmp_path, capsys):
    with pytest.raises(SpecError) as error:
        gn.train(gn.parse_run(run_document(metric="val_roc_auc")), log=None, progress=False)
    assert error.value.problems[0][0] == "train.early_stopping.metric"
    assert "classification run has no per-epoch metric 'val_roc_auc'" in str(error.value)
    document = run_document(metric="val_acuracy")
    document["train"]["data"]["val_size"] = 0
    run_file = tmp_path / "run.json"
    run_file.write_text(json.dumps(document))
    assert main(["train", str(run_file), "--out", str(tmp_path / "out"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean 'val_accuracy'" in err, err
    document["train"]["early_stopping"]["metric"] = "val_accuracy"
    run_file.write_text(json.dumps(document))
    assert main(["train", str(run_file), "--out", str(tmp_path / "out"), "--no-progress"]) == 1
    assert "early stopping watches the validation split, which is empty" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_init_from_a_stopped_run_starts_from_its_best_epoch(stopped):
    from graphnet.training.init_from import read_initial_model

    run, _, _ = stopped
    served = gn.load_checkpoint(run)
    initial = read_initial_model(str(run), gn.parse_run(run_document()).network)
    for name in ("fc1.W", "fc2.b"):
        np.testing.assert_array_equal(initial.arrays[name], served.params[name])
    np.testing.assert_array_equal(initial.arrays["bn1.running_var"], served.state["bn1.running_var"])


def test_two_classes_may_watch_the_ranking_metrics_and_more_classes_may_not():
    from graphnet.training.early_stopping import check_early_stopping, watched_metrics

    assert {"val_roc_auc", "val_pr_auc"} <= set(watched_metrics("classification", classes=2))
    assert "val_roc_auc" not in watched_metrics("classification", classes=3)
    check_early_stopping(EarlyStopping(metric="val_roc_auc"), "classification", 10, classes=2)
    with pytest.raises(SpecError, match="no per-epoch metric 'val_roc_auc'"):
        check_early_stopping(EarlyStopping(metric="val_roc_auc"), "classification", 10, classes=3)
