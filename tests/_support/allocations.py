"""Counting numpy's array-data allocations, for the "a steady step allocates
nothing" tests (tests/runtime/test_optimizer.py, tests/kernels/test_memory.py).

A PyDataMem_Handler (numpy >= 1.22) whose malloc/calloc/realloc record the
size asked for and forward to libc. Unlike tracemalloc's snapshots it also
sees memory freed before the call returns (a transient 0-d array such as
`y.min()`).

    with counting_numpy_allocations() as sizes:    # skips the test where it can't install
        step()
    assert sizes == []
"""
from __future__ import annotations

import contextlib
import ctypes
from typing import Iterator

import numpy as np
import pytest

HANDLER_NAME = "graphnet_test_counter"
_SET_HANDLER_SLOT = 304  # PyDataMem_SetHandler in numpy's C-API table


class _Allocator(ctypes.Structure):
    _fields_ = [(name, ctypes.c_void_p) for name in ("ctx", "malloc", "calloc", "realloc", "free")]


class _Handler(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * 127), ("version", ctypes.c_uint8), ("allocator", _Allocator)]


_MALLOC = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
_CALLOC = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t)
_REALLOC = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
_FREE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)


def _libc_allocator() -> tuple:
    """libc's malloc, calloc, realloc and free with their ctypes signatures."""
    libc = ctypes.CDLL(None)
    malloc, calloc, realloc, free = libc.malloc, libc.calloc, libc.realloc, libc.free
    malloc.restype, malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    calloc.restype, calloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t, ctypes.c_size_t]
    realloc.restype, realloc.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_size_t]
    free.restype, free.argtypes = None, [ctypes.c_void_p]
    return malloc, calloc, realloc, free


class NumpyAllocationCounter:
    """Records the size of every numpy array-data allocation while `counting()`.
    Arrays made while counting keep a pointer to the handler: one instance must
    live as long as the process (see `numpy_allocation_counter`)."""

    def __init__(self) -> None:
        malloc, calloc, realloc, free = _libc_allocator()
        self.sizes: list[int] = []
        record = self.sizes.append
        self._callbacks = (
            _MALLOC(lambda ctx, n: (record(n), malloc(n or 1))[1]),
            _CALLOC(lambda ctx, k, n: (record(k * n), calloc(k or 1, n or 1))[1]),
            _REALLOC(lambda ctx, p, n: (record(n), realloc(p, n or 1))[1]),
            _FREE(lambda ctx, p, n: free(p)),
        )
        addresses = [ctypes.cast(cb, ctypes.c_void_p).value for cb in self._callbacks]
        self._handler = _Handler(HANDLER_NAME.encode(), 1, _Allocator(None, *addresses))
        new_capsule = ctypes.pythonapi.PyCapsule_New
        new_capsule.restype = ctypes.py_object
        new_capsule.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
        self._capsule = new_capsule(ctypes.addressof(self._handler), b"mem_handler", None)
        core = getattr(np, "_core", None) or np.core
        get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
        get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
        table = ctypes.cast(get_pointer(core._multiarray_umath._ARRAY_API, None), ctypes.POINTER(ctypes.c_void_p))
        self._set_handler = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.py_object)(table[_SET_HANDLER_SLOT])
        self._handler_name = core.multiarray.get_handler_name

    @contextlib.contextmanager
    def counting(self) -> Iterator[list[int]]:
        """Installs the handler; yields the list of allocation sizes (bytes), emptied first."""
        self.sizes.clear()
        previous = self._set_handler(self._capsule)
        try:
            if self._handler_name() != HANDLER_NAME:
                raise RuntimeError("PyDataMem_SetHandler did not take")
            yield self.sizes
        finally:
            self._set_handler(previous)


_COUNTERS: list[NumpyAllocationCounter] = []


def numpy_allocation_counter() -> NumpyAllocationCounter:
    """The process-wide counter, checked on one allocation; skips the calling test
    where it can't be installed (numpy < 1.22, no libc symbols, no C-API capsule)."""
    if np.lib.NumpyVersion(np.__version__) < "1.22.0":
        pytest.skip("numpy < 1.22 has no data-memory handlers")
    try:
        if not _COUNTERS:
            _COUNTERS.append(NumpyAllocationCounter())
        with _COUNTERS[0].counting() as sizes:
            np.empty(3)
        if sizes != [24]:
            raise RuntimeError(f"np.empty(3) counted as {sizes}")
    except (AttributeError, OSError, TypeError, RuntimeError) as error:
        pytest.skip(f"no counting numpy allocator here: {error}")
    return _COUNTERS[0]


def counting_numpy_allocations() -> contextlib.AbstractContextManager[list[int]]:
    """`with counting_numpy_allocations() as sizes:` the sizes of the numpy allocations in the block."""
    return numpy_allocation_counter().counting()
