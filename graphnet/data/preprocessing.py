"""The input preprocessing a model was trained with, saved with it (a model is the whole state).

A data set's normalization is fitted on the training split only; the fitted
values travel with the network (`net.preprocessing`, saved in its checkpoint)
so that raw features go in wherever a user feeds the model:

- RAW features: `net.predict(X)`, `net.predict_proba(X)`, `graphnet eval`,
  `graphnet predict` and the ONNX export apply the preprocessing;
- NETWORK inputs (already preprocessed): `net.forward`, `net.loss`, the
  training steps -- the hot path never transforms anything.

(As Keras keeps its preprocessing layers apart from the model it feeds.)

The transform of one input is: reshape the raw example (e.g. a 28x28 image)
to a row of D features, then ``(x - shift) / scale`` in the network's dtype
(``"standardize"``: per-feature mean and std; ``"scale"``: 0 and 255 for
uint8 pixels, or each feature's min and max range on the training split; ``"none"``:
nothing), then reshape to the network input's shape.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataError

MODES = ("none", "scale", "standardize")
ARRAY_PREFIX = "preprocessing/"


def normalize_in_place(array: np.ndarray, shift: np.ndarray, scale: np.ndarray) -> None:
    """array (N, *s) -= shift, then /= scale, in the array's dtype; shift and scale broadcast to s."""
    array -= np.asarray(shift).astype(array.dtype)
    array /= np.asarray(scale).astype(array.dtype)


@dataclass(frozen=True, eq=False)
class Preprocessing:
    """How raw examples of shape `raw_shape` become the network input `input`.

    shift, scale: float64 arrays, () or (D,) with D = prod(raw_shape); None for mode "none".
    feature_names: the CSV columns the features were read from (in order), if any;
    label_column: the CSV column that held the labels, if any (ignored by predict).
    """

    input: str
    raw_shape: tuple[int, ...]
    mode: str = "none"
    shift: np.ndarray | None = None
    scale: np.ndarray | None = None
    feature_names: tuple[str, ...] | None = None
    label_column: str | None = None

    @property
    def width(self) -> int:
        """D: the number of raw feature values per example."""
        return int(np.prod(self.raw_shape, dtype=np.int64))

    def apply(self, X: Any, input_shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """Raw X: (N, *raw_shape) (or (N, D)) -> network input (N, *input_shape) of `dtype`, a new array."""
        X = np.asarray(X)
        if X.ndim == 0 or X.dtype.kind not in "biuf":
            raise DataError(f"input '{self.input}': raw features must be a numeric array (N, "
                            f"{', '.join(map(str, self.raw_shape))}), got {X.dtype} of shape {X.shape}")
        if int(np.prod(X.shape[1:], dtype=np.int64)) != self.width:
            raise DataError(f"input '{self.input}': raw examples of shape {X.shape[1:]} do not fit the model's "
                            f"{self.raw_shape} ({self.width} values each)")
        rows = np.array(X.reshape(len(X), self.width), dtype=dtype, order="C")
        if self.mode != "none":
            normalize_in_place(rows, self.shift, self.scale)  # type: ignore[arg-type]
        return rows.reshape((len(X), *input_shape))

    def standardization(self, input_shape: tuple[int, ...]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{input: (mean, std)} for the ONNX exporter, shaped to broadcast to `input_shape`; {} for "none"."""
        if self.mode == "none":
            return {}
        shift, scale = (a if a.ndim == 0 else a.reshape(input_shape) for a in (self.shift, self.scale))  # type: ignore[union-attr]
        return {self.input: (shift, scale)}

    # ---- saving ------------------------------------------------------------------------------

    def description(self) -> dict[str, Any]:
        """The JSON part (for a checkpoint's meta); the arrays are in `arrays()`."""
        return {"input": self.input, "raw_shape": list(self.raw_shape), "mode": self.mode,
                "feature_names": None if self.feature_names is None else list(self.feature_names),
                "label_column": self.label_column}

    def arrays(self) -> dict[str, np.ndarray]:
        """{"preprocessing/shift": ..., "preprocessing/scale": ...} (empty for mode "none")."""
        if self.mode == "none":
            return {}
        return {f"{ARRAY_PREFIX}shift": np.asarray(self.shift, np.float64),
                f"{ARRAY_PREFIX}scale": np.asarray(self.scale, np.float64)}

    @classmethod
    def from_saved(cls, description: Any, arrays: dict[str, np.ndarray]) -> "Preprocessing":
        """The record from `description()` and `arrays()`; ValueError saying what is wrong."""
        if not isinstance(description, dict):
            raise ValueError(f"the preprocessing description is {description!r}, not an object")
        mode, raw_shape = description.get("mode"), description.get("raw_shape")
        if mode not in MODES:
            raise ValueError(f"preprocessing mode {mode!r} is not one of {', '.join(MODES)}")
        if not isinstance(description.get("input"), str):
            raise ValueError(f"preprocessing input {description.get('input')!r} is not a name")
        if (not isinstance(raw_shape, list) or not raw_shape
                or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in raw_shape)):
            raise ValueError(f"preprocessing raw_shape {raw_shape!r} is not a list of sizes >= 1")
        names, label = description.get("feature_names"), description.get("label_column")
        if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
            raise ValueError(f"preprocessing feature_names {names!r} is not a list of column names")
        if label is not None and not isinstance(label, str):
            raise ValueError(f"preprocessing label_column {label!r} is not a column name")
        record = cls(description["input"], tuple(raw_shape), mode,
                     feature_names=None if names is None else tuple(names), label_column=label)
        if names is not None and len(names) != record.width:
            raise ValueError(f"preprocessing has {len(names)} feature names for {record.width} features")
        if mode == "none":
            return record
        shift, scale = (arrays.get(f"{ARRAY_PREFIX}{key}") for key in ("shift", "scale"))
        for key, array in (("shift", shift), ("scale", scale)):
            if array is None:
                raise ValueError(f"missing '{ARRAY_PREFIX}{key}' for preprocessing mode {mode!r}")
            if array.shape not in ((), (record.width,)):
                raise ValueError(f"'{ARRAY_PREFIX}{key}' has shape {array.shape}, expected () or ({record.width},)")
        if np.any(scale == 0):
            raise ValueError(f"'{ARRAY_PREFIX}scale' has zeros (it divides)")
        return cls(record.input, record.raw_shape, mode, np.asarray(shift, np.float64),
                   np.asarray(scale, np.float64), record.feature_names, record.label_column)


def class_names_from_saved(names: Any, classes: int | None) -> tuple[str, ...] | None:
    """Saved class names as a tuple of str (None when absent); ValueError when malformed
    or when their count is not the label's `classes`."""
    if names is None:
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"class_names {names!r} is not a list of strings")
    if len(set(names)) != len(names):
        raise ValueError("class_names has duplicates")
    if classes is not None and len(names) != classes:
        raise ValueError(f"{len(names)} class names for a label of {classes} classes")
    return tuple(names)
