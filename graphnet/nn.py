"""The EECS189 layer-object style (`activations.py`, `layers.py`, `losses.py`, `models.py`).

    from graphnet.nn import FullyConnected, NeuralNetwork
    model = NeuralNetwork([FullyConnected(64, "relu"), FullyConnected(3, "softmax")], loss="cross_entropy")
    Y_hat = model.forward(X)              # X: (N, D) -> probabilities (N, 3)
    loss = model.backward(Y, Y_hat)       # Y one-hot (N, 3); fills each layer's `gradients`
    model.update()                        # one optimizer step (default: sgd, learning_rate 1e-2)
    spec = model.to_spec(input_shape=[D])  # the same network as a NetworkSpec

Activations have ``forward(Z)`` and ``backward(Z, dY)`` (any shape; SoftMax
over the last axis, its backward the O(N*C) Jacobian-vector product, never
the Jacobian). Sigmoid and SoftMax are stable for any input. Losses take
``(Y, Y_hat)`` = (targets, predictions), in the homework's order:
`CrossEntropy` on probabilities and ONE-HOT targets, `L2` the mean squared
error over all elements (the spec's ``mse``). `FullyConnected` creates its
parameters on the first forward (``n_in`` from the input); ``W``: (n_in,
n_out), ``b``: (1, n_out), as in the homework. The arithmetic runs on
graphnet's kernels; weights are drawn from NumPy's global random state.

Conventions chosen where the homework leaves a choice:

- ``NeuralNetwork(layers, loss, optimizer=None, seed=None)``; the homework's
  ``NeuralNetwork(loss, layer_args, optimizer_args, logger, seed)`` order is
  accepted too (a loss name first), each layer_args dict building one
  FullyConnected (so the last one needs ``n_out``).
- ``predict(X, Y=None) -> (Y_hat, loss)``: the loss is None without Y and,
  unlike the homework, computing it does not run backward.
- ``fit(X, Y, ...)`` is the training helper (the homework's ``train`` reads
  its own Dataset class); Y may be one-hot or integer class labels.
- A SoftMax output layer under CrossEntropy backpropagates the fused,
  stable (Y_hat - Y) / N into its logits, the same gradient as the chain
  rule through the two but without dividing by probabilities.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Callable, Sequence

import numpy as np

from . import optim
from .kernels import IDENTITY, RELU, SIGMOID, TANH, get_backend
from .layers import as_float, float_dtype
from .spec import NetworkSpec, parse_network

__all__ = [
    "Activation", "Linear", "ReLU", "Sigmoid", "TanH", "SoftMax",
    "Layer", "FullyConnected", "Loss", "CrossEntropy", "L2", "NeuralNetwork",
    "initialize_activation", "initialize_weights", "initialize_loss", "initialize_layer",
]


# ---- activations ------------------------------------------------------------------------------


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


# ---- weight initializers ----------------------------------------------------------------------


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


# ---- layers -----------------------------------------------------------------------------------


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


# ---- losses -----------------------------------------------------------------------------------


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


def _one_hot_labels(Y: np.ndarray) -> np.ndarray | None:
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
        labels = _one_hot_labels(Y_)
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


# ---- the network ------------------------------------------------------------------------------

_OPTIMIZER_ALIASES = {"sgd": "sgd", "momentum": "sgd_momentum", "sgd_momentum": "sgd_momentum",
                      "rmsprop": "rmsprop", "adam": "adam"}


def _optimizer_settings(optimizer: str | dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """(graphnet.optim rule name, config) from a name or the homework's optimizer_args dict."""
    if optimizer is None:
        return "sgd", {}
    args = {"name": optimizer} if isinstance(optimizer, str) else dict(optimizer)
    name = str(args.pop("name", "sgd")).lower()
    if name not in _OPTIMIZER_ALIASES:
        raise ValueError(f"unknown optimizer {name!r} (have: {', '.join(_OPTIMIZER_ALIASES)})")
    rule = _OPTIMIZER_ALIASES[name]
    if "lr" in args:
        args["learning_rate"] = args.pop("lr")
    unknown = set(args) - set(optim.DEFAULTS[rule])
    if unknown:
        raise ValueError(f"unknown {name} settings: {', '.join(sorted(unknown))}")
    return rule, args


