"""Regression targets standardized for training (graphnet.data.targets.TargetScaling)."""
from __future__ import annotations

import numpy as np
import pytest

from graphnet.data.targets import TargetScaling
from graphnet.errors import DataError


def test_targets_are_standardized_per_value_and_predictions_scaled_back():
    y = np.array([[1000.0, 5.0], [3000.0, 5.0], [2000.0, 5.0]], np.float32)
    scaling = TargetScaling.fit(y)
    np.testing.assert_allclose(scaling.mean, [2000, 5])
    np.testing.assert_allclose(scaling.std, [np.sqrt(2e6 / 3), 1.0])  # a constant target keeps std 1
    scaled = scaling.scale(y)
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(scaling.unscale(scaled), y, rtol=1e-6)


def test_only_float_targets_are_scaled():
    with pytest.raises(DataError, match=r"y_train: target_scaling standardizes float targets \(regression\), got int64"):
        TargetScaling.fit(np.array([0, 1, 2]))


def test_the_description_round_trips_and_a_damaged_one_is_refused():
    scaling = TargetScaling.fit(np.array([[1.0], [4.0]]))
    again = TargetScaling.from_saved(scaling.description())
    np.testing.assert_array_equal(again.mean, scaling.mean)
    np.testing.assert_array_equal(again.std, scaling.std)
    for damage in ({"std": [0.0]}, {"mean": ["a"]}, {"shape": [2]}, {"shape": "1"}):
        with pytest.raises(ValueError):
            TargetScaling.from_saved({**scaling.description(), **damage})
