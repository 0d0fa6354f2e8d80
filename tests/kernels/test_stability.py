"""Numerical stability at extreme inputs, fast_exp accuracy, NaN/inf handling."""
from __future__ import annotations

import numpy as np
import pytest
from graphnet.kernels import HAVE_NUMBA, SIGMOID, TANH, KernelBackend

BIG = 1e4


def logits(dtype: np.dtype) -> np.ndarray:
    return np.array(
        [[BIG, -BIG, 0.0, BIG - 1.0], [-BIG, -BIG, -BIG, -BIG], [BIG, BIG, BIG, -BIG], [0.5, -BIG, 3.0, 2.0]],
        dtype=dtype,
    )


def softmax_reference(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_softmax_forward_extreme_logits(backend: KernelBackend, dtype: np.dtype) -> None:
    X = logits(dtype)
    P = np.empty_like(X)
    backend.softmax_forward(X, P)
    assert np.all(np.isfinite(P))
    np.testing.assert_allclose(P, softmax_reference(X), rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-6)


def test_softmax_cross_entropy_extreme_logits(backend: KernelBackend, dtype: np.dtype) -> None:
    X = logits(dtype)
    y = np.array([1, 0, 3, 2], dtype=np.int64)
    dX = np.empty_like(X)
    loss = backend.softmax_cross_entropy(X, y, dX)
    x = X.astype(np.float64)
    m = x.max(axis=1)
    logsumexp = m + np.log(np.exp(x - m[:, None]).sum(axis=1))
    expected = float(np.mean(logsumexp - x[np.arange(4), y]))  # about (2e4 + 2e4 + small) / 4
    assert np.isfinite(loss) and np.all(np.isfinite(dX))
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    onehot = np.zeros((4, 4))
    onehot[np.arange(4), y] = 1
    np.testing.assert_allclose(dX, (softmax_reference(X) - onehot) / 4, rtol=1e-5, atol=1e-7)


def test_cross_entropy_of_zero_probability_is_finite(backend: KernelBackend, dtype: np.dtype) -> None:
    P = np.array([[0.0, 1.0], [0.5, 0.5]], dtype=dtype)
    y = np.array([0, 1], dtype=np.int64)
    dP = np.empty_like(P)
    loss = backend.cross_entropy(P, y, dP)
    tiny = np.finfo(dtype).tiny
    assert np.isfinite(loss) and np.all(np.isfinite(dP))
    np.testing.assert_allclose(loss, (-np.log(float(tiny)) - np.log(0.5)) / 2, rtol=1e-6)
    np.testing.assert_allclose(dP[0, 0], -1 / (2 * float(tiny)), rtol=1e-6)


def test_sigmoid_and_tanh_extremes(backend: KernelBackend, dtype: np.dtype) -> None:
    X = np.array([[-BIG, -100.0, -30.0, 0.0, 30.0, 100.0, BIG]], dtype=dtype)
    out = np.empty_like(X)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        backend.act_forward(X, SIGMOID, 0.0, out)
    expected = np.exp(-np.logaddexp(0.0, -X.astype(np.float64)))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-37)
    assert out[0, 0] == 0 and out[0, -1] == 1
    dX = np.empty_like(X)
    backend.act_backward(np.ones_like(X), out, SIGMOID, 0.0, dX)
    assert np.all(np.isfinite(dX)) and dX[0, 0] == 0 and dX[0, -1] == 0
    backend.act_forward(X, TANH, 0.0, out)
    np.testing.assert_allclose(out, np.tanh(X.astype(np.float64)), rtol=1e-6)
    Y = X.copy()
    backend.bias_act_forward(Y, np.zeros(X.shape[1], dtype), SIGMOID, 0.0)
    np.testing.assert_allclose(Y, expected, rtol=1e-6, atol=1e-37)


def test_sigmoid_bce_extreme_logits(backend: KernelBackend, dtype: np.dtype) -> None:
    X = np.array([[BIG, -BIG, BIG, -BIG]], dtype=dtype)
    T = np.array([[0.0, 1.0, 1.0, 0.0]], dtype=dtype)
    dX = np.empty_like(X)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = backend.sigmoid_bce_loss(X, T, dX)
    np.testing.assert_allclose(loss, 2 * BIG / 4, rtol=1e-6)
    np.testing.assert_allclose(dX, [[0.25, -0.25, 0.0, 0.0]], atol=1e-7)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("size", [1, 4095, 4096, 4097, 20000])
