"""`NeuralNetwork` (the homework's `models.py`): a chain of layers, a loss and an optimizer.

It trains on graphnet's kernels and can emit the same network as a spec
(`to_spec`) or a compiled network (`compile`); see graphnet.homework.eecs189 for the
conventions chosen where the homework leaves a choice.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ...spec import NetworkSpec, parse_network
from ..cs231n import optim
from .activations import ReLU, Sigmoid, SoftMax, TanH
from .layers import SPEC_INITIALIZERS, FullyConnected, Layer, initialize_layer
from .losses import CrossEntropy, Loss, initialize_loss, one_hot_labels

_OPTIMIZER_ALIASES = {"sgd": "sgd", "momentum": "sgd_momentum", "sgd_momentum": "sgd_momentum",
                      "rmsprop": "rmsprop", "adam": "adam"}


def _optimizer_settings(optimizer: str | dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """(graphnet.homework.cs231n.optim rule name, config) from a name or the homework's optimizer_args dict."""
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
                and isinstance(last.activation, SoftMax) and one_hot_labels(np.asarray(target)) is not None)

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
        from ...model.compiled import compile as compile_network

        net = compile_network(self.to_spec(input_shape), **options)
        net.params = self.spec_params()
        return net
