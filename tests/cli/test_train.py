"""The CLI's train / eval / gradcheck / compile commands, as a user runs them, in this process
(main([...])); in child processes: tests/system/cli/test_train.py."""
from __future__ import annotations

import glob
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

import graphnet as gn
from graphnet.cli import main
from graphnet.model.checkpoint import read_checkpoint

from tests._support.commands import one_error_line
from tests._support.commands import in_the_repository  # noqa: F401 (autouse: each test runs in the checkout)
from tests._support.paths import ROOT
from tests._support.task_data import classifier_run, named_classes, write_named_csv

ZOO = sorted(glob.glob(str(ROOT / "specs" / "*.json")))


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
    import graphnet.benchmarks.machine as machine
    import graphnet.benchmarks.step as step_bench

    rows = [{"size": "S", "contender": "blas_floor", "us": 100.0, "ratio": 1.0},
            {"size": "S", "contender": "graphnet_numba", "us": 125.0, "ratio": 1.25},
            {"size": "S", "contender": "jax_jit", "us": None, "ratio": None, "skipped": "not installed (jax)"}]
    asked = {}

    def fake_step_bench(quick, peak):
        asked.update(quick=quick, peak=peak)
        return rows

    peak = machine.Peak(64, 10.0, 2, 20.0)
    monkeypatch.setattr(machine, "measure_peak", lambda: peak)
    monkeypatch.setattr(kernel_bench, "run_kernel_bench", lambda quick, dtype: [])
    monkeypatch.setattr(step_bench, "run_step_bench", fake_step_bench)
    target = tmp_path / "step.json"
    assert main(["bench", "--full", "--json", str(target)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("BLAS: ") and "SGD-in-backward GEMM" in out.splitlines()[0]
    assert out.splitlines()[1].startswith("BLAS kernel: ") and str(peak) in out.splitlines()
    assert "graphnet_numba" in out and "1.25" in out and f"wrote {target}" in out
    assert json.loads(target.read_text()) == rows
    assert asked == {"quick": False, "peak": peak}


def test_bench_says_when_other_processes_kept_the_machine_busy(monkeypatch, capsys):
    import graphnet.benchmarks.kernels as kernel_bench
    import graphnet.benchmarks.machine as machine
    import graphnet.benchmarks.machine_load as machine_load
    import graphnet.benchmarks.step as step_bench
    from graphnet.runtime.contention import CpuTimes

    samples = iter([CpuTimes(0, 0, 0), CpuTimes(150, 200, 50),   # kernels: others took 1 of 2 cores' ticks
                    CpuTimes(150, 200, 50), CpuTimes(160, 400, 60)])  # steps: others took nothing
    monkeypatch.setattr(machine_load, "sample_cpu_times", lambda cpus: next(samples))
    monkeypatch.setattr(kernel_bench, "run_kernel_bench", lambda quick, dtype: [])
    monkeypatch.setattr(step_bench, "run_step_bench", lambda quick, peak: [])
    monkeypatch.setattr(machine, "measure_peak", lambda: machine.Peak(64, 10.0, 2, 20.0))
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
