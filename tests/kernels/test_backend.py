"""Backend selection, laziness, activation codes, label checks, cache keys. In fresh processes (the
numba-free install, warm-up, vectorization): tests/system/kernels/test_backend.py."""
from __future__ import annotations

import graphnet.kernels as K
import numpy as np
import pytest
from graphnet.kernels import HAVE_NUMBA, KERNEL_NAMES, available_backends, get_backend

from tests._support.extras import needs_numba


def test_backend_has_every_kernel_and_a_name() -> None:
    for name in available_backends():
        backend = get_backend(name)
        assert backend.name == name
        for kernel_name in KERNEL_NAMES:
            assert callable(getattr(backend, kernel_name))
            assert backend[kernel_name] is getattr(backend, kernel_name)


def test_backends_are_cached_and_frozen() -> None:
    backend = get_backend("numpy")
    assert get_backend("numpy") is backend
    assert get_backend(" NumPy ") is backend
    with pytest.raises(AttributeError):
        backend.add = None
    with pytest.raises(AttributeError):
        backend.name = "other"
    with pytest.raises(AttributeError):
        del backend.add


def test_unknown_backend_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="numba, numpy"):
        get_backend("torch")


def test_default_backend_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHNET_BACKEND", "numpy")
    assert get_backend().name == "numpy"
    monkeypatch.setenv("GRAPHNET_BACKEND", "bogus")
    with pytest.raises(ValueError, match="bogus"):
        get_backend()
    monkeypatch.delenv("GRAPHNET_BACKEND")
    if HAVE_NUMBA:
        assert get_backend().name == "numba"


def test_activation_codes() -> None:
    assert K.ACTIVATION_CODES == {"identity": 0, "relu": 1, "leaky_relu": 2, "sigmoid": 3, "tanh": 4}
    assert (K.IDENTITY, K.RELU, K.LEAKY_RELU, K.SIGMOID, K.TANH) == (0, 1, 2, 3, 4)


def test_unknown_activation_code_raises(backend: K.KernelBackend) -> None:
    X = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="activation"):
        backend.act_forward(X, 9, 0.0, np.empty_like(X))


def test_out_of_range_labels_raise(backend: K.KernelBackend) -> None:
    X = np.zeros((2, 3), np.float32)
    for bad in (3, -1):
        y = np.array([0, bad], dtype=np.int64)
        for name in ("softmax_cross_entropy", "cross_entropy", "svm_loss"):
            with pytest.raises(ValueError, match="labels"):
                getattr(backend, name)(X, y, np.empty_like(X))


def test_fill_uniform_is_seeded_and_in_place() -> None:
    a, b = np.empty((3, 4), np.float32), np.empty((3, 4), np.float32)
    K.fill_uniform(np.random.default_rng(7), a)
    K.fill_uniform(np.random.default_rng(7), b)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and 0 <= a.min() and a.max() < 1
    c = np.empty(5)
    assert K.fill_uniform(np.random.default_rng(1), c) is c


@needs_numba
def test_cache_key_includes_the_kernel_source_hash() -> None:
    from graphnet.kernels._jit import SOURCE_HASH, LibraryKeyedCache

    backend = get_backend("numba")
    for name in KERNEL_NAMES:
        dispatcher = getattr(backend, name)
        assert isinstance(dispatcher._cache, LibraryKeyedCache), name
        assert dispatcher.targetoptions["error_model"] == "numpy"
        assert set(dispatcher.targetoptions["fastmath"]) == {"reassoc", "nsz", "arcp", "contract"}
    from graphnet.kernels.examples import example_args

    adam = backend.adam_update
    adam(*example_args("adam_update", np.float32, (2, 2)))
    sig = adam.signatures[0]
    key = adam._cache._index_key(sig, adam.targetctx.codegen())
    assert key[-1] == SOURCE_HASH
    assert len(SOURCE_HASH) == 16
