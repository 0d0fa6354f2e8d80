"""gn.train and signals: Ctrl-C mid-epoch (once, twice, before a run folder exists), SIGINT ignored
at start, and the exact resume after each; a run folder another process holds; pytest itself in the
background; the learning curve in a process of its own. The rest: tests/training/test_training.py."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

import graphnet as gn
from graphnet.model.checkpoint import ARRAYS_FILE, read_checkpoint

from tests._support.extras import HAVE_MATPLOTLIB
from tests._support.paths import ROOT
from tests._support.resume_runs import PER_EPOCH, assert_same_outcome, files_of, interrupt_at, make_run
from tests._support.resume_runs import reference  # noqa: F401 (a fixture)
from tests._support.image_data import image_run, write_images


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="the learning curve needs matplotlib (graphnet[plot])")
def test_the_learning_curve_leaves_matplotlib_as_it_found_it(tmp_path):
    """No pyplot and no process-wide backend switch: a user's backend stays theirs."""
    code = ("import pathlib, sys, matplotlib\n"
            "matplotlib.use('svg')\n"
            "import graphnet.training as training\n"
            "history = [training.EpochRecord(epoch=e, train_loss=1.0 / e, train_accuracy=0.5, val_loss=None,\n"
            "                                val_accuracy=0.4, learning_rate=0.1, seconds=0.1) for e in (1, 2)]\n"
            "assert training.plot_learning_curve(history, pathlib.Path(sys.argv[1])) is None\n"
            "print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "curve.png")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["svg", "False"]
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("epoch,iteration", [(0, 0), (0, 3), (2, 0), (3, 5), (4, PER_EPOCH - 1)],
                         ids=lambda v: str(v))
def test_ctrl_c_mid_epoch_then_resume_reproduces_the_run(tmp_path, monkeypatch, reference, epoch, iteration):
    lines: list[str] = []
    interrupt_at(monkeypatch, epoch, iteration)
    first = gn.train(make_run(), out=tmp_path / "run", log=lines.append, progress=False)
    monkeypatch.undo()
    assert first.interrupted and first.metrics["interrupted"] is True
    # the flag is seen before the next step: the step in progress is completed
    stop_epoch, stop_iteration = (epoch, iteration + 1) if iteration + 1 < PER_EPOCH else (epoch + 1, 0)
    assert len(first.history) == stop_epoch
    note = [line for line in lines if line.startswith("interrupted")]
    assert note == [f"interrupted at epoch {stop_epoch + 1}, before iteration {stop_iteration + 1} of {PER_EPOCH}; "
                    f"checkpoint saved, resume with: graphnet train --resume {tmp_path / 'run'}"]
    meta = read_checkpoint(tmp_path / "run" / "checkpoint")[2]
    assert (meta["position"]["epoch"], meta["position"]["iteration"]) == (stop_epoch, stop_iteration)
    assert meta["optimizer"]["t"] == stop_epoch * PER_EPOCH + stop_iteration
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["interrupted"] is True
    assert json.loads((tmp_path / "run" / "history.json").read_text()) == [asdict(r) for r in first.history]

    resumed = gn.train(None, resume=tmp_path / "run", log=lines.append, progress=False)
    assert not resumed.interrupted
    assert f"resuming {tmp_path / 'run'} at epoch {stop_epoch + 1}, iteration {stop_iteration + 1} of {PER_EPOCH}" \
        in lines
    assert_same_outcome(reference, resumed)
    assert json.loads((tmp_path / "run" / "history.json").read_text()) == [asdict(r) for r in resumed.history]


@pytest.mark.parametrize("epoch,iteration", [(0, 2), (1, 5)], ids=lambda v: str(v))
def test_ctrl_c_then_resume_reproduces_an_augmented_run(tmp_path, monkeypatch, epoch, iteration):
    """The flips and shifts follow the run seed and the position in the epoch: a resumed run
    draws what the uninterrupted one drew (128 training images, batch 24: 6 iterations an epoch)."""
    run = image_run(str(write_images(tmp_path / "bars.npz")), {"flip": "horizontal", "shift": 2},
                    batch_size=24)
    uninterrupted = gn.train(run, out=tmp_path / "reference", log=None, progress=False)
    plain = gn.train({**run, "train": {k: v for k, v in run["train"].items() if k != "augment"}},
                     out=tmp_path / "plain", log=None, progress=False)
    assert not np.array_equal(plain.net.store.values, uninterrupted.net.store.values)  # augmentation did something
    interrupt_at(monkeypatch, epoch, iteration, per_epoch=6)
    assert gn.train(run, out=tmp_path / "run", log=None, progress=False).interrupted
    monkeypatch.undo()
    assert_same_outcome(uninterrupted, gn.train(None, resume=tmp_path / "run", log=None, progress=False))


def test_interrupted_twice_then_resumed_twice(tmp_path, monkeypatch, reference):
    interrupt_at(monkeypatch, 1, 2)
    assert gn.train(make_run(), out=tmp_path / "run", log=None, progress=False).interrupted
    interrupt_at(monkeypatch, 3, 6)
    assert gn.train(None, resume=tmp_path / "run", log=None, progress=False).interrupted
    monkeypatch.undo()
    assert_same_outcome(reference, gn.train(None, resume=tmp_path / "run", log=None, progress=False))


def test_second_ctrl_c_stops_at_once_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    found = signal.getsignal(signal.SIGINT)
    run = make_run(epochs=4)
    interrupt_at(monkeypatch, 2, 3, times=2)
    with pytest.raises(KeyboardInterrupt):
        gn.train(run, out=tmp_path / "run", log=None, progress=False)
    monkeypatch.undo()
    meta = read_checkpoint(tmp_path / "run" / "checkpoint")[2]
    assert (meta["position"]["epoch"], meta["position"]["iteration"]) == (2, 0)  # the epoch-2 checkpoint
    # and the handler found before training is back (Python's KeyboardInterrupt, or SIG_IGN
    # when pytest itself was started in the background)
    assert signal.getsignal(signal.SIGINT) is found
    full = gn.train(run, log=None, progress=False)
    assert_same_outcome(full, gn.train(None, resume=tmp_path / "run", log=None, progress=False))


def test_sigint_stops_training_started_with_sigint_ignored(tmp_path, monkeypatch):
    """`graphnet train ... &` in a script starts with SIGINT ignored; a later `kill -INT` must
    still stop it with a checkpoint, and the ignored state comes back after training."""
    found = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        interrupt_at(monkeypatch, 1, 2)
        result = gn.train(make_run(epochs=3), out=tmp_path / "run", log=None, progress=False)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, found)
    assert result.interrupted and read_checkpoint(tmp_path / "run" / "checkpoint")[2]["position"]["epoch"] == 1


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_the_signal_tests_pass_when_pytest_runs_in_the_background():
    """`pytest &` from a script inherits SIGINT ignored: the Ctrl-C tests must pass there too."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k", "ctrl_c"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout and "deselected" in done.stdout


def test_ctrl_c_without_a_run_folder(monkeypatch):
    interrupt_at(monkeypatch, 1, 1)
    result = gn.train(make_run(epochs=3), log=None, progress=False)
    assert result.interrupted and len(result.history) == 1 and result.out is None


@pytest.fixture
def other_process():
    """A live process other than this one (it holds a run folder's lock in the tests)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield child
    child.kill()
    child.wait()


@pytest.mark.skipif(os.name != "posix", reason="POSIX process ids")
@pytest.mark.parametrize("how", ["fresh", "resume", "overwrite"])
def test_train_refuses_a_run_folder_another_process_holds(tmp_path, other_process, how):
    out = tmp_path / "run"
    if how == "fresh":
        out.mkdir()
    else:
        gn.train(make_run(epochs=1), out=out, log=None, progress=False)
    before = files_of(out)
    (out / ".lock").write_text(f"{other_process.pid} {socket.gethostname()}\n")
    with pytest.raises(gn.RunFolderError) as info:
        if how == "resume":
            gn.train(None, resume=out, epochs=2, log=None, progress=False)
        else:
            gn.train(make_run(epochs=2), out=out, overwrite=how == "overwrite", log=None, progress=False)
    assert str(info.value) == f"{out}: in use by process {other_process.pid} (lock file {out / '.lock'})"
    assert files_of(out) == before
    other_process.kill()
    other_process.wait()
    notes: list[str] = []  # the owner is gone: its lock is stale and taken over
    if how == "resume":
        gn.train(None, resume=out, epochs=2, log=notes.append, progress=False)
    else:
        gn.train(make_run(epochs=2), out=out, overwrite=how == "overwrite", log=notes.append, progress=False)
    assert f"{out}: taking over the stale lock of process {other_process.pid}, which is gone" in notes
    assert len(json.loads((out / "history.json").read_text())) == 2
    assert not (out / ".lock").exists()


def test_an_override_interrupted_mid_epoch_is_saved_with_its_checkpoint(tmp_path, monkeypatch):
    """The checkpoint holds steps trained under the override: run.json must say so (a plain
    resume continues to the extended number of epochs)."""
    gn.train(make_run(epochs=2), out=tmp_path, log=None, progress=False)
    interrupt_at(monkeypatch, 3, 2)
    assert gn.train(None, resume=tmp_path, epochs=6, log=None, progress=False).interrupted
    monkeypatch.undo()
    assert gn.parse_run((tmp_path / "run.json").read_text()).train.epochs == 6


# ---- bookkeeping: what an epoch end writes does not grow with the epochs ---------------------------


def log_records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]


