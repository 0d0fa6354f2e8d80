"""Activation objects (the homework's `activations.py`): forward(Z) -> Y, backward(Z, dY) -> dZ.

Any shape; SoftMax works over the last axis and its backward is the O(N*C)
Jacobian-vector product, never the Jacobian. Sigmoid and SoftMax are stable
for any input. The arithmetic runs on graphnet's kernels.
"""
from __future__ import annotations

import numpy as np

from ...kernels import IDENTITY, RELU, SIGMOID, TANH, get_backend
from ..cs231n.layers import as_float, float_dtype


class Activation:
    """f applied elementwise (SoftMax: per row). forward(Z) -> Y; backward(Z, dY) -> dZ."""

    code: int | None = None  # the kernels' activation code, when it has one

    def __call__(self, Z: np.ndarray) -> np.ndarray:
        return self.forward(Z)

    def forward(self, Z: np.ndarray) -> np.ndarray:
        Z_ = as_float(Z, float_dtype(Z))
        out = np.empty(Z_.shape, Z_.dtype)
        get_backend().act_forward(Z_, self.code, 0.0, out)
        return out

    def backward(self, Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
        """dL/dZ from the input Z of forward and dY = dL/dY (same shape)."""
        return self.backward_from_output(self.forward(Z), dY)

    def backward_from_output(self, Y: np.ndarray, dY: np.ndarray) -> np.ndarray:
        """dL/dZ from the output Y of forward (no recomputation)."""
        dtype = float_dtype(Y, dY)
        Y_, dY_ = as_float(Y, dtype), as_float(dY, dtype)
        dZ = np.empty(Y_.shape, dtype)
        get_backend().act_backward(dY_, Y_, self.code, 0.0, dZ)
        return dZ

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Linear(Activation):
    """f(z) = z."""

    code = IDENTITY

    def forward(self, Z: np.ndarray) -> np.ndarray:
        return Z

    def backward(self, Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
        return dY


class ReLU(Activation):
    """f(z) = max(z, 0)."""

    code = RELU

    def backward(self, Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
        return self.backward_from_output(Z, dY)  # the mask z > 0 is the same from z as from relu(z)


class Sigmoid(Activation):
    """f(z) = 1 / (1 + exp(-z)), stable for any z."""

    code = SIGMOID


class TanH(Activation):
    """f(z) = tanh(z)."""

    code = TANH


class SoftMax(Activation):
    """Softmax over the last axis, stable for any finite input."""

    def forward(self, Z: np.ndarray) -> np.ndarray:
        Z_ = as_float(Z, float_dtype(Z))
        Z2 = Z_.reshape(-1, Z_.shape[-1])
        out = np.empty(Z2.shape, Z_.dtype)
        get_backend().softmax_forward(Z2, out)
        return out.reshape(Z_.shape)

    def backward_from_output(self, Y: np.ndarray, dY: np.ndarray) -> np.ndarray:
        """dZ = Y * (dY - sum(dY * Y, last axis)): the Jacobian-vector product, O(N*C)."""
        dtype = float_dtype(Y, dY)
        Y_, dY_ = as_float(Y, dtype), as_float(dY, dtype)
        c = Y_.shape[-1]
        dZ = np.empty(Y_.shape, dtype)
        get_backend().softmax_backward(dY_.reshape(-1, c), Y_.reshape(-1, c), dZ.reshape(-1, c))
        return dZ


ACTIVATIONS: dict[str, type[Activation]] = {
    "linear": Linear, "identity": Linear, "relu": ReLU, "sigmoid": Sigmoid, "tanh": TanH, "softmax": SoftMax,
}


def initialize_activation(name: str) -> Activation:
    """The activation object named `name`: linear (identity), relu, sigmoid, tanh, softmax."""
    if name not in ACTIVATIONS:
        raise NotImplementedError(f"{name} activation is not implemented (have: {', '.join(ACTIVATIONS)})")
    return ACTIVATIONS[name]()
