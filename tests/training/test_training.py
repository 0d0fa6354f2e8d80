"""gn.train end to end: run folders, exact resume at an epoch boundary, overrides, non-finite
losses, and a short Fashion-MNIST run. Ctrl-C and other processes: tests/system/training/test_training.py."""
from __future__ import annotations

import json
import math
import re
import sys
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

import graphnet as gn
import graphnet.training as training
from graphnet.data import spiral
from graphnet.model.checkpoint import ARRAYS_FILE, read_checkpoint
from graphnet.model.restore import load_checkpoint

from tests._support.extras import HAVE_MATPLOTLIB, HAVE_TQDM
from tests._support.paths import SPECS
from tests._support.resume_runs import BATCH, SPIRAL_TRAIN, assert_same_outcome, comparable, files_of, make_run
from tests._support.resume_runs import reference  # noqa: F401 (a fixture)
from tests._support.task_data import linear_data, separable_blobs, task_run, write_csv, write_npz

FASHION = Path("/usr/share/datasets/fashion-mnist")


# ---- the run folder -------------------------------------------------------------------------


def test_run_folder_contents(reference):
    out = reference.out
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["checkpoint", "history.json", "history.jsonl", "metrics.json", "run.json", "run_id.txt"]
        + (["learning_curve.png", "confusion_matrix.png"] if HAVE_MATPLOTLIB else []))
    assert gn.parse_run((out / "run.json").read_text()) == make_run()
    history = json.loads((out / "history.json").read_text())
    assert history == [asdict(r) for r in reference.history] and len(history) == 6
    assert [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()] == history
    run_id = (out / "run_id.txt").read_text().strip()
    assert len(run_id) == 16 and read_checkpoint(out / "checkpoint")[2]["run"]["id"] == run_id
    assert [r["epoch"] for r in history] == [1, 2, 3, 4, 5, 6]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == reference.metrics
    assert metrics["epochs"] == 6 and metrics["interrupted"] is False
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["final_loss"] == history[-1]["train_loss"]
    if HAVE_MATPLOTLIB:
        assert (out / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not reference.interrupted
    net = load_checkpoint(out / "checkpoint")
    X = np.random.default_rng(0).standard_normal((50, 2)).astype(np.float32)
    assert np.array_equal(net.forward(X), reference.net.forward(X))
    assert not [p for p in out.rglob("*.tmp")]


def test_the_checkpoint_meta_counts_the_history_instead_of_holding_it(reference):
    """The position keeps the keys graphnet always wrote; the history is counted, not embedded."""
    meta = read_checkpoint(reference.out / "checkpoint")[2]
    assert {"position", "history_records", "elapsed", "warnings", "run"} <= set(meta) and "history" not in meta
    assert meta["history_records"] == 6
    assert list(meta["position"]) == ["epoch", "iteration", "data_rng", "loss_sum"]
    assert training.ResumePosition.from_meta(meta["position"]).to_meta() == meta["position"]
    assert meta["run"] == {"id": (reference.out / "run_id.txt").read_text().strip(), "seed": 5, "batch_size": BATCH,
                           "examples": SPIRAL_TRAIN, "labels_crc32": meta["run"]["labels_crc32"]}


def test_the_resume_position_reads_an_older_checkpoint_and_refuses_garbage():
    position = training.ResumePosition(epoch=2, iteration=3, data_rng={"state": 1}, loss_sum=1.5)
    assert position.to_meta() == {"epoch": 2, "iteration": 3, "data_rng": {"state": 1}, "loss_sum": 1.5}
    assert training.ResumePosition.from_meta({"epoch": 4, "iteration": 0}) == training.ResumePosition(4, 0, None, 0.0)
    with pytest.raises(ValueError, match="position 'iteration' is -1"):
        training.ResumePosition.from_meta({"epoch": 1, "iteration": -1})


def test_training_learns_spiral():
    result = gn.train(str(SPECS / "spiral_mlp.json"), epochs=40, log=None, progress=False)
    assert result.out is None and result.metrics["test_accuracy"] >= 0.9
    losses = [r.train_loss for r in result.history]
    assert losses[-1] < 0.5 * losses[0]


def test_same_seed_same_run(reference):
    again = gn.train(make_run(), log=None, progress=False)
    assert comparable(again.history) == comparable(reference.history)
    assert np.array_equal(again.net.store.values, reference.net.store.values)


@pytest.mark.skipif(not HAVE_TQDM, reason="the progress bar needs tqdm (pip install 'graphnet[progress]')")
def test_log_lines_and_progress_bar(capsys):
    lines: list[str] = []
    gn.train(make_run(epochs=2), log=lines.append, progress=True)
    assert lines[0] == "data: train/validation/test splits stratified by class (train.data.options.stratify)"
    assert [line.split()[:2] for line in lines[1:3]] == [["epoch", "1/2"], ["epoch", "2/2"]]
    assert lines[-1].startswith("test accuracy")
    assert "epoch 1/2" in capsys.readouterr().err  # tqdm writes to stderr


# ---- exact resume -----------------------------------------------------------------------------


def test_resume_at_an_epoch_boundary_reproduces_the_run(tmp_path):
    spiral = gn.load(str(SPECS / "spiral_mlp.json"))  # constant rate: the total number of epochs doesn't matter
    full = gn.train(spiral, out=tmp_path / "full", epochs=8, log=None, progress=False)
    gn.train(spiral, out=tmp_path / "part", epochs=3, log=None, progress=False)
    resumed = gn.train(None, resume=tmp_path / "part", epochs=8, log=None, progress=False)
    assert_same_outcome(full, resumed)
    # the extension is recorded, so a later resume knows the run has 8 epochs
    assert gn.parse_run((tmp_path / "part" / "run.json").read_text()).train.epochs == 8


def test_resume_from_a_checkpoint_without_the_shuffle_state(tmp_path, reference):
    """Checkpoints written at an epoch end by graphnet before the fix had data_rng None:
    the shuffles of the finished epochs are replayed."""
    run = make_run(schedule={"kind": "exponential", "decay": 0.8})
    full = gn.train(run, out=tmp_path / "full", log=None, progress=False)
    gn.train(run, out=tmp_path / "part", epochs=2, log=None, progress=False)
    spec, arrays, meta = read_checkpoint(tmp_path / "part" / "checkpoint")
    assert meta["position"]["epoch"] == 2 and meta["position"]["data_rng"] is not None
    meta["position"]["data_rng"] = None
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "part" / "checkpoint" / ARRAYS_FILE, **arrays)
    resumed = gn.train(None, resume=tmp_path / "part", epochs=6, log=None, progress=False)
    assert_same_outcome(full, resumed)


