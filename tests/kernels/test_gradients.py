"""Central-difference gradient checks (float64) of every backward kernel and loss gradient."""
from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

from graphnet.kernels import ACTIVATION_CODES, KernelBackend
from graphnet.kernels.dropout import fill_uniform

H = 1e-6
MAX_REL_ERROR = 1e-6


def numeric_grad(f: Callable[[], float], x: np.ndarray, h: float = H) -> np.ndarray:
    """d f / d x by central differences, perturbing x in place."""
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        plus = f()
        flat[i] = old - h
        minus = f()
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * h)
    return grad


def rel_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """max |a - n| relative to the gradient's scale."""
    scale = max(np.max(np.abs(analytic)), np.max(np.abs(numeric)), 1e-12)
    return float(np.max(np.abs(analytic - numeric)) / scale)


def check(analytic: np.ndarray, f: Callable[[], float], x: np.ndarray) -> None:
    numeric = numeric_grad(f, x)
    err = rel_error(analytic, numeric)
    assert err < MAX_REL_ERROR, f"relative error {err:.2e}\nanalytic {analytic}\nnumeric {numeric}"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    """Normal samples with |x| >= 0.05 (keeps kinks out of reach of the difference step)."""
    x = rng.standard_normal(shape) * scale
    return np.where(np.abs(x) < 0.05, np.sign(x + 1e-12) * 0.05 + x, x)


# ---- losses: the returned mean loss against the written gradient


def test_softmax_cross_entropy_gradient(backend: KernelBackend, rng: np.random.Generator) -> None:
    X, y = rng.standard_normal((5, 7)) * 2, rng.integers(0, 7, 5)
    dX, scratch = np.empty_like(X), np.empty_like(X)
    backend.softmax_cross_entropy(X, y, dX)
    check(dX, lambda: backend.softmax_cross_entropy(X, y, scratch), X)


def test_cross_entropy_gradient(backend: KernelBackend, rng: np.random.Generator) -> None:
    P, y = rng.uniform(0.1, 1.0, (5, 7)), rng.integers(0, 7, 5)
    dP, scratch = np.empty_like(P), np.empty_like(P)
    backend.cross_entropy(P, y, dP)
    check(dP, lambda: backend.cross_entropy(P, y, scratch), P)


def test_svm_loss_gradient(backend: KernelBackend, rng: np.random.Generator) -> None:
    X, y = rng.standard_normal((6, 5)), rng.integers(0, 5, 6)
    # keep every margin away from the hinge so the loss is locally linear
    for i in range(6):
        margins = X[i] - X[i, y[i]] + 1
        margins[y[i]] = 1.0
        X[i] += np.where(np.abs(margins) < 0.05, 0.1, 0.0) * (np.arange(5) != y[i])
    dX, scratch = np.empty_like(X), np.empty_like(X)
    backend.svm_loss(X, y, dX)
    check(dX, lambda: backend.svm_loss(X, y, scratch), X)


def test_mse_loss_gradient(backend: KernelBackend, rng: np.random.Generator) -> None:
    Y, T = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    dY, scratch = np.empty_like(Y), np.empty_like(Y)
    backend.mse_loss(Y, T, dY)
    check(dY, lambda: backend.mse_loss(Y, T, scratch), Y)


def test_sigmoid_bce_loss_gradient(backend: KernelBackend, rng: np.random.Generator) -> None:
    X, T = rng.standard_normal((4, 3)) * 3, rng.uniform(0, 1, (4, 3))
    dX, scratch = np.empty_like(X), np.empty_like(X)
    backend.sigmoid_bce_loss(X, T, dX)
    check(dX, lambda: backend.sigmoid_bce_loss(X, T, scratch), X)


def test_l2_penalty_gradient(backend: KernelBackend, rng: np.random.Generator) -> None:
    W = rng.standard_normal(11)
    dW = np.zeros_like(W)
    backend.l2_penalty(W, dW, 0.3)
    check(dW, lambda: backend.l2_penalty(W, np.zeros_like(W), 0.3), W)


# ---- backward kernels: L = sum(G * forward(x)) for a fixed random G


@pytest.mark.parametrize("act", list(ACTIVATION_CODES.values()), ids=list(ACTIVATION_CODES))
def test_act_backward_gradient(backend: KernelBackend, rng: np.random.Generator, act: int) -> None:
    X, G = away_from_zero(rng, (4, 5), 2.0), rng.standard_normal((4, 5))
    Y, dX, tmp = np.empty_like(X), np.empty_like(X), np.empty_like(X)
    backend.act_forward(X, act, 0.1, Y)
    backend.act_backward(G, Y, act, 0.1, dX)

    def loss() -> float:
        backend.act_forward(X, act, 0.1, tmp)
        return float(np.sum(G * tmp))

    check(dX, loss, X)


