"""Splitting and normalizing data sets: the seeded validation/test splits (stratified by
class when asked) and the normalizations ("scale", "standardize") fitted on the training
split."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError
from .preprocessing import normalize_in_place


def split_size(size: Any, n: int, what: str, default: int) -> int:
    """How many of `n` examples a split takes: `size` as an int count or a float fraction
    (None: `default`), at most n - 1; DataError naming `what` otherwise."""
    if size is None:
        k = default
    elif isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        k = int(size)
        if not 0 <= k < n:
            raise DataError(f"{what}={size} must be in 0..{n - 1} (the training set has {n} examples)")
    elif isinstance(size, (float, np.floating)) and 0.0 <= size < 1.0:
        k = min(int(round(float(size) * n)), n - 1)
    else:
        raise DataError(f"{what} must be an int count or a float fraction in [0, 1), got {size!r}")
    return max(0, min(k, n - 1))


def split_off(X: np.ndarray, y: np.ndarray, k: int, rng: np.random.Generator,
              stratify: bool = False) -> tuple[np.ndarray, ...]:
    """(X, y kept, X, y taken): a seeded random subset of k examples split off; both parts
    keep their original order. With `stratify`, each class (of class labels y (N,), or of
    0/1 targets (N, 1)) gives the split its share of k (see `stratified_subset`)."""
    if stratify:
        take = stratified_subset(strata(y), k, rng)
        keep = np.setdiff1d(np.arange(len(X)), take, assume_unique=True)
    else:
        perm = rng.permutation(len(X))
        take, keep = np.sort(perm[:k]), np.sort(perm[k:])
    return X[keep], y[keep], X[take], y[take]


def strata(y: np.ndarray) -> np.ndarray:
    """The class of each example, (N,): class indices (N,), or one whole-number target per
    example (binary 0/1 targets (N, 1)); DataError for other targets (regression)."""
    y = np.asarray(y)
    values = y.reshape(len(y), -1)
    if values.shape[1] != 1 or (y.dtype.kind == "f" and not np.array_equal(values, np.round(values))):
        raise DataError("stratify: splits are stratified by class, and these labels are float targets "
                        f"(shape {y.shape[1:]}), not classes: set \"stratify\": false")
    return values[:, 0]


def stratified_subset(classes: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """The sorted indices of k of the N examples, each class in proportion to its share of
    `classes` (N,): floor(k n_c / N) each, and the examples left over to the classes with
    the largest remainders (ties drawn at random); within a class, a random choice."""
    n = len(classes)
    _, inverse, counts = np.unique(classes, return_inverse=True, return_counts=True)
    quota = counts * (k / n) if n else counts.astype(np.float64)
    take = np.floor(quota).astype(np.int64)
    short = k - int(take.sum())
    if short > 0:
        order = np.lexsort((rng.random(len(counts)), -(quota - take)))
        take[order[:short]] += 1
    grouped = np.argsort(inverse, kind="stable")
    starts = np.cumsum(counts) - counts
    chosen = [rng.permutation(grouped[start:start + size])[:count]
              for start, size, count in zip(starts, counts, take)]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


def _standardization(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) float64 per feature of the training split (a constant feature gets std 1)."""
    mean = train.mean(axis=0, dtype=np.float64)
    sq = np.zeros_like(mean)
    for i in range(0, len(train), 8192):  # chunked so float64 temporaries stay small
        d = train[i:i + 8192] - mean
        sq += np.einsum("i...,i...->...", d, d)
    std = np.sqrt(sq / len(train))
    std[std == 0] = 1.0
    return mean, std


def fit_normalization(train: np.ndarray, mode: str | None, raw: np.dtype) -> tuple[np.ndarray, np.ndarray] | None:
    """(shift, scale) float64 of a normalization mode, fitted on the training split only:
    x -> (x - shift) / scale; None for no normalization. "scale": unsigned integers (pixels)
    by their dtype's maximum (scalars), other features each by its own min and max range;
    "standardize": each feature by its mean and std."""
    if mode == "scale":
        if raw.kind == "u":
            return np.zeros(()), np.array(float(np.iinfo(raw).max))
        lo = train.min(axis=0).astype(np.float64)  # per feature, to [0, 1] on the training split
        span = train.max(axis=0).astype(np.float64) - lo
        span[span == 0] = 1.0  # a constant feature is shifted to 0, not divided by 0
        return lo, span
    if mode == "standardize":
        return _standardization(train)
    return None


def normalize_splits(arrays: list[np.ndarray], mode: str | None, raw: np.dtype,
                     keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """In place: every array normalized by the first one's fit; returns the fit (see
    `fit_normalization`). `keep` (D,) bool: features left as they are (shift 0, scale 1:
    a table's one-hot slots)."""
    fit = fit_normalization(arrays[0], mode, raw)
    if fit is not None:
        if keep is not None:
            shift, scale = (np.array(np.broadcast_to(a, keep.shape), np.float64) for a in fit)
            shift[keep], scale[keep] = 0.0, 1.0
            fit = shift, scale
        for a in arrays:
            normalize_in_place(a, *fit)
    return fit
