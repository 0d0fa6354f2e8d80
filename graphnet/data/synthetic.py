"""Built-in synthetic data sets: no download, deterministic by seed."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ._checks import as_generator, check_positive

__all__ = ["spiral", "blobs", "SYNTHETIC"]


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