@pytest.mark.parametrize("act", list(ACTIVATION_CODES.values()), ids=list(ACTIVATION_CODES))
def test_act_bias_backward_gradient(backend: KernelBackend, rng: np.random.Generator, act: int) -> None:
    b, G = rng.standard_normal(5), rng.standard_normal((4, 5))
    Z = away_from_zero(rng, (4, 5), 2.0) - b  # pre-activations Z + b away from the kinks
    Y = Z.copy()
    backend.bias_act_forward(Y, b, act, 0.1)
    dZ, db = np.empty_like(Z), np.empty(5)
    backend.act_bias_backward(G, Y, act, 0.1, dZ, db)

    def loss() -> float:
        out = Z.copy()
        backend.bias_act_forward(out, b, act, 0.1)
        return float(np.sum(G * out))

    check(dZ, loss, Z)
    check(db, loss, b)


def test_softmax_backward_gradient(backend: KernelBackend, rng: np.random.Generator) -> None:
    X, G = rng.standard_normal((4, 6)) * 2, rng.standard_normal((4, 6))
    P, dX, tmp = np.empty_like(X), np.empty_like(X), np.empty_like(X)
    backend.softmax_forward(X, P)
    backend.softmax_backward(G, P, dX)

    def loss() -> float:
        backend.softmax_forward(X, tmp)
        return float(np.sum(G * tmp))

    check(dX, loss, X)


def test_batchnorm_backward_gradient(backend: KernelBackend, rng: np.random.Generator) -> None:
    n, d = 6, 4
    X = rng.standard_normal((n, d)) * 2 + 1
    gamma, beta, G = rng.standard_normal(d), rng.standard_normal(d), rng.standard_normal((n, d))

    def forward(out: np.ndarray, xhat: np.ndarray, inv_std: np.ndarray) -> None:
        backend.batchnorm_train_forward(X, gamma, beta, 1e-5, 0.9, np.zeros(d), np.ones(d), out, xhat, inv_std)

    out, xhat, inv_std = np.empty((n, d)), np.empty((n, d)), np.empty(d)
    forward(out, xhat, inv_std)
    dX, dgamma, dbeta = np.empty((n, d)), np.empty(d), np.empty(d)
    backend.batchnorm_backward(G, xhat, gamma, inv_std, dX, dgamma, dbeta)

    def loss() -> float:
        o = np.empty((n, d))
        forward(o, np.empty((n, d)), np.empty(d))
        return float(np.sum(G * o))

    check(dX, loss, X)
    check(dgamma, loss, gamma)
    check(dbeta, loss, beta)


def test_layernorm_backward_gradient(backend: KernelBackend, rng: np.random.Generator) -> None:
    n, d = 4, 6
    X = rng.standard_normal((n, d)) * 2 + 1
    gamma, beta, G = rng.standard_normal(d), rng.standard_normal(d), rng.standard_normal((n, d))

    def forward(out: np.ndarray, xhat: np.ndarray, inv_std: np.ndarray) -> None:
        backend.layernorm_forward(X, gamma, beta, 1e-5, out, xhat, inv_std)

    out, xhat, inv_std = np.empty((n, d)), np.empty((n, d)), np.empty(n)
    forward(out, xhat, inv_std)
    dX, dgamma, dbeta = np.empty((n, d)), np.empty(d), np.empty(d)
    backend.layernorm_backward(G, xhat, gamma, inv_std, dX, dgamma, dbeta)

    def loss() -> float:
        o = np.empty((n, d))
        forward(o, np.empty((n, d)), np.empty(n))
        return float(np.sum(G * o))

    check(dX, loss, X)
    check(dgamma, loss, gamma)
    check(dbeta, loss, beta)


def test_dropout_backward_gradient(backend: KernelBackend, rng: np.random.Generator) -> None:
    X, G = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    uniforms = np.empty((5, 4))
    fill_uniform(rng, uniforms)
    mask, out = uniforms.copy(), np.empty_like(X)
    backend.dropout_forward(X, 0.4, mask, out)
    dX = np.empty_like(X)
    backend.dropout_backward(G, mask, dX)

    def loss() -> float:
        o = np.empty_like(X)
        backend.dropout_forward(X, 0.4, uniforms.copy(), o)
        return float(np.sum(G * o))

    check(dX, loss, X)
