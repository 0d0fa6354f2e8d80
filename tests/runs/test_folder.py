"""Run-folder helpers: refusing a used folder, clearing graphnet's files only, telling an
early-killed run, absolute data paths."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import graphnet as gn
from graphnet.runs.folder import (
    RUN_FILES,
    clear_run_files,
    holds_untrained_run,
    interrupted_before_first_epoch,
    read_run_id,
    refuse_existing,
    remove_folder_if_empty,
    with_absolute_data,
    write_history,
    write_metrics,
    write_run_id,
    write_run_spec,
)
from graphnet.spec import TrainSpec
from graphnet.training import EpochRecord

from tests._support.paths import SPECS


def spiral_run(data) -> gn.RunSpec:
    document = json.loads((SPECS / "spiral_mlp.json").read_text())
    del document["$schema"]
    document["train"]["data"] = data
    return gn.parse_run(document)


def test_refuse_existing(tmp_path):
    refuse_existing(tmp_path / "new")  # missing: fine
    refuse_existing(tmp_path)  # empty: fine
    (tmp_path / ".lock").write_text("1 host")
    refuse_existing(tmp_path)  # only a lock file: fine (the lock decides)
    (tmp_path / "anything").write_text("")
    with pytest.raises(gn.RunFolderError, match="run folder exists"):
        refuse_existing(tmp_path)
    refuse_existing(tmp_path, overwrite=True)
    with pytest.raises(gn.RunFolderError, match="exists and is not a folder"):
        refuse_existing(tmp_path / "anything", overwrite=True)


def test_clear_run_files_keeps_everything_else(tmp_path):
    graphnets = ["run.json", "run_id.txt", "history.jsonl", "history.json", "metrics.json", "learning_curve.png",
                 "checkpoint/network.json", "checkpoint/weights.npz", "checkpoint/.weights.npz.999999999.abcd1234.tmp"]
    users = ["notes.txt", "checkpoint/extra.npz", "plots/curve.png"]
    for name in graphnets + users:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / "history.json").unlink()
    (tmp_path / "history.json").mkdir()  # a folder in place of a file is not graphnet's
    clear_run_files(tmp_path)
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == sorted(users)
    assert (tmp_path / "history.json").is_dir()
    clear_run_files(tmp_path / "checkpoint" / "nothing-here")  # a folder without the files: no error


def test_checkpoint_folder_goes_when_emptied(tmp_path):
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "weights.npz").write_text("x")
    clear_run_files(tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("files,expected", [
    ({"run.json": "{}"}, True),
    ({"run.json": "{}", "history.json": "[]", "checkpoint/network.json": "{}"}, True),
    ({"run.json": "{}", "history.json": "[{}]"}, False),  # epochs were done: a lost checkpoint
    ({"run.json": "{}", "history.jsonl": ""}, True),
    ({"run.json": "{}", "history.jsonl": "{}\n"}, False),  # an epoch was recorded: a lost checkpoint
    ({"run.json": "{}", "checkpoint/weights.npz": ""}, False),
    ({}, False),
])
def test_interrupted_before_first_epoch(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert interrupted_before_first_epoch(tmp_path) is expected


def test_data_paths_become_absolute_and_names_stay(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("x0,x1,label\n0,0,0\n")
    (tmp_path / "t.csv").write_text("x0,x1,label\n0,0,0\n")
    assert with_absolute_data(spiral_run("d.csv")).train.data == str(tmp_path / "d.csv")
    made = with_absolute_data(spiral_run({"name": "./d.csv", "options": {"test_file": "t.csv"}, "val_size": 3}))
    spec = made.train.data_spec()
    assert (spec.name, spec.options, spec.val_size) == (str(tmp_path / "d.csv"), {"test_file": str(tmp_path / "t.csv")}, 3)
    for kept in ("spiral", "no-such-data", "missing.csv"):
        run = spiral_run(kept)
        assert with_absolute_data(run) is run


def test_the_run_folder_writers_write_what_graphnet_reads_back(tmp_path):
    run = spiral_run("spiral")
    record = EpochRecord(epoch=1, train_loss=0.5, train_accuracy=0.75, val_accuracy=None, val_loss=None,
                         learning_rate=0.01, seconds=0.25)
    write_run_spec(tmp_path, run)
    write_history(tmp_path, [record])
    write_metrics(tmp_path, {"test_accuracy": 0.5, "warnings": []})
    assert gn.parse_run((tmp_path / "run.json").read_text()) == run
    assert json.loads((tmp_path / "history.json").read_text()) == [
        {"epoch": 1, "train_loss": 0.5, "train_accuracy": 0.75, "val_accuracy": None, "val_loss": None,
         "learning_rate": 0.01, "seconds": 0.25, "val_balanced_accuracy": None, "val_f1_macro": None,
         "val_f1_weighted": None, "val_log_loss": None, "val_roc_auc": None, "val_pr_auc": None}]
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"test_accuracy": 0.5, "warnings": []}
    assert {p.name for p in tmp_path.iterdir()} <= set(RUN_FILES)
    assert not interrupted_before_first_epoch(tmp_path)  # history.json has an epoch


def untrained(folder: Path, **extra: str) -> Path:
    """What a run killed during its first epoch leaves, and the files `extra` (name: text)."""
    files = {"run.json": "{}", "run_id.txt": "0123456789abcdef\n", "history.jsonl": "", "checkpoint/network.json": "{}",
             ".lock": "1 host", **extra}
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize("extra, expected", [
    ({}, True),
    ({".run.json.999999999.abcd1234.tmp": "x", "checkpoint/.weights.npz.999999999.ab.tmp": "x"}, True),
    ({"notes.txt": "mine"}, False),  # a user's file: not only graphnet's
    ({"checkpoint/mine.npz": "x"}, False),
    ({"checkpoint/weights.npz": "x"}, False),  # it trained
    ({"history.jsonl": "{}\n"}, False),
    ({"history.json": "[{}]"}, False),
])
def test_a_folder_holding_only_a_run_that_never_trained_may_be_taken_over(tmp_path, extra, expected):
    untrained(tmp_path, **extra)
    assert holds_untrained_run(tmp_path) is expected
    if expected:
        refuse_existing(tmp_path)
    else:
        with pytest.raises(gn.RunFolderError, match="run folder exists"):
            refuse_existing(tmp_path)


def test_a_folder_without_run_json_is_not_an_untrained_run(tmp_path):
    assert not holds_untrained_run(tmp_path)
    (tmp_path / "history.jsonl").write_text("")
    assert not holds_untrained_run(tmp_path)


def test_the_run_id_file(tmp_path):
    assert read_run_id(tmp_path) is None
    write_run_id(tmp_path, "0123456789abcdef")
    assert (tmp_path / "run_id.txt").read_text() == "0123456789abcdef\n"
    assert read_run_id(tmp_path) == "0123456789abcdef"
    (tmp_path / "run_id.txt").write_bytes(b"\xff\xfe")
    assert read_run_id(tmp_path) is None
    (tmp_path / "run_id.txt").write_text("  \n")
    assert read_run_id(tmp_path) is None


def test_remove_folder_if_empty(tmp_path):
    (tmp_path / "empty").mkdir()
    remove_folder_if_empty(tmp_path / "empty")
    assert not (tmp_path / "empty").exists()
    remove_folder_if_empty(tmp_path / "empty")  # gone: no error
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    remove_folder_if_empty(tmp_path / "full")
    assert (tmp_path / "full" / "x").exists()


def test_run_json_holds_every_train_setting_and_no_schema_reference(tmp_path):
    """Defaults (optimizer, batch size, seed, ...) included, so the file says what was used; no
    "$schema": "./schema.json", as a run folder has no schema.json."""
    document = json.loads((SPECS / "spiral_mlp.json").read_text())
    assert "$schema" in document
    document["train"] = {"data": "spiral"}  # every setting left at its default
    run = gn.parse_run(document)
    write_run_spec(tmp_path, run)
    written = json.loads((tmp_path / "run.json").read_text())
    assert "$schema" not in written and "$schema" not in written["network"]
    assert written["train"] == {"data": "spiral", "optimizer": {"rule": "adam", "learning_rate": 0.001, "beta1": 0.9,
                                                                "beta2": 0.999, "epsilon": 1e-08},
                                "schedule": {"kind": "constant", "warmup_epochs": 0.0}, "epochs": 10,
                                "batch_size": 128, "seed": 0, "clip_norm": None, "dtype": "float32",
                                "backend": None, "eval_batch_size": 1000, "init_from": None, "class_weight": None,
                                "early_stopping": None,
                                "freeze": [], "tensorboard": None, "mlflow": None, "augment": None}
    assert set(written["train"]) == set(TrainSpec.model_fields)
    assert written["schema_version"] == 1
    assert gn.parse_run((tmp_path / "run.json").read_text()) == run.model_copy(update={"schema_ref": None})


def test_a_data_spec_in_run_json_has_every_field(tmp_path):
    run = spiral_run({"name": "spiral", "val_size": 0.2})
    write_run_spec(tmp_path, run)
    assert json.loads((tmp_path / "run.json").read_text())["train"]["data"] == {
        "name": "spiral", "val_size": 0.2, "normalize": "auto", "options": {}}
    assert gn.parse_run((tmp_path / "run.json").read_text()) == run
