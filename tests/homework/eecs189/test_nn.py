"""graphnet.nn (EECS189 style): activations, layers, losses, NeuralNetwork and to_spec."""
from __future__ import annotations

import importlib
import re
import warnings

import numpy as np
import pytest

import graphnet.data as gd
import graphnet.nn
from graphnet.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, rel_error
from graphnet.nn import (
    L2,
    CrossEntropy,
    FullyConnected,
    Linear,
    NeuralNetwork,
    ReLU,
    Sigmoid,
    SoftMax,
    TanH,
    initialize_activation,
    initialize_layer,
    initialize_loss,
    initialize_weights,
)

from tests._support.paths import ROOT


def _softmax(Z):
    e = np.exp(Z - Z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


ACTIVATION_FORMULAS = [
    (Linear(), lambda z: z),
    (ReLU(), lambda z: np.maximum(z, 0)),
    (Sigmoid(), lambda z: 1 / (1 + np.exp(-z))),
    (TanH(), np.tanh),
    (SoftMax(), _softmax),
]


@pytest.mark.parametrize("activation, formula", ACTIVATION_FORMULAS, ids=lambda a: type(a).__name__)
def test_activation_forward_and_backward(activation, formula):
    Z = np.linspace(-2.5, 2.5, 24).reshape(4, 6) + 0.01  # no exact 0 for ReLU's kink
    assert rel_error(activation.forward(Z), formula(Z)) < 1e-12
    assert rel_error(activation(Z), formula(Z)) < 1e-12
    dY = np.random.default_rng(0).standard_normal(Z.shape)
    numeric = eval_numerical_gradient_array(activation.forward, Z.copy(), dY)
    assert rel_error(activation.backward(Z, dY), numeric) < 1e-8


def test_softmax_backward_is_the_jacobian_product():
    rng = np.random.default_rng(1)
    Z, dY = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    P = _softmax(Z)
    jacobians = [np.diag(p) - np.outer(p, p) for p in P]  # the per-example Jacobian, only here
    expected = np.stack([dy @ J for dy, J in zip(dY, jacobians)])
    assert rel_error(SoftMax().backward(Z, dY), expected) < 1e-12


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_and_softmax_are_stable_for_any_input(dtype):
    Z = np.array([[-1e4, 0.0, 1e4], [1e4, 1e4, -1e4], [-1e4, -1e4, -1e4]], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        S = Sigmoid().forward(Z)
        P = SoftMax().forward(Z)
        dP = SoftMax().backward(Z, np.ones_like(Z))
    assert S.dtype == dtype and np.array_equal(S[0], np.array([0.0, 0.5, 1.0], dtype))
    assert np.allclose(P, [[0, 0, 1], [0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3]])
    assert np.all(np.isfinite(dP))


def test_fully_connected_lazy_init_and_gradients():
    np.random.seed(0)
    layer = FullyConnected(4, "tanh")
    assert layer.n_in is None and not layer.parameters
    X = np.random.default_rng(0).standard_normal((6, 3))
    Y = layer.forward(X)
    assert layer.n_in == 3 and list(layer.parameters) == ["W", "b"] and list(layer.gradients) == ["W", "b"]
    assert layer.parameters["W"].shape == (3, 4) and layer.parameters["b"].shape == (1, 4)
    limit = np.sqrt(6 / (3 + 4))  # xavier_uniform by default
    assert np.abs(layer.parameters["W"]).max() <= limit
    W, b = layer.parameters["W"], layer.parameters["b"]
    assert rel_error(Y, np.tanh(X @ W + b)) < 1e-12
    assert rel_error(layer.cache["Z"], X @ W + b) < 1e-12 and layer.cache["X"] is X
    dLdY = np.random.default_rng(1).standard_normal(Y.shape)
    dX = layer.backward(dLdY)
    f = lambda _: float(np.sum(layer.forward(X) * dLdY))  # noqa: E731
    assert rel_error(dX, eval_numerical_gradient_array(lambda x: layer.forward(x), X.copy(), dLdY)) < 1e-8
    layer.forward(X)
    layer.backward(dLdY)
    grads = {k: v.copy() for k, v in layer.gradients.items()}
    for name in ("W", "b"):
        numeric = eval_numerical_gradient(f, layer.parameters[name], verbose=False)
        assert grads[name].shape == layer.parameters[name].shape
        assert rel_error(grads[name], numeric) < 1e-8


@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "softmax"])
def test_fully_connected_backward_for_each_activation(activation):
    np.random.seed(2)
    layer = FullyConnected(3, activation, weight_init="he_normal")
    X = np.random.default_rng(3).standard_normal((5, 4))
    dLdY = np.random.default_rng(4).standard_normal((5, 3))
    layer.forward(X)
    dX = layer.backward(dLdY)
    assert rel_error(dX, eval_numerical_gradient_array(lambda x: layer.forward(x), X.copy(), dLdY)) < 1e-7


