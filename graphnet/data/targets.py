"""Regression targets standardized for training (`"target_scaling": true`), fitted on the
training split and saved with the model: the network learns t' = (t - mean) / std, and
its predictions go back to the original units as p * std + mean (net.predict, `graphnet
predict`, the metrics, the ONNX export), as scikit-learn's TransformedTargetRegressor
with a StandardScaler does. The losses (train, validation, test_loss) are the training
objective's, in the scaled units.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataError


@dataclass(frozen=True, eq=False)
class TargetScaling:
    """t' = (t - mean) / std per target value; mean and std float64 of the target shape
    (a constant target gets std 1)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, y: np.ndarray, where: str = "y_train") -> "TargetScaling":
        """The mean and std of the training targets y (N, *shape), per target value."""
        y = np.asarray(y)
        if y.dtype.kind != "f" or y.ndim < 2 or not len(y):
            raise DataError(f"{where}: target_scaling standardizes float targets (regression), got "
                            f"{y.dtype} labels of shape {y.shape}")
        mean = y.mean(axis=0, dtype=np.float64)
        std = y.std(axis=0, dtype=np.float64)
        std[std == 0] = 1.0
        return cls(mean, std)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.mean.shape)

    def scale(self, y: np.ndarray) -> np.ndarray:
        """Targets (N, *shape) in the units the network trains on, a new array of y's dtype."""
        return ((np.asarray(y, np.float64) - self.mean) / self.std).astype(np.asarray(y).dtype)

    def unscale(self, p: np.ndarray) -> np.ndarray:
        """Network outputs (N, *shape) back in the targets' units, a new array of p's dtype."""
        p = np.asarray(p)
        return (p.astype(np.float64) * self.std.reshape(p.shape[1:]) + self.mean.reshape(p.shape[1:])).astype(p.dtype)

    def describe(self) -> str:
        """One line for a run log."""
        values = ", ".join(f"{m:.4g} ± {s:.4g}" for m, s in zip(self.mean.reshape(-1)[:4], self.std.reshape(-1)[:4]))
        more = ", ..." if self.mean.size > 4 else ""
        return f"regression targets standardized for training (mean ± std of the training split: {values}{more})"

    def description(self) -> dict[str, Any]:
        """The scaling as JSON (a checkpoint's meta, the ONNX export's metadata)."""
        return {"shape": list(self.shape), "mean": self.mean.reshape(-1).tolist(),
                "std": self.std.reshape(-1).tolist()}

    @classmethod
    def from_saved(cls, description: Any) -> "TargetScaling":
        """The scaling of `description()`; ValueError saying what is malformed."""
        if not isinstance(description, dict):
            raise ValueError(f"the target scaling {str(description)[:80]} is not an object")
        shape = description.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1
                                                  for d in shape):
            raise ValueError(f"the target scaling's shape {shape!r} is not a list of sizes")
        arrays = []
        for key in ("mean", "std"):
            values = description.get(key)
            try:
                array = np.asarray(values, np.float64)
            except (TypeError, ValueError):
                array = np.full(0, np.nan)
            if array.ndim != 1 or array.size != int(np.prod(shape)) or not np.isfinite(array).all():
                raise ValueError(f"the target scaling's {key} is not {int(np.prod(shape))} finite numbers")
            arrays.append(array.reshape(shape))
        if np.any(arrays[1] <= 0):
            raise ValueError("the target scaling's std has values <= 0")
        return cls(*arrays)
