"""graphnet sweep: SWEEP.json validation, values set at paths, and sweeps on Optuna in this process
(resume, failed and pruned trials, storage URLs, the files written). Parallel jobs, signals and the
CLI as a child process: tests/system/sweep/test_sweep.py."""
from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import pytest

import graphnet as gn
from graphnet.cli import main
from graphnet.sweep import SweepError, load_sweep, run_sweep
from graphnet.sweep.report import best_so_far, format_table, short_names
from graphnet.sweep.space import epoch_metric, format_path, metric_names, parse_path
from graphnet.sweep.workers import quotas

from tests._support.sweep_cases import ROOT, spiral_run, sweep_doc, write
from tests._support.sweep_cases import optuna  # noqa: F401 (a fixture)


def problems(tmp_path: Path, doc: dict) -> list[str]:
    with pytest.raises(gn.SpecError) as caught:
        load_sweep(write(tmp_path / "sweep.json", doc))
    return caught.value.lines()


# ---- SWEEP.json ------------------------------------------------------------------------------


def test_a_valid_sweep_loads_with_its_run(tmp_path):
    sweep = load_sweep(write(tmp_path / "sweep.json", sweep_doc()))
    assert sweep.run.network.nodes[0].units == 64
    assert sweep.spec.space["network.nodes[0].units"].kind == "choice"
    assert sweep.direction == "maximize"


def test_a_node_index_the_run_does_not_have_is_refused_with_its_location(tmp_path):
    doc = sweep_doc(space={"network.nodes[7].units": {"choice": [16, 64]}})
    assert problems(tmp_path, doc) == [
        f'{tmp_path / "sweep.json"}: space."network.nodes[7].units": the run has no network.nodes[7] (it has 3 nodes)']


@pytest.mark.parametrize("path, expected", [
    ("train.optimizer.lr", "the run has no 'lr' in train.optimizer; did you mean 'learning_rate'?"),
    ("netwrk.l2", "the run has no 'netwrk'; did you mean 'network'?"),
    ("network.nodes[0]", "the run's network.nodes[0] is an object: name one of its fields"),
    ("network.inputs.x.shape", "the run's network.inputs.x.shape is a list: name one entry, e.g. "
                               "network.inputs.x.shape[0]"),
    ("network.l2.x", "the run's network.l2 is a value, it has no 'x'"),
    ("network.l2[0]", "the run's network.l2 is not a list"),
    ("network..l2", "not a path into the run"),
    ("network.nodes[-1].units", "not a path into the run"),
])
def test_a_path_the_run_does_not_have_is_refused(tmp_path, path, expected):
    [line] = problems(tmp_path, sweep_doc(space={path: {"uniform": [0.0, 1.0]}}))
    assert f'space.{json.dumps(path)}: {expected}' in line


def test_paths_reach_settings_left_at_their_defaults(tmp_path):
    doc = sweep_doc(space={"train.optimizer.beta1": {"uniform": [0.8, 0.95]},
                           "train.clip_norm": {"log_uniform": [0.1, 10.0]},
                           "train.schedule.warmup_epochs": {"uniform": [0.0, 2.0]}})
    load_sweep(write(tmp_path / "sweep.json", doc))  # none is written in the run, all are valid


