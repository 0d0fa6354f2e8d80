"""Property tests (hypothesis): random shapes and scales, numba vs NumPy twin vs float64."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from graphnet.kernels import HAVE_NUMBA, get_backend
from hypothesis import given, settings
from hypothesis import strategies as st

backends = [get_backend("numpy")] + ([get_backend("numba")] if HAVE_NUMBA else [])
shapes = st.tuples(st.integers(1, 17), st.integers(1, 33))
scales = st.sampled_from([1e-3, 1.0, 30.0, 1e3])


def logits(seed: int, shape: tuple[int, int], scale: float, dtype: type) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


@settings(max_examples=40, deadline=None)
@given(shape=shapes, scale=scales, seed=st.integers(0, 2**16), dtype=st.sampled_from([np.float32, np.float64]))
def test_softmax_cross_entropy_any_shape_and_scale(shape, scale, seed, dtype) -> None:  # noqa: ANN001
    X = logits(seed, shape, scale, dtype)
    y = np.random.default_rng(seed + 1).integers(0, shape[1], shape[0])
    x = X.astype(np.float64)
    z = x - x.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    expected = -logp[np.arange(shape[0]), y].mean()
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for backend in backends:
        dX = np.empty_like(X)
        loss = backend.softmax_cross_entropy(X, y, dX)
        np.testing.assert_allclose(loss, expected, rtol=rtol, atol=rtol)
        assert np.all(np.isfinite(dX))
        np.testing.assert_allclose(dX.sum(axis=1), 0.0, atol=1e-6 if dtype == np.float32 else 1e-15)


@settings(max_examples=40, deadline=None)
@given(shape=shapes, scale=scales, seed=st.integers(0, 2**16))
def test_softmax_rows_sum_to_one(shape, scale, seed) -> None:  # noqa: ANN001
    X = logits(seed, shape, scale, np.float32)
    for backend in backends:
        P = np.empty_like(X)
        backend.softmax_forward(X, P)
        assert np.all(P >= 0)
        np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=2e-6)


@settings(max_examples=40, deadline=None)
@given(shape=shapes, scale=scales, seed=st.integers(0, 2**16))
def test_layernorm_rows_are_normalized(shape, scale, seed) -> None:  # noqa: ANN001
    X = logits(seed, shape, scale, np.float64) + 3 * scale
    n, d = shape
    for backend in backends:
        out, xhat, inv_std = np.empty_like(X), np.empty_like(X), np.empty(n)
        backend.layernorm_forward(X, np.ones(d), np.zeros(d), 1e-5, out, xhat, inv_std)
        np.testing.assert_allclose(out.mean(axis=1), 0.0, atol=1e-9)
        var = X.var(axis=1)
        np.testing.assert_allclose((out**2).mean(axis=1), var / (var + 1e-5), rtol=1e-9, atol=1e-12)


def test_numpy_twins_are_safe_in_threads() -> None:
    """Scratch buffers are per thread: concurrent twins don't corrupt each other."""
    backend = get_backend("numpy")
    inputs = [logits(s, (64, 50), 3.0, np.float32) for s in range(4)]
    labels = np.arange(64) % 50
    expected = [backend.softmax_cross_entropy(X, labels, np.empty_like(X)) for X in inputs]
    errors: list[str] = []

    def work(k: int) -> None:
        dX = np.empty_like(inputs[k])
        for _ in range(200):
            if backend.softmax_cross_entropy(inputs[k], labels, dX) != expected[k]:
                errors.append(f"thread {k}")
                return

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


@pytest.mark.parametrize("rate", [0.0, 0.5, 0.9])
def test_dropout_twins_give_identical_masks(rate: float) -> None:
    from graphnet.kernels import fill_uniform

    X = np.random.default_rng(3).standard_normal((50, 40)).astype(np.float32)
    results = []
    for backend in backends:
        mask, out = np.empty_like(X), np.empty_like(X)
        fill_uniform(np.random.default_rng(11), mask)
        backend.dropout_forward(X, rate, mask, out)
        results.append((mask, out))
        kept = mask != 0
        assert abs(kept.mean() - (1 - rate)) < 0.05
        np.testing.assert_allclose(mask[kept], 1 / (1 - rate), rtol=1e-6)
    for mask, out in results[1:]:
        np.testing.assert_array_equal(mask, results[0][0])
        np.testing.assert_array_equal(out, results[0][1])
