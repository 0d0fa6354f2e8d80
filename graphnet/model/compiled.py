"""CompiledNetwork: the network users hold -- the runtime (graphnet.runtime.network.Network:
plans, forward, loss, step, parameters) with its model record and what serves it.

    net = gn.compile(spec, batch_size=128, dtype="float32", backend="numba", seed=0)
    net.predict(X_raw)                 # raw features: the model's preprocessing, then the network
    net.save("ckpt/")                  # network.json + weights.npz (graphnet.model.checkpoint)

`net.preprocessing`, `net.class_names`, `net.encoding` and `net.target_scaling` are the
model record (graphnet.model.record), set by training (or a checkpoint, or an ONNX
import) and saved with the weights.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..data.columns import ColumnEncoding, EncodeCounts, array_rows
from ..data.features import check_raw_inputs
from ..data.preprocessing import Preprocessing
from ..data.targets import TargetScaling
from ..errors import PlanError
from ..ops.tasks import output_task, predictions, probabilities
from ..runtime.network import Network, log
from ..spec import NetworkSpec, RunSpec
from .checkpoint import save_checkpoint


class CompiledNetwork(Network):
    """A compiled network (see Network) with what was fitted to its training data: the
    preprocessing raw features go through (after a table's column encoding), the names of
    its classes, and the scaling of its regression targets."""

    def __init__(self, spec: NetworkSpec, **options: Any):
        super().__init__(spec, **options)
        self.preprocessing: Preprocessing | None = None
        self.class_names: tuple[str, ...] | None = None
        self.encoding: ColumnEncoding | None = None
        self.target_scaling: TargetScaling | None = None

    def predict(self, X: Any, batch_size: int | None = None) -> np.ndarray:
        """Predictions of the first output for RAW features X: (N, *raw shape), run through
        `self.preprocessing` first when the network has one (see graphnet.data.preprocessing;
        `forward` takes network inputs). By the loss op that reads the output (graphnet.ops.tasks):

        - classification (softmax_cross_entropy, cross_entropy, svm) and no loss:
          class indices (N,) int64, the argmax over the last axis -- or, when the network
          knows its class names (`self.class_names`, e.g. text labels of a CSV), those
          names (N,) (a str array), as `graphnet predict` prints them;
        - binary (sigmoid_binary_cross_entropy): 0/1 int64, 1 where sigmoid(logit) > 0.5,
          (N,) for one logit per example, else (N, *output shape);
        - regression (mse, mae, huber): the output values (N, *output shape), in the
          targets' units (`self.target_scaling` undone).

        A model with a column encoding (`self.encoding`, a table's) takes the raw table X
        (N, C), its columns in the model's order (`self.encoding.names`): numbers, text,
        and missing cells (None, NaN, or a missing marker such as "" or "?"), which are
        imputed; a category unseen in training goes to the unknown slot (both counted in
        the "graphnet" log). Otherwise a value of X that is not finite in the network's
        dtype (NaN, inf, or 1e39 for float32) is a DataError naming it (``X[i, j]``), as
        `graphnet predict` refuses it.
        """
        if self.encoding is None:
            check_raw_inputs(X, self.dtype, "predict")
        first = self.graph.outputs[0]
        task = output_task(self.graph, first)
        predicted = predictions(self.forward(self.prepare(X), output=first, batch_size=batch_size), task)
        if self.class_names is not None and task in (None, "classification"):
            return np.asarray(self.class_names)[predicted]
        if self.target_scaling is not None and task == "regression":
            return self.target_scaling.unscale(predicted)
        return predicted

    def predict_proba(self, X: Any, batch_size: int | None = None) -> np.ndarray:
        """Probabilities for RAW features X (preprocessed as in `predict`): classification:
        (N, C), a softmax over the first output's scores (not applied twice when the output
        is a softmax already), columns in the order of `self.class_names`; binary: (N, 2),
        p(0) and p(1), for one logit per example, else the sigmoid of each logit (N, k).
        GraphnetError for a regression output; a DataError for a value that is not finite,
        as in `predict`."""
        if self.encoding is None:
            check_raw_inputs(X, self.dtype, "predict_proba")
        first = self.graph.outputs[0]
        return probabilities(self.forward(self.prepare(X), output=first, batch_size=batch_size), self.graph, first)

    def prepare(self, X: Any, *, encoded: bool = False, counts: EncodeCounts | None = None) -> Any:
        """Raw features -> network inputs: a table's `self.encoding` (unless X is `encoded`
        already: the encoding's features (N, D); the cells it met are counted into
        `counts`, else logged) and `self.preprocessing` applied to its input (a new array),
        or X unchanged when the network has none."""
        if self.preprocessing is None:
            return X
        name = self.preprocessing.input
        inputs = self._inputs(X)
        if name not in inputs:
            raise PlanError(f"no features for input '{name}' (got {', '.join(map(str, inputs))})")
        raw = inputs[name]
        if self.encoding is not None and not encoded:
            met = counts if counts is not None else EncodeCounts()
            raw = self.encoding.encode(raw, self.dtype, array_rows("X"), met)
            if counts is None and met.describe():
                log.info("graphnet: %s", met.describe())
        inputs[name] = self.preprocessing.apply(raw, self.graph.inputs[name].shape, self.dtype)
        return inputs if isinstance(X, Mapping) else inputs[name]

    def save(self, folder: str | Path) -> Path:
        """Write the network, its weights and its model record to a checkpoint folder
        (network.json + weights.npz; see graphnet.model.checkpoint)."""
        return save_checkpoint(folder, self)


def compile(spec: NetworkSpec | RunSpec | Mapping[str, Any] | str | Path, batch_size: int = 128, dtype: Any = None,
            backend: str | None = None, seed: int | None = 0, **options: Any) -> CompiledNetwork:
    """Compile a network spec for the CPU (see CompiledNetwork): a NetworkSpec or RunSpec,
    a spec document (dict) or a spec file path; `dtype` float32 (the default) or float64."""
    return CompiledNetwork(spec, batch_size=batch_size, dtype=dtype, backend=backend, seed=seed, **options)
