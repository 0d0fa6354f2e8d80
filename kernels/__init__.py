"""graphnet.kernels: the compute kernels, numba + NumPy twins.

A layer of its own: imports only numpy (and numba when present) and knows
nothing of specs or graphs. Use ``get_backend(name)`` to get one function
per kernel name; see README.md in this folder for the contract.
"""
from __future__ import annotations

from ._jit import FASTMATH, HAVE_NUMBA, SOURCE_HASH
from .backend import (
    BACKEND_NAMES,
    KERNEL_MODULES,
    KERNEL_NAMES,
    KernelBackend,
    available_backends,
    get_backend,
    warmup,
)
from .codes import ACTIVATION_CODES, IDENTITY, LEAKY_RELU, RELU, SIGMOID, TANH
from .dropout import fill_uniform

__all__ = [
    "ACTIVATION_CODES",
    "BACKEND_NAMES",
    "FASTMATH",
    "HAVE_NUMBA",
    "IDENTITY",
    "KERNEL_MODULES",
    "KERNEL_NAMES",
    "LEAKY_RELU",
    "RELU",
    "SIGMOID",
    "SOURCE_HASH",
    "TANH",
    "KernelBackend",
    "available_backends",
    "fill_uniform",
    "get_backend",
    "warmup",
]
