"""Built-in synthetic data sets: no download, deterministic by seed. `spiral` and `blobs`
are data set names (`load("spiral")`); `adult_like` is a raw table like the UCI Adult
census file, written as a CSV by `write_table_csv`."""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..system.fileio import write_text_atomic
from ._checks import as_generator, check_positive

__all__ = ["spiral", "blobs", "SYNTHETIC", "ADULT_COLUMNS", "ADULT_CLASSES", "adult_like", "write_table_csv"]


def spiral(points: int = 100, classes: int = 3, noise: float = 0.2, *,
           seed: int | np.random.Generator = 0) -> tuple[np.ndarray, np.ndarray]:
    """The CS231n spiral: `classes` arms of `points` each, in 2-D.

    Arm j has radius linspace(0, 1) and angle linspace(4j, 4(j+1)) plus
    Gaussian noise of std `noise` (radians). Returns X (points*classes, 2)
    float64 and y (points*classes,) int64, ordered arm by arm.
    """
    check_positive("points", points, "spiral")
    check_positive("classes", classes, "spiral")
    check_positive("noise", noise, "spiral", integer=False)
    rng = as_generator(seed)
    X = np.zeros((points * classes, 2))
    y = np.repeat(np.arange(classes, dtype=np.int64), points)
    r = np.linspace(0.0, 1.0, points)
    for j in range(classes):
        t = np.linspace(j * 4, (j + 1) * 4, points) + rng.standard_normal(points) * noise
        X[j * points:(j + 1) * points] = np.c_[r * np.sin(t), r * np.cos(t)]
    return X, y


def blobs(points: int = 100, classes: int = 3, features: int = 2, std: float = 1.0, *,
          seed: int | np.random.Generator = 0) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic Gaussian blobs, one per class, `points` each.

    Centers are uniform in [-10, 10]^features (as scikit-learn's make_blobs);
    each point is its center plus N(0, std^2) noise per feature. Returns
    X (points*classes, features) float64 and y (points*classes,) int64.
    """
    check_positive("points", points, "blobs")
    check_positive("classes", classes, "blobs")
    check_positive("features", features, "blobs")
    check_positive("std", std, "blobs", integer=False)
    rng = as_generator(seed)
    centers = rng.uniform(-10.0, 10.0, size=(classes, features))
    y = np.repeat(np.arange(classes, dtype=np.int64), points)
    X = centers[y] + rng.standard_normal((points * classes, features)) * std
    return X, y


SYNTHETIC: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {"spiral": spiral, "blobs": blobs}


ADULT_COLUMNS = ("age", "workclass", "education", "sex", "hours")  # adult_like's columns, in order
ADULT_CLASSES = ("<=50K", ">50K")  # its income labels, in sorted order


def adult_like(n: int = 1500, seed: int | np.random.Generator = 0) -> tuple[np.ndarray, np.ndarray]:
    """A table like the UCI Adult census file: X (n, 5) object array in ADULT_COLUMNS order --
    age and hours (float; about 5% of ages missing: None), workclass (str, 4 categories, about
    5% missing: None), education (str, 5 categories) and sex (str, 2) -- and an income label
    (n,) str, ">50K" for the top fifth of a noisy score of the columns (1:4 against "<=50K")."""
    check_positive("n", n, "adult_like")
    rng = as_generator(seed)
    work = np.array(["Private", "Self-emp", "Gov", "Never-worked"])
    edu = np.array(["HS-grad", "Bachelors", "Masters", "Doctorate", "Some-college"])
    age = rng.integers(18, 80, n).astype(float)
    hours = rng.normal(40, 10, n).round(1)
    w, e, s = rng.choice(4, n, p=[0.6, 0.15, 0.2, 0.05]), rng.choice(5, n), rng.choice(2, n)
    score = (0.05 * (age - 40) + 0.08 * (hours - 40) + np.array([0, 0.8, 0.4, -2])[w]
             + np.array([-1, 0.6, 1.2, 1.8, -0.3])[e] + 0.5 * (s == 0) + rng.normal(0, 0.5, n))
    label = np.where(score > np.quantile(score, 0.8), ADULT_CLASSES[1], ADULT_CLASSES[0])
    X = np.empty((n, 5), dtype=object)
    X[:, 0], X[:, 1], X[:, 2], X[:, 3], X[:, 4] = age, work[w], edu[e], np.array(["Male", "Female"])[s], hours
    X[rng.random(n) < 0.05, 0] = None
    X[rng.random(n) < 0.05, 1] = None
    return X, label


def write_table_csv(path: str | os.PathLike[str], X: np.ndarray, labels: np.ndarray | None,
                    columns: Sequence[str], label: str = "label") -> Path:
    """Write a raw table X (n, len(columns)) of floats, str and None (a missing cell) as a CSV
    file with a header, atomically: the `label` column first with `labels` (n,) (unless None),
    then `columns`; a missing cell is written "" in a number column, "?" in a text one (a
    column all of whose present cells are str). Returns the path."""
    text = [all(isinstance(v, str) for v in X[:, j] if v is not None) for j in range(X.shape[1])]

    def cell(value: object, j: int) -> str:
        if value is None:
            return "?" if text[j] else ""
        return value if isinstance(value, str) else repr(float(value))  # type: ignore[arg-type]

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(([label] if labels is not None else []) + list(columns))
    writer.writerows(([str(labels[i])] if labels is not None else []) + [cell(v, j) for j, v in enumerate(row)]
                     for i, row in enumerate(X))
    write_text_atomic(path, buffer.getvalue())
    return Path(path)
