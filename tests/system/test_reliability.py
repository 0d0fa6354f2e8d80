"""Crash safety and Ctrl-C, with real child processes and real signals.

- A child saving checkpoints in a tight loop is SIGKILLed 20 times at random moments
  (more until one lands inside a write): the folder always loads, holds the last
  completed save (or the one in flight), is never torn, and a restarted child
  continues from it.
- `graphnet train` is SIGKILLed at random moments during training, then resumed:
  the final run equals an uninterrupted one.
- `graphnet train` gets SIGINT (Ctrl-C) or SIGTERM: exit code 130 or 143 (128 + the signal),
  a checkpoint, a message telling how to resume; the resumed run equals an uninterrupted one.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

import graphnet as gn
from graphnet.model.checkpoint import ARRAYS_FILE, SPEC_FILE, read_checkpoint, save_checkpoint
from graphnet.model.restore import load_checkpoint, restore

from tests._support.commands import ENV as CHILD_ENV
from tests._support.paths import ROOT, SUPPORT

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")

ENV = {**CHILD_ENV, "PYTHONUNBUFFERED": "1"}
KILLS = 20
MAX_KILLS = 100  # kills beyond KILLS go on only until one has landed inside a write
TRAIN_EPOCHS = 40


def kill_if_running(process: subprocess.Popen) -> None:
    """Cleanup after a test's child process: kill and reap it unless it has ended."""
    if process.poll() is None:
        process.kill()
        process.wait()


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.slow
def test_sigkill_during_checkpoint_writes_never_loses_a_checkpoint(tmp_path):
    folder = tmp_path / "checkpoint"
    rng = np.random.default_rng(2024)
    stats = {"kills": 0, "mid_write": 0, "in_flight_visible": 0}
    last_counter = -1
    for kill in range(MAX_KILLS):
        if kill >= KILLS and stats["mid_write"]:
            break
        child = subprocess.Popen([sys.executable, str(SUPPORT / "checkpoint_writer.py"), str(folder)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=ENV)
        try:
            first = child.stdout.readline()
            assert first.startswith("ready "), (first, child.stderr.read() if child.poll() is not None else "")
            started = int(first.split()[1])
            assert started == last_counter + 1  # the restarted child continued from the checkpoint it found
            # A few milliseconds up to ~10 saves: the kill lands anywhere in the loop,
            # often inside a write (each save is ~1.6 MB written, fsynced and renamed).
            time.sleep(float(rng.choice([rng.uniform(0, 0.01), rng.uniform(0.01, 0.12)])))
            child.send_signal(signal.SIGKILL)
            out, err = child.communicate(timeout=30)
        finally:
            kill_if_running(child)
        assert child.returncode == -signal.SIGKILL, err
        stats["kills"] += 1
        completed = [int(line) for line in out.split()] or [started]
        done = completed[-1]  # the last save that returned before the kill

        leftovers = temporaries(folder)
        stats["mid_write"] += bool(leftovers)
        assert set(p.name for p in folder.iterdir()) - set(leftovers) == {SPEC_FILE, ARRAYS_FILE}
        assert all(name.startswith((f".{ARRAYS_FILE}.", f".{SPEC_FILE}.")) for name in leftovers)
        net, meta, optimizer = restore(folder, batch_size=4, backend="numpy",
                                       make_optimizer=lambda n: gn.Optimizer(n, "adam", learning_rate=1e-3))
        counter = meta["counter"]
        # Nothing lost: the checkpoint is the last completed save, or the one whose rename
        # had already happened when the kill came (before it could print).
        assert counter in (done, done + 1), (counter, done)
        stats["in_flight_visible"] += counter == done + 1
        # Never torn or mixed: every array is from the same save.
        assert np.all(net.store.values == counter)
        assert all(np.all(slot == counter) for slot in optimizer.slots.values()) and optimizer.t == counter
        last_counter = counter

    assert stats["kills"] >= KILLS
    # Without a kill inside a write, the checks above prove nothing about torn writes.
    assert stats["mid_write"] >= 1, f"none of {stats['kills']} SIGKILLs landed inside a write"
    # the next save sweeps away the temporaries the kills left behind
    save_checkpoint(folder, net, optimizer, {"counter": last_counter + 1})
    assert temporaries(folder) == []
    assert read_checkpoint(folder)[2]["counter"] == last_counter + 1
    print(f"\n{stats['kills']} SIGKILLs: {stats['mid_write']} left a partial temporary file, "
          f"{stats['in_flight_visible']} landed between rename and report; every checkpoint loaded, none torn")


# ---- real training runs ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_file(tmp_path_factory) -> Path:
    """spiral_mlp with a cosine schedule (the position in the schedule matters); the numpy
    backend spares each child process loading numba."""
    run = json.loads((ROOT / "specs" / "spiral_mlp.json").read_text())
    del run["$schema"]
    run["train"].update(epochs=TRAIN_EPOCHS, schedule={"kind": "cosine", "min_lr": 1e-4}, backend="numpy")
    path = tmp_path_factory.mktemp("runs") / "spiral_cosine.json"
    path.write_text(json.dumps(run))
    return path


@pytest.fixture(scope="module")
def reference(run_file, tmp_path_factory) -> gn.TrainResult:
    return gn.train(run_file, out=tmp_path_factory.mktemp("reference") / "run", log=None, progress=False)


def cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "graphnet", "train", *args, "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=ENV)


def ctrl_c_when(path: Path, run_file: Path, out: Path,
                signum: int = signal.SIGINT) -> tuple[subprocess.Popen, str, str]:
    """`graphnet train RUN_FILE --out OUT`, sent SIGINT (or `signum`) once `path` appears:
    (child, stdout, stderr)."""
    child = cli(str(run_file), "--out", str(out))
    try:
        wait_for(path, child)
        child.send_signal(signum)
        stdout, stderr = child.communicate(timeout=60)
    finally:
        kill_if_running(child)
    return child, stdout, stderr


def wait_for(path: Path, child: subprocess.Popen, timeout: float = 60, other_than: int | None = None) -> int:
    """Wait until `path` exists (and, with `other_than`, has been replaced since); its inode."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            inode = path.stat().st_ino
            if inode != other_than:
                return inode
        except FileNotFoundError:
            pass
        if child.poll() is not None:
            raise AssertionError(f"child exited {child.returncode} before {path} appeared: {child.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear")
        time.sleep(0.002)


def assert_matches_reference(out: Path, reference: gn.TrainResult) -> None:
    history = json.loads((out / "history.json").read_text())
    strip = lambda records: [{k: v for k, v in r.items() if k != "seconds"} for r in records]  # noqa: E731
    assert strip(history) == strip([asdict(r) for r in reference.history])  # exact floats
    arrays, expected = read_checkpoint(out / "checkpoint")[1], read_checkpoint(reference.out / "checkpoint")[1]
    assert set(arrays) == set(expected)
    for key in expected:
        assert np.array_equal(arrays[key], expected[key]), key
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] == reference.metrics["test_accuracy"] and metrics["interrupted"] is False


@pytest.mark.slow
def test_sigkill_during_training_then_resume_loses_nothing(run_file, reference, tmp_path):
    out = tmp_path / "run"
    rng = np.random.default_rng(7)
    child = cli(str(run_file), "--out", str(out))
    kills, positions, inode = 0, [], None
    try:
        for kill in range(6):
            try:  # 1 to 3 checkpoints written by this child, then a moment more
                for _ in range(int(rng.integers(1, 4))):
                    inode = wait_for(out / "checkpoint" / ARRAYS_FILE, child, other_than=inode)
            except AssertionError:
                if child.returncode == 0:
                    break  # finished before this kill
                raise
            time.sleep(float(rng.uniform(0, 0.01)))  # an epoch takes ~5-50 ms, mostly checkpoint I/O
            child.send_signal(signal.SIGKILL)
            child.communicate(timeout=30)
            if child.returncode != -signal.SIGKILL:
                break  # finished just before the kill
            kills += 1
            net = load_checkpoint(out / "checkpoint")  # always loadable
            assert np.all(np.isfinite(net.store.values))
            meta = read_checkpoint(out / "checkpoint")[2]
            positions.append(meta["position"]["epoch"])
            inode = (out / "checkpoint" / ARRAYS_FILE).stat().st_ino
            child = cli("--resume", str(out))
        stdout, stderr = child.communicate(timeout=120)
    finally:
        kill_if_running(child)
    assert child.returncode == 0, stderr
    assert kills >= 3, "training finished before the kills: make TRAIN_EPOCHS larger"
    assert all(a < b for a, b in zip(positions, positions[1:]))  # each resumed run moved on
    assert_matches_reference(out, reference)
    assert temporaries(out / "checkpoint") == []
    print(f"\n{kills} SIGKILLs during training at epochs {positions}; resumed run identical to uninterrupted")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_saves_exits_130_and_resume_continues_the_same_trajectory(run_file, reference, tmp_path, signum):
    """Ctrl-C, or the SIGTERM a scheduler sends: the same checkpoint and note; exit 128 + the
    signal (130, 143), as shells and supervisors expect."""
    out = tmp_path / "run"
    # once the first checkpoint exists, training (and its Ctrl-C handler) is under way
    child, stdout, stderr = ctrl_c_when(out / "checkpoint" / ARRAYS_FILE, run_file, out, signum)
    assert child.returncode == 128 + signum, (stdout, stderr)
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    notes = [line for line in stdout.splitlines() if line.startswith("interrupted at epoch")]
    assert len(notes) == 1, stdout
    assert notes[0].endswith(f"; checkpoint saved, resume with: graphnet train --resume {out}")
    match = re.match(r"interrupted at epoch (\d+), before iteration (\d+) of (\d+);", notes[0])
    assert match, notes[0]
    epoch, iteration, per_epoch = (int(v) for v in match.groups())  # both counted from 1
    meta = read_checkpoint(out / "checkpoint")[2]
    assert (meta["position"]["epoch"] + 1, meta["position"]["iteration"] + 1) == (epoch, iteration)
    assert epoch < TRAIN_EPOCHS
    assert json.loads((out / "metrics.json").read_text())["interrupted"] is True

    resumed = cli("--resume", str(out))
    stdout, stderr = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, stderr
    assert f"resuming {out} at epoch {epoch}, iteration {iteration} of {per_epoch}" in stdout
    assert_matches_reference(out, reference)


def test_ctrl_c_as_training_starts_is_a_clean_130(run_file, tmp_path):
    """SIGINT right after the run folder is created (data loaded, network compiled, the
    training loop about to start): exit 130, one line or the resume note, no traceback."""
    out = tmp_path / "run"
    child, stdout, stderr = ctrl_c_when(out / "run.json", run_file, out)
    assert child.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr, stderr
    if (out / "checkpoint").exists():  # the loop had started: a checkpoint and the resume note
        assert "resume with: graphnet train --resume" in stdout
        load_checkpoint(out / "checkpoint")
    else:
        assert stderr.strip() == "graphnet train: interrupted"


@pytest.mark.slow
def test_a_second_trainer_on_a_run_folder_is_refused(run_file, tmp_path):
    """While one `graphnet train` runs in a folder, a second one (a resume, or a fresh run
    with --overwrite) is refused with one line naming the first; the first is undisturbed."""
    long_run = json.loads(run_file.read_text())
    long_run["train"]["epochs"] = 100_000  # still running when the second trainers come
    (tmp_path / "long.json").write_text(json.dumps(long_run))
    out = tmp_path / "run"
    first = cli(str(tmp_path / "long.json"), "--out", str(out))
    try:
        wait_for(out / "checkpoint" / ARRAYS_FILE, first)
        saved = (out / "run.json").read_bytes()
        for args in (["--resume", str(out), "--epochs", "3"], [str(run_file), "--out", str(out), "--overwrite"]):
            second = cli(*args)
            stdout, stderr = second.communicate(timeout=120)
            assert second.returncode == 1, (stdout, stderr)
            assert stderr.strip() == (f"graphnet train: {out}: in use by process {first.pid} "
                                      f"(lock file {out / '.lock'})"), stderr
        assert first.poll() is None, "the first trainer stopped"
        first.send_signal(signal.SIGINT)
        stdout, stderr = first.communicate(timeout=60)
    finally:
        kill_if_running(first)
    assert first.returncode == 130, stderr
    assert "checkpoint saved, resume with" in stdout and "Traceback" not in stderr
    assert (out / "run.json").read_bytes() == saved  # still the first trainer's settings
    load_checkpoint(out / "checkpoint")
    assert temporaries(out / "checkpoint") == []
    assert not (out / ".lock").exists()


@pytest.mark.slow
def test_a_lock_left_by_a_killed_trainer_is_taken_over(run_file, reference, tmp_path):
    out = tmp_path / "run"
    child = cli(str(run_file), "--out", str(out))
    try:
        wait_for(out / "checkpoint" / ARRAYS_FILE, child)
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
    finally:
        kill_if_running(child)
    if child.returncode == 0:
        pytest.skip("training finished before the kill")
    assert (out / ".lock").read_text().split()[0] == str(child.pid)
    resumed = cli("--resume", str(out))
    stdout, stderr = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, stderr
    assert f"{out}: taking over the stale lock of process {child.pid}, which is gone" in stdout
    assert_matches_reference(out, reference)
    assert not (out / ".lock").exists()