def test_all_finite_finds_every_bad_value(backend: KernelBackend, dtype: np.dtype, bad: float, size: int) -> None:
    X = np.full(size, np.finfo(dtype).max, dtype=dtype)
    X[::2] = -np.finfo(dtype).max
    assert backend.all_finite(X) is True
    for position in {0, size // 2, size - 1}:
        X_bad = X.copy()
        X_bad[position] = bad
        assert backend.all_finite(X_bad) is False
        assert backend.all_finite(X_bad.reshape(1, -1)) is False


@pytest.mark.parametrize("act", [1, 2])
def test_relu_family_propagates_nan(backend: KernelBackend, act: int) -> None:
    X = np.array([[np.nan, -1.0, 1.0]], dtype=np.float32)
    out = np.empty_like(X)
    backend.act_forward(X, act, 0.1, out)
    assert np.isnan(out[0, 0])


# ---- fast_exp, the float32 exp used by the numba kernels

pytestmark_numba = pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed")


def fast_exp(x: np.ndarray) -> np.ndarray:
    from graphnet.kernels._jitmath import exp_into

    out = np.empty_like(x)
    exp_into(x, out)
    return out


@pytestmark_numba
def test_fast_exp_relative_error_on_its_normal_range() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([
        np.linspace(-87.0, 88.0, 2_000_001, dtype=np.float32),
        rng.uniform(-87.0, 88.0, 1_000_000).astype(np.float32),
        rng.uniform(-1.0, 1.0, 200_000).astype(np.float32),
    ])
    exact = np.exp(x.astype(np.float64))
    rel = np.abs(fast_exp(x).astype(np.float64) / exact - 1.0)
    assert rel.max() <= 3.1e-7, rel.max()
    assert fast_exp(np.zeros(3, np.float32))[0] == 1.0


@pytestmark_numba
def test_fast_exp_underflow_overflow_and_specials() -> None:
    x = np.array([-np.inf, -1e30, -1e4, -104.0, -88.0, -87.34, 88.73, 89.0, 1e4, np.inf], np.float32)
    out = fast_exp(x)
    np.testing.assert_array_equal(out[:6], 0.0)
    np.testing.assert_array_equal(out[6:], np.inf)
    assert np.isnan(fast_exp(np.array([np.nan], np.float32))[0])
    # just inside the limits: normal numbers, accurate
    edge = np.array([-87.33, -87.3, 88.5, 88.72], np.float32)
    np.testing.assert_allclose(fast_exp(edge), np.exp(edge.astype(np.float64)), rtol=3.1e-7)


@pytestmark_numba
def test_float64_kernels_use_exact_exp() -> None:
    """float64 takes libm's exp, not the float32 polynomial (rel. error ~3e-7).

    Within 1 ulp, not bit for bit: on AVX-512 machines numpy's own SIMD exp
    differs from libm by 1 ulp at some points."""
    x = np.linspace(-700, 700, 10001)
    np.testing.assert_array_max_ulp(fast_exp(x), np.exp(x), maxulp=1)


@pytestmark_numba
def test_fast_tanh_relative_error() -> None:
    from graphnet.kernels._jitmath import tanh_into

    rng = np.random.default_rng(0)
    x = np.concatenate([
        np.linspace(-20.0, 20.0, 1_000_001),
        rng.standard_normal(500_000) * 1e-3,
        np.logspace(-30, 1.5, 100_000),
        -np.logspace(-30, 1.5, 100_000),
    ]).astype(np.float32)
    out = np.empty_like(x)
    tanh_into(x, out)
    exact = np.tanh(x.astype(np.float64))
    nonzero = exact != 0
    assert np.all(out[~nonzero] == 0)
    x, out, exact = x[nonzero], out[nonzero], exact[nonzero]
    rel = np.abs(out - exact) / np.abs(exact)
    assert rel.max() <= 3e-7, (rel.max(), x[rel.argmax()])
    special = np.array([np.inf, -np.inf, 1e4, -1e4, 0.0], np.float32)
    tanh_into(special, out[:5])
    np.testing.assert_array_equal(out[:5], [1.0, -1.0, 1.0, -1.0, 0.0])
    nan = np.array([np.nan], np.float32)
    tanh_into(nan, nan)
    assert np.isnan(nan[0])