def test_losses_against_formulas():
    rng = np.random.default_rng(0)
    P = _softmax(rng.standard_normal((6, 4)))
    labels = rng.integers(4, size=6)
    Y = np.eye(4)[labels]
    ce = CrossEntropy("cross_entropy")
    assert rel_error(ce.forward(Y, P), -np.sum(Y * np.log(P)) / 6) < 1e-12
    assert rel_error(ce.backward(Y, P), -Y / (P * 6)) < 1e-12
    soft = np.full((6, 4), 0.25)  # soft targets take the plain formula
    assert rel_error(ce.forward(soft, P), -np.sum(soft * np.log(P)) / 6) < 1e-12
    assert rel_error(ce.backward(soft, P), -soft / (P * 6)) < 1e-12
    T, Yh = rng.standard_normal((6, 1)), rng.standard_normal((6, 1))
    l2 = L2("l2")
    assert rel_error(l2(T, Yh), np.mean((Yh - T) ** 2)) < 1e-12
    assert rel_error(l2.backward(T, Yh), 2 * (Yh - T) / 6) < 1e-12


def test_factories():
    assert isinstance(initialize_activation("relu"), ReLU) and isinstance(initialize_activation("linear"), Linear)
    assert isinstance(initialize_loss("cross_entropy"), CrossEntropy) and isinstance(initialize_loss("l2"), L2)
    assert initialize_loss("l2").name == "l2"
    assert isinstance(initialize_layer(name="fully_connected", n_out=3, activation="relu"), FullyConnected)
    np.random.seed(0)
    W = initialize_weights("he_normal", activation="relu")((1000, 200))
    assert W.shape == (1000, 200) and abs(W.std() / np.sqrt(2 / 1000) - 1) < 0.02
    assert not np.any(initialize_weights("zeros")((2, 2)))
    for factory in (initialize_activation, initialize_loss, initialize_weights):
        with pytest.raises(NotImplementedError):
            factory("nope")


def test_fused_softmax_cross_entropy_matches_the_chain_rule():
    np.random.seed(0)
    X = np.random.default_rng(0).standard_normal((7, 3))
    Y = np.eye(4)[np.random.default_rng(1).integers(4, size=7)]
    model = NeuralNetwork([FullyConnected(5, "relu"), FullyConnected(4, "softmax")], "cross_entropy")
    loss = model.backward(Y, model.forward(X))
    fused = {k: v.copy() for k, v in model.layers[0].gradients.items()}
    out = model.forward(X)
    grad = model.loss.backward(Y, out)
    for layer in reversed(model.layers):
        grad = layer.backward(grad)
    for name in ("W", "b"):
        assert rel_error(fused[name], model.layers[0].gradients[name]) < 1e-10
    f = lambda _: model.loss.forward(Y, model.forward(X))  # noqa: E731
    assert abs(f(None) - loss) < 1e-15
    model.backward(Y, model.forward(X))
    analytic = model.layers[0].gradients["W"].copy()
    assert rel_error(analytic, eval_numerical_gradient(f, model.layers[0].parameters["W"], verbose=False)) < 1e-7


def test_neural_network_learns_the_spiral():
    np.random.seed(0)
    data = gd.load("spiral", dtype="float64")
    model = NeuralNetwork([FullyConnected(64, "relu"), FullyConnected(64, "relu"), FullyConnected(3, "softmax")],
                          loss="cross_entropy", optimizer={"name": "adam", "lr": 1e-2})
    history = model.fit(data["X_train"], data["y_train"], epochs=60, batch_size=32)  # integer labels accepted
    assert history[-1] < 0.2 * history[0]
    Y_test = np.eye(3)[data["y_test"]]
    Y_hat, loss = model.predict(data["X_test"], Y_test)
    assert loss is not None and np.isfinite(loss)
    assert 1 - model.error(Y_test, Y_hat) >= 0.9
    train_acc = np.mean(model.forward(data["X_train"]).argmax(axis=1) == data["y_train"])
    assert train_acc >= 0.95
    assert model.predict(data["X_test"])[1] is None


