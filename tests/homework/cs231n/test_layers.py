"""graphnet.layers: the notebooks' own checks, with expected values computed here in plain NumPy."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from graphnet.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, rel_error
from graphnet.layers import (
    affine_backward,
    affine_forward,
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    dropout_backward,
    dropout_forward,
    layernorm_backward,
    layernorm_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    softmax_loss,
    svm_loss,
    tanh_backward,
    tanh_forward,
)


@pytest.fixture(params=["numba", "numpy"])
def backend(request, monkeypatch):
    """Run a test on each kernel backend (the layers read $GRAPHNET_BACKEND on every call)."""
    monkeypatch.setenv("GRAPHNET_BACKEND", request.param)
    return request.param


# ---- affine -------------------------------------------------------------------------------------


def test_affine_forward_matches_the_formula(backend):
    num_inputs, input_shape, output_dim = 2, (4, 5, 6), 3
    input_size = num_inputs * np.prod(input_shape)
    weight_size = output_dim * np.prod(input_shape)
    x = np.linspace(-0.1, 0.5, num=input_size).reshape(num_inputs, *input_shape)
    w = np.linspace(-0.2, 0.3, num=weight_size).reshape(np.prod(input_shape), output_dim)
    b = np.linspace(-0.3, 0.1, num=output_dim)
    out, cache = affine_forward(x, w, b)
    expected = x.reshape(num_inputs, -1) @ w + b
    assert out.shape == (num_inputs, output_dim) and out.dtype == np.float64
    assert rel_error(out, expected) < 1e-12
    assert cache[0] is x and cache[1] is w and cache[2] is b  # the homework's cache


def test_affine_backward_against_numeric_gradients(backend):
    rng = np.random.default_rng(231)
    x, w, b = rng.standard_normal((10, 2, 3)), rng.standard_normal((6, 5)), rng.standard_normal(5)
    dout = rng.standard_normal((10, 5))
    dx_num = eval_numerical_gradient_array(lambda x: affine_forward(x, w, b)[0], x, dout)
    dw_num = eval_numerical_gradient_array(lambda w: affine_forward(x, w, b)[0], w, dout)
    db_num = eval_numerical_gradient_array(lambda b: affine_forward(x, w, b)[0], b, dout)
    _, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(dout, cache)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    assert rel_error(dx, dx_num) < 1e-8
    assert rel_error(dw, dw_num) < 1e-8
    assert rel_error(db, db_num) < 1e-8


def test_affine_backward_leaves_a_read_only_dout_alone():
    x, w, b = np.ones((3, 4)), np.ones((4, 2)), np.zeros(2)
    dout = np.arange(6.0).reshape(3, 2)
    dout.flags.writeable = False
    _, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(dout, cache)
    assert np.array_equal(db, dout.sum(axis=0)) and np.array_equal(dw, x.T @ dout)


# ---- elementwise activations ----------------------------------------------------------------------


def test_relu_forward_and_backward(backend):
    x = np.linspace(-0.5, 0.5, num=12).reshape(3, 4)
    out, _ = relu_forward(x)
    assert rel_error(out, np.maximum(x, 0)) < 1e-12
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 10))
    dout = rng.standard_normal(x.shape)
    dx_num = eval_numerical_gradient_array(lambda x: relu_forward(x)[0], x, dout)
    _, cache = relu_forward(x)
    assert rel_error(relu_backward(dout, cache), dx_num) < 1e-8


@pytest.mark.parametrize("forward, backward, formula", [
    (sigmoid_forward, sigmoid_backward, lambda x: 1 / (1 + np.exp(-x))),
    (tanh_forward, tanh_backward, np.tanh),
])
def test_sigmoid_and_tanh(backend, forward, backward, formula):
    x = np.linspace(-3, 3, num=24).reshape(4, 6)
    out, _ = forward(x)
    assert rel_error(out, formula(x)) < 1e-12
    dout = np.random.default_rng(1).standard_normal(x.shape)
    dx_num = eval_numerical_gradient_array(lambda x: forward(x)[0], x, dout)
    _, cache = forward(x)
    assert rel_error(backward(dout, cache), dx_num) < 1e-8


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_stable_for_huge_inputs(backend, dtype):
    x = np.array([-1e4, -100.0, 0.0, 100.0, 1e4], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")  # (exp underflowing to exactly 0 is fine)
        out, _ = sigmoid_forward(x)
    assert out.dtype == dtype and np.all(np.isfinite(out))
    assert out[0] == 0.0 and out[2] == 0.5 and out[-1] == 1.0


# ---- losses ---------------------------------------------------------------------------------------


def _softmax_loss_reference(x, y):
    shifted = x - x.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(y)), y].mean()


def _svm_loss_reference(x, y):
    correct = x[np.arange(len(y)), y][:, None]
    margins = np.maximum(0, x - correct + 1)
    margins[np.arange(len(y)), y] = 0
    return margins.sum() / len(y)


@pytest.mark.parametrize("loss_fn, reference", [(softmax_loss, _softmax_loss_reference),
                                                (svm_loss, _svm_loss_reference)])
def test_losses_value_and_gradient(backend, loss_fn, reference):
    rng = np.random.default_rng(231)
    num_classes, num_inputs = 10, 50
    x = 0.001 * rng.standard_normal((num_inputs, num_classes))
    y = rng.integers(num_classes, size=num_inputs)
    loss, dx = loss_fn(x, y)
    assert isinstance(loss, float)
    assert rel_error(loss, reference(x, y)) < 1e-12
    dx_num = eval_numerical_gradient(lambda x: loss_fn(x, y)[0], x, verbose=False)
    assert rel_error(dx, dx_num) < 1e-8


def test_initial_losses_are_the_textbook_values():
    x = np.zeros((20, 10))
    y = np.arange(20) % 10
    assert abs(softmax_loss(x, y)[0] - np.log(10)) < 1e-12
    assert abs(svm_loss(x, y)[0] - 9.0) < 1e-12


def test_softmax_loss_is_stable_and_takes_any_integer_labels():
    x = np.array([[1e4, -1e4, 0.0], [0.0, 0.0, 1e4]])
    for y in (np.array([0, 2], np.uint8), np.array([0, 2], np.int32), [0, 2]):
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            loss, dx = softmax_loss(x, y)
        assert loss == 0.0 and np.all(np.isfinite(dx))
    with pytest.raises(ValueError):
        softmax_loss(x, np.array([0, 3]))


# ---- batchnorm ------------------------------------------------------------------------------------


def _two_layer_features(rng, n=200):
    D1, D2, D3 = 50, 60, 3
    X = rng.standard_normal((n, D1))
    W1, W2 = rng.standard_normal((D1, D2)), rng.standard_normal((D2, D3))
    return np.maximum(0, X @ W1) @ W2, (W1, W2)


def test_batchnorm_train_forward_normalizes(backend):
    rng = np.random.default_rng(231)
    a, _ = _two_layer_features(rng)
    out, _ = batchnorm_forward(a, np.ones(3), np.zeros(3), {"mode": "train"})
    assert np.abs(out.mean(axis=0)).max() < 1e-10
    assert np.abs(out.std(axis=0) - 1).max() < 1e-5  # eps = 1e-5 shaves a little off
    gamma, beta = np.array([1.0, 2.0, 3.0]), np.array([11.0, 12.0, 13.0])
    out, _ = batchnorm_forward(a, gamma, beta, {"mode": "train"})
    assert np.abs(out.mean(axis=0) - beta).max() < 1e-9
    assert np.abs(out.std(axis=0) - gamma).max() < 1e-4
    expected = gamma * (a - a.mean(axis=0)) / np.sqrt(a.var(axis=0) + 1e-5) + beta
    assert rel_error(out, expected) < 1e-10


def test_batchnorm_param_conventions():
    x = np.arange(12.0).reshape(4, 3)
    bn_param = {"mode": "train"}
    batchnorm_forward(x, np.ones(3), np.zeros(3), bn_param)
    # running stats created as zeros, then momentum 0.9: running = 0.1 * batch statistic (biased var)
    assert np.allclose(bn_param["running_mean"], 0.1 * x.mean(axis=0))
    assert np.allclose(bn_param["running_var"], 0.1 * x.var(axis=0))
    previous = bn_param["running_mean"]
    bn_param.update(momentum=0.5)
    batchnorm_forward(x, np.ones(3), np.zeros(3), bn_param)
    assert bn_param["running_mean"] is not previous and np.allclose(previous, 0.1 * x.mean(axis=0))
    assert np.allclose(bn_param["running_mean"], 0.5 * 0.1 * x.mean(axis=0) + 0.5 * x.mean(axis=0))
    with pytest.raises(ValueError, match="mode"):
        batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "eval"})


def test_batchnorm_running_averages_approach_population_statistics(backend):
    rng = np.random.default_rng(231)
    population, _ = _two_layer_features(rng, n=20000)
    bn_param = {"mode": "train"}
    gamma, beta = np.ones(3), np.zeros(3)
    for _ in range(100):
        batchnorm_forward(population[rng.integers(len(population), size=200)], gamma, beta, bn_param)
    # the running mean is an average of batch means (each of std sigma / sqrt(200)): within 0.1 sigma
    sigma = population.std(axis=0)
    assert np.all(np.abs(bn_param["running_mean"] - population.mean(axis=0)) < 0.1 * sigma)
    assert np.all(np.abs(bn_param["running_var"] / population.var(axis=0) - 1) < 0.15)
    bn_param["mode"] = "test"
    out, cache = batchnorm_forward(population[:200], gamma, beta, bn_param)
    assert cache is None
    assert np.abs(out.mean(axis=0)).max() < 0.25 and np.abs(out.std(axis=0) - 1).max() < 0.25


def _batchnorm_backward_staged(dout, x, gamma, eps=1e-5):
    """Backprop through the staged graph mu -> xc -> var -> std -> xhat -> out, written out here."""
    n = x.shape[0]
    mu = x.mean(axis=0)
    xc = x - mu
    var = (xc ** 2).mean(axis=0)
    std = np.sqrt(var + eps)
    xhat = xc / std
    dbeta, dgamma = dout.sum(axis=0), (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    dstd = -(dxhat * xc).sum(axis=0) / std ** 2
    dvar = dstd / (2 * std)
    dxc = dxhat / std + 2 * xc * dvar / n
    dx = dxc - dxc.mean(axis=0)
    return dx, dgamma, dbeta


def test_batchnorm_backward_numeric_staged_and_alt(backend):
    rng = np.random.default_rng(231)
    N, D = 4, 5
    x = 5 * rng.standard_normal((N, D)) + 12
    gamma, beta = rng.standard_normal(D), rng.standard_normal(D)
    dout = rng.standard_normal((N, D))
    bn_param = {"mode": "train"}
    fx = lambda x: batchnorm_forward(x, gamma, beta, bn_param)[0]  # noqa: E731
    fg = lambda g: batchnorm_forward(x, g, beta, bn_param)[0]  # noqa: E731
    fb = lambda b: batchnorm_forward(x, gamma, b, bn_param)[0]  # noqa: E731
    dx_num = eval_numerical_gradient_array(fx, x, dout)
    da_num = eval_numerical_gradient_array(fg, gamma.copy(), dout)
    db_num = eval_numerical_gradient_array(fb, beta.copy(), dout)
    _, cache = batchnorm_forward(x, gamma, beta, bn_param)
    dx, dgamma, dbeta = batchnorm_backward(dout, cache)
    assert rel_error(dx, dx_num) < 1e-8
    assert rel_error(dgamma, da_num) < 1e-8
    assert rel_error(dbeta, db_num) < 1e-8
    for ours, staged in zip((dx, dgamma, dbeta), _batchnorm_backward_staged(dout, x, gamma)):
        assert rel_error(ours, staged) < 1e-10
    for ours, alt in zip((dx, dgamma, dbeta), batchnorm_backward_alt(dout, cache)):
        assert rel_error(ours, alt) < 1e-12


# ---- layernorm ------------------------------------------------------------------------------------


def test_layernorm_forward_normalizes_each_example(backend):
    rng = np.random.default_rng(231)
    a, _ = _two_layer_features(rng, n=4)
    out, _ = layernorm_forward(a, np.ones(3), np.zeros(3), {})
    assert np.abs(out.mean(axis=1)).max() < 1e-10
    assert np.abs(out.std(axis=1) - 1).max() < 1e-3
    gamma, beta = np.array([3.0, 3.0, 3.0]), np.array([5.0, 5.0, 5.0])
    out, _ = layernorm_forward(a, gamma, beta, {"eps": 1e-5})
    mu, var = a.mean(axis=1, keepdims=True), a.var(axis=1, keepdims=True)
    assert rel_error(out, gamma * (a - mu) / np.sqrt(var + 1e-5) + beta) < 1e-10


def test_layernorm_backward_numeric(backend):
    rng = np.random.default_rng(231)
    N, D = 4, 5
    x = 5 * rng.standard_normal((N, D)) + 12
    gamma, beta = rng.standard_normal(D), rng.standard_normal(D)
    dout = rng.standard_normal((N, D))
    ln_param: dict = {}
    dx_num = eval_numerical_gradient_array(lambda x: layernorm_forward(x, gamma, beta, ln_param)[0], x, dout)
    da_num = eval_numerical_gradient_array(lambda g: layernorm_forward(x, g, beta, ln_param)[0], gamma.copy(), dout)
    db_num = eval_numerical_gradient_array(lambda b: layernorm_forward(x, gamma, b, ln_param)[0], beta.copy(), dout)
    _, cache = layernorm_forward(x, gamma, beta, ln_param)
    dx, dgamma, dbeta = layernorm_backward(dout, cache)
    assert rel_error(dx, dx_num) < 1e-8
    assert rel_error(dgamma, da_num) < 1e-8
    assert rel_error(dbeta, db_num) < 1e-8


# ---- dropout --------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.25, 0.4, 0.7])
def test_dropout_mean_scale_and_fraction(backend, p):
    rng = np.random.default_rng(231)
    x = rng.standard_normal((500, 500)) + 10
    out_train, _ = dropout_forward(x, {"mode": "train", "p": p, "seed": 1})
    out_test, _ = dropout_forward(x, {"mode": "test", "p": p})
    assert out_test is x
    assert abs(out_train.mean() - out_test.mean()) < 0.02 * x.mean()
    assert abs((out_train == 0).mean() - p) < 0.01  # p is the probability of dropping
    kept = out_train != 0
    assert np.allclose(out_train[kept], x[kept] / (1 - p))


def test_dropout_seed_makes_the_mask_reproducible():
    x = np.ones((50, 40))
    a, _ = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 7})
    b, _ = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 7})
    c, _ = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 8})
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    np.random.seed(3)  # without a seed the mask follows NumPy's global state
    d, _ = dropout_forward(x, {"mode": "train", "p": 0.5})
    np.random.seed(3)
    e, _ = dropout_forward(x, {"mode": "train", "p": 0.5})
    assert np.array_equal(d, e)
    with pytest.raises(ValueError):
        dropout_forward(x, {"mode": "train", "p": 1.0})


def test_dropout_backward_numeric(backend):
    rng = np.random.default_rng(231)
    x = rng.standard_normal((10, 10)) + 10
    dout = rng.standard_normal(x.shape)
    param = {"mode": "train", "p": 0.2, "seed": 123}
    out, cache = dropout_forward(x, param)
    dx = dropout_backward(dout, cache)
    dx_num = eval_numerical_gradient_array(lambda x: dropout_forward(x, param)[0], x, dout)
    assert rel_error(dx, dx_num) < 1e-10
    _, test_cache = dropout_forward(x, {"mode": "test", "p": 0.2})
    assert dropout_backward(dout, test_cache) is dout


# ---- dtypes ---------------------------------------------------------------------------------------


def test_dtypes_are_kept_promoted_or_cast():
    x32 = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    w32, b32 = np.ones((4, 2), np.float32), np.zeros(2, np.float32)
    out, cache = affine_forward(x32, w32, b32)
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in affine_backward(np.ones((3, 2), np.float32), cache))
    assert affine_forward(x32, w32.astype(np.float64), b32)[0].dtype == np.float64  # NumPy promotion
    assert relu_forward(np.arange(6).reshape(2, 3))[0].dtype == np.float64  # ints -> float64
    assert relu_forward(np.ones(3, np.float16))[0].dtype == np.float32
    out, _ = batchnorm_forward(x32, np.ones(4), np.zeros(4), {"mode": "train"})
    assert out.dtype == np.float64
    bn_param = {"mode": "train"}
    out, _ = batchnorm_forward(x32, np.ones(4, np.float32), np.zeros(4, np.float32), bn_param)
    assert out.dtype == np.float32 and bn_param["running_mean"].dtype == np.float32
    loss, dx = softmax_loss(x32, np.array([0, 1, 3], np.int16))
    assert dx.dtype == np.float32 and isinstance(loss, float)
    # non-contiguous input
    xt = np.linspace(-1, 1, 12).reshape(4, 3).T
    assert rel_error(relu_forward(xt)[0], np.maximum(xt, 0)) < 1e-15