def test_resume_after_completion_changes_nothing(reference, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(reference.out, out)
    before = (out / "checkpoint" / ARRAYS_FILE).read_bytes()
    again = gn.train(None, resume=out, log=None, progress=False)
    assert not again.interrupted
    assert (out / "checkpoint" / ARRAYS_FILE).read_bytes() == before
    assert comparable(again.history) == comparable(reference.history)
    assert again.metrics["test_accuracy"] == reference.metrics["test_accuracy"]
    assert json.loads((out / "history.json").read_text()) == json.loads((reference.out / "history.json").read_text())


def test_resume_needs_a_run_folder_with_a_checkpoint(tmp_path):
    with pytest.raises(gn.SpecError, match="no run.json"):
        gn.train(None, resume=tmp_path, log=None)
    (tmp_path / "run.json").write_text(make_run().to_json())
    (tmp_path / "history.json").write_text("[{}]")  # epochs were trained, but the checkpoint is gone
    with pytest.raises(gn.CheckpointError, match="missing"):
        gn.train(None, resume=tmp_path, log=None)


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_again(tmp_path, reference):
    """A SIGKILL in epoch 1 leaves run.json and no checkpoint: resume trains from the start
    with the saved settings, and ends where an uninterrupted run ends."""
    gn.train(make_run(), out=tmp_path / "run", log=None, progress=False)
    for name in ("checkpoint/weights.npz", "history.json", "metrics.json", "learning_curve.png"):
        (tmp_path / "run" / name).unlink(missing_ok=True)  # network.json stays: a kill between the two checkpoint files
    (tmp_path / "run" / "history.jsonl").write_text("")  # no epoch ended
    lines: list[str] = []
    resumed = gn.train(None, resume=tmp_path / "run", log=lines.append, progress=False)
    assert lines[0] == (f"{tmp_path / 'run'} has no checkpoint yet (training was interrupted before the first "
                        "epoch finished): starting again from epoch 1 with its run.json settings")
    assert_same_outcome(reference, resumed)


@pytest.mark.parametrize("position", [None, 3, {"epoch": -1, "iteration": 0}, {"epoch": 1, "iteration": "2"},
                                      {"epoch": 1, "iteration": 2, "data_rng": "x"},
                                      {"epoch": 1, "iteration": 2, "data_rng": {"state": 1}},
                                      {"epoch": 1, "iteration": 2, "loss_sum": "x"}])
def test_resume_with_a_garbage_position_is_a_checkpoint_error(tmp_path, position):
    gn.train(make_run(epochs=1), out=tmp_path, log=None, progress=False)
    spec, arrays, meta = read_checkpoint(tmp_path / "checkpoint")
    meta["position"] = position
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "checkpoint" / ARRAYS_FILE, **arrays)
    with pytest.raises(gn.CheckpointError) as info:
        gn.train(None, resume=tmp_path, epochs=2, log=None, progress=False)
    assert ARRAYS_FILE in str(info.value)


# ---- what train accepts -----------------------------------------------------------------------


def test_overrides_are_applied_and_recorded(tmp_path):
    result = gn.train(str(SPECS / "spiral_mlp.json"), out=tmp_path, epochs=2, batch_size=16, learning_rate=0.05,
                      data="spiral", log=None, progress=False)
    saved = gn.parse_run((tmp_path / "run.json").read_text()).train
    assert (saved.epochs, saved.batch_size, saved.optimizer.learning_rate) == (2, 16, 0.05)
    assert saved.data_spec().val_size == 0.1  # the rest of the data spec is kept
    assert len(result.history) == 2
    assert read_checkpoint(tmp_path / "checkpoint")[2]["optimizer"]["t"] == 2 * math.ceil(SPIRAL_TRAIN / 16)