def interrupted_run(out: Path, monkeypatch, epoch: int = 3) -> gn.TrainResult:
    """make_run() stopped by a Ctrl-C in epoch `epoch` (0-based): `epoch` epochs in its history."""
    interrupt_at(monkeypatch, epoch, 2)
    result = gn.train(make_run(), out=out, log=None, progress=False)
    monkeypatch.undo()
    assert result.interrupted and len(result.history) == epoch
    return result


def test_resume_cuts_a_torn_line_and_a_record_no_checkpoint_counts(tmp_path, monkeypatch, reference):
    """A crash after an epoch's record was appended, before its checkpoint (a complete line too
    many), or in the middle of an append (a torn line): the resume cuts both."""
    out = tmp_path / "run"
    interrupted_run(out, monkeypatch)
    with open(out / "history.jsonl", "a") as log:
        log.write(json.dumps({**log_records(out)[-1], "epoch": 4}) + "\n" + '{"epoch": 5, "train_lo')
    resumed = gn.train(None, resume=out, log=None, progress=False)
    assert_same_outcome(reference, resumed)
    assert log_records(out) == [asdict(r) for r in resumed.history]
    assert json.loads((out / "history.json").read_text()) == [asdict(r) for r in resumed.history]


def test_a_lost_history_log_is_taken_from_history_json_or_refused(tmp_path, monkeypatch, reference):
    out = tmp_path / "run"
    interrupted_run(out, monkeypatch)
    (out / "history.jsonl").unlink()  # history.json, written at the interrupt, holds the 3 epochs
    assert_same_outcome(reference, gn.train(None, resume=out, log=None, progress=False))
    assert len(log_records(out)) == 6

    out = tmp_path / "lost"
    interrupted_run(out, monkeypatch)
    (out / "history.jsonl").write_text((out / "history.jsonl").read_text().split("\n", 1)[0] + "\n")
    (out / "history.json").unlink()
    before = files_of(out)
    with pytest.raises(gn.CheckpointError) as info:
        gn.train(None, resume=out, log=None, progress=False)
    assert str(info.value) == (f"{out / 'history.jsonl'}: holds 1 complete epoch records, but "
                               f"{out / 'checkpoint' / ARRAYS_FILE} was saved after 3 (the log was cut or removed, "
                               "and history.json does not hold them either)")
    assert files_of(out) == before


