"""graphnet.layer_utils: sandwich layers against their parts and against numeric gradients."""
from __future__ import annotations

import numpy as np
import pytest

from graphnet.gradient_check import eval_numerical_gradient_array, rel_error
from graphnet.layer_utils import (
    affine_bn_relu_backward,
    affine_bn_relu_forward,
    affine_ln_relu_backward,
    affine_ln_relu_forward,
    affine_relu_backward,
    affine_relu_forward,
)
from graphnet.layers import affine_forward, relu_forward


@pytest.fixture(params=["numba", "numpy"])
def backend(request, monkeypatch):
    monkeypatch.setenv("GRAPHNET_BACKEND", request.param)
    return request.param


def test_affine_relu_forward_is_affine_then_relu(backend):
    rng = np.random.default_rng(231)
    x, w, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((12, 10)), rng.standard_normal(10)
    out, cache = affine_relu_forward(x, w, b)
    expected = np.maximum(x.reshape(2, -1) @ w + b, 0)
    assert rel_error(out, expected) < 1e-12
    assert rel_error(out, relu_forward(affine_forward(x, w, b)[0])[0]) < 1e-12
    fc_cache, _ = cache
    assert fc_cache[0] is x


def test_affine_relu_backward_numeric(backend):
    rng = np.random.default_rng(231)
    x, w, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((12, 10)), rng.standard_normal(10)
    dout = rng.standard_normal((2, 10))
    _, cache = affine_relu_forward(x, w, b)
    dx, dw, db = affine_relu_backward(dout, cache)
    assert dx.shape == x.shape
    assert rel_error(dx, eval_numerical_gradient_array(lambda x: affine_relu_forward(x, w, b)[0], x, dout)) < 1e-8
    assert rel_error(dw, eval_numerical_gradient_array(lambda w: affine_relu_forward(x, w, b)[0], w, dout)) < 1e-8
    assert rel_error(db, eval_numerical_gradient_array(lambda b: affine_relu_forward(x, w, b)[0], b, dout)) < 1e-8


@pytest.mark.parametrize("forward, backward, param", [
    (affine_bn_relu_forward, affine_bn_relu_backward, {"mode": "train"}),
    (affine_ln_relu_forward, affine_ln_relu_backward, {}),
])
def test_normalized_sandwiches_numeric(backend, forward, backward, param):
    rng = np.random.default_rng(231)
    N, D, M = 6, 4, 5
    x, w, b = rng.standard_normal((N, 2, 2)), rng.standard_normal((D, M)), rng.standard_normal(M)
    gamma, beta = rng.standard_normal(M) + 1, rng.standard_normal(M)
    dout = rng.standard_normal((N, M))
    args = [x, w, b, gamma, beta]

    def run(i):
        def f(value):
            call = list(args)
            call[i] = value
            return forward(*call, dict(param))[0]
        return f

    out, cache = forward(x, w, b, gamma, beta, dict(param))
    assert out.shape == (N, M) and np.all(out >= 0)
    grads = backward(dout, cache)
    assert len(grads) == 5
    for i, (value, grad) in enumerate(zip(args, grads)):
        numeric = eval_numerical_gradient_array(run(i), value.copy(), dout)
        assert grad.shape == value.shape
        if np.abs(numeric).max() < 1e-9:  # the affine bias before batchnorm: its gradient is exactly 0
            assert np.abs(grad).max() < 1e-12, f"gradient {i}"
        else:
            assert rel_error(grad, numeric) < 1e-7, f"gradient {i}"


def test_float32_stays_float32():
    x = np.ones((3, 4), np.float32)
    w, b = np.ones((4, 2), np.float32), np.zeros(2, np.float32)
    out, cache = affine_relu_forward(x, w, b)
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in affine_relu_backward(np.ones((3, 2), np.float32), cache))
