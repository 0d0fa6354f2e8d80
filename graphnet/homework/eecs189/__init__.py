"""The EECS189 layer-object style (`activations.py`, `layers.py`, `losses.py`, `models.py`).

    from graphnet.homework.eecs189 import FullyConnected, NeuralNetwork
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

from .activations import Activation, Linear, ReLU, Sigmoid, SoftMax, TanH, initialize_activation
from .layers import FullyConnected, Layer, initialize_layer, initialize_weights
from .losses import L2, CrossEntropy, Loss, initialize_loss
from .models import NeuralNetwork

__all__ = [
    "Activation", "Linear", "ReLU", "Sigmoid", "TanH", "SoftMax",
    "Layer", "FullyConnected", "Loss", "CrossEntropy", "L2", "NeuralNetwork",
    "initialize_activation", "initialize_weights", "initialize_loss", "initialize_layer",
]
