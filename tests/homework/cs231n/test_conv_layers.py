"""graphnet.layers' convolutional functions (graphnet/homework/cs231n/conv_layers.py) and their
layer_utils sandwiches: the notebooks' checks, expected values from plain NumPy loops here,
gradients against central differences, on both kernel backends."""
from __future__ import annotations

import numpy as np
import pytest

from graphnet.gradient_check import eval_numerical_gradient_array, rel_error
from graphnet.layer_utils import conv_bn_relu_backward, conv_bn_relu_forward, conv_relu_pool_backward, \
    conv_relu_pool_forward
from graphnet.layers import (
    conv_backward,
    conv_backward_naive,
    conv_forward,
    conv_forward_fast,
    conv_forward_naive,
    max_pool_backward_naive,
    max_pool_forward_naive,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)

RNG = np.random.default_rng(231)


@pytest.fixture(params=["numba", "numpy"], autouse=True)
def backend(request, monkeypatch):
    monkeypatch.setenv("GRAPHNET_BACKEND", request.param)
    return request.param


def conv_loops(x, w, b, stride, pad):
    """The definition, one output at a time."""
    n, c, h, wd = x.shape
    f, _, hh, ww = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = 1 + (h + 2 * pad - hh) // stride, 1 + (wd + 2 * pad - ww) // stride
    out = np.zeros((n, f, oh, ow))
    for i in range(n):
        for k in range(f):
            for y in range(oh):
                for z in range(ow):
                    out[i, k, y, z] = np.sum(xp[i, :, y * stride:y * stride + hh, z * stride:z * stride + ww] * w[k]) + b[k]
    return out


def test_conv_forward_naive_the_notebooks_case():
    x = np.linspace(-0.1, 0.5, num=2 * 3 * 4 * 4).reshape((2, 3, 4, 4))
    w = np.linspace(-0.2, 0.3, num=3 * 3 * 4 * 4).reshape((3, 3, 4, 4))
    b = np.linspace(-0.1, 0.2, num=3)
    out, cache = conv_forward_naive(x, w, b, {"stride": 2, "pad": 1})
    assert out.shape == (2, 3, 2, 2)
    assert rel_error(out, conv_loops(x, w, b, 2, 1)) < 1e-12
    assert cache[0] is x and cache[1] is w and cache[3] == {"stride": 2, "pad": 1}


@pytest.mark.parametrize("stride, pad", [(1, 1), (2, 0), (3, 2)])
def test_conv_backward_matches_central_differences(stride, pad):
    x, w, b = RNG.standard_normal((2, 3, 7, 6)), RNG.standard_normal((4, 3, 3, 2)), RNG.standard_normal(4)
    param = {"stride": stride, "pad": pad}
    out, cache = conv_forward(x, w, b, param)
    assert rel_error(out, conv_loops(x, w, b, stride, pad)) < 1e-9  # elementwise: small outputs weigh in
    dout = RNG.standard_normal(out.shape)
    dx, dw, db = conv_backward(dout, cache)
    tol = dict(rtol=1e-6, atol=1e-7)  # inputs no window reads have gradient 0 (stride 2, no padding)
    np.testing.assert_allclose(dx, eval_numerical_gradient_array(lambda v: conv_forward(v, w, b, param)[0], x, dout),
                               **tol)
    np.testing.assert_allclose(dw, eval_numerical_gradient_array(lambda v: conv_forward(x, v, b, param)[0], w, dout),
                               **tol)
    np.testing.assert_allclose(db, eval_numerical_gradient_array(lambda v: conv_forward(x, w, v, param)[0], b, dout),
                               **tol)


def test_naive_and_fast_are_one_implementation_and_float32_stays_float32():
    assert conv_forward_fast is conv_forward_naive and conv_backward is conv_backward_naive
    x, w, b = (a.astype(np.float32) for a in (RNG.standard_normal((2, 1, 5, 5)), RNG.standard_normal((2, 1, 3, 3)),
                                               RNG.standard_normal(2)))
    out, cache = conv_forward_naive(x, w, b, {"stride": 1, "pad": 1})
    assert out.dtype == np.float32 and all(g.dtype == np.float32 for g in conv_backward_naive(out, cache))


