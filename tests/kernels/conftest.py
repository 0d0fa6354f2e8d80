"""Shared fixtures for the kernel tests."""
from __future__ import annotations

import numpy as np
import pytest
from graphnet.kernels import available_backends, get_backend

from tests._support.allocations import NumpyAllocationCounter, numpy_allocation_counter

BACKENDS = available_backends()
DTYPES = (np.float32, np.float64)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest):  # noqa: ANN201
    """Each available kernel backend in turn."""
    return get_backend(request.param)


@pytest.fixture(params=DTYPES, ids=lambda t: np.dtype(t).name)
def dtype(request: pytest.FixtureRequest) -> np.dtype:
    """float32 and float64."""
    return np.dtype(request.param)


@pytest.fixture(scope="session")
def numpy_allocations() -> NumpyAllocationCounter:
    """The process-wide counter of numpy data allocations (skips where it can't be installed)."""
    return numpy_allocation_counter()
