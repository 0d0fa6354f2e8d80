"""A run's data set: loaded, shaped for the network's input, and its labels checked."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import data as data_module
from ..errors import DataError, SpecError
from ..network import CompiledNetwork
from ..ops import Value
from ..spec import DataSpec, NetworkSpec, RunSpec
from ..tasks import evaluate, task_of


def load_data(spec: DataSpec, seed: int, dtype: str, input_shape: tuple[int, ...],
              label: Value | None = None) -> dict[str, np.ndarray]:
    """The data set of a run, shaped for the network's input; y_* as `label` declares it:
    class indices (N,) for `classes`, `dtype` targets (N, *shape) for `shape`."""
    options: dict[str, Any] = dict(spec.options)
    if label is not None and label.kind == "float":
        options["target_shape"] = label.shape
    data = data_module.load(spec.name, val_size=spec.val_size, normalize=spec.normalize, seed=seed,
                            dtype=dtype, **options)
    size = int(np.prod(input_shape))
    for split in ("train", "val", "test"):
        X = data[f"X_{split}"]
        if X.shape[0] and int(np.prod(X.shape[1:])) != size:
            raise DataError(f"data set '{spec.name}': {split} examples have shape {X.shape[1:]}, "
                            f"the network's input has {size} values {input_shape}")
        data[f"X_{split}"] = np.ascontiguousarray(X.reshape((X.shape[0], *input_shape)), dtype=dtype)
        data[f"y_{split}"] = np.ascontiguousarray(data[f"y_{split}"])
    return data


def load_run_data(run: RunSpec) -> dict[str, np.ndarray]:
    """`load_data` for a run spec: SpecError unless the network has one input, DataError
    when the training split is empty."""
    settings = run.train
    if len(run.network.inputs) != 1:
        raise SpecError([("network.inputs", "training on a data set needs a network with exactly one input")])
    input_shape = run.network.value(next(iter(run.network.inputs))).shape
    dataset = load_data(settings.data_spec(), settings.seed, settings.dtype, input_shape, label_of(run.network))
    if len(dataset["X_train"]) == 0:
        raise DataError(f"data set '{settings.data_spec().name}' has no training examples")
    return dataset


def accuracy(net: CompiledNetwork, X: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> float | None:
    """Fraction of correct predictions (eval mode; see `net.predict`), or None for an empty split."""
    if len(X) == 0:
        return None
    return evaluate(net, X, y, batch_size)["accuracy"]


def label_of(network: NetworkSpec) -> Value | None:
    """The declared value of the network's (first) label, or None without labels."""
    return network.value(next(iter(network.labels))) if network.labels else None


def check_labels(net: CompiledNetwork, data: dict[str, np.ndarray], name: str) -> None:
    """DataError when a split's labels fall outside what the network declares (class indices
    below `classes`; targets in [0, 1] for a binary loss); `name` is the data set's."""
    label = next(iter(net.graph.labels.values()), None)
    if label is None:
        return
    binary = task_of(net.graph) == "binary"
    for split in ("train", "val", "test"):
        y = data[f"y_{split}"]
        if not len(y):
            continue
        if label.kind == "classes" and (y.min() < 0 or y.max() >= label.classes):
            raise DataError(f"data set '{name}': {split} labels span [{y.min()}, {y.max()}] but the network "
                            f"has {label.classes} classes")
        if binary and (y.min() < 0 or y.max() > 1):
            raise DataError(f"data set '{name}': {split} targets span [{y.min():g}, {y.max():g}] but "
                            f"sigmoid_binary_cross_entropy needs targets in [0, 1]")
