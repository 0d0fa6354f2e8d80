"""The model record: what a trained model is besides its network and weights.

A model is served on raw features, so what was fitted to its training data
travels with the weights:

    preprocessing   raw features -> network input (graphnet.data.preprocessing): the
                    normalization fitted on the training split, the raw example
                    shape, the CSV feature columns (by name) and label column
    class_names     the names of the classes, when the labels were text
    encoding        a table's raw columns -> the features the preprocessing reads
                    (graphnet.data.columns): each column's kind, the vocabularies of
                    the categorical ones and the imputation values of the numbers,
                    fitted on the training split (the columns by name)
    target_scaling  regression targets standardized for training
                    (graphnet.data.targets): outputs go back to the targets' units

Every route that makes a model (training in one process or on MPI ranks, a
sweep trial, a resume, `init_from`, `gn.train(data=...)`) ends by attaching one
record to the network, and every serving path reads it back: `net.predict`,
`graphnet predict` and `eval`, the ONNX export (Sub/Div and metadata), the
checkpoint (`saved` / `from_saved`). A new piece of model state is a new field
here; tests/model/test_seams.py crosses every route with every serving path.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..data.columns import ColumnEncoding
from ..data.preprocessing import Preprocessing, class_names_from_saved
from ..data.targets import TargetScaling
from ..ops import Value

PREPROCESSING_KEY = "preprocessing"    # checkpoint meta: the preprocessing's description
CLASS_NAMES_KEY = "class_names"        # checkpoint meta: the class names
ENCODING_KEY = "encoding"              # checkpoint meta: the column encoding's description
TARGET_SCALING_KEY = "target_scaling"  # checkpoint meta: the target scaling's description


@dataclass(frozen=True, eq=False)
class ModelRecord:
    """The preprocessing, class names, column encoding and target scaling of a model (each
    None when unknown or not used: a network compiled from a spec, a model trained on
    numbers only, a classifier)."""

    preprocessing: Preprocessing | None = None
    class_names: tuple[str, ...] | None = None
    encoding: ColumnEncoding | None = None
    target_scaling: TargetScaling | None = None

    @classmethod
    def of(cls, net: Any) -> "ModelRecord":
        """The record a CompiledNetwork carries."""
        return cls(net.preprocessing, net.class_names, net.encoding, net.target_scaling)

    def attach(self, net: Any) -> None:
        """Make this the record `net` serves with (`net.predict`, the checkpoint, the export)."""
        net.preprocessing, net.class_names = self.preprocessing, self.class_names
        net.encoding, net.target_scaling = self.encoding, self.target_scaling

    def saved(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(meta entries, arrays) for a checkpoint; `from_saved` reads them back."""
        meta: dict[str, Any] = {}
        arrays: dict[str, np.ndarray] = {}
        if self.preprocessing is not None:
            meta[PREPROCESSING_KEY] = self.preprocessing.description()
            arrays.update(self.preprocessing.arrays())
        if self.class_names is not None:
            meta[CLASS_NAMES_KEY] = list(self.class_names)
        if self.encoding is not None:
            meta[ENCODING_KEY] = self.encoding.description()
        if self.target_scaling is not None:
            meta[TARGET_SCALING_KEY] = self.target_scaling.description()
        return meta, arrays

    @classmethod
    def from_saved(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> "ModelRecord":
        """The record in a checkpoint's meta and arrays (an empty one for a checkpoint written
        before the record existed); ValueError saying what is malformed."""
        preprocessing = None
        if PREPROCESSING_KEY in meta:
            preprocessing = Preprocessing.from_saved(meta[PREPROCESSING_KEY], arrays)
        encoding = ColumnEncoding.from_saved(meta[ENCODING_KEY]) if ENCODING_KEY in meta else None
        scaling = TargetScaling.from_saved(meta[TARGET_SCALING_KEY]) if TARGET_SCALING_KEY in meta else None
        return cls(preprocessing, class_names_from_saved(meta.get(CLASS_NAMES_KEY), None), encoding, scaling)

    def check_fits(self, inputs: Mapping[str, Value], label: Value | None) -> "ModelRecord":
        """This record, when it fits a network with these inputs and (first) label; else
        ValueError saying what does not fit."""
        record = self.preprocessing
        if record is not None:
            if record.input not in inputs:
                raise ValueError(f"preprocessing names input '{record.input}', the network's inputs are "
                                 f"{', '.join(inputs)}")
            shape = inputs[record.input].shape
            if record.width != int(np.prod(shape)):
                raise ValueError(f"preprocessing makes {record.width} features, input '{record.input}' takes "
                                 f"{shape}")
        if self.class_names is not None and label is not None and label.kind == "classes":
            class_names_from_saved(list(self.class_names), label.classes)
        if self.encoding is not None and (record is None or record.width != self.encoding.width):
            raise ValueError(f"the column encoding makes {self.encoding.width} features, the preprocessing reads "
                             f"{'none' if record is None else record.width}")
        if self.target_scaling is not None and (label is None or label.kind != "float"
                                                or label.shape != self.target_scaling.shape):
            raise ValueError(f"the target scaling is for targets of shape {list(self.target_scaling.shape)}, the "
                             f"network's label is {'absent' if label is None else label.describe()}")
        return self

    def describe(self) -> str:
        """One line for a log: the preprocessing and the class names."""
        parts = []
        record = self.preprocessing
        if record is not None:
            columns = "" if record.feature_names is None else f" of columns {_short(record.feature_names)}"
            parts.append(f"input preprocessing {record.mode!r} over {record.width} features{columns}")
        if self.class_names is not None:
            parts.append(f"classes {_short(self.class_names)}")
        if self.encoding is not None:
            parts.append(f"{_short(self.encoding.names)} encoded as {self.encoding.width} features")
        if self.target_scaling is not None:
            parts.append("targets standardized for training")
        return "; ".join(parts) or "no input preprocessing or class names"


def _short(names: tuple[str, ...], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