class NeuralNetwork:
    """A chain of layers and a loss (see the module docstring for the conventions)."""

    def __init__(self, layers: Sequence[Layer | dict[str, Any]] | str, loss: Loss | str | Sequence = "cross_entropy",
                 optimizer: str | dict[str, Any] | None = None, logger: Any = None, seed: int | None = None) -> None:
        if isinstance(layers, str):  # the homework's order: (loss, layer_args, optimizer_args, ...)
            layers, loss = loss, layers  # type: ignore[assignment]
        if seed is not None:
            np.random.seed(seed)
        self.layers: list[Layer] = [initialize_layer(**layer) if isinstance(layer, dict) else layer for layer in layers]  # type: ignore[union-attr]
        self.n_layers = len(self.layers)
        self.loss: Loss = initialize_loss(loss) if isinstance(loss, str) else loss  # type: ignore[assignment]
        self.optimizer_rule, self.optimizer_config = _optimizer_settings(optimizer)
        self.logger = logger
        self._configs: dict[tuple[int, str], dict[str, Any]] = {}

    def forward(self, X: np.ndarray) -> np.ndarray:
        """X: (N, D) through every layer -> the last layer's output."""
        for layer in self.layers:
            X = layer.forward(X)
        return X

    def _fused_softmax_cross_entropy(self, target: np.ndarray) -> bool:
        last = self.layers[-1] if self.layers else None
        return (isinstance(self.loss, CrossEntropy) and isinstance(last, FullyConnected)
                and isinstance(last.activation, SoftMax) and _one_hot_labels(np.asarray(target)) is not None)

    def backward(self, target: np.ndarray, out: np.ndarray) -> float:
        """Loss of `out` (the forward output) against `target`, and every layer's gradients. Returns the loss."""
        loss = self.loss.forward(target, out)
        if self._fused_softmax_cross_entropy(target):
            out_ = np.asarray(out)
            grad = self.layers[-1].backward_logits((out_ - np.asarray(target, out_.dtype)) / out_.shape[0])  # type: ignore[attr-defined]
            layers = self.layers[:-1]
        else:
            grad, layers = self.loss.backward(target, out), self.layers
        for layer in reversed(layers):
            grad = layer.backward(grad)
        return loss

    def update(self, epoch: int | None = None) -> None:
        """One optimizer step on every parameter from its gradient (in place), then clear gradients."""
        rule = optim.UPDATE_RULES[self.optimizer_rule]
        for i, layer in enumerate(self.layers):
            for name, param in layer.parameters.items():
                config = self._configs.setdefault((i, name), dict(self.optimizer_config))
                next_param, self._configs[(i, name)] = rule(param, layer.gradients[name], config)
                np.copyto(param, next_param)
            layer.clear_gradients()

    def predict(self, X: np.ndarray, Y: np.ndarray | None = None) -> tuple[np.ndarray, float | None]:
        """(Y_hat, loss): the forward output for X and its loss against Y (None without Y)."""
        Y_hat = self.forward(X)
        return Y_hat, None if Y is None else self.loss.forward(Y, Y_hat)

    def error(self, target: np.ndarray, out: np.ndarray) -> float:
        """1 - accuracy for cross_entropy (argmax of one-hot rows); mean squared error for l2."""
        if isinstance(self.loss, CrossEntropy):
            return float(np.mean(np.argmax(out, axis=1) != np.argmax(target, axis=1)))
        return float(np.mean((np.asarray(target) - np.asarray(out)) ** 2))

    def _targets(self, Y: np.ndarray) -> np.ndarray:
        Y = np.asarray(Y)
        if isinstance(self.loss, CrossEntropy) and Y.ndim == 1:  # integer labels -> one-hot
            n_out = getattr(self.layers[-1], "n_out", int(Y.max()) + 1)
            return np.eye(n_out)[Y.astype(np.int64)]
        return Y

    def fit(self, X: np.ndarray, Y: np.ndarray, epochs: int = 10, batch_size: int = 32, shuffle: bool = True,
            verbose: bool = False) -> list[float]:
        """Minibatch training: `epochs` passes over (X (N, D), Y), each a permutation
        (from NumPy's global random state). Y: one-hot or integer labels for
        cross_entropy, targets (N, n_out) for l2. Returns the mean loss of each epoch."""
        Y = self._targets(Y)
        n = len(X)
        history = []
        for epoch in range(epochs):
            order = np.random.permutation(n) if shuffle else np.arange(n)
            losses = []
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size]
                losses.append(self.backward(Y[idx], self.forward(X[idx])))
                self.update(epoch)
            history.append(float(np.mean(losses)))
            if verbose:
                print(f"Epoch {epoch} Training Loss: {history[-1]:.4f}")
        return history

    # ---- as a spec ----------------------------------------------------------------------------

    def to_spec(self, input_shape: Sequence[int] | int | None = None, name: str = "neural_network") -> NetworkSpec:
        """The same network as a NetworkSpec: input x, one `affine` node fc1, fc2, ... per layer.

        relu/sigmoid/tanh are fused into the affine node; a softmax layer adds a
        `softmax` node, the network's output (probabilities, as this model's).
        CrossEntropy becomes cross_entropy on integer labels y, which the
        compiler trains as the fused, stable softmax_cross_entropy. L2 becomes `mse` on float targets y (the same value:
        both are the mean over all elements). Weights come from the spec's
        initializers; copy this model's with ``net.params = model.spec_params()``
        (or use `compile`). `input_shape` defaults to the first layer's n_in, known
        once the network has seen data (a forward or fit).
        """
        input_shape = self._input_shape(input_shape)
        shape = [int(input_shape)] if isinstance(input_shape, (int, np.integer)) else [int(s) for s in input_shape]
        nodes: list[dict[str, Any]] = []
        previous = "x"
        for i, layer in enumerate(self.layers, start=1):
            if not isinstance(layer, FullyConnected):
                raise TypeError(f"to_spec handles FullyConnected layers only, got {type(layer).__name__}")
            node: dict[str, Any] = {"id": f"fc{i}", "op": "affine", "inputs": [previous], "units": layer.n_out,
                                    "init": SPEC_INITIALIZERS.get(layer.weight_init, "xavier_uniform")}
            if isinstance(layer.activation, (ReLU, Sigmoid, TanH)):
                node["activation"] = {ReLU: "relu", Sigmoid: "sigmoid", TanH: "tanh"}[type(layer.activation)]
            nodes.append(node)
            previous = node["id"]
            if isinstance(layer.activation, SoftMax):
                nodes.append({"id": f"softmax{i}", "op": "softmax", "inputs": [previous]})
                previous = nodes[-1]["id"]
        outputs = [previous]
        n_out = self.layers[-1].n_out  # type: ignore[attr-defined]
        doc: dict[str, Any] = {"name": name, "inputs": {"x": {"shape": shape}}, "nodes": nodes}
        if isinstance(self.loss, CrossEntropy):
            doc["labels"] = {"y": {"classes": n_out}}
        else:
            doc["labels"] = {"y": {"shape": [n_out]}}
        nodes.append({"id": "loss", "op": "cross_entropy" if isinstance(self.loss, CrossEntropy) else "mse",
                      "inputs": [previous, "y"]})
        doc.update(outputs=outputs, loss="loss")
        return parse_network(doc)

    def _input_shape(self, input_shape: Sequence[int] | int | None) -> Sequence[int] | int:
        """The given input shape, or the first layer's n_in once the network has seen data."""
        if input_shape is not None:
            return input_shape
        n_in = getattr(self.layers[0], "n_in", None) if self.layers else None
        if n_in is None:
            raise ValueError("the input shape is unknown until the network has seen data (forward or fit); "
                             "pass input_shape=")
        return n_in

    def spec_params(self) -> dict[str, np.ndarray]:
        """This model's parameters under the spec's names: fc<i>.W (n_in, n_out), fc<i>.b (n_out,)."""
        params = {}
        for i, layer in enumerate(self.layers, start=1):
            if layer.parameters:
                params[f"fc{i}.W"] = layer.parameters["W"]
                params[f"fc{i}.b"] = layer.parameters["b"].reshape(-1)
        return params

    def compile(self, input_shape: Sequence[int] | int | None = None, **options: Any):
        """`gn.compile(self.to_spec(input_shape), **options)` with this model's weights copied in.

        input_shape defaults to the first layer's n_in (known after a forward).
        """
        from .network import compile as compile_network

        net = compile_network(self.to_spec(input_shape), **options)
        net.params = self.spec_params()
        return net