@pytest.mark.parametrize("override,field", [
    ({"epochs": 0}, "train.epochs"), ({"epochs": -3}, "train.epochs"), ({"epochs": 2.5}, "train.epochs"),
    ({"epochs": True}, "train.epochs"), ({"epochs": "3"}, "train.epochs"), ({"epochs": 10**9}, "train.epochs"),
    ({"batch_size": 0}, "train.batch_size"), ({"batch_size": 1.5}, "train.batch_size"),
    ({"learning_rate": 0.0}, "train.optimizer.learning_rate"),
    ({"learning_rate": -1e-3}, "train.optimizer.learning_rate"),
    ({"learning_rate": float("nan")}, "train.optimizer.learning_rate"),
    ({"learning_rate": float("inf")}, "train.optimizer.learning_rate"),
    ({"learning_rate": "fast"}, "train.optimizer.learning_rate"),
    ({"data": ""}, "train.data"),
])
def test_bad_overrides_are_spec_errors(override, field, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no serializer warnings on the way
        with pytest.raises(gn.SpecError) as info:
            gn.train(str(SPECS / "spiral_mlp.json"), out=tmp_path / "run", log=None, progress=False, **override)
    assert field in str(info.value)
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_unknown_data_override_is_a_data_error():
    with pytest.raises(gn.DataError, match="no-such-data"):
        gn.train(str(SPECS / "spiral_mlp.json"), data="no-such-data", log=None)


def test_a_network_spec_is_not_a_run(tmp_path):
    with pytest.raises(gn.SpecError) as info:
        gn.train(str(SPECS / "two_layer_net.json"), out=tmp_path / "x", log=None)
    message = str(info.value)
    assert "specs/two_layer_net.json" in message and "network spec" in message and '"train"' in message
    with pytest.raises(gn.SpecError, match="network spec"):
        gn.train(gn.load(str(SPECS / "two_layer_net.json")), log=None)
    with pytest.raises(TypeError, match="RunSpec"):
        gn.train(None, log=None)  # type: ignore[arg-type]
    assert not (tmp_path / "x").exists()


# ---- non-finite losses --------------------------------------------------------------------------


def sgd_spiral(learning_rate: float, epochs: int) -> gn.RunSpec:
    return make_run(epochs=epochs, network=gn.load(str(SPECS / "spiral_mlp.json")).network.model_dump(mode="json"),
                    optimizer={"rule": "sgd", "learning_rate": learning_rate}, schedule={"kind": "constant"})


def test_exploding_training_stops_with_a_non_finite_error(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the overflow is reported by the error, not by numpy warnings
        with pytest.raises(gn.NonFiniteError) as info:
            gn.train(sgd_spiral(1e6, 5), out=tmp_path, log=None, progress=False)
    message = str(info.value)
    assert message.startswith("epoch 1, iteration ")
    assert "at step " in message and "first non-finite value at node fc" in message
    assert "no checkpoint was written yet" in message  # it does not point at a checkpoint that isn't there
    assert not (tmp_path / "checkpoint").exists()


def test_last_good_checkpoint_survives_a_non_finite_loss(tmp_path):
    good = gn.train(sgd_spiral(0.1, 2), out=tmp_path, log=None, progress=False)
    before = (tmp_path / "checkpoint" / ARRAYS_FILE).read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(gn.NonFiniteError) as info:  # continue at a rate of a million
            gn.train(None, resume=tmp_path, epochs=5, learning_rate=1e6, log=None, progress=False)
    message = str(info.value)
    assert message.startswith("epoch 3, iteration ") and "node fc" in message
    assert f"the last good checkpoint is {tmp_path / 'checkpoint'}" in message
    assert (tmp_path / "checkpoint" / ARRAYS_FILE).read_bytes() == before
    net = load_checkpoint(tmp_path / "checkpoint")
    for name in good.net.params:  # exactly the parameters after the last good epoch
        assert np.array_equal(net.params[name], good.net.params[name]), name
        assert np.all(np.isfinite(net.params[name]))
    assert json.loads((tmp_path / "history.json").read_text()) == [asdict(r) for r in good.history]


def test_an_earlier_runs_checkpoint_is_not_called_last_good(tmp_path):
    gn.train(sgd_spiral(0.1, 1), out=tmp_path, log=None, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(gn.NonFiniteError) as info:  # a new run over the folder, diverging at once
            gn.train(sgd_spiral(1e6, 2), out=tmp_path, overwrite=True, log=None, progress=False)
    message = str(info.value)
    assert message.startswith("epoch 1, iteration ") and "last good" not in message
    assert message.endswith("; no checkpoint was written yet")
    assert not (tmp_path / "checkpoint" / ARRAYS_FILE).exists()  # --overwrite removed the earlier run's


def test_resume_refuses_a_run_json_whose_network_was_edited(tmp_path):
    gn.train(sgd_spiral(0.1, 1), out=tmp_path, log=None, progress=False)
    run = json.loads((tmp_path / "run.json").read_text())
    run["network"]["nodes"][0]["activation"] = "tanh"  # the same shapes: the weights would load
    (tmp_path / "run.json").write_text(json.dumps(run))
    with pytest.raises(gn.CheckpointError) as info:
        gn.train(None, resume=tmp_path, epochs=2, log=None, progress=False)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'run.json'}: its network differs from the checkpoint's "
                              f"({tmp_path / 'checkpoint' / 'network.json'}) at nodes[0].activation: \"tanh\" vs "
                              f"\"relu\"; the weights were trained with the checkpoint's network")
    assert "undo the edit to resume, or train the edited run file as a new run" in message


def test_resume_accepts_a_run_json_with_cosmetic_edits(tmp_path):
    gn.train(sgd_spiral(0.1, 1), out=tmp_path, log=None, progress=False)
    run = json.loads((tmp_path / "run.json").read_text())
    run["network"]["description"] = "a note added after training"
    (tmp_path / "run.json").write_text(json.dumps(run))
    result = gn.train(None, resume=tmp_path, epochs=2, log=None, progress=False)
    assert len(result.history) == 2


# ---- Fashion-MNIST ----------------------------------------------------------------------------


# ---- regression and binary tasks -----------------------------------------------------------

SCORES = ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "log_loss")
CLASSIFICATION_KEYS = {f"{split}_{name}" for split in ("test", "val", "train") for name in SCORES} | {
    "test_per_class", "test_confusion_matrix", "val_per_class", "val_confusion_matrix",
    "test_loss", "val_loss", "final_loss", "epochs", "wall_time_seconds", "interrupted", "warnings"}
