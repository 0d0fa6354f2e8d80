"""The CLI's train / eval / gradcheck / compile commands, as a user runs them."""
from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from extras import HAVE_MATPLOTLIB
from task_data import (  # tests/ helpers
    classifier_run,
    linear_data,
    named_classes,
    separable_blobs,
    task_run,
    write_csv,
    write_named_csv,
    write_npz,
)

import graphnet as gn
from graphnet.cli import main
from graphnet.model.checkpoint import ARRAYS_FILE, read_checkpoint

ROOT = Path(__file__).resolve().parents[1]
ZOO = sorted(glob.glob(str(ROOT / "specs" / "*.json")))
ENV = {**os.environ, "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(ROOT / ".numba_cache"))}


@pytest.fixture(autouse=True)
def _in_the_repository(monkeypatch):
    monkeypatch.chdir(ROOT)  # the commands below name zoo specs as a user in the checkout would


def graphnet(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`graphnet ARGS` in a child process (the installed entry point's code path)."""
    return subprocess.run([sys.executable, "-m", "graphnet", *args], capture_output=True, text=True,
                          cwd=ROOT, env=ENV, timeout=timeout)


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "Warning" not in stderr, stderr
    return lines[0]


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


def test_cli_trains_regression_on_a_csv_float_target(regression_run):
    metrics = json.loads((regression_run / "metrics.json").read_text())
    assert {"test_loss", "test_rmse", "test_r2", "val_rmse", "val_r2", "train_rmse", "train_r2"} <= set(metrics)
    assert "test_accuracy" not in metrics
    assert metrics["test_r2"] > 0.5 and metrics["test_rmse"] < 1.0, metrics
    history = json.loads((regression_run / "history.json").read_text())
    assert {"train_rmse", "val_rmse", "val_r2"} <= set(history[-1]) and "val_accuracy" not in history[-1]


def test_cli_trains_binary_on_a_csv_of_0_1_labels(binary_csv_run):
    metrics = json.loads((binary_csv_run / "metrics.json").read_text())
    assert {"test_loss", "test_accuracy", "val_accuracy", "train_accuracy"} <= set(metrics)
    assert metrics["test_accuracy"] > 0.8, metrics


def test_cli_trains_regression_on_an_npz(tmp_path):
    run = train_task(tmp_path, "regression", write_npz(tmp_path / "linear.npz", *linear_data()), features=3)
    assert json.loads((run / "metrics.json").read_text())["test_r2"] > 0.5


def test_eval_of_a_regression_run_prints_loss_rmse_and_r2(regression_run, capsys):
    assert main(["eval", str(regression_run)]) == 0
    out = capsys.readouterr().out.splitlines()
    match = re.fullmatch(r".*linear\.csv test: loss (\S+)  RMSE (\S+)  MAE \S+  R2 (\S+) on 80 examples", out[0])
    assert match and len(out) == 1, out
    metrics = json.loads((regression_run / "metrics.json").read_text())
    assert float(match.group(1)) == pytest.approx(metrics["test_loss"], rel=1e-3)
    assert float(match.group(2)) == pytest.approx(metrics["test_rmse"], rel=1e-3)
    assert float(match.group(3)) == pytest.approx(metrics["test_r2"], abs=1e-4)


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


def test_resume_extends_a_finished_run_with_epochs(tmp_path, capsys):
    assert main(["train", "specs/spiral_mlp.json", "--epochs", "2", "--out", str(tmp_path), "--no-progress"]) == 0
    assert main(["train", "--resume", str(tmp_path), "--epochs", "4", "--no-progress"]) == 0
    assert len(json.loads((tmp_path / "history.json").read_text())) == 4
    assert read_checkpoint(tmp_path / "checkpoint")[2]["position"]["epoch"] == 4
    # --data and --batch-size would change the data order under the saved position
    assert main(["train", "--resume", str(tmp_path), "--batch-size", "8"]) == 1
    assert "cannot change when resuming" in capsys.readouterr().err


@pytest.mark.parametrize("args,field", [
    (["--epochs", "0"], "train.epochs"), (["--epochs", "-2"], "train.epochs"),
    (["--batch-size", "0"], "train.batch_size"), (["--lr", "0"], "train.optimizer.learning_rate"),
    (["--lr", "-0.1"], "train.optimizer.learning_rate"), (["--lr", "nan"], "train.optimizer.learning_rate"),
    (["--lr", "inf"], "train.optimizer.learning_rate"),
])
def test_bad_overrides_exit_1_naming_the_field(tmp_path, capsys, args, field):
    assert main(["train", "specs/spiral_mlp.json", "--out", str(tmp_path / "r"), "--no-progress", *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"graphnet train: {field}: "), err
    assert not (tmp_path / "r").exists()


def test_training_a_network_spec_is_a_clear_error(tmp_path):
    done = graphnet("train", "specs/two_layer_net.json", "--out", str(tmp_path / "r"))
    assert done.returncode == 1
    line = one_error_line(done.stderr)
    assert line.startswith("graphnet train: specs/two_layer_net.json: this is a network spec")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("as_run", [True, False], ids=["run-spec", "network-spec"])
def test_training_a_network_without_a_loss_says_training_needs_a_loss(tmp_path, capsys, as_run):
    network = {"inputs": {"x": {"shape": [2]}}, "outputs": ["fc"],
               "nodes": [{"id": "fc", "op": "affine", "inputs": ["x"], "units": 3}]}
    path = tmp_path / "noloss.json"
    path.write_text(json.dumps({"network": network, "train": {"data": "spiral"}} if as_run else network))
    assert main(["train", str(path), "--out", str(tmp_path / "r"), "--no-progress"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f'graphnet train: {path}: training needs a loss: the network has no "loss" node ('), line
    assert not (tmp_path / "r").exists()


def test_train_without_a_file(capsys):
    assert main(["train"]) == 1
    assert "give a run file" in capsys.readouterr().err


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


def test_gradcheck_the_zoo(capsys):
    assert main(["gradcheck", *ZOO, "--entries", "4"]) == 0
    out = capsys.readouterr().out
    checked = 0
    for path in ZOO:
        if path.endswith("schema.json"):
            assert f"{path}: skipped (a JSON Schema, not a network spec)" in out
            continue
        network = gn.compile(gn.load(path), batch_size=2)
        block = out.split(f"{path}:\n", 1)[1].split("worst relative error", 1)[0].splitlines()
        assert block[0].split() == ["parameter", "checked", "rel.", "error", "abs.", "error"]
        names = [line.split()[0] for line in block[1:]]
        assert sorted(names) == sorted(network.params), path  # one line per parameter
        for line in block[1:]:
            assert float(line.split()[2]) < 1e-6 and "FAIL" not in line
        checked += 1
    assert checked == len(ZOO) - 1 >= 6


def test_gradcheck_one_spec_as_a_child_process():
    done = graphnet("gradcheck", "specs/spiral_mlp.json")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines[1:5]] == ["fc1.W", "fc2.W", "fc1.b", "fc2.b"]
    assert lines[-1].startswith("worst relative error")


DENSE_BN = {
    "inputs": {"x": {"shape": [5]}}, "labels": {"y": {"classes": 3}},
    "nodes": [{"id": "fc1", "op": "affine", "inputs": ["x"], "units": 4},
              {"id": "bn1", "op": "batchnorm", "inputs": ["fc1"]},
              {"id": "h1", "op": "relu", "inputs": ["bn1"]},
              {"id": "fc2", "op": "affine", "inputs": ["h1"], "units": 3},
              {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc2", "y"]}],
    "outputs": ["fc2"], "loss": "loss"}


def test_gradcheck_passes_a_bias_before_batchnorm_and_warns_it_is_redundant(tmp_path, capsys):
    (tmp_path / "dense_bn.json").write_text(json.dumps(DENSE_BN))
    assert main(["gradcheck", str(tmp_path / "dense_bn.json")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("warning: fc1.b: the bias of affine 'fc1' feeds only batchnorm 'bn1'")
    assert '(set "bias": false on \'fc1\')' in out
    row = next(line for line in out.splitlines() if line.startswith("fc1.b "))
    assert "FAIL" not in row and "vanishing gradient: within atol" in row
    assert "FAIL" not in out


def test_gradcheck_atol_can_be_set(tmp_path, capsys):
    (tmp_path / "dense_bn.json").write_text(json.dumps(DENSE_BN))
    assert main(["gradcheck", str(tmp_path / "dense_bn.json"), "--atol", "0"]) == 1
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("fc1.b "))
    assert row.endswith("FAIL")


def test_gradcheck_of_a_bad_file_exits_1(tmp_path, capsys):
    (tmp_path / "bad.json").write_text("{")
    assert main(["gradcheck", str(tmp_path / "bad.json")]) == 1
    assert main(["gradcheck", str(tmp_path / "bad.json"), "specs/spiral_mlp.json", "--entries", "2"]) == 1
    captured = capsys.readouterr()
    assert "bad.json" in captured.err and "fc1.W" in captured.out  # the good file is still checked


@pytest.mark.parametrize("spec", ["specs/spiral_mlp.json", "specs/fc_bn_dropout.json", "specs/wide_concat.json",
                                  "specs/residual_mlp.json"])
@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "unfused"])
def test_compile_dot_is_graphviz(spec, fuse, capsys):
    assert main(["compile", spec, "--dot", *([] if fuse else ["--no-fuse"])]) == 0
    text = capsys.readouterr().out
    lines = text.strip().splitlines()
    assert re.fullmatch(r'digraph "[^"]+" \{', lines[0]) and lines[-1] == "}"
    declared, edges = set(), []
    for line in lines[1:-1]:
        line = line.strip()
        if m := re.fullmatch(r'"([^"]+)" -> "([^"]+)"( \[.*\])?;', line):
            edges.append((m.group(1), m.group(2)))
        elif m := re.fullmatch(r'"([^"]+)" \[.*\];', line):
            declared.add(m.group(1))
        else:
            assert re.fullmatch(r"(rankdir=\w+|node \[.*\]|edge \[.*\]|graph \[.*\]);", line), line
    bare = re.sub(r'"(\\.|[^"\\])*"', '""', text)  # brackets inside quoted labels don't count
    assert bare.count("{") == bare.count("}") == 1 and bare.count("[") == bare.count("]")
    assert edges and all(a in declared and b in declared for a, b in edges)
    network = gn.load(spec)
    network = network.network if isinstance(network, gn.RunSpec) else network
    ids = {node.id for node in network.nodes}
    assert set(network.inputs) <= declared
    if not fuse:
        assert ids <= declared
    else:
        assert declared - set(network.inputs) - set(network.labels) <= ids


def test_compile_prints_the_plan(capsys):
    assert main(["compile", "specs/spiral_mlp.json"]) == 0
    assert "fc1" in capsys.readouterr().out


def test_compile_shows_which_sgd_updates_run_inside_backward(capsys):
    assert main(["compile", "specs/fashion_mlp.json", "--mode", "sgd"]) == 0
    out = capsys.readouterr().out
    assert "sgd-update-in-backward: fc1.W fused" in out and "gemm W -= rate * X.T @ dY" in out


@pytest.mark.parametrize("mode, named", [("infer", "inference"), ("eval", "eval mode"), ("train", "train mode"),
                                         ("sgd", "train mode")])
def test_compile_names_the_mode_of_the_plan(mode, named, capsys):
    assert main(["compile", "specs/spiral_mlp.json", "--mode", mode]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"plan 'spiral_mlp': {named}, capacity 128"), first


def test_compile_no_fuse_prints_the_unfused_plan(capsys):
    assert main(["compile", "specs/two_layer_net.json"]) == 0
    fused = capsys.readouterr().out
    assert main(["compile", "specs/two_layer_net.json", "--no-fuse"]) == 0
    unfused = capsys.readouterr().out
    fused_step = re.compile(r"^\s+\d+\s+fwd\s+h1\s", re.M)  # the relu h1 as a step of its own
    assert "affine+activation: fc1 + h1 fused" in fused and not fused_step.search(fused), fused
    assert "affine+activation" not in unfused and fused_step.search(unfused), unfused


@pytest.mark.parametrize("argv", [["compile", "specs/spiral_mlp.json", "--batch", "0"],
                                  ["compile", "specs/spiral_mlp.json", "--batch", "-3"],
                                  ["compile", "specs/spiral_mlp.json", "--batch", "x"],
                                  ["gradcheck", "specs/spiral_mlp.json", "--batch", "0"],
                                  ["eval", "runs/none", "--batch-size", "0"]])
def test_a_batch_size_below_one_is_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: graphnet" in err and "internal error" not in err
    assert re.search(r"argument --batch(-size)?: (must be at least 1, got -?\d+|invalid int value: 'x')", err), err


def test_bench_prints_both_tables_and_writes_the_step_rows(monkeypatch, tmp_path, capsys):
    """The bench plumbing, with the measurements stubbed out (timing is not a test)."""
    import graphnet.benchmarks.kernels as kernel_bench
    import graphnet.benchmarks.step as step_bench

    rows = [{"size": "S", "contender": "blas_floor", "us": 100.0, "ratio": 1.0},
            {"size": "S", "contender": "graphnet_numba", "us": 125.0, "ratio": 1.25},
            {"size": "S", "contender": "jax_jit", "us": None, "ratio": None, "skipped": "not installed (jax)"}]
    asked = {}

    def fake_step_bench(quick):
        asked["quick"] = quick
        return rows

    monkeypatch.setattr(kernel_bench, "run_kernel_bench", lambda quick, dtype: [])
    monkeypatch.setattr(step_bench, "run_step_bench", fake_step_bench)
    target = tmp_path / "step.json"
    assert main(["bench", "--full", "--json", str(target)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("BLAS: ") and "SGD-in-backward GEMM" in out.splitlines()[0]
    assert "graphnet_numba" in out and "1.25" in out and f"wrote {target}" in out
    assert json.loads(target.read_text()) == rows
    assert asked == {"quick": False}


def test_bench_says_when_other_processes_kept_the_machine_busy(monkeypatch, capsys):
    import graphnet.benchmarks.kernels as kernel_bench
    import graphnet.benchmarks.machine_load as machine_load
    import graphnet.benchmarks.step as step_bench
    from graphnet.runtime.contention import CpuTimes

    samples = iter([CpuTimes(0, 0, 0), CpuTimes(150, 200, 50),   # kernels: others took 1 of 2 cores' ticks
                    CpuTimes(150, 200, 50), CpuTimes(160, 400, 60)])  # steps: others took nothing
    monkeypatch.setattr(machine_load, "sample_cpu_times", lambda cpus: next(samples))
    monkeypatch.setattr(kernel_bench, "run_kernel_bench", lambda quick, dtype: [])
    monkeypatch.setattr(step_bench, "run_step_bench", lambda quick: [])
    assert main(["bench"]) == 0
    lines = capsys.readouterr().out.splitlines()
    [warning] = [line for line in lines if line.startswith("warning:")]
    assert warning.startswith("warning: the machine was busy: other processes kept ") and "not reliable" in warning
    assert lines[-1].startswith("machine load while measuring: other processes kept 0.00 of ")


# ---- run folders: existing, interrupted early, moved between directories, unwritable -------------


def test_out_on_an_existing_run_folder_is_refused_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "specs/spiral_mlp.json", "--epochs", "2", "--out", str(out), "--no-progress"]) == 0
    (out / "mine.json").write_text("{}")
    metrics = (out / "metrics.json").read_bytes()
    capsys.readouterr()
    assert main(["train", "specs/spiral_mlp.json", "--epochs", "1", "--out", str(out), "--no-progress"]) == 1
    assert capsys.readouterr().err.strip() == (f"graphnet train: {out}: run folder exists (use --resume to "
                                               "continue it or --overwrite to replace it)")
    assert (out / "metrics.json").read_bytes() == metrics
    assert main(["train", "specs/spiral_mlp.json", "--epochs", "1", "--out", str(out), "--no-progress",
                 "--overwrite"]) == 0
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 1
    assert (out / "mine.json").read_text() == "{}"


def test_overwrite_and_resume_together_is_a_usage_error(tmp_path):
    done = graphnet("train", "--resume", str(tmp_path), "--overwrite")
    assert done.returncode == 2 and "not allowed with argument" in done.stderr


def test_resume_into_another_out_folder_is_refused(spiral_run, tmp_path, capsys):
    before = (spiral_run / "history.json").read_bytes()
    assert main(["train", "--resume", str(spiral_run), "--out", str(tmp_path / "elsewhere"), "--epochs", "101"]) == 1
    assert "differs from --resume" in capsys.readouterr().err
    assert not (tmp_path / "elsewhere").exists() and (spiral_run / "history.json").read_bytes() == before


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]])
def test_a_run_file_given_with_resume_is_refused(spiral_run, capsys, workers):
    before = (spiral_run / "history.json").read_bytes()
    capsys.readouterr()
    assert main(["train", "specs/binary_mlp.json", "--resume", str(spiral_run), "--epochs", "101", *workers]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line == (f"graphnet train: the run file specs/binary_mlp.json and --resume {spiral_run} cannot go "
                    "together: a resumed run continues with its own run.json (give one or the other)")
    assert (spiral_run / "history.json").read_bytes() == before


def test_eval_of_a_run_without_a_checkpoint_says_so(tmp_path, capsys):
    """A kill during epoch 1 leaves run.json (and perhaps checkpoint/network.json) but no weights."""
    out = tmp_path / "run"
    assert main(["train", "specs/spiral_mlp.json", "--epochs", "1", "--out", str(out), "--no-progress"]) == 0
    for name in ("checkpoint/weights.npz", "history.json", "metrics.json", "learning_curve.png"):
        (out / name).unlink(missing_ok=True)
    (out / "history.jsonl").write_text("")  # no epoch ended
    capsys.readouterr()
    assert main(["eval", str(out)]) == 1
    assert capsys.readouterr().err.strip() == (f"graphnet eval: {out}: no checkpoint yet (training was "
                                               "interrupted before the first epoch finished)")
    assert main(["train", "--resume", str(out), "--no-progress"]) == 0
    assert "starting again from epoch 1 with its run.json settings" in capsys.readouterr().out
    assert main(["eval", str(out)]) == 0


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


@pytest.mark.parametrize("where", ["under a file", "name too long"])
def test_unusable_out_paths_exit_1_naming_the_path(tmp_path, where, capsys):
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "run" if where == "under a file" else tmp_path / ("r" * 300) / "run"
    assert main(["train", "specs/spiral_mlp.json", "--epochs", "1", "--out", str(out), "--no-progress"]) == 1
    line = one_error_line(capsys.readouterr().err)
    reason = "Not a directory" if where == "under a file" else "File name too long"
    assert line.startswith("graphnet train: ") and line.endswith(f": {reason}"), line
    assert str(tmp_path) in line and "internal error" not in line


@pytest.mark.parametrize("file,errno_name", [("run.json", "EROFS"), ("checkpoint/weights.npz", "ENOSPC"),
                                             ("history.json", "EACCES"), ("history.jsonl", "ENOSPC")])
def test_disk_errors_exit_1_naming_the_file_being_written(tmp_path, monkeypatch, capsys, file, errno_name):
    """A read-only file system, a full disk, no permission (simulated: tests run as root)."""
    import errno

    import graphnet.system.fileio as fileio

    code = getattr(errno, errno_name)
    real = fileio.os.fsync

    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").rpartition("/")[2].startswith(f".{Path(file).name}."):
            raise OSError(code, os.strerror(code))
        return real(fd)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to tell which file is being written")
    monkeypatch.setattr(fileio.os, "fsync", fsync)
    out = tmp_path / "run"
    assert main(["train", "specs/spiral_mlp.json", "--epochs", "2", "--out", str(out), "--no-progress"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line == f"graphnet train: {out / file}: {os.strerror(code)}"
    assert not (out / ".lock").exists()  # the lock is released on the way out


def test_a_diverging_run_warns_and_exits_0(tmp_path):
    done = graphnet("train", "specs/spiral_mlp.json", "--lr", "1e6", "--epochs", "3", "--out", str(tmp_path / "r"),
                    "--no-progress")
    assert done.returncode == 0, done.stderr
    warned = [line for line in done.stdout.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "the training loss diverged" in warned[0] and "lower learning rate" in warned[0]


def test_train_label_column_names_the_csv_label_column(tmp_path, capsys):
    X, names = named_classes(200)
    csv = write_named_csv(tmp_path / "flowers.csv", X, names, label="species")
    run = tmp_path / "run.json"
    run.write_text(json.dumps(classifier_run(str(csv), epochs=2)))
    assert main(["train", str(run), "--out", str(tmp_path / "a"), "--no-progress"]) == 1
    assert "--label-column" in one_error_line(capsys.readouterr().err)
    assert main(["train", str(run), "--out", str(tmp_path / "b"), "--no-progress", "--label-column", "species"]) == 0
    saved = json.loads((tmp_path / "b" / "run.json").read_text())
    assert saved["train"]["data"]["options"]["label_column"] == "species"
    assert gn.load_checkpoint(tmp_path / "b").class_names == ("setosa", "versicolor", "virginica")


def test_train_help_documents_the_csv_format(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for phrase in ("CSV data", "--label-column", "header", "class names", "test_file", "raw features"):
        assert phrase in out, phrase


def test_eval_data_scores_every_labelled_row_of_the_file_by_column_name(tmp_path, capsys):
    """--data FILE.csv: all its rows, the model's columns found by name (in any order, extra
    columns ignored), its labels mapped by the model's class names -- not a split of the file,
    and not the run's own test file."""
    X, names = named_classes(300)
    train = write_named_csv(tmp_path / "train.csv", X[:200], names[:200])
    test = write_named_csv(tmp_path / "test.csv", X[200:260], names[200:260])
    document = classifier_run(str(train), epochs=10, label_column="species")
    document["train"]["data"]["options"]["test_file"] = str(test)
    document["train"]["data"]["normalize"] = "standardize"
    run = tmp_path / "run.json"
    run.write_text(json.dumps(document))
    assert main(["train", str(run), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    other = tmp_path / "other.csv"  # 40 rows the run never saw, columns reordered, an extra column
    rows = [["id", "f3", "kind", "f1", "f0", "f2"]]
    rows += [[str(i), repr(x[3]), name, repr(x[1]), repr(x[0]), repr(x[2])] for i, (x, name) in
             enumerate(zip(X[260:].tolist(), names[260:]))]
    other.write_text("\n".join(",".join(row) for row in rows) + "\n")
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run"), "--data", str(other), "--label-column", "kind"]) == 0
    out = capsys.readouterr().out.splitlines()
    net = gn.load_checkpoint(tmp_path / "run")
    expected = 100 * np.mean(net.predict(X[260:]) == names[260:])
    assert out[0] == f"{other}: accuracy {expected:.2f}% on 40 examples"
    assert main(["eval", str(tmp_path / "run"), "--data", str(other), "--label-column", "knd"]) == 1
    assert "no label column 'knd'; did you mean 'kind'?" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "run"), "--data", str(other), "--split", "val"]) == 1
    assert "scored whole" in capsys.readouterr().err


def test_eval_confusion_matrix_is_headed_by_class_names(tmp_path, capsys):
    X, names = named_classes(200)
    csv = write_named_csv(tmp_path / "flowers.csv", X, names)
    run = tmp_path / "run.json"
    run.write_text(json.dumps(classifier_run(str(csv), epochs=10, label_column="species")))
    assert main(["train", str(run), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[2].split() == ["setosa", "versicolor", "virginica"]
    assert [line.split()[0] for line in out[3:6]] == ["setosa", "versicolor", "virginica"]
    assert float(out[0].split("accuracy ")[1].split("%")[0]) > 90


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


def test_eval_and_resume_read_a_run_json_written_by_an_older_graphnet(tmp_path, capsys):
    """Defaults left out and a "$schema" reference to a schema.json the folder never had."""
    out = tmp_path / "run"
    assert main(["train", "specs/spiral_mlp.json", "--epochs", "2", "--out", str(out), "--no-progress"]) == 0
    old = json.loads(gn.parse_run((out / "run.json").read_text()).to_json())
    (out / "run.json").write_text(json.dumps({"$schema": "./schema.json", **old}, indent=2))
    assert "seed" not in old["train"] and "schedule" not in old["train"]
    capsys.readouterr()
    assert main(["eval", str(out)]) == 0
    assert "accuracy" in capsys.readouterr().out
    assert main(["train", "--resume", str(out), "--epochs", "3", "--no-progress"]) == 0
    written = json.loads((out / "run.json").read_text())  # the extension is saved in the new form
    assert "$schema" not in written and written["train"]["epochs"] == 3 and written["train"]["seed"] == 0


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
