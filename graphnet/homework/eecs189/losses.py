"""Loss objects (the homework's `losses.py`): forward(Y, Y_hat) -> loss, backward(Y, Y_hat) -> dL/dY_hat.

Arguments in the homework's order: Y the targets, Y_hat the predictions.
`CrossEntropy` takes probabilities and one-hot targets; `L2` is the mean
squared error over all elements (the spec's ``mse``).
"""
from __future__ import annotations

import numpy as np

from ...kernels import get_backend
from ..cs231n.layers import as_float, float_dtype


class Loss:
    """forward(Y, Y_hat) -> float loss; backward(Y, Y_hat) -> dL/dY_hat. Y: targets, Y_hat: predictions."""

    name = "loss"

    def __call__(self, Y: np.ndarray, Y_hat: np.ndarray) -> float:
        return self.forward(Y, Y_hat)

    def forward(self, Y: np.ndarray, Y_hat: np.ndarray) -> float:
        raise NotImplementedError

    def backward(self, Y: np.ndarray, Y_hat: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def one_hot_labels(Y: np.ndarray) -> np.ndarray | None:
    """The class index of each row of a one-hot Y (N, C), or None when Y is not one-hot."""
    if Y.ndim != 2 or not np.all((Y == 0) | (Y == 1)) or not np.all(Y.sum(axis=1) == 1):
        return None
    return np.ascontiguousarray(np.argmax(Y, axis=1), dtype=np.int64)


class CrossEntropy(Loss):
    """-sum(Y * log(Y_hat)) / N for probabilities Y_hat (N, C) and one-hot (or soft) targets Y (N, C).

    Probabilities are clamped below at the dtype's smallest normal number.
    """

    def __init__(self, name: str = "cross_entropy") -> None:
        self.name = name

    def _run(self, Y: np.ndarray, Y_hat: np.ndarray) -> tuple[float, np.ndarray]:
        dtype = float_dtype(Y_hat)
        P = as_float(Y_hat, dtype)
        Y_ = np.asarray(Y)
        if Y_.shape != P.shape:
            raise ValueError(f"targets {Y_.shape} and predictions {P.shape} must have one shape (one-hot targets)")
        labels = one_hot_labels(Y_)
        if labels is not None:
            dP = np.empty(P.shape, dtype)
            return float(get_backend().cross_entropy(P, labels, dP)), dP
        n = P.shape[0]
        clamped = np.maximum(P, np.finfo(dtype).tiny)
        return float(-np.sum(Y_ * np.log(clamped)) / n), (-Y_ / (clamped * n)).astype(dtype)

    def forward(self, Y: np.ndarray, Y_hat: np.ndarray) -> float:
        return self._run(Y, Y_hat)[0]

    def backward(self, Y: np.ndarray, Y_hat: np.ndarray) -> np.ndarray:
        """-Y / (Y_hat * N): (N, C)."""
        return self._run(Y, Y_hat)[1]


class L2(Loss):
    """Mean squared error over all elements: mean((Y_hat - Y)**2) (the spec's `mse`).

    backward: 2 (Y_hat - Y) / Y.size. (Conventions that halve the squared
    error or average over examples only differ by a constant factor.)
    """

    def __init__(self, name: str = "l2") -> None:
        self.name = name

    def _run(self, Y: np.ndarray, Y_hat: np.ndarray) -> tuple[float, np.ndarray]:
        dtype = float_dtype(Y_hat, Y)
        P, T = as_float(Y_hat, dtype), as_float(Y, dtype)
        if T.size != P.size:
            raise ValueError(f"targets {T.shape} and predictions {P.shape} must have one size")
        dP = np.empty(P.shape, dtype)
        return float(get_backend().mse_loss(P, T.reshape(P.shape), dP)), dP

    def forward(self, Y: np.ndarray, Y_hat: np.ndarray) -> float:
        return self._run(Y, Y_hat)[0]

    def backward(self, Y: np.ndarray, Y_hat: np.ndarray) -> np.ndarray:
        return self._run(Y, Y_hat)[1]


LOSSES: dict[str, type[Loss]] = {"cross_entropy": CrossEntropy, "l2": L2, "mse": L2}


def initialize_loss(name: str) -> Loss:
    """The loss named `name`: cross_entropy or l2 (alias mse)."""
    if name not in LOSSES:
        raise NotImplementedError(f"{name} loss is not implemented (have: {', '.join(LOSSES)})")
    return LOSSES[name](name)