BINARY_KEYS = CLASSIFICATION_KEYS | {f"{split}_{name}" for split in ("test", "val", "train")
                                     for name in ("roc_auc", "pr_auc")} | {"decision_threshold"}
RECORD_KEYS = {"epoch", "train_loss", "val_loss", "learning_rate", "seconds"}
CLASSIFICATION_RECORD_KEYS = RECORD_KEYS | {"train_accuracy", "val_accuracy", "val_balanced_accuracy", "val_f1_macro",
                                            "val_f1_weighted", "val_log_loss", "val_roc_auc", "val_pr_auc"}


def test_classification_metrics_gain_only_test_loss(reference):
    metrics = reference.metrics
    assert set(metrics) == CLASSIFICATION_KEYS
    run = make_run()
    data = training.load_data(run.train.data_spec(), run.train.seed, "float32", (2,), training.label_of(run.network))
    # the eval-mode loss over the whole test split (l2 term included)
    assert metrics["test_loss"] == pytest.approx(reference.net.evaluate_loss(data["X_test"], data["y_test"]),
                                                 rel=1e-6)
    assert set(json.loads((reference.out / "history.json").read_text())[0]) == CLASSIFICATION_RECORD_KEYS


def test_regression_trains_from_a_csv_with_a_float_target(tmp_path):
    data = write_csv(tmp_path / "linear.csv", *linear_data())
    lines: list[str] = []
    result = gn.train(gn.parse_run(task_run("regression", str(data), features=3)), out=tmp_path / "run",
                      log=lines.append, progress=False)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(metrics) == {f"{split}_{name}" for split in ("test", "val", "train") for name in ("rmse", "mae", "r2")} \
        | {"test_loss", "val_loss", "final_loss", "epochs", "wall_time_seconds", "interrupted", "warnings"}
    assert metrics["test_r2"] > 0.9 and metrics["val_r2"] > 0.9, metrics
    assert metrics["test_loss"] == pytest.approx(metrics["test_rmse"] ** 2, rel=1e-4)  # mse, no l2
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert set(history[0]) == RECORD_KEYS | {"train_rmse", "train_r2", "val_rmse", "val_r2", "val_mae"}
    assert history[-1]["val_rmse"] < 0.5 * history[0]["val_rmse"]
    assert history == [asdict(r) for r in result.history]
    assert "val RMSE" in lines[0] and "val R2" in lines[0] and "%" not in lines[0]
    assert lines[-1].startswith("test RMSE")


def test_binary_trains_from_an_npz_of_0_1_labels(tmp_path):
    data = write_npz(tmp_path / "blobs.npz", *separable_blobs())
    result = gn.train(gn.parse_run(task_run("binary", str(data), features=2)), out=tmp_path / "run",
                      log=None, progress=False)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(metrics) == BINARY_KEYS
    assert metrics["test_accuracy"] > 0.8 and metrics["val_accuracy"] > 0.8, metrics
    assert result.history[-1].train_accuracy > 0.8
    assert metrics["test_loss"] < 0.5  # a binary cross-entropy well under chance's log 2


def test_binary_targets_outside_0_1_are_a_data_error(tmp_path):
    X, y = separable_blobs()
    data = write_npz(tmp_path / "wide.npz", X, 3.0 * y)
    with pytest.raises(gn.DataError, match=r"train targets span \[0, 3\] but sigmoid_binary_cross_entropy "
                                          r"needs targets in \[0, 1\]"):
        gn.train(gn.parse_run(task_run("binary", str(data), features=2)), log=None, progress=False)


def test_a_target_of_the_wrong_width_names_the_file(tmp_path):
    X, y = linear_data()
    data = write_npz(tmp_path / "wide.npz", X, np.c_[y, y])
    with pytest.raises(gn.DataError, match=r"wide.npz: y_train: targets have shape \(320, 2\), but the label "
                                          r"declares shape \[1\]"):
        gn.train(gn.parse_run(task_run("regression", str(data), features=3)), log=None, progress=False)


def test_zoo_binary_mlp_trains_on_two_blobs_without_files():
    result = gn.train(str(SPECS / "binary_mlp.json"), log=None, progress=False)
    assert result.metrics["test_accuracy"] > 0.8, result.metrics
    assert result.net.predict(np.zeros((3, 2), np.float32)).shape == (3,)


def test_regression_resume_restores_its_records(tmp_path):
    data = write_csv(tmp_path / "linear.csv", *linear_data())
    run = gn.parse_run(task_run("regression", str(data), features=3, epochs=4))
    full = gn.train(run, out=tmp_path / "full", log=None, progress=False)
    gn.train(run, out=tmp_path / "part", epochs=2, log=None, progress=False)
    resumed = gn.train(None, resume=tmp_path / "part", epochs=4, log=None, progress=False)
    assert comparable(resumed.history) == comparable(full.history)
    assert all(isinstance(r, training.RegressionEpochRecord) for r in resumed.history)


@pytest.mark.slow
@pytest.mark.skipif(not FASHION.is_dir(), reason=f"Fashion-MNIST is not installed at {FASHION} "
                                                  "(Debian package dataset-fashion-mnist)")
def test_fashion_mnist_one_epoch_beats_80_percent(tmp_path):
    result = gn.train(str(SPECS / "fashion_mlp.json"), out=tmp_path, epochs=1, log=None, progress=False)
    assert result.metrics["test_accuracy"] > 0.80, result.metrics
    assert result.history[0].val_accuracy > 0.80
    assert gn.parse_run((tmp_path / "run.json").read_text()).train.epochs == 1
    net = load_checkpoint(tmp_path / "checkpoint", batch_size=256)
    X = np.random.default_rng(0).random((256, 784), dtype=np.float32)
    assert np.array_equal(net.forward(X), result.net.forward(X))