@pytest.mark.parametrize("distribution, expected", [
    ({"uniform": [1.0, 1.0]}, "uniform: the low end must be below the high end, got [1, 1]"),
    ({"log_uniform": [0.0, 1.0]}, "log_uniform: a log scale needs a low end above 0, got 0"),
    ({"int": [0, 8], "log": True}, "int: a log scale needs a low end above 0, got 0"),
    ({"loguniform": [1e-3, 1e-1]}, "unknown field 'loguniform'; did you mean 'log_uniform'?"),
    ({"uniform": [0.0, 1.0], "int": [1, 2]}, "give exactly one of log_uniform, uniform, int, choice "
                                             "(got uniform, int)"),
    ({}, "give exactly one of log_uniform, uniform, int, choice (got none)"),
    ({"choice": [1, 2], "step": 1}, "'step' goes with uniform or int, not choice"),
    ({"int": [1, 9], "step": 1.5}, "int: 'step' must be a whole number, got 1.5"),
    ({"int": [1, 9], "step": 2, "log": True}, "int: 'log' and a 'step' other than 1 don't go together"),
    ({"uniform": [0.1, 1.0], "log": True}, "'log' goes with int (use log_uniform for floats), not uniform"),
    ({"choice": [[16, 32]]}, "choice: values are numbers, strings, booleans or null, got [16, 32]"),
    ({"choice": [16, 16]}, "choice: a value is listed twice"),
    ({"choice": []}, "list should have at least 1 item"),
    # Optuna would shrink a step larger than the range silently, to one value
    ({"uniform": [0.0, 0.1], "step": 0.5}, "uniform: 'step' 0.5 is larger than the range [0, 0.1]: 0 would be "
                                           "the only value"),
    ({"int": [8, 16], "step": 32}, "int: 'step' 32 is larger than the range [8, 16]: 8 would be the only value"),
    # the width overflows: every trial failed with "internal error: OverflowError"
    ({"uniform": [-1e308, 1e308]}, "uniform: the range [-1e+308, 1e+308] is too wide to draw from (its width "
                                   "overflows a float)"),
    # and a step this fine failed every trial with "internal error: InvalidOperation"
    ({"uniform": [0.0, 1.0], "step": 1e-308}, "uniform: 'step' 1e-308 cuts [0, 1] into more than 1e+15 values"),
])
def test_a_bad_distribution_is_refused_with_its_location(tmp_path, distribution, expected):
    lines = problems(tmp_path, sweep_doc(space={"network.l2": distribution}))
    assert any('space."network.l2"' in line and expected in line for line in lines), lines


def test_int_bounds_must_be_integers(tmp_path):
    [line] = problems(tmp_path, sweep_doc(space={"network.nodes[0].units": {"int": [16.5, 64]}}))
    assert 'space."network.nodes[0].units".int[0]: input should be a valid integer' in line


def test_an_unknown_metric_is_refused_with_a_suggestion(tmp_path):
    [line] = problems(tmp_path, sweep_doc(metric="val_acc"))
    assert line.endswith("metric: a classification run has no metric 'val_acc'; did you mean 'val_accuracy'? "
                         "(known: val_accuracy, test_accuracy, train_accuracy, val_balanced_accuracy, "
                         "test_balanced_accuracy, train_balanced_accuracy, val_f1_macro, test_f1_macro, train_f1_macro, "
                         "val_f1_weighted, test_f1_weighted, train_f1_weighted, val_log_loss, test_log_loss, "
                         "train_log_loss, val_loss, test_loss, train_loss, final_loss)")


def test_a_regression_run_is_judged_by_rmse_or_r2(tmp_path):
    run = spiral_run()
    run["network"]["labels"] = {"y": {"shape": [3]}}
    run["network"]["nodes"][2]["op"] = "mse"
    [line] = problems(tmp_path, sweep_doc(run=run, metric="val_accuracy"))
    assert "a regression run has no metric 'val_accuracy'" in line and "val_rmse" in line
    sweep = load_sweep(write(tmp_path / "sweep.json", sweep_doc(run=run, metric="val_r2", direction=None)))
    assert sweep.direction == "maximize"


def test_direction_and_unknown_fields_are_checked(tmp_path):
    lines = problems(tmp_path, {**sweep_doc(direction="maximise"), "trails": 5})
    assert any("direction: input should be 'maximize' or 'minimize'; did you mean 'maximize'?" in line
               for line in lines), lines
    assert any(line.endswith("trails: unknown field 'trails'") for line in lines), lines


@pytest.mark.parametrize("metric, direction", [("val_accuracy", "maximize"), ("test_loss", "minimize"),
                                               ("val_rmse", "minimize"), ("test_r2", "maximize")])
def test_the_direction_follows_the_metric_when_not_given(metric, direction):
    from graphnet.sweep.space import default_direction

    assert default_direction(metric) == direction


def test_a_run_written_in_the_sweep_is_checked_like_a_run_file(tmp_path):
    run = spiral_run()
    run["network"]["nodes"][0]["units"] = 0
    [line] = problems(tmp_path, sweep_doc(run=run))
    assert "run.network.nodes[0].units: node 'fc1' (affine): input should be greater than or equal to 1" in line


