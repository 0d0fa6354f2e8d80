"""graphnet.runtime.blas: numpy's own cblas GEMM with alpha and beta, found, checked and
refusing arrays it cannot take."""
from __future__ import annotations

import os

import numpy as np
import pytest

import graphnet.runtime.blas as blas
from graphnet.runtime.blas import (
    AtBUpdate,
    _loaded_libraries,
    at_b_update,
    blas_candidates,
    blas_info,
    find_gemm,
    gemm_status,
)

# graphnet.runtime.blas finds numpy's BLAS library through threadpoolctl; where it finds
# none with a cblas GEMM, SGD takes the separate update pass.
pytestmark = pytest.mark.skipif(find_gemm(np.float32) is None, reason=f"no cblas GEMM: {gemm_status()}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpys_blas_has_a_gemm_for_both_float_types(dtype):
    gemm = find_gemm(dtype)
    assert gemm is not None, gemm_status(dtype)
    assert gemm.dtype == np.dtype(dtype)
    assert os.path.basename(gemm.library) in gemm_status(dtype)


SHAPES = [(1, 1, 1), (7, 5, 3), (128, 784, 512), (3, 1, 9), (33, 17, 1)]


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-4), (np.float64, 1e-12)])
@pytest.mark.parametrize("K, M, N", SHAPES)
@pytest.mark.parametrize("alpha, beta", [(-1e-3, 1.0), (2.0, 0.0), (0.5, -1.5)])
def test_update_at_b_is_beta_c_plus_alpha_at_b(K, M, N, alpha, beta, dtype, rtol):
    rng = np.random.default_rng(K * 100 + M)
    A = rng.standard_normal((K, M)).astype(dtype)
    B = rng.standard_normal((K, N)).astype(dtype)
    C = rng.standard_normal((M, N)).astype(dtype)
    expected = beta * C.astype(np.float64) + alpha * (A.T.astype(np.float64) @ B.astype(np.float64))
    find_gemm(dtype).update_at_b(A, B, C, alpha, beta)
    np.testing.assert_allclose(C, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


def test_an_empty_inner_dimension_only_scales_c():
    C = np.full((3, 2), 2.0, np.float32)
    find_gemm(np.float32).update_at_b(np.zeros((0, 3), np.float32), np.zeros((0, 2), np.float32), C, 1.0, 0.5)
    np.testing.assert_array_equal(C, 1.0)


def test_leading_row_views_are_accepted():
    """A plan runs a partial batch on the first n rows of its buffers."""
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((10, 4)), rng.standard_normal((10, 3))
    C = np.zeros((4, 3))
    find_gemm(np.float64).update_at_b(A[:6], B[:6], C, 1.0, 0.0)
    np.testing.assert_allclose(C, A[:6].T @ B[:6])


@pytest.mark.parametrize("case", ["shape", "dtype", "strided", "transposed"])
def test_arrays_it_cannot_take_are_refused_before_blas_sees_them(case):
    A, B, C = np.ones((4, 3)), np.ones((4, 2)), np.ones((3, 2))
    if case == "shape":
        B = np.ones((5, 2))
    elif case == "dtype":
        C = C.astype(np.float32)
    elif case == "strided":
        A = np.ones((4, 6))[:, ::2]
    else:
        C = np.ones((2, 3)).T
    before = C.copy()
    with pytest.raises(ValueError, match="update_at_b"):
        find_gemm(np.float64).update_at_b(A, B, C, 1.0, 1.0)
    np.testing.assert_array_equal(C, before)


def test_other_dtypes_have_no_gemm():
    assert find_gemm(np.int64) is None
    assert find_gemm(np.float16) is None


def test_a_reused_update_follows_new_arrays_and_batch_sizes():
    """AtBUpdate keeps its ctypes arguments between calls: a new array in any slot,
    or fewer rows (a partial batch), must still give the right product."""
    rng = np.random.default_rng(1)
    update = AtBUpdate(find_gemm(np.float64))
    C = np.zeros((4, 3))
    expected = C.copy()
    for rows in (6, 6, 2, 6, 1):
        A, B = rng.standard_normal((rows, 4)), rng.standard_normal((rows, 3))
        for _ in range(2):  # the same arrays twice: the cached path
            update(A, B, C, -0.5, 1.0)
            expected = expected - 0.5 * A.T @ B
        np.testing.assert_allclose(C, expected, rtol=1e-12)
    other = np.ones((4, 3))
    update(A, B, other, 1.0, 2.0)
    np.testing.assert_allclose(other, 2.0 + A.T @ B, rtol=1e-12)
    with pytest.raises(ValueError, match="update_at_b"):
        update(A, B, np.ones((3, 3)), 1.0, 1.0)


SITE = "/venv/lib/python3.11/site-packages"


def pool(path, user_api="blas", internal_api="openblas", **extra):
    """One entry of a threadpoolctl.threadpool_info() list."""
    return {"filepath": path, "user_api": user_api, "internal_api": internal_api, "prefix": "lib",
            "version": "0.3.30", "num_threads": 2, **extra}


def test_numpys_own_blas_is_tried_before_any_other_one_loaded():
    """One BLAS, one thread pool: SciPy's or torch's BLAS may be loaded too, and may sort first by name."""
    info = [pool(f"{SITE}/aaa.libs/libopenblas-1.so"), pool(f"{SITE}/scipy.libs/libscipy_openblas-6cdc.so"),
            pool(f"{SITE}/numpy.libs/libscipy_openblas64_-32a4b2a6.so"),
            pool("/usr/lib/x86_64-linux-gnu/libmkl_rt.so.2", internal_api="mkl")]
    ordered = blas_candidates(info, f"{SITE}/numpy")
    assert ordered[0] == f"{SITE}/numpy.libs/libscipy_openblas64_-32a4b2a6.so"
    assert set(ordered[1:]) == {f"{SITE}/aaa.libs/libopenblas-1.so", f"{SITE}/scipy.libs/libscipy_openblas-6cdc.so",
                                "/usr/lib/x86_64-linux-gnu/libmkl_rt.so.2"}


def test_a_blas_inside_the_numpy_package_folder_counts_as_numpys_own():
    """Older wheels and macOS keep the library in numpy/.dylibs or numpy/.libs."""
    info = [pool("/opt/blis/libblis.so", internal_api="blis"), pool(f"{SITE}/numpy/.dylibs/libopenblas64_.dylib")]
    assert blas_candidates(info, f"{SITE}/numpy") == [f"{SITE}/numpy/.dylibs/libopenblas64_.dylib",
                                                      "/opt/blis/libblis.so"]


def test_only_blas_pools_are_candidates():
    """threadpoolctl also reports OpenMP runtimes (numba's, torch's): they have no GEMM."""
    info = [pool("/usr/lib/libgomp.so.1", user_api="openmp", internal_api="openmp"),
            pool(f"{SITE}/torch/lib/libiomp5.so", user_api="openmp", internal_api="openmp"),
            pool("C:\\venv\\Lib\\site-packages\\numpy.libs\\libscipy_openblas64_.dll"),
            {"user_api": "blas", "internal_api": "openblas", "filepath": None}]
    assert blas_candidates(info, f"{SITE}/numpy") == ["C:\\venv\\Lib\\site-packages\\numpy.libs\\libscipy_openblas64_.dll"]
    assert blas_candidates([], f"{SITE}/numpy") == []


def test_the_gemm_found_here_is_from_the_first_candidate():
    first = _loaded_libraries()[0]
    assert find_gemm(np.float32).library == first


def test_blas_info_reports_numpys_library_and_its_threads():
    info = blas_info()
    assert info.library == _loaded_libraries()[0] and os.path.exists(info.library)
    assert info.internal_api and info.num_threads >= 1
    assert info.gemm == gemm_status()
    assert os.path.basename(info.library) in str(info) and f"{info.num_threads} threads" in str(info)


def test_blas_info_without_a_blas_says_so(monkeypatch):
    monkeypatch.setattr(blas, "_threadpool_info", lambda: [pool("/usr/lib/libgomp.so.1", user_api="openmp")])
    info = blas_info()
    assert info.library is None and info.num_threads == 0
    assert "none found by threadpoolctl" in str(info)


def test_without_threadpoolctl_no_library_is_a_candidate(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_threadpoolctl(name, *args, **kwargs):
        if name == "threadpoolctl":
            raise ImportError("No module named 'threadpoolctl'", name="threadpoolctl")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_threadpoolctl)
    assert _loaded_libraries() == []


def test_at_b_update_is_a_fresh_update_on_numpys_gemm():
    first, second = at_b_update(np.float32), at_b_update(np.float32)
    assert first is not second and first.gemm is find_gemm(np.float32)
    with pytest.raises(ValueError, match="no int64 GEMM for an update in backward"):
        at_b_update(np.int64)


def test_where_threadpoolctl_finds_no_blas_there_is_no_gemm_and_the_status_says_why(monkeypatch):
    monkeypatch.setattr(blas, "_FOUND", {})
    monkeypatch.setattr(blas, "_threadpool_info", lambda: [pool("/usr/lib/libgomp.so.1", user_api="openmp")])
    assert find_gemm(np.float32) is None
    assert gemm_status(np.float32) == "threadpoolctl finds no BLAS library loaded in this process"
    with pytest.raises(ValueError, match="no float32 GEMM for an update in backward: threadpoolctl finds no BLAS"):
        at_b_update(np.float32)
