"""graphnet.runtime.backends: the kernel backend asked for, or graphnet's own error saying what to use instead."""
from __future__ import annotations

import pytest

import graphnet as gn
from graphnet.errors import BackendError
from graphnet.runtime.backends import kernel_backend


def test_a_name_the_environment_or_numba(monkeypatch):
    monkeypatch.delenv("GRAPHNET_BACKEND", raising=False)
    assert kernel_backend("numpy").name == "numpy"
    assert kernel_backend(" NumPy ").name == "numpy"
    monkeypatch.setenv("GRAPHNET_BACKEND", "numpy")
    assert kernel_backend().name == "numpy"
    assert kernel_backend(kernel_backend("numpy")).name == "numpy"


def test_an_unknown_name_is_graphnets_own_error_naming_where_it_came_from(monkeypatch):
    monkeypatch.setenv("GRAPHNET_BACKEND", "cuda")
    with pytest.raises(BackendError, match=r"^GRAPHNET_BACKEND='cuda': unknown kernel backend; choose one of numba, numpy$"):
        kernel_backend()
    with pytest.raises(BackendError, match=r"^backend='jax': unknown kernel backend"):
        gn.compile("specs/spiral_mlp.json", backend="jax")