def test_the_run_may_be_a_file_beside_the_sweep_or_a_zoo_name(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # not the sweep's folder: the run file is found beside the sweep
    (tmp_path / "runs").mkdir()
    write(tmp_path / "runs" / "short.json", spiral_run(epochs=7))
    sweep = load_sweep(write(tmp_path / "sweep.json", sweep_doc(run="runs/short.json")))
    assert sweep.run.train.epochs == 7
    assert load_sweep(write(tmp_path / "sweep.json", sweep_doc(run="spiral_mlp"))).run.train.epochs == 100
    [line] = problems(tmp_path, sweep_doc(run="two_layer_net"))
    assert line.endswith("run: 'two_layer_net' is a network spec; a sweep needs a run spec (\"network\" and \"train\")")
    [line] = problems(tmp_path, sweep_doc(run=5))
    assert "run: give a run spec (an object), or the path of a run file or a zoo name" in line


def test_values_are_set_at_their_paths_and_the_run_revalidated(tmp_path):
    sweep = load_sweep(write(tmp_path / "sweep.json", sweep_doc()))
    run = sweep.run_with({"train.optimizer.learning_rate": 0.05, "network.nodes[0].units": 128,
                          "train.optimizer.beta1": 0.8, "train.schedule.warmup_epochs": 1.5})
    assert run.train.optimizer.learning_rate == 0.05 and run.train.optimizer.beta1 == 0.8
    assert run.network.nodes[0].units == 128 and run.train.schedule.warmup_epochs == 1.5
    assert run.network.nodes[0].init == "he_normal"  # the rest of the run is as written
    assert sweep.run.network.nodes[0].units == 64  # the base run is untouched
    with pytest.raises(gn.SpecError, match=r"network\.nodes\[0\]\.units: .*greater than or equal to 1"):
        sweep.run_with({"network.nodes[0].units": 0})


def test_paths_parse_and_print_back():
    assert parse_path("network.nodes[0].units") == ["network", "nodes", 0, "units"]
    assert parse_path("a.b[1][2]") == ["a", "b", 1, 2]
    assert format_path(["a", "b", 1, 2, "c"]) == "a.b[1][2].c"


def test_metrics_of_each_task_and_their_epoch_counterparts():
    assert "val_accuracy" in metric_names("binary") and "val_rmse" not in metric_names("binary")
    assert {"val_rmse", "test_r2", "final_loss"} <= set(metric_names("regression"))
    assert [epoch_metric(m) for m in ("val_accuracy", "test_accuracy", "test_loss", "final_loss", "train_r2")] == \
        ["val_accuracy", "val_accuracy", "val_loss", "train_loss", "train_r2"]


# ---- small parts of the runner and the report ---------------------------------------------------


@pytest.mark.parametrize("remaining, jobs, expected", [(6, 2, [3, 3]), (5, 2, [3, 2]), (1, 4, [1]), (0, 2, []),
                                                       (-2, 2, []), (3, 1, [3])])
def test_remaining_trials_are_shared_among_the_jobs(remaining, jobs, expected):
    assert quotas(remaining, jobs) == expected


def test_best_so_far_follows_the_direction():
    values = [0.5, None, 0.7, 0.6, float("nan"), 0.9]
    assert best_so_far(values, "maximize") == [0.5, 0.5, 0.7, 0.7, 0.7, 0.9]
    assert best_so_far(values, "minimize") == [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    assert best_so_far([None, 2.0], "minimize") == [None, 2.0]


def test_columns_are_named_by_the_last_key_unless_two_share_it():
    assert short_names(["train.optimizer.learning_rate", "network.nodes[0].units", "network.nodes[1].units"]) == {
        "train.optimizer.learning_rate": "learning_rate", "network.nodes[0].units": "network.nodes[0].units",
        "network.nodes[1].units": "network.nodes[1].units"}


@pytest.mark.slow
def test_a_sweep_resumes_to_the_total_asked_for(optuna, tmp_path):
    source = write(tmp_path / "sweep.json", sweep_doc(run=spiral_run(epochs=3)))
    out = tmp_path / "sweep"
    first = run_sweep(source, trials=3, out=out, log=lambda text: None)
    assert [row.number for row in first.rows] == [0, 1, 2]
    second = run_sweep(source, trials=5, out=out, log=lambda text: None)
    assert [row.number for row in second.rows] == [0, 1, 2, 3, 4]
    assert sorted(path.name for path in out.glob("trial-*")) == [f"trial-{n}" for n in range(5)]
    lines = []
    third = run_sweep(source, trials=5, out=out, log=lines.append)
    assert len(third.rows) == 5 and "study 'sweep' has 5 trials, the 5 asked for: nothing to run" in lines


def enqueue(optuna, out: Path, name: str, *params: dict) -> None:
    """Create the study and queue trials with fixed values (run first, before sampled ones)."""
    out.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(study_name=name, storage=f"sqlite:///{out / 'study.db'}", direction="maximize")
    for values in params:
        study.enqueue_trial(values)


@pytest.mark.slow
def test_a_crashed_trial_is_marked_failed_and_the_sweep_goes_on(optuna, tmp_path):
    space = {"train.optimizer.learning_rate": {"log_uniform": [2e-2, 1e-1]},
             "network.nodes[0].units": {"choice": [0, 32, 64]}}
    source = write(tmp_path / "sweep.json", sweep_doc(run=spiral_run(epochs=3), space=space))
    out = tmp_path / "sweep"
    enqueue(optuna, out, "sweep", {"network.nodes[0].units": 0, "train.optimizer.learning_rate": 0.05},
            {"network.nodes[0].units": 32, "train.optimizer.learning_rate": 0.05},
            {"network.nodes[0].units": 64, "train.optimizer.learning_rate": 0.05})
    lines = []
    result = run_sweep(source, trials=3, out=out, log=lines.append)
    assert [row.state for row in result.rows] == ["failed", "complete", "complete"]
    failed = result.rows[0]
    assert "network.nodes[0].units: node 'fc1' (affine): input should be greater than or equal to 1" in failed.note
    assert any(line.startswith("trial 0: failed: network.nodes[0].units") for line in lines)
    assert result.best is not None and result.best.number in (1, 2)
    assert list(csv.DictReader((out / "results.csv").open()))[0]["note"] == failed.note


def test_a_diverging_trial_fails_with_the_training_error(optuna, tmp_path):
    run = spiral_run(epochs=3)
    run["train"]["optimizer"] = {"rule": "sgd", "learning_rate": 0.1}
    doc = sweep_doc(run=run, space={"train.optimizer.learning_rate": {"choice": [0.1, 1e30]}})
    out = tmp_path / "sweep"
    enqueue(optuna, out, "sweep", {"train.optimizer.learning_rate": 1e30})
    result = run_sweep(write(tmp_path / "sweep.json", doc), trials=1, out=out, log=lambda text: None)
    [row] = result.rows
    assert row.state == "failed" and re.match(r"epoch 1, iteration \d of 7: .*non-finite value at node", row.note)
    assert result.best is None and not (out / "best.json").exists()


@pytest.mark.slow
def test_pruning_stops_a_trial_below_the_median(optuna, tmp_path):
    doc = sweep_doc(space={"train.optimizer.learning_rate": {"choice": [0.05, 1e-6]}})
    out = tmp_path / "sweep"
    good, bad = {"train.optimizer.learning_rate": 0.05}, {"train.optimizer.learning_rate": 1e-6}
    enqueue(optuna, out, "sweep", good, good, bad)
    result = run_sweep(write(tmp_path / "sweep.json", doc), trials=3, out=out, prune=True,
                                log=lambda text: None)
    assert [row.state for row in result.rows] == ["complete", "complete", "pruned"]
    epochs = len(json.loads((out / "trial-2" / "history.json").read_text()))
    assert result.rows[2].note == f"pruned at epoch {epochs}" and 4 <= epochs < 20
    assert gn.load_checkpoint(out / "trial-2").spec.name == "spiral_mlp"  # a pruned trial's folder is usable
    # without --prune the same trials all run to the end
    again = run_sweep(write(tmp_path / "sweep.json", doc), trials=3, out=tmp_path / "plain",
                               log=lambda text: None)
    assert all(row.state == "complete" for row in again.rows)


@pytest.mark.slow
def test_pruning_waits_for_each_trials_own_warm_up(optuna, tmp_path):
    """With train.epochs swept, a trial is judged from epoch epochs // 5 of its own run: the base
    run's 60 epochs gave a 10-epoch trial a warm-up of 12, so it was never pruned."""
    space = {"train.optimizer.learning_rate": {"choice": [0.05, 1e-6]}, "train.epochs": {"choice": [10, 60]}}
    doc = sweep_doc(run=spiral_run(epochs=60), space=space)
    out = tmp_path / "sweep"
    good = {"train.optimizer.learning_rate": 0.05, "train.epochs": 10}
    enqueue(optuna, out, "sweep", good, good, {**good, "train.optimizer.learning_rate": 1e-6})
    result = run_sweep(write(tmp_path / "sweep.json", doc), trials=3, out=out, prune=True, log=lambda text: None)
    assert [row.state for row in result.rows] == ["complete", "complete", "pruned"]
    epochs = len(json.loads((out / "trial-2" / "history.json").read_text()))
    assert result.rows[2].note == f"pruned at epoch {epochs}" and 2 <= epochs < 10


def test_an_unusable_storage_url_is_one_line(optuna, tmp_path, capsys):
    code = main(["sweep", str(write(tmp_path / "sweep.json", sweep_doc())), "--trials", "1",
                 "--out", str(tmp_path / "out"), "--storage", "nosuchdb://user:secret@host/db"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("graphnet sweep: storage nosuchdb://user:***@host/db: ")
    assert len(err.strip().splitlines()) == 1 and "secret" not in err


@pytest.mark.slow
def test_a_study_of_another_sweep_is_refused(optuna, tmp_path):
    out = tmp_path / "sweep"
    run_sweep(write(tmp_path / "sweep.json", sweep_doc(run=spiral_run(epochs=2))), trials=1, out=out,
                       log=lambda text: None)
    other = sweep_doc(run=spiral_run(epochs=2), metric="val_loss")
    with pytest.raises(SweepError, match="was made by a sweep with another metric: "):
        run_sweep(write(tmp_path / "sweep.json", other), trials=2, out=out, log=lambda text: None)
    (out / "study.db").unlink()  # the trial folders stay: a new study would mix its trials with them
    with pytest.raises(SweepError, match=r"holds trial folders \(trial-0\) but storage .* has no study 'sweep'"):
        run_sweep(write(tmp_path / "sweep.json", other), trials=2, out=out, log=lambda text: None)


def test_without_optuna_the_command_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna raises ImportError
    code = main(["sweep", str(write(tmp_path / "sweep.json", sweep_doc())), "--trials", "1",
                 "--out", str(tmp_path / "out")])
    assert code == 1
    assert capsys.readouterr().err == "graphnet sweep: graphnet sweep needs Optuna: pip install 'graphnet[sweep]'\n"


@pytest.mark.slow
def test_the_table_lists_each_trial(optuna, tmp_path):
    out = tmp_path / "sweep"
    result = run_sweep(write(tmp_path / "sweep.json", sweep_doc(run=spiral_run(epochs=2))), trials=2,
                                out=out, log=lambda text: None)
    table = format_table(result.rows, ["train.optimizer.learning_rate", "network.nodes[0].units"], "val_accuracy")
    lines = table.splitlines()
    assert lines[0].split() == ["trial", "state", "learning_rate", "units", "val_accuracy", "seconds", "note"]
    assert [line.split()[:2] for line in lines[1:]] == [["0", "complete"], ["1", "complete"]]


def test_the_readme_example_is_a_valid_sweep(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Sweep hyperparameters")
    section = readme[start:readme.index("\n## ", start + 1)]
    [example] = re.findall(r"```json\n(.*?)```", section, re.S)
    monkeypatch.chdir(tmp_path)  # the run is a zoo name
    sweep = load_sweep(write(tmp_path / "spiral_sweep.json", json.loads(example)))
    assert sweep.run_with({"train.epochs": 30, "network.l2": 5e-4}).train.epochs == 30
