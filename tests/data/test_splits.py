"""Stratified splits (graphnet.data.splits): each class keeps its share in every split, by
seed, for class labels and 0/1 targets; float targets are not classes."""
from __future__ import annotations

import numpy as np
import pytest

import graphnet as gn
from graphnet.data.splits import split_off, stratified_subset
from graphnet.errors import DataError


def imbalanced(n: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """X (n, 2), y (n,): one example in five of class 1, in a shuffled order."""
    rng = np.random.default_rng(3)
    y = (rng.permutation(n) < n // 5).astype(np.int64)
    return rng.standard_normal((n, 2)), y


@pytest.mark.parametrize("k", [1, 7, 50, 123, 499])
def test_a_stratified_subset_takes_each_class_in_proportion(k):
    _, y = imbalanced()
    take = stratified_subset(y, k, np.random.default_rng(0))
    assert len(take) == k and len(set(take.tolist())) == k and np.all(np.diff(take) > 0)
    share = np.bincount(y[take], minlength=2)
    expected = k * np.bincount(y) / len(y)
    assert np.all(np.abs(share - expected) < 1)  # floor or ceiling of the exact share


def test_split_off_with_stratify_keeps_the_ratio_in_both_parts_and_is_seeded():
    X, y = imbalanced()
    Xk, yk, Xt, yt = split_off(X, y, 100, np.random.default_rng(1), stratify=True)
    assert (len(yk), len(yt)) == (400, 100) and yt.sum() == 20 and yk.sum() == 80
    again = split_off(X, y, 100, np.random.default_rng(1), stratify=True)
    np.testing.assert_array_equal(Xt, again[2])
    plain = split_off(X, y, 100, np.random.default_rng(1))
    assert not np.array_equal(Xt, plain[2])
    targets = y.astype(np.float32).reshape(-1, 1)  # binary 0/1 targets
    assert split_off(X, targets, 100, np.random.default_rng(1), stratify=True)[3].sum() == 20
    with pytest.raises(DataError, match=r"stratify: splits are stratified by class, and these labels are float targets"):
        split_off(X, X[:, :1], 100, np.random.default_rng(1), stratify=True)


def test_load_stratifies_class_labels_by_default_and_every_split_keeps_the_ratio(tmp_path):
    X, y = imbalanced(1000)
    csv = tmp_path / "t.csv"
    csv.write_text("y,a,b\n" + "\n".join(f"{t},{a},{b}" for t, (a, b) in zip(y, X)) + "\n")
    d, info = gn.data.load_with_info(csv, val_size=0.1)
    assert info.stratified
    assert [int(d[f"y_{split}"].sum()) for split in ("train", "val", "test")] == [144, 16, 40]
    plain, info = gn.data.load_with_info(csv, val_size=0.1, stratify=False)
    assert not info.stratified
    with pytest.raises(DataError, match=r"stratify must be true or false, got 'yes'"):
        gn.data.load(csv, stratify="yes")


def test_a_source_with_its_own_splits_is_not_said_to_be_stratified(tmp_path):
    X, y = imbalanced(100)
    np.savez(tmp_path / "d.npz", X_train=X[:60], y_train=y[:60], X_val=X[60:80], y_val=y[60:80], X_test=X[80:],
             y_test=y[80:])
    assert not gn.data.load_with_info(tmp_path / "d.npz")[1].stratified
    np.savez(tmp_path / "e.npz", X_train=X[:80], y_train=y[:80], X_test=X[80:], y_test=y[80:])
    assert gn.data.load_with_info(tmp_path / "e.npz")[1].stratified  # its validation split
