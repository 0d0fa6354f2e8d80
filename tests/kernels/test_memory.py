"""Kernels allocate nothing after warm-up; aliasing outputs work; outputs are overwritten."""
from __future__ import annotations

import copy
import tracemalloc

import numpy as np
import pytest
from graphnet.kernels import HAVE_NUMBA, KERNEL_NAMES, KernelBackend
from graphnet.kernels.examples import EXAMPLES, example_args

NUMPY_DOMAIN = np.lib.tracemalloc_domain
# Two layouts with 2**18 elements: any temporary the size of the data, of a
# row or of a column is >= 1 MiB (float32). numpy's own bookkeeping (ufunc
# iterator buffers, Python objects) stays far below THRESHOLD.
ELEMENTS = 1 << 18
SHAPES = {"tall": (ELEMENTS // 2, 2), "wide": (2, ELEMENTS // 2)}
THRESHOLD = 256 * 1024  # noise measured <= 70 KB; a float32 row temporary is 512 KB


def nrt_allocations() -> int | None:
    """numba's count of its own (NRT) allocations, or None if unavailable."""
    if not HAVE_NUMBA:
        return None
    try:
        from numba.core.runtime import nrt

        nrt._nrt.memsys_enable_stats()
        return nrt.rtsys.get_allocation_stats().alloc
    except (AttributeError, ImportError, RuntimeError):  # internal API moved
        return None


@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_no_allocation_after_warmup(backend: KernelBackend, dtype: np.dtype, name: str) -> None:
    kernel = getattr(backend, name)
    for layout, shape in SHAPES.items():
        if EXAMPLES[name].flat and layout == "wide":
            continue
        args = example_args(name, dtype, shape)
        kernel(*copy.deepcopy(args))  # warm-up: compile / grow scratch
        nrt_before = nrt_allocations()
        tracemalloc.start(1)
        try:
            kernel(*args)
            current, peak = tracemalloc.get_traced_memory()
            kept = tracemalloc.take_snapshot().filter_traces([tracemalloc.DomainFilter(True, NUMPY_DOMAIN)])
        finally:
            tracemalloc.stop()
        assert peak < THRESHOLD, f"{name} ({layout}) allocated {peak} bytes during the call"
        assert not kept.traces, f"{name} ({layout}) kept numpy memory: {kept.statistics('lineno')[:3]}"
        if nrt_before is not None and backend.name == "numba":
            # numba wraps each array argument in a small MemInfo on entry;
            # anything beyond that would be an allocation inside the kernel
            arrays = sum(isinstance(a, np.ndarray) for a in args)
            assert nrt_allocations() - nrt_before == arrays, f"{name} allocated inside numba"


@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_no_numpy_allocation_at_all(numpy_allocations, backend: KernelBackend, dtype: np.dtype, name: str) -> None:  # noqa: ANN001
    """Stricter than tracemalloc: not even a transient 0-d array (a boxed scalar)."""
    example = EXAMPLES[name]
    for act in (0, 1, 2, 3, 4) if example.act_arg is not None else (1,):
        args = example_args(name, dtype, (7, 13), act=act)
        kernel = getattr(backend, name)
        kernel(*copy.deepcopy(args))  # warm-up
        with numpy_allocations.counting() as sizes:
            kernel(*args)
        assert sizes == [], f"{name} (act {act}) allocated numpy memory: {sizes} bytes"


ALIAS_CASES = [
    pytest.param(name, out, inp, id=f"{name}-arg{out}=arg{inp}")
    for name in KERNEL_NAMES
    for out, inp in EXAMPLES[name].aliases
]


@pytest.mark.parametrize("name, out, inp", ALIAS_CASES)
def test_aliased_output(backend: KernelBackend, dtype: np.dtype, name: str, out: int, inp: int) -> None:
    example = EXAMPLES[name]
    acts = (0, 1, 2, 3, 4) if example.act_arg is not None else (1,)
    for act in acts:
        args = list(example_args(name, dtype, (5, 9), act=act))
        separate = copy.deepcopy(args)
        expected_result = getattr(backend, name)(*separate)
        aliased = copy.deepcopy(args)
        aliased[out] = aliased[inp]
        result = getattr(backend, name)(*aliased)
        # aliasing may change the vectorized loop (reduction order): ~1 ulp
        tol = dict(rtol=1e-6, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-14, atol=1e-15)
        if expected_result is not None:
            np.testing.assert_allclose(result, expected_result, **tol)
        np.testing.assert_allclose(aliased[out], separate[out], **tol)
        for index in example.outputs:
            if index not in (out, inp):
                np.testing.assert_allclose(aliased[index], separate[index], **tol)


def test_aliases_promised_by_the_contract_are_declared() -> None:
    promised = {
        "act_bias_backward": (4, 0), "act_forward": (3, 0), "act_backward": (4, 0),
        "softmax_forward": (1, 0), "softmax_backward": (2, 0), "batchnorm_train_forward": (7, 0),
        "batchnorm_backward": (4, 0), "layernorm_forward": (4, 0), "dropout_forward": (3, 0),
        "dropout_backward": (2, 0), "add": (2, 1),
    }
    for name, pair in promised.items():
        assert pair in EXAMPLES[name].aliases, name
    assert (2, 0) in EXAMPLES["add"].aliases


@pytest.mark.parametrize("name", [n for n in KERNEL_NAMES if EXAMPLES[n].outputs])
def test_outputs_are_overwritten_not_accumulated(backend: KernelBackend, dtype: np.dtype, name: str) -> None:
    args = example_args(name, dtype, (4, 6))
    results = []
    for fill in (0.0, 123.0):
        trial = copy.deepcopy(args)
        for index in EXAMPLES[name].outputs:
            trial[index].fill(fill)
        results.append((getattr(backend, name)(*trial), trial))
    (r0, a0), (r1, a1) = results
    # not bitwise: numba's vectorized reductions may take the scalar path when
    # arrays lie close together in memory (LLVM's runtime alias check)
    tol = dict(rtol=1e-6, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-14, atol=1e-15)
    if r0 is not None:
        np.testing.assert_allclose(r0, r1, **tol)
    for index in EXAMPLES[name].outputs:
        np.testing.assert_allclose(a0[index], a1[index], **tol)


def test_partial_batch_views_give_the_same_rows(backend: KernelBackend) -> None:
    """A leading-row view of a larger buffer (a partial batch) works like a fresh array."""
    X = np.random.default_rng(0).standard_normal((16, 10)).astype(np.float32)
    y = np.arange(16, dtype=np.int64) % 10
    big_grad = np.empty_like(X)
    loss_view = backend.softmax_cross_entropy(X[:5], y[:5], big_grad[:5])
    small_grad = np.empty((5, 10), np.float32)
    loss_copy = backend.softmax_cross_entropy(X[:5].copy(), y[:5].copy(), small_grad)
    np.testing.assert_allclose(loss_view, loss_copy, rtol=1e-6)
    np.testing.assert_allclose(big_grad[:5], small_grad, rtol=1e-6, atol=1e-8)