def test_a_filter_larger_than_the_padded_input_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        conv_forward_naive(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 5, 5)), np.zeros(1), {"stride": 1, "pad": 0})


def test_max_pool_naive_forward_and_backward():
    x = RNG.standard_normal((2, 3, 6, 5))
    param = {"pool_height": 2, "pool_width": 3, "stride": 2}
    out, cache = max_pool_forward_naive(x, param)
    expected = np.array([[[[x[i, c, 2 * y:2 * y + 2, 2 * z:2 * z + 3].max() for z in range(2)] for y in range(3)]
                          for c in range(3)] for i in range(2)])
    np.testing.assert_array_equal(out, expected)
    dout = RNG.standard_normal(out.shape)
    dx = max_pool_backward_naive(dout, cache)
    assert rel_error(dx, eval_numerical_gradient_array(lambda v: max_pool_forward_naive(v, param)[0], x, dout)) < 1e-8


def test_spatial_batchnorm_normalizes_each_channel_and_its_gradients():
    x = 4 * RNG.standard_normal((3, 2, 4, 5)) + 10
    gamma, beta = np.array([1.0, 2.0]), np.array([0.0, -3.0])
    bn_param = {"mode": "train"}
    out, cache = spatial_batchnorm_forward(x, gamma, beta, bn_param)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), beta, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), gamma, rtol=1e-5)
    np.testing.assert_allclose(bn_param["running_mean"], 0.1 * x.mean(axis=(0, 2, 3)))
    dout = RNG.standard_normal(x.shape)
    dx, dgamma, dbeta = spatial_batchnorm_backward(dout, cache)

    def fx(v):
        return spatial_batchnorm_forward(v, gamma, beta, {"mode": "train"})[0]

    assert rel_error(dx, eval_numerical_gradient_array(fx, x, dout)) < 1e-7
    assert rel_error(dgamma, eval_numerical_gradient_array(
        lambda g: spatial_batchnorm_forward(x, g, beta, {"mode": "train"})[0], gamma, dout)) < 1e-7
    np.testing.assert_allclose(dbeta, dout.sum(axis=(0, 2, 3)))
    test_out, none = spatial_batchnorm_forward(x, gamma, beta, {**bn_param, "mode": "test"})
    assert none is None and test_out.shape == x.shape


def test_conv_relu_pool_sandwich_gradients():
    x, w, b = RNG.standard_normal((2, 3, 8, 8)), RNG.standard_normal((3, 3, 3, 3)), RNG.standard_normal(3)
    conv_param, pool_param = {"stride": 1, "pad": 1}, {"pool_height": 2, "pool_width": 2, "stride": 2}
    out, cache = conv_relu_pool_forward(x, w, b, conv_param, pool_param)
    assert out.shape == (2, 3, 4, 4)
    dout = RNG.standard_normal(out.shape)
    dx, dw, db = conv_relu_pool_backward(dout, cache)
    numeric = eval_numerical_gradient_array(lambda v: conv_relu_pool_forward(x, v, b, conv_param, pool_param)[0], w,
                                            dout)
    assert rel_error(dw, numeric) < 1e-7


def test_conv_bn_relu_sandwich_gradients():
    x, w, b = RNG.standard_normal((2, 3, 5, 5)), RNG.standard_normal((3, 3, 3, 3)), RNG.standard_normal(3)
    gamma, beta = RNG.uniform(0.5, 1.5, 3), RNG.standard_normal(3)
    conv_param = {"stride": 1, "pad": 1}
    out, cache = conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, {"mode": "train"})
    dout = RNG.standard_normal(out.shape)
    dx, dw, db, dgamma, dbeta = conv_bn_relu_backward(dout, cache)
    numeric = eval_numerical_gradient_array(
        lambda v: conv_bn_relu_forward(v, w, b, gamma, beta, conv_param, {"mode": "train"})[0], x, dout)
    assert rel_error(dx, numeric) < 1e-6
    np.testing.assert_allclose(db, 0, atol=1e-10)  # a bias before batchnorm has no effect
