"""The check the inference affine kernels share: numba against its NumPy twin, every activation."""
from __future__ import annotations

import numpy as np
from graphnet.kernels import get_backend


def assert_affine_twins_agree(name: str, n: int, d: int, h: int, dtype: str, transposed: bool,
                              *extra: int) -> None:
    """Kernel `name`(X, W or Wᵀ, b, act, 0.1, Y, *extra) on random X: (n, d), W: (d, h) (given
    as Wᵀ: (h, d) when `transposed`), b: (h,), agrees between the numba and numpy backends for
    every activation code."""
    rng = np.random.default_rng(n)
    X = rng.standard_normal((n, d)).astype(dtype)
    weight = (rng.standard_normal((h, d) if transposed else (d, h)) / np.sqrt(d)).astype(dtype)
    b = rng.standard_normal(h).astype(dtype)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == "float32" else dict(rtol=1e-12, atol=1e-12)
    for act in range(5):
        got, expected = np.full((n, h), np.nan, dtype), np.full((n, h), np.nan, dtype)
        get_backend("numba")[name](X, weight, b, act, 0.1, got, *extra)
        get_backend("numpy")[name](X, weight, b, act, 0.1, expected, *extra)
        np.testing.assert_allclose(got, expected, **tol, err_msg=f"{name}, act {act}")
