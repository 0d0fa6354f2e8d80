"""Class weights for the loss (`train.class_weight`), resolved on the training split into
the loss node's `class_weight` (graphnet.ops.losses: PyTorch's `weight`):

- "balanced": n / (k n_c) for each of the k classes with n_c of the n training examples
  (scikit-learn's class_weight="balanced"), so the classes weigh the same in the loss;
- a mapping {class: weight}: classes by name (a model's class names, else their
  indices "0", "1", ...), weight 1 for a class it leaves out.

Softmax cross-entropy weighs its classes; sigmoid binary cross-entropy its two target
values 0 and 1 (soft targets by their share of each). The network trained is the run's
network with the weights on its loss node: the checkpoint's network.json holds them,
while run.json keeps the setting as written.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError, SpecError, did_you_mean, quoted_list
from ..spec import NetworkSpec, parse_network

WEIGHTED_LOSSES = ("softmax_cross_entropy", "sigmoid_binary_cross_entropy")
SETTING = "train.class_weight"


def class_weights(setting: Any, network: NetworkSpec, y_train: np.ndarray,
                  class_names: tuple[str, ...] | None) -> list[float] | None:
    """The loss's class weights for the run setting `setting` ("balanced", a mapping, or None
    for none) and the training labels y_train (class indices (N,), or targets in [0, 1] of a
    sigmoid loss); SpecError located at train.class_weight for a loss that takes no weights,
    a weighted loss node, or an unknown class; DataError when "balanced" meets a class
    without a training example."""
    if setting is None:
        return None
    loss = network.node(network.loss) if network.loss is not None else None
    if loss is None or loss.op not in WEIGHTED_LOSSES:
        raise SpecError([(SETTING, f"class weights apply to the losses {' and '.join(WEIGHTED_LOSSES)}; this "
                                   f"network's loss is {loss.op if loss is not None else 'absent'}")])
    if loss.class_weight is not None:
        raise SpecError([(SETTING, f"the loss node '{loss.id}' has class_weight already: give the weights once, "
                                   "there or here")])
    if loss.op == "softmax_cross_entropy":
        k = network.value(loss.inputs[1]).classes
        counts = np.bincount(np.asarray(y_train, np.int64), minlength=k).astype(np.float64)
        names = class_names or tuple(str(c) for c in range(k))
    else:
        t = np.asarray(y_train, np.float64)
        counts, names, k = np.array([(1 - t).sum(), t.sum()]), ("0", "1"), 2
    if setting == "balanced":
        if np.any(counts == 0):
            empty = names[int(np.argmax(counts == 0))]
            raise DataError(f"{SETTING} \"balanced\": class {empty!r} has no example in the training split, so it "
                            "has no weight; give the weights as a mapping instead")
        return (counts.sum() / (k * counts)).tolist()
    weights = [1.0] * k
    for name, weight in setting.items():
        if name not in names:
            raise SpecError([(f"{SETTING}.{name}", f"{name!r} is not a class (classes: {quoted_list(names)})"
                                                   f"{did_you_mean(name, names)}")])
        weights[names.index(name)] = float(weight)
    return weights


def with_class_weight(network: NetworkSpec, weights: list[float] | None) -> NetworkSpec:
    """`network` with `weights` on its loss node (itself when None)."""
    if weights is None:
        return network
    document = network.model_dump(mode="json", by_alias=True, exclude_none=True)
    for node in document["nodes"]:
        if node["id"] == network.loss:
            node["class_weight"] = weights
    return parse_network(document)


def trained_weights(network: NetworkSpec) -> list[float] | None:
    """The class weights on `network`'s loss node (a trained network's), or None."""
    return getattr(network.node(network.loss), "class_weight", None) if network.loss is not None else None