def test_the_homework_constructor_order():
    model = NeuralNetwork("cross_entropy", [{"name": "fully_connected", "activation": "relu", "n_out": 8},
                                            {"name": "fully_connected", "activation": "softmax", "n_out": 2}],
                          {"name": "SGD", "lr": 0.1}, seed=0)
    assert isinstance(model.loss, CrossEntropy) and len(model.layers) == 2
    assert model.optimizer_rule == "sgd" and model.optimizer_config == {"learning_rate": 0.1}
    X = np.random.default_rng(0).standard_normal((4, 3))
    model.backward(np.eye(2)[[0, 1, 0, 1]], model.forward(X))
    W_before = model.layers[0].parameters["W"].copy()
    dW = model.layers[0].gradients["W"].copy()
    model.update(0)
    assert rel_error(model.layers[0].parameters["W"], W_before - 0.1 * dW) < 1e-12
    with pytest.raises(ValueError):
        NeuralNetwork([FullyConnected(2)], "l2", optimizer={"name": "lbfgs"})


def test_to_spec_compiles_to_the_same_classifier():
    np.random.seed(0)
    data = gd.load("spiral", dtype="float64")
    model = NeuralNetwork([FullyConnected(32, "relu"), FullyConnected(16, "tanh"), FullyConnected(3, "softmax")],
                          "cross_entropy", optimizer="adam")
    model.fit(data["X_train"], data["y_train"], epochs=3)
    spec = model.to_spec(input_shape=[2])
    assert [n.op for n in spec.nodes] == ["affine", "affine", "affine", "softmax", "cross_entropy"]
    net = model.compile(dtype="float64")
    assert any(d.fired and d.rule == "softmax+cross_entropy" for d in net.fusion_decisions())
    X, y = data["X_test"], data["y_test"]
    probabilities = model.forward(X)
    assert rel_error(net.forward(X), probabilities) < 1e-10  # the network outputs the probabilities
    assert abs(net.evaluate_loss(X, y) - model.loss.forward(np.eye(3)[y], probabilities)) < 1e-10


def test_to_spec_l2_becomes_mse_with_the_same_value():
    np.random.seed(1)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    T = np.c_[X.sum(axis=1), X[:, 0] * X[:, 1]]
    model = NeuralNetwork([FullyConnected(16, "sigmoid"), FullyConnected(2, "linear")], "l2", optimizer="adam")
    model.fit(X, T, epochs=5, batch_size=8)
    spec = model.to_spec(3)
    assert spec.nodes[-1].op == "mse" and spec.outputs == ["fc2"]
    net = model.compile(dtype="float64")
    assert rel_error(net.forward(X), model.forward(X)) < 1e-10
    assert abs(net.evaluate_loss(X, T) - model.loss.forward(T, model.forward(X))) < 1e-12


def test_to_spec_infers_the_input_shape_once_the_network_has_seen_data():
    model = NeuralNetwork([FullyConnected(4, "relu"), FullyConnected(3, "softmax")], "cross_entropy")
    with pytest.raises(ValueError, match="unknown until the network has seen data"):
        model.to_spec()
    model.forward(np.zeros((2, 5)))
    assert model.to_spec().inputs["x"].shape == [5]
    assert model.to_spec() == model.to_spec(input_shape=[5])


HOMEWORK = ROOT / "docs" / "homework.md"


def test_the_homework_doc_section_3_runs_and_says_what_forward_returns():
    """docs/homework.md §3 once told users to apply softmax to net.forward(X), which is
    already the softmax: run its code, then check the sentence it states."""
    text = HOMEWORK.read_text(encoding="utf-8")
    section = text.split("## 3. ", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    np.random.seed(0)
    namespace: dict = {}
    exec(compile(code, f"{HOMEWORK}#3", "exec"), namespace)  # noqa: S102 - our own documentation
    model, net, data = namespace["model"], namespace["net"], namespace["data"]
    X = data["X_test"]
    assert "`net.forward(X)` equals `model.forward(X)`" in " ".join(section.split())
    np.testing.assert_allclose(net.forward(X), model.forward(X), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(net.forward(X).sum(axis=1), 1.0, rtol=1e-12)  # probabilities, not logits
    assert namespace["spec"] == model.to_spec(input_shape=[2])


@pytest.mark.parametrize("module, names", [
    ("activations", ["Activation", "Linear", "ReLU", "Sigmoid", "TanH", "SoftMax", "initialize_activation"]),
    ("layers", ["Layer", "FullyConnected", "initialize_layer", "initialize_weights"]),
    ("losses", ["Loss", "CrossEntropy", "L2", "initialize_loss"]),
    ("models", ["NeuralNetwork"]),
])
def test_nn_is_a_package_along_the_homework_files(module, names):
    """graphnet.nn.<file> holds what the homework's <file>.py holds; graphnet.nn re-exports it."""
    submodule = importlib.import_module(f"graphnet.nn.{module}")
    for name in names:
        assert getattr(graphnet.nn, name) is getattr(submodule, name), name
        assert name in graphnet.nn.__all__
