"""Shared test helpers: small regression and binary data files, run specs that train on them, and
a classifier trained on named classes."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from graphnet.cli import main
from graphnet.data.synthetic import ADULT_CLASSES, ADULT_COLUMNS, adult_like, write_table_csv  # noqa: F401 (tables)

WEIGHTS = np.array([1.5, -2.0, 0.5])  # the linear regression target: X @ WEIGHTS + 0.3 + noise


def linear_data(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """X (n, 3) standard normal, y (n,) = X @ WEIGHTS + 0.3 plus N(0, 0.05^2) noise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    return X, X @ WEIGHTS + 0.3 + 0.05 * rng.standard_normal(n)


def separable_blobs(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """X (n, 2): two Gaussian blobs at (-2, -2) and (2, 2); y (n,) int 0/1."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    return rng.standard_normal((n, 2)) + np.where(y[:, None] == 1, 2.0, -2.0), y


def write_csv(path: Path, X: np.ndarray, y: np.ndarray, label: str = "target", integer: bool = False) -> Path:
    """A CSV with feature columns f0.. and the label column last."""
    header = ",".join([f"f{j}" for j in range(X.shape[1])] + [label])
    rows = [",".join([f"{v:.6f}" for v in x] + [str(int(t)) if integer else f"{t:.6f}"]) for x, t in zip(X, y)]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def write_npz(path: Path, X: np.ndarray, y: np.ndarray, test: int = 80) -> Path:
    """An .npz with X_train/y_train and the last `test` examples as X_test/y_test."""
    np.savez(path, X_train=X[:-test], y_train=y[:-test], X_test=X[-test:], y_test=y[-test:])
    return path


def task_run(task: str, data: str, features: int, epochs: int = 30) -> dict[str, Any]:
    """A run document: a one-hidden-layer MLP with one output, mse ("regression") or
    sigmoid BCE ("binary") against a label of shape [1], Adam, on `data`."""
    loss = {"regression": "mse", "binary": "sigmoid_binary_cross_entropy"}[task]
    return {
        "network": {
            "name": f"{task}_mlp",
            "inputs": {"x": {"shape": [features]}},
            "labels": {"y": {"shape": [1]}},
            "nodes": [
                {"id": "fc1", "op": "affine", "inputs": ["x"], "units": 16, "activation": "relu"},
                {"id": "fc2", "op": "affine", "inputs": ["fc1"], "units": 1},
                {"id": "loss", "op": loss, "inputs": ["fc2", "y"]},
            ],
            "outputs": ["fc2"],
            "loss": "loss",
        },
        "train": {"data": {"name": data}, "optimizer": {"rule": "adam", "learning_rate": 1e-2},
                  "epochs": epochs, "batch_size": 32, "seed": 0},
    }


SPECIES = ("setosa", "versicolor", "virginica")  # class names in sorted order


def named_classes(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """X (n, 4) raw features on very different scales (one around 1000, one around 0.01),
    three well separated classes; names (n,) str from SPECIES, in shuffled order."""
    rng = np.random.default_rng(seed)
    k = rng.integers(0, 3, n)
    centers = np.array([[-2.0, 0.0, 1.0, 2.0], [0.0, 2.0, -1.0, 0.0], [2.0, -2.0, 0.0, -2.0]])
    Z = centers[k] + 0.4 * rng.standard_normal((n, 4))
    X = Z * np.array([100.0, 1.0, 0.01, 5.0]) + np.array([1000.0, 0.0, 0.0, -3.0])
    return X, np.asarray(SPECIES)[k]


def write_named_csv(path: Path, X: np.ndarray, names: np.ndarray | None, label: str = "species") -> Path:
    """A CSV with feature columns f0.. and, unless `names` is None, a text label column first."""
    header = ([label] if names is not None else []) + [f"f{j}" for j in range(X.shape[1])]
    rows = [",".join(([str(names[i])] if names is not None else []) + [repr(float(v)) for v in x])
            for i, x in enumerate(X)]
    path.write_text(",".join(header) + "\n" + "\n".join(rows) + "\n")
    return path


def classifier_run(data: str, features: int = 4, classes: int = 3, epochs: int = 15,
                   normalize: str = "standardize", **options: Any) -> dict[str, Any]:
    """A run document: an MLP classifier (softmax cross-entropy) over `classes` classes, on `data`."""
    return {
        "network": {
            "name": "named_classes",
            "inputs": {"x": {"shape": [features]}},
            "labels": {"y": {"classes": classes}},
            "nodes": [
                {"id": "fc1", "op": "affine", "inputs": ["x"], "units": 16, "activation": "relu"},
                {"id": "fc2", "op": "affine", "inputs": ["fc1"], "units": classes},
                {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc2", "y"]},
            ],
            "outputs": ["fc2"],
            "loss": "loss",
        },
        "train": {"data": {"name": data, "normalize": normalize, "options": options},
                  "optimizer": {"rule": "adam", "learning_rate": 1e-2}, "epochs": epochs, "batch_size": 32,
                  "seed": 0},
    }


def trained_flowers(folder: Path) -> Path:
    """A run folder trained (`graphnet train`, in this process) on a CSV of named_classes with text
    labels and standardized features."""
    X, names = named_classes(300)
    csv_path = write_named_csv(folder / "flowers.csv", X, names)
    run = folder / "run.json"
    run.write_text(json.dumps(classifier_run(str(csv_path), epochs=15)))
    assert main(["train", str(run), "--out", str(folder / "run"), "--no-progress", "--label-column", "species"]) == 0
    return folder / "run"


def new_raw_csv(path: Path, n: int = 50, seed: int = 7) -> tuple[Path, np.ndarray, np.ndarray]:
    """New raw examples of named_classes in a CSV whose columns are in another order, with an extra
    column and the label: (the file, X, names)."""
    X, names = named_classes(n, seed=seed)
    header = "f3,note,f1,species,f0,f2"
    lines = [f"{x[3]!r},hello,{x[1]!r},{name},{x[0]!r},{x[2]!r}" for x, name in zip(X.tolist(), names)]
    path.write_text(header + "\n" + "\n".join(lines) + "\n")
    return path, X, names


# ---- raw tables: numbers, text categories and missing cells (graphnet.data.columns) --------------

SOILS = ("clay", "loam", "sand")  # the flowers' soil: mostly one per species


def flowers_table(n: int = 300, seed: int = 0, unseen: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`named_classes` with a fifth column, the soil (text), and missing cells: X (n, 5)
    object array of floats and str, None where a cell is missing (about 5% of f1 and of the
    soil); names (n,). The last `unseen` rows grow a soil no other row has ("peat")."""
    X, names = named_classes(n, seed)
    rng = np.random.default_rng(seed + 1)
    k = np.searchsorted(SPECIES, names)
    soil = np.where(rng.random(n) < 0.8, np.asarray(SOILS)[k], np.asarray(SOILS)[rng.integers(0, 3, n)])
    table = np.empty((n, 5), dtype=object)
    table[:, :4] = X
    table[:, 4] = soil
    table[rng.random(n) < 0.05, 1] = None
    table[rng.random(n) < 0.05, 4] = None
    if unseen:
        table[n - unseen:, 4] = "peat"
    return table, names


ADULT_WIDTH = 2 + (4 + 2) + (5 + 2) + (2 + 2)  # age and hours; workclass, education, sex with missing and unknown
