"""The runs the resume tests train: a spiral run with every piece of state a resume has to
restore, the uninterrupted run every resumed one must reproduce, and the comparison of two."""
from __future__ import annotations

import math
import signal
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

import graphnet as gn
import graphnet.training.loop as training_loop
from graphnet.model.checkpoint import read_checkpoint

SPIRAL_TRAIN, BATCH = 216, 32  # spiral with val_size 0.1: 216 training examples
PER_EPOCH = math.ceil(SPIRAL_TRAIN / BATCH)  # 7 iterations, the last one short (24)

BN_DROPOUT = {
    "name": "bn_dropout",
    "inputs": {"x": {"shape": [2]}},
    "labels": {"y": {"classes": 3}},
    "nodes": [
        {"id": "fc1", "op": "affine", "inputs": ["x"], "units": 32, "init": "he_normal"},
        {"id": "bn1", "op": "batchnorm", "inputs": ["fc1"]},
        {"id": "h", "op": "relu", "inputs": ["bn1"]},
        {"id": "drop", "op": "dropout", "inputs": ["h"], "rate": 0.2},
        {"id": "fc2", "op": "affine", "inputs": ["drop"], "units": 3},
        {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc2", "y"]},
    ],
    "outputs": ["fc2"],
    "loss": "loss",
    "l2": 1e-4,
}


def make_run(epochs=6, schedule=None, optimizer=None, network=None) -> gn.RunSpec:
    """Dropout masks, batchnorm statistics, Adam moments and a schedule that depends on the
    total: every piece of state a resume has to restore."""
    return gn.parse_run({
        "network": network or BN_DROPOUT,
        "train": {"data": {"name": "spiral", "val_size": 0.1},
                  "optimizer": optimizer or {"rule": "adam", "learning_rate": 1e-2},
                  "schedule": schedule or {"kind": "cosine", "min_lr": 1e-4, "warmup_epochs": 1},
                  "epochs": epochs, "batch_size": BATCH, "seed": 5},
    })


def comparable(history) -> list[dict]:
    """Epoch records without the wall-clock field: everything else must match exactly."""
    return [{k: v for k, v in asdict(r).items() if k != "seconds"} for r in history]


def saved_arrays(folder: Path) -> dict[str, np.ndarray]:
    return read_checkpoint(folder / "checkpoint")[1]


def assert_same_outcome(a: gn.TrainResult, b: gn.TrainResult) -> None:
    assert comparable(a.history) == comparable(b.history)  # exact floats
    assert np.array_equal(a.net.store.values, b.net.store.values)
    assert np.array_equal(a.net.store.state, b.net.store.state)
    assert a.metrics["test_accuracy"] == b.metrics["test_accuracy"]
    if a.out is not None and b.out is not None:
        arrays_a, arrays_b = saved_arrays(a.out), saved_arrays(b.out)
        assert set(arrays_a) == set(arrays_b)
        for key in arrays_a:  # params, batchnorm state and optimizer slots
            assert np.array_equal(arrays_a[key], arrays_b[key]), key
        meta_a, meta_b = read_checkpoint(a.out / "checkpoint")[2], read_checkpoint(b.out / "checkpoint")[2]
        assert meta_a["optimizer"] == meta_b["optimizer"]  # rule, hyperparameters, step count
        assert meta_a["dropout_rng"] == meta_b["dropout_rng"]
        assert meta_a["position"] == meta_b["position"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> gn.TrainResult:
    """The uninterrupted 6-epoch run every resumed run must reproduce."""
    return gn.train(make_run(), out=tmp_path_factory.mktemp("reference") / "run", log=None, progress=False)


def files_of(out: Path) -> dict[str, bytes]:
    """Every file of a run folder but its lock, by path relative to the folder: its bytes."""
    return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != ".lock"}


def interrupt_at(monkeypatch, epoch: int, iteration: int, times: int = 1, per_epoch: int = PER_EPOCH) -> None:
    """Simulate Ctrl-C while iteration `iteration` of epoch `epoch` (0-based) of a run of
    `per_epoch` iterations an epoch is being set up: the real SIGINT handler runs, exactly as
    for a key press at that moment."""
    target = epoch + iteration / per_epoch  # the same expression training evaluates
    real = training_loop.learning_rate_at

    def spy(schedule, base_lr, at, total_epochs, iterations_per_epoch=1):
        if at == target:
            for _ in range(times):
                signal.raise_signal(signal.SIGINT)
        return real(schedule, base_lr, at, total_epochs, iterations_per_epoch)

    monkeypatch.setattr(training_loop, "learning_rate_at", spy)