def test_without_matplotlib_the_curve_is_skipped_with_a_note(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    history = [training.EpochRecord(epoch=1, train_loss=1.0, train_accuracy=0.5, val_loss=None, val_accuracy=None,
                                    learning_rate=0.1, seconds=0.1)]
    note = training.plot_learning_curve(history, tmp_path / "learning_curve.png")
    assert note is not None and "pip install 'graphnet[plot]'" in note
    assert not (tmp_path / "learning_curve.png").exists()


# ---- the run folder is the user's: refusal, overwrite, lock -------------------------------------


def test_an_existing_run_folder_is_refused_unless_overwrite(tmp_path):
    out = tmp_path / "run"
    gn.train(make_run(epochs=3), out=out, log=None, progress=False)
    (out / "notes.txt").write_text("my own notes")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(gn.RunFolderError) as info:
        gn.train(make_run(epochs=1), out=out, log=None, progress=False)
    # said in the caller's terms: Python keyword arguments here, flags on the command line (test_cli_train)
    assert str(info.value) == (f"{out}: run folder exists (pass resume={str(out)!r} to continue it or "
                               "overwrite=True to replace it)")
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before

    (out / "checkpoint" / "mine.txt").write_text("also mine")
    result = gn.train(make_run(epochs=1), out=out, overwrite=True, log=None, progress=False)
    assert len(json.loads((out / "history.json").read_text())) == 1 and result.metrics["epochs"] == 1
    assert (out / "notes.txt").read_text() == "my own notes"  # only graphnet's files are replaced
    assert (out / "checkpoint" / "mine.txt").read_text() == "also mine"
    assert read_checkpoint(out / "checkpoint")[2]["position"]["epoch"] == 1
    assert not (out / ".lock").exists()


def test_an_empty_folder_is_fine_and_a_file_is_not_a_folder(tmp_path):
    gn.train(make_run(epochs=1), out=tmp_path, log=None, progress=False)  # exists, empty
    (tmp_path / "file").write_text("x")
    with pytest.raises(gn.RunFolderError, match="exists and is not a folder"):
        gn.train(make_run(epochs=1), out=tmp_path / "file", log=None, progress=False)


# ---- overrides of a resume are saved once they have worked ----------------------------------------


def test_a_failed_override_is_not_saved_for_the_next_resume(tmp_path):
    gn.train(sgd_spiral(0.1, 2), out=tmp_path, log=None, progress=False)
    saved = (tmp_path / "run.json").read_text()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(gn.NonFiniteError):
            gn.train(None, resume=tmp_path, epochs=5, learning_rate=1e30, log=None, progress=False)
    assert (tmp_path / "run.json").read_text() == saved  # a plain resume uses the settings that worked
    result = gn.train(None, resume=tmp_path, epochs=3, log=None, progress=False)
    assert len(result.history) == 3
    settings = gn.parse_run((tmp_path / "run.json").read_text()).train
    assert (settings.epochs, settings.optimizer.learning_rate) == (3, 0.1)


# ---- the data path is stored absolute ---------------------------------------------------------------


def spiral_csv(path: Path) -> Path:
    X, y = spiral(seed=0)
    rows = ["x0,x1,label"] + [f"{a:.6f},{b:.6f},{c}" for (a, b), c in zip(X, y)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_relative_data_path_is_stored_absolute(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    spiral_csv(tmp_path / "data" / "d.csv")
    monkeypatch.chdir(tmp_path)
    run = make_run(epochs=1).model_dump(mode="json", by_alias=True, exclude_none=True)
    run["train"]["data"] = "data/d.csv"
    gn.train(gn.parse_run(run), out="run", log=None, progress=False)
    saved = gn.parse_run((tmp_path / "run" / "run.json").read_text()).train.data_spec()
    assert saved.name == str(tmp_path / "data" / "d.csv")
    monkeypatch.chdir(tmp_path / "data")  # elsewhere: the resume still finds the data
    assert len(gn.train(None, resume=tmp_path / "run", epochs=2, log=None, progress=False).history) == 2


@pytest.mark.parametrize("name", ["spiral", "blobs"])
def test_data_set_names_are_stored_as_names(tmp_path, name):
    run = make_run(epochs=1).model_dump(mode="json", by_alias=True, exclude_none=True)
    run["train"]["data"] = {"name": name, "val_size": 0.1}
    (tmp_path / name).mkdir()  # a folder of that name in the working directory does not matter
    gn.train(gn.parse_run(run), out=tmp_path / "run", log=None, progress=False)
    assert gn.parse_run((tmp_path / "run" / "run.json").read_text()).train.data_spec().name == name


# ---- divergence -------------------------------------------------------------------------------------


def test_a_diverging_loss_is_warned_about_once(tmp_path):
    lines: list[str] = []
    run = make_run(epochs=3, optimizer={"rule": "adam", "learning_rate": 1e6}, schedule={"kind": "constant"})
    result = gn.train(run, out=tmp_path, log=lines.append, progress=False)
    warned = [line for line in lines if line.startswith("warning:")]
    assert len(warned) == 1, lines
    assert "the training loss diverged" in warned[0] and "try a lower learning rate" in warned[0]
    assert result.metrics["warnings"] == [warned[0].removeprefix("warning: ")]
    assert json.loads((tmp_path / "metrics.json").read_text())["warnings"] == result.metrics["warnings"]
    # and a resumed run keeps the warning without repeating it
    lines.clear()
    again = gn.train(None, resume=tmp_path, epochs=4, log=lines.append, progress=False)
    assert not [line for line in lines if line.startswith("warning:")]
    assert again.metrics["warnings"] == result.metrics["warnings"]


def test_the_divergence_warning_quotes_the_rate_that_was_set_and_its_schedule():
    # the cosine schedule has moved the rate by the end of the epoch: the user set 1e6
    lines: list[str] = []
    run = make_run(epochs=3, optimizer={"rule": "adam", "learning_rate": 1e6},
                   schedule={"kind": "cosine", "min_lr": 1e-4})
    gn.train(run, log=lines.append, progress=False)
    [warned] = [line for line in lines if line.startswith("warning:")]
    assert re.search(r"\(it was set to 1e\+06, with the cosine schedule; \S+ at the end of epoch \d+\)$", warned), warned


def test_the_divergence_warning_names_no_schedule_for_a_constant_rate():
    lines: list[str] = []
    run = make_run(epochs=3, optimizer={"rule": "adam", "learning_rate": 1e6}, schedule={"kind": "constant"})
    gn.train(run, log=lines.append, progress=False)
    [warned] = [line for line in lines if line.startswith("warning:")]
    assert warned.endswith("try a lower learning rate (it was set to 1e+06)"), warned


def test_healthy_training_has_no_warnings(reference):
    assert reference.metrics["warnings"] == []


def test_a_last_batch_of_one_example_is_dropped_with_batchnorm():
    """216 examples in batches of 43: five of 43 and one of 1, which batchnorm cannot train on."""
    assert SPIRAL_TRAIN % 43 == 1
    result = gn.train(make_run(epochs=2), batch_size=43, log=None, progress=False)
    assert [record.epoch for record in result.history] == [1, 2]
    assert all(math.isfinite(record.train_loss) for record in result.history)


@pytest.mark.parametrize("examples, batch, fewest, expected", [
    (216, 43, 2, 5), (216, 43, 1, 6), (216, 32, 2, 7), (1, 32, 2, 1), (64, 32, 2, 2), (65, 1, 2, 65)])
def test_batches_per_epoch(examples, batch, fewest, expected):
    assert training.batches_per_epoch(examples, batch, fewest) == expected


def test_on_epoch_sees_each_record_after_its_checkpoint(tmp_path):
    out = tmp_path / "run"
    seen = []

    def on_epoch(record):
        meta = read_checkpoint(out / "checkpoint")[2]
        seen.append((record, meta["position"]["epoch"], len((out / "history.jsonl").read_text().splitlines())))

    result = gn.train(make_run(epochs=3), out=out, log=None, on_epoch=on_epoch)
    assert [record for record, _, _ in seen] == result.history
    assert [(epoch, written) for _, epoch, written in seen] == [(1, 1), (2, 2), (3, 3)]


def test_an_exception_from_on_epoch_stops_training_and_keeps_the_checkpoint(tmp_path):
    out = tmp_path / "run"

    class Stop(Exception):
        pass

    def stop_after_two(record):
        if record.epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        gn.train(make_run(epochs=5), out=out, log=None, on_epoch=stop_after_two)
    assert read_checkpoint(out / "checkpoint")[2]["position"]["epoch"] == 2
    assert not (out / ".lock").exists()
    resumed = gn.train(None, resume=out, log=None)  # the folder is a usable run folder
    assert [record.epoch for record in resumed.history] == [1, 2, 3, 4, 5]


# ---- training on arrays (gn.train(run, data=dict)) -------------------------------------------------


def _array_run(epochs: int = 3) -> gn.RunSpec:
    from tests._support.task_data import classifier_run

    return gn.parse_run(classifier_run("unused.csv", epochs=epochs))


def _arrays() -> dict[str, np.ndarray]:
    from tests._support.task_data import SPECIES, named_classes

    X, names = named_classes(300)
    y = np.searchsorted(SPECIES, names)
    return {"X_train": X[:240], "y_train": y[:240], "X_test": X[240:], "y_test": y[240:]}


def test_train_on_an_in_memory_dict_matches_the_same_arrays_in_a_file(tmp_path):
    arrays = _arrays()
    np.savez(tmp_path / "same.npz", **arrays)
    from_file = gn.train(gn.parse_run({**json.loads(_array_run().model_dump_json()),
                                       "train": {**json.loads(_array_run().train.model_dump_json()),
                                                 "data": {"name": str(tmp_path / "same.npz"),
                                                          "normalize": "standardize"}}}),
                         out=tmp_path / "file", log=None, progress=False)
    in_memory = gn.train(_array_run(), out=tmp_path / "memory", data=arrays, log=None, progress=False)
    assert [r.train_loss for r in in_memory.history] == [r.train_loss for r in from_file.history]
    assert in_memory.metrics["test_accuracy"] == from_file.metrics["test_accuracy"]
    saved = json.loads((tmp_path / "memory" / "run.json").read_text())
    assert saved["train"]["data"]["name"] == "<in-memory>"
    net = gn.load_checkpoint(tmp_path / "memory")
    assert net.preprocessing.mode == "standardize"
    np.testing.assert_array_equal(net.predict(arrays["X_test"]), from_file.net.predict(arrays["X_test"]))


def test_train_takes_a_run_document_and_arrays_with_text_labels(tmp_path):
    """gn.train takes a dict as gn.compile does, and text labels in data= as the CSV loader
    does: class names in sorted order, kept with the model."""
    from tests._support.task_data import SPECIES, named_classes

    X, names = named_classes(300)
    document = json.loads(_array_run().model_dump_json())
    result = gn.train(document, data={"X_train": X[:240], "y_train": names[:240], "X_test": X[240:],
                                      "y_test": names[240:]}, log=None, progress=False)
    assert result.net.class_names == SPECIES
    assert result.metrics["test_accuracy"] == np.mean(result.net.predict(X[240:]) == names[240:]) > 0.9
    with pytest.raises(gn.DataError, match=r"data=: y_test\[0\] is 'rose', not one of the classes 'setosa'"):
        gn.train(document, data={"X_train": X[:240], "y_train": names[:240], "X_test": X[240:241],
                                 "y_test": np.array(["rose"])}, log=None, progress=False)


def test_train_on_arrays_without_a_test_split_or_with_a_validation_split(tmp_path):
    arrays = _arrays()
    result = gn.train(_array_run(), data={k: arrays[k] for k in ("X_train", "y_train")}, log=None, progress=False)
    assert result.metrics["test_accuracy"] is None and result.metrics["val_accuracy"] is not None
    given = {**arrays, "X_val": arrays["X_test"][:10], "y_val": arrays["y_test"][:10]}
    result = gn.train(_array_run(), data=given, log=None, progress=False)
    assert result.metrics["val_accuracy"] is not None
    with pytest.raises(gn.DataError, match="data=: missing y_train"):
        gn.train(_array_run(), data={"X_train": arrays["X_train"]}, log=None, progress=False)


def test_resuming_an_in_memory_run_needs_the_data_again(tmp_path):
    arrays = _arrays()
    gn.train(_array_run(epochs=2), out=tmp_path / "run", data=arrays, log=None, progress=False)
    with pytest.raises(gn.SpecError, match=r"trained on in-memory data.*data=") as error:
        gn.train(None, resume=tmp_path / "run", epochs=3, log=None, progress=False)
    assert str(tmp_path / "run") in str(error.value)
    resumed = gn.train(None, resume=tmp_path / "run", epochs=3, data=arrays, log=None, progress=False)
    assert len(resumed.history) == 3


def test_the_bytes_an_epoch_end_writes_do_not_grow_with_the_epochs(tmp_path, monkeypatch):
    """Every atomic write (checkpoint, history.json, run.json) is counted: between two epoch
    ends the same bytes are written at epoch 2 and at epoch 12 (the meta counts the history,
    history.json is written when the loop is left)."""
    import graphnet.system.fileio as fileio

    written = [0]
    real = fileio.write_bytes_atomic

    def counting(path, data):
        written[0] += len(data)
        return real(path, data)

    monkeypatch.setattr(fileio, "write_bytes_atomic", counting)
    marks: list[int] = []
    gn.train(make_run(epochs=12), out=tmp_path / "run", log=None, progress=False,
             on_epoch=lambda record: marks.append(written[0]))
    per_epoch = np.diff(marks)
    assert per_epoch.max() - per_epoch.min() < 128, per_epoch
    lines = (tmp_path / "run" / "history.jsonl").read_bytes().splitlines()
    assert len(lines) == 12 and max(map(len, lines)) - min(map(len, lines)) < 32  # one record a line


# ---- a checkpoint belongs to its run ------------------------------------------------------------------


def with_train(run: gn.RunSpec, **train) -> gn.RunSpec:
    document = json.loads(run.model_dump_json())
    document["train"].update(train)
    return gn.parse_run(document)


def test_resume_refuses_the_checkpoint_of_another_run_naming_what_differs(tmp_path):
    """weights.npz copied from a run of the same spec with another seed: refused, and the run
    folder is left as it was (its history is not replaced by the other run's)."""
    mine, other = tmp_path / "mine", tmp_path / "other"
    gn.train(make_run(epochs=2), out=mine, log=None, progress=False)
    gn.train(with_train(make_run(epochs=3), seed=6), out=other, log=None, progress=False)
    metas = {folder: read_checkpoint(folder / "checkpoint")[2] for folder in (mine, other)}
    (mine / "checkpoint" / ARRAYS_FILE).write_bytes((other / "checkpoint" / ARRAYS_FILE).read_bytes())
    before = files_of(mine)
    with pytest.raises(gn.CheckpointError) as info:
        gn.train(None, resume=mine, epochs=4, log=None, progress=False)
    crc = {folder: meta["run"]["labels_crc32"] for folder, meta in metas.items()}
    # spiral's examples come class by class, so splits stratified by class keep the same labels in the same order
    assert crc[mine] == crc[other]
    mine_id, other_id = ((folder / "run_id.txt").read_text().strip() for folder in (mine, other))
    assert str(info.value) == (
        f"{mine / 'checkpoint' / ARRAYS_FILE}: not a checkpoint of the run in {mine}: it has run id {other_id} "
        f"(run_id.txt: {mine_id}); seed 6 (run.json: 5); resuming would "
        f"continue another run's trajectory and replace this run's history: resume the run folder it comes "
        f"from (or restore this run's data and settings), or train this run anew")
    assert files_of(mine) == before


def test_a_run_of_the_same_settings_is_told_apart_by_its_run_id(tmp_path):
    mine, twin = tmp_path / "mine", tmp_path / "twin"
    for folder in (mine, twin):
        gn.train(make_run(epochs=1), out=folder, log=None, progress=False)
    (mine / "checkpoint" / ARRAYS_FILE).write_bytes((twin / "checkpoint" / ARRAYS_FILE).read_bytes())
    with pytest.raises(gn.CheckpointError) as info:
        gn.train(None, resume=mine, epochs=2, log=None, progress=False)
    assert f"it has run id {(twin / 'run_id.txt').read_text().strip()} (run_id.txt: " in str(info.value)
    assert "seed" not in str(info.value)


def test_resume_refuses_a_run_json_whose_batch_size_was_edited(tmp_path):
    gn.train(make_run(epochs=1), out=tmp_path, log=None, progress=False)
    run = json.loads((tmp_path / "run.json").read_text())
    run["train"]["batch_size"] = 16
    (tmp_path / "run.json").write_text(json.dumps(run))
    with pytest.raises(gn.CheckpointError, match=r"it has batch size 32 \(run.json: 16\); resuming would"):
        gn.train(None, resume=tmp_path, epochs=2, log=None, progress=False)


def test_resume_on_other_training_data_is_refused(tmp_path):
    arrays = _arrays()
    gn.train(_array_run(epochs=1), out=tmp_path / "run", data=arrays, log=None, progress=False)
    fewer = {key: value[:200] if key.endswith("_train") else value for key, value in arrays.items()}
    with pytest.raises(gn.CheckpointError) as info:
        gn.train(None, resume=tmp_path / "run", epochs=2, data=fewer, log=None, progress=False)
    crc = read_checkpoint(tmp_path / "run" / "checkpoint")[2]["run"]["labels_crc32"]
    # the validation split is taken from X_train: 216 of 240 rows train, 180 of 200
    assert f"it has training data of 216 examples with labels CRC-32 {crc} (the data now: 180 examples, " \
        in str(info.value)
    shuffled = {**arrays, "y_train": arrays["y_train"][::-1]}  # the same size, other labels
    with pytest.raises(gn.CheckpointError, match="training data of 216 examples"):
        gn.train(None, resume=tmp_path / "run", epochs=2, data=shuffled, log=None, progress=False)
    assert len(gn.train(None, resume=tmp_path / "run", epochs=2, data=arrays, log=None, progress=False).history) == 2


def test_a_folder_without_its_run_id_file_adopts_the_checkpoints(tmp_path):
    gn.train(make_run(epochs=1), out=tmp_path, log=None, progress=False)
    saved = (tmp_path / "run_id.txt").read_text()
    (tmp_path / "run_id.txt").unlink()
    assert len(gn.train(None, resume=tmp_path, epochs=2, log=None, progress=False).history) == 2
    assert (tmp_path / "run_id.txt").read_text() == saved


# ---- a run that never trained does not block its rerun ----------------------------------------------


def test_labels_out_of_range_leave_no_run_folder_and_the_rerun_says_the_same(tmp_path):
    X = np.random.default_rng(0).standard_normal((100, 2))
    data = write_npz(tmp_path / "five.npz", X, np.arange(100) % 5, test=20)  # the network has 3 classes
    run = with_train(make_run(epochs=1), data=str(data))
    out = tmp_path / "runs" / "run"
    for _ in range(2):  # the same command again: the same error, not "run folder exists"
        with pytest.raises(gn.DataError, match=r"five.npz: y_train\[3\]: label 3: out of range 0..2 \(3 classes\)"):
            gn.train(run, out=out, log=None, progress=False)
        assert not out.exists()
    out.mkdir(parents=True)  # a folder the user made is kept, empty
    with pytest.raises(gn.DataError):
        gn.train(run, out=out, log=None, progress=False)
    assert out.is_dir() and list(out.iterdir()) == []


def test_a_loss_that_is_not_finite_before_the_first_checkpoint_leaves_nothing(tmp_path):
    out = tmp_path / "run"
    for _ in range(2):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(gn.NonFiniteError, match="no checkpoint was written yet"):
                gn.train(sgd_spiral(1e6, 2), out=out, log=None, progress=False)
        assert not out.exists()
    assert len(gn.train(sgd_spiral(0.1, 1), out=out, log=None, progress=False).history) == 1


def test_a_fresh_run_takes_over_a_folder_whose_run_never_trained(tmp_path):
    """What a SIGKILL during epoch 1 leaves (run.json, run_id.txt, an empty log, network.json):
    the same command again trains, saying so."""
    out = tmp_path / "run"
    gn.train(make_run(epochs=1), out=out, log=None, progress=False)
    for name in ("checkpoint/weights.npz", "history.json", "metrics.json", "learning_curve.png"):
        (out / name).unlink(missing_ok=True)
    (out / "history.jsonl").write_text("")
    lines: list[str] = []
    result = gn.train(make_run(epochs=2), out=out, log=lines.append, progress=False)
    assert lines[0] == f"{out}: replacing the run it holds, which never trained (no checkpoint)"
    assert len(result.history) == 2 and gn.parse_run((out / "run.json").read_text()).train.epochs == 2


@pytest.mark.parametrize("change", [{"history_records": -1}, {"history_records": "2"}, {"history_records": True},
                                    {"history": 3}, {"history": [{"epoch": 1}]}, {"run": "x"},
                                    {"run": {"id": 5}}, {"run": {"batch_size": "32"}}],
                         ids=lambda change: json.dumps(change))
def test_resume_with_a_garbage_training_meta_is_a_checkpoint_error(tmp_path, change):
    gn.train(make_run(epochs=1), out=tmp_path, log=None, progress=False)
    spec, arrays, meta = read_checkpoint(tmp_path / "checkpoint")
    arrays["meta"] = np.array(json.dumps({**meta, **change}))
    np.savez(tmp_path / "checkpoint" / ARRAYS_FILE, **arrays)
    with pytest.raises(gn.CheckpointError) as info:
        gn.train(None, resume=tmp_path, epochs=2, log=None, progress=False)
    assert str(info.value).startswith(f"{tmp_path / 'checkpoint' / ARRAYS_FILE}: the training state in its meta "
                                      "is unusable: ")
