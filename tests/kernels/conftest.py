"""Shared fixtures for the kernel tests."""
from __future__ import annotations

import contextlib
import copy
import ctypes
from typing import Iterator

import numpy as np
import pytest

from graphnet.kernels import available_backends, get_backend

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


def clone(args: tuple) -> list:
    """A deep copy of kernel arguments (arrays copied, scalars kept)."""
    return [copy.deepcopy(a) for a in args]


class NumpyAllocationCounter:
    """Records the size of every numpy array-data allocation while active.

    Installs a PyDataMem_Handler (numpy >= 1.22) whose malloc/calloc/realloc
    append to ``sizes`` and forward to libc. Unlike tracemalloc's snapshots it
    also sees memory freed before the call returns (e.g. a transient 0-d array).
    """

    _ALLOC = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
    _CALLOC = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t)
    _REALLOC = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
    _FREE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
    _SET_HANDLER_SLOT = 304  # PyDataMem_SetHandler in numpy's C-API table

    class _Allocator(ctypes.Structure):
        _fields_ = [(n, ctypes.c_void_p) for n in ("ctx", "malloc", "calloc", "realloc", "free")]

    class _Handler(ctypes.Structure):
        pass

    _Handler._fields_ = [("name", ctypes.c_char * 127), ("version", ctypes.c_uint8), ("allocator", _Allocator)]

    def __init__(self) -> None:
        libc = ctypes.CDLL(None)
        for fn, restype, argtypes in (
            (libc.malloc, ctypes.c_void_p, [ctypes.c_size_t]),
            (libc.calloc, ctypes.c_void_p, [ctypes.c_size_t, ctypes.c_size_t]),
            (libc.realloc, ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_size_t]),
            (libc.free, None, [ctypes.c_void_p]),
        ):
            fn.restype, fn.argtypes = restype, argtypes
        self.sizes: list[int] = []
        record = self.sizes.append
        self._callbacks = (
            self._ALLOC(lambda ctx, n: (record(n), libc.malloc(n or 1))[1]),
            self._CALLOC(lambda ctx, k, n: (record(k * n), libc.calloc(k or 1, n or 1))[1]),
            self._REALLOC(lambda ctx, p, n: (record(n), libc.realloc(p, n or 1))[1]),
            self._FREE(lambda ctx, p, n: libc.free(p)),
        )
        addresses = [ctypes.cast(cb, ctypes.c_void_p).value for cb in self._callbacks]
        self._handler = self._Handler(b"kernel_test_counter", 1, self._Allocator(None, *addresses))
        new_capsule = ctypes.pythonapi.PyCapsule_New
        new_capsule.restype = ctypes.py_object
        new_capsule.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
        self._capsule = new_capsule(ctypes.addressof(self._handler), b"mem_handler", None)
        get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
        get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
        api = np._core._multiarray_umath._ARRAY_API
        table = ctypes.cast(get_pointer(api, None), ctypes.POINTER(ctypes.c_void_p))
        self._set_handler = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.py_object)(table[self._SET_HANDLER_SLOT])

    @contextlib.contextmanager
    def counting(self) -> Iterator[list[int]]:
        self.sizes.clear()
        previous = self._set_handler(self._capsule)
        try:
            if np._core.multiarray.get_handler_name() != "kernel_test_counter":
                raise RuntimeError("PyDataMem_SetHandler did not take")
            yield self.sizes
        finally:
            self._set_handler(previous)


# Arrays allocated while counting keep a pointer to the handler: it must live
# as long as the process, so it is created once and never released.
_COUNTERS: list[NumpyAllocationCounter] = []


@pytest.fixture(scope="session")
def numpy_allocations() -> NumpyAllocationCounter:
    """A process-wide counter of numpy data allocations (skips where it can't be installed)."""
    try:
        if not _COUNTERS:
            _COUNTERS.append(NumpyAllocationCounter())
        counter = _COUNTERS[0]
        with counter.counting() as sizes:
            np.empty(3)
        assert sizes == [24], sizes
    except (AttributeError, OSError, RuntimeError, AssertionError) as error:
        pytest.skip(f"no counting numpy allocator here: {error}")
    return counter
