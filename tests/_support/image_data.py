"""Small image data sets and run documents for the train-time augmentation tests
(tests/training/test_augment.py, tests/system/training/): uint8 images [1, S, S] of
three classes (a bright row, a bright column, a bright diagonal) in noise."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tests._support.task_data import write_npz

SIZE = 6  # images are [1, SIZE, SIZE]


def bar_images(n: int = 240, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """X (n, 1, SIZE, SIZE) uint8 and y (n,) in {0, 1, 2}: a bright row, column or diagonal at a random place."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 60, (n, 1, SIZE, SIZE)).astype(np.uint8)
    y = rng.integers(0, 3, n)
    where = rng.integers(0, SIZE, n)
    for i in range(n):
        if y[i] == 0:
            X[i, 0, where[i], :] = 250
        elif y[i] == 1:
            X[i, 0, :, where[i]] = 250
        else:
            X[i, 0, np.arange(SIZE), np.arange(SIZE)] = 250
    return X, y


def image_arrays(n: int = 240, seed: int = 0) -> dict[str, np.ndarray]:
    """`bar_images` as the in-memory data of gn.train(data=...): the last 40 the test split."""
    X, y = bar_images(n, seed)
    return {"X_train": X[:-40], "y_train": y[:-40], "X_test": X[-40:], "y_test": y[-40:]}


def write_images(path: Path, n: int = 240, seed: int = 0) -> Path:
    """`bar_images` written as an .npz data file (the last 80 the test split)."""
    return write_npz(path, *bar_images(n, seed))


def image_run(data: str, augment: dict[str, Any] | None = None, **train: Any) -> dict[str, Any]:
    """A run document: flatten and a 3-class affine layer on [1, SIZE, SIZE] images (no dropout nor
    batchnorm, so MPI ranks compute what one process does), Adam, batch 16, 3 epochs."""
    settings: dict[str, Any] = {"data": {"name": data, "val_size": 0.2}, "optimizer": {"rule": "adam",
                                "learning_rate": 0.01}, "epochs": 3, "batch_size": 16, "seed": 3, **train}
    if augment is not None:
        settings["augment"] = augment
    return {
        "network": {
            "name": "bars",
            "inputs": {"x": {"shape": [1, SIZE, SIZE]}},
            "labels": {"y": {"classes": 3}},
            "nodes": [
                {"id": "flat", "op": "flatten", "inputs": ["x"]},
                {"id": "fc", "op": "affine", "inputs": ["flat"], "units": 3},
                {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc", "y"]},
            ],
            "outputs": ["fc"],
            "loss": "loss",
        },
        "train": settings,
    }