def test_a_damaged_line_of_the_history_log_is_refused_naming_it(tmp_path, monkeypatch):
    out = tmp_path / "run"
    interrupted_run(out, monkeypatch)
    lines = (out / "history.jsonl").read_text().splitlines()
    lines[1] = lines[1][:20]
    (out / "history.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(gn.CheckpointError, match=r"history.jsonl: line 2 is not an epoch record \("):
        gn.train(None, resume=out, log=None, progress=False)


def test_a_checkpoint_that_holds_the_history_in_its_meta_still_resumes(tmp_path, monkeypatch, reference):
    """As graphnet wrote checkpoints before: the whole history in a unicode-string meta, no run
    identity, no history log and no run_id.txt in the folder."""
    out = tmp_path / "run"
    interrupted_run(out, monkeypatch, epoch=2)
    spec, arrays, meta = read_checkpoint(out / "checkpoint")
    meta["history"] = json.loads((out / "history.json").read_text())
    del meta["history_records"], meta["run"]
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(out / "checkpoint" / ARRAYS_FILE, **arrays)
    for name in ("history.jsonl", "run_id.txt", "history.json"):
        (out / name).unlink()
    resumed = gn.train(None, resume=out, log=None, progress=False)
    assert_same_outcome(reference, resumed)
    assert log_records(out) == [asdict(r) for r in resumed.history]
    assert read_checkpoint(out / "checkpoint")[2]["run"]["id"] == (out / "run_id.txt").read_text().strip()
