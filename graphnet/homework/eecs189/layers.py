"""Layers and weight initializers (the homework's `layers.py`).

`FullyConnected` creates its parameters on the first forward (``n_in`` from
the input): ``W`` (n_in, n_out), ``b`` (1, n_out), as in the homework.
Weights are drawn from NumPy's global random state.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Callable

import numpy as np

from ...kernels import IDENTITY, get_backend
from ..cs231n.layers import as_float, float_dtype
from .activations import SoftMax, initialize_activation


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) < 2:
        return shape[0] if shape else 1, shape[0] if shape else 1
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


WEIGHT_INITIALIZERS: dict[str, Callable[[tuple[int, ...]], np.ndarray]] = {
    "zeros": lambda shape: np.zeros(shape),
    "ones": lambda shape: np.ones(shape),
    "normal": lambda shape: np.random.normal(0.0, 1.0, shape),
    "uniform": lambda shape: np.random.uniform(-1.0, 1.0, shape),
    "xavier_uniform": lambda shape: np.random.uniform(-1, 1, shape) * math.sqrt(6.0 / sum(_fans(shape))),
    "xavier_normal": lambda shape: np.random.normal(0.0, math.sqrt(2.0 / sum(_fans(shape))), shape),
    "he_uniform": lambda shape: np.random.uniform(-1, 1, shape) * math.sqrt(6.0 / _fans(shape)[0]),
    "he_normal": lambda shape: np.random.normal(0.0, math.sqrt(2.0 / _fans(shape)[0]), shape),
}

#: nn initializer -> spec initializer (specs have no "ones"/"uniform"; "normal" there needs a std).
SPEC_INITIALIZERS = {"xavier_uniform": "xavier_uniform", "xavier_normal": "xavier_normal",
                     "he_uniform": "he_uniform", "he_normal": "he_normal", "zeros": "zeros"}


def initialize_weights(name: str = "xavier_uniform", activation: str | None = None) -> Callable[..., np.ndarray]:
    """A function shape -> float64 array drawn from NumPy's global random state.

    name: zeros, ones, normal (std 1), uniform ([-1, 1]), xavier_uniform,
    xavier_normal, he_uniform, he_normal (std sqrt(2 / fan_in)). `activation`
    is accepted for the homework's signature and not used.
    """
    if name not in WEIGHT_INITIALIZERS:
        raise NotImplementedError(f"{name} initialization is not implemented "
                                  f"(have: {', '.join(WEIGHT_INITIALIZERS)})")
    draw = WEIGHT_INITIALIZERS[name]
    return lambda shape: draw(tuple(int(s) for s in shape))


class Layer:
    """A layer: `parameters`, `gradients` (same keys) and `cache` (what backward needs)."""

    def __init__(self) -> None:
        self.parameters: OrderedDict[str, np.ndarray] = OrderedDict()
        self.gradients: OrderedDict[str, np.ndarray] = OrderedDict()
        self.cache: OrderedDict[str, Any] = OrderedDict()

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return self.forward(X)

    def clear_gradients(self) -> None:
        self.cache = OrderedDict((k, []) for k in self.cache)
        self.gradients = OrderedDict((k, np.zeros_like(v)) for k, v in self.gradients.items())

    def forward(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dLdY: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class FullyConnected(Layer):
    """Y = activation(X @ W + b). X: (N, n_in) -> Y: (N, n_out); n_in set by the first forward."""

    def __init__(self, n_out: int, activation: str = "linear", weight_init: str = "xavier_uniform") -> None:
        super().__init__()
        self.n_in: int | None = None
        self.n_out = int(n_out)
        self.activation_name = activation
        self.activation = initialize_activation(activation)
        self.weight_init = weight_init
        self.init_weights = initialize_weights(weight_init, activation=activation)

    def _init_parameters(self, X_shape: tuple[int, ...]) -> None:
        """Create W (n_in, n_out) from the initializer, b (1, n_out) zeros, zero gradients."""
        self.n_in = int(X_shape[1])
        W = self.init_weights((self.n_in, self.n_out))
        b = np.zeros((1, self.n_out))
        self.parameters = OrderedDict([("W", W), ("b", b)])
        self.gradients = OrderedDict([("W", np.zeros_like(W)), ("b", np.zeros_like(b))])
        self.cache = OrderedDict([("Z", []), ("X", [])])

    def forward(self, X: np.ndarray) -> np.ndarray:
        """X: (N, n_in) -> activation(X @ W + b): (N, n_out); caches X, Z and the output Y."""
        if self.n_in is None:
            self._init_parameters(np.shape(X))
        W, b = self.parameters["W"], self.parameters["b"]
        dtype = float_dtype(X, W)
        X_, W_ = as_float(X, dtype), as_float(W, dtype)
        Z = np.empty((X_.shape[0], self.n_out), dtype)
        np.matmul(X_, W_, out=Z)
        get_backend().bias_act_forward(Z, as_float(b, dtype).reshape(-1), IDENTITY, 0.0)
        Y = self.activation.forward(Z)
        self.cache["X"], self.cache["Z"], self.cache["Y"] = X_, Z, Y
        return Y

    def backward(self, dLdY: np.ndarray) -> np.ndarray:
        """dLdY: (N, n_out) -> dL/dX (N, n_in); stores gradients["W"] (n_in, n_out), ["b"] (1, n_out)."""
        Z, Y = self.cache["Z"], self.cache["Y"]
        code = self.activation.code
        if code is not None and not isinstance(self.activation, SoftMax):
            # activation gradient (from the output) and bias gradient in one fused kernel
            dZ = np.empty(Z.shape, Z.dtype)
            db = np.empty(self.n_out, Z.dtype)
            get_backend().act_bias_backward(as_float(dLdY, Z.dtype), as_float(Y, Z.dtype), code, 0.0, dZ, db)
            return self._backward_linear(dZ, db)
        return self.backward_logits(self.activation.backward_from_output(Y, dLdY))

    def backward_logits(self, dZ: np.ndarray) -> np.ndarray:
        """Backward from dL/dZ, the gradient at the pre-activation Z: (N, n_out) -> dL/dX."""
        dZ = as_float(dZ, self.cache["Z"].dtype)
        return self._backward_linear(dZ, np.add.reduce(dZ, axis=0))

    def _backward_linear(self, dZ: np.ndarray, db: np.ndarray) -> np.ndarray:
        X, W = self.cache["X"], as_float(self.parameters["W"], dZ.dtype)
        dW = np.empty(W.shape, dZ.dtype)
        dX = np.empty(X.shape, dZ.dtype)
        np.matmul(X.T, dZ, out=dW)
        np.matmul(dZ, W.T, out=dX)
        self.gradients["W"], self.gradients["b"] = dW, db.reshape(1, -1)
        return dX

    def __repr__(self) -> str:
        return f"FullyConnected({self.n_out}, {self.activation_name!r}, weight_init={self.weight_init!r})"


def initialize_layer(name: str = "fully_connected", **kwargs: Any) -> Layer:
    """The layer named `name` (only "fully_connected") built from kwargs."""
    if name != "fully_connected":
        raise NotImplementedError(f"layer type {name!r} is not implemented (have: fully_connected)")
    return FullyConnected(**kwargs)
