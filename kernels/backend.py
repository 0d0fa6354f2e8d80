"""Kernel backends: the numba kernels or their NumPy twins, by name.

``get_backend("numba" | "numpy" | None)`` returns a frozen object with one
attribute per name in ``KERNEL_NAMES`` plus ``.name``. Building the numba
backend compiles nothing: numba compiles each kernel lazily, per dtype, on
its first call (or loads it from its disk cache); ``warmup`` does that up
front.
"""
from __future__ import annotations

import importlib
import os
from typing import Any, Callable

import numpy as np

from ._jit import HAVE_NUMBA, MISSING_NUMBA_MESSAGE

#: Kernel name -> module that holds its numba and NumPy twins.
KERNEL_MODULES: dict[str, str] = {
    "bias_act_forward": "affine",
    "act_bias_backward": "affine",
    "affine_small_forward": "affine",
    "affine_packed_forward": "affine",
    "affine_packed_forward_columns": "affine",
    "act_forward": "activations",
    "act_backward": "activations",
    "softmax_forward": "softmax",
    "softmax_backward": "softmax",
    "softmax_cross_entropy": "losses",
    "cross_entropy": "losses",
    "svm_loss": "losses",
    "mse_loss": "losses",
    "sigmoid_bce_loss": "losses",
    "mae_loss": "regression_losses",
    "huber_loss": "regression_losses",
    "weighted_softmax_cross_entropy": "weighted_losses",
    "weighted_sigmoid_bce_loss": "weighted_losses",
    "batchnorm_train_forward": "norm",
    "batchnorm_eval_forward": "norm",
    "batchnorm_backward": "norm",
    "layernorm_forward": "norm",
    "layernorm_backward": "norm",
    "im2col": "conv",
    "col2im": "conv",
    "channel_bias_act_forward": "conv",
    "act_channel_bias_backward": "conv",
    "max_pool_forward": "pool",
    "max_pool_backward": "pool",
    "avg_pool_forward": "pool",
    "avg_pool_backward": "pool",
    "global_avg_pool_forward": "pool",
    "global_avg_pool_backward": "pool",
    "spatial_batchnorm_train_forward": "spatial_norm",
    "spatial_batchnorm_eval_forward": "spatial_norm",
    "spatial_batchnorm_backward": "spatial_norm",
    "dropout_forward": "dropout",
    "dropout_backward": "dropout",
    "flip_shift_images": "augment",
    "add": "elementwise",
    "add_into": "elementwise",
    "copy_into": "elementwise",
    "l2_penalty": "elementwise",
    "sum_squares": "elementwise",
    "scale_inplace": "elementwise",
    "all_finite": "elementwise",
    "sgd_update": "optim",
    "momentum_update": "optim",
    "nesterov_update": "optim",
    "rmsprop_update": "optim",
    "adam_update": "optim",
    "adamw_update": "optim",
}

KERNEL_NAMES: tuple[str, ...] = tuple(KERNEL_MODULES)
BACKEND_NAMES: tuple[str, ...] = ("numba", "numpy")
ENV_VAR = "GRAPHNET_BACKEND"


class KernelBackend:
    """One function per kernel name (attributes), plus ``name``. Immutable."""

    __slots__ = ("name", *KERNEL_NAMES)

    def __init__(self, name: str, kernels: dict[str, Callable[..., Any]]) -> None:
        object.__setattr__(self, "name", name)
        for kernel_name in KERNEL_NAMES:
            object.__setattr__(self, kernel_name, kernels[kernel_name])

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("KernelBackend is immutable")

    def __delattr__(self, key: str) -> None:
        raise AttributeError("KernelBackend is immutable")

    def __getitem__(self, kernel_name: str) -> Callable[..., Any]:
        if kernel_name not in KERNEL_MODULES:
            raise KeyError(kernel_name)
        return getattr(self, kernel_name)

    def __repr__(self) -> str:
        return f"<graphnet.kernels backend {self.name!r}: {len(KERNEL_NAMES)} kernels>"


_backends: dict[str, KernelBackend] = {}


def available_backends() -> tuple[str, ...]:
    """Names of the backends usable in this process ("numpy" always)."""
    return BACKEND_NAMES if HAVE_NUMBA else ("numpy",)


def get_backend(name: str | None = None) -> KernelBackend:
    """The backend `name`; None means $GRAPHNET_BACKEND, else "numba".

    Raises ValueError for an unknown name, ImportError for "numba" without numba.
    """
    if name is None:
        name = os.environ.get(ENV_VAR) or "numba"
    if isinstance(name, KernelBackend):
        return name
    key = str(name).strip().lower()
    if key not in BACKEND_NAMES:
        raise ValueError(f"unknown kernel backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")
    backend = _backends.get(key)
    if backend is None:
        if key == "numba" and not HAVE_NUMBA:
            raise ImportError(MISSING_NUMBA_MESSAGE)
        kernels = {}
        for kernel_name, module_name in KERNEL_MODULES.items():
            module = importlib.import_module(f"{__package__}.{module_name}")
            kernels[kernel_name] = getattr(module, f"{kernel_name}_{key}")
        backend = _backends[key] = KernelBackend(key, kernels)
    return backend


def warmup(dtype: np.dtype | type | str = np.float32) -> float:
    """Compile (or load from numba's cache) every numba kernel for `dtype`.

    Calls each kernel once on tiny arrays; returns the seconds spent.
    """
    import time

    from .examples import example_args

    backend = get_backend("numba")
    start = time.perf_counter()
    for kernel_name in KERNEL_NAMES:
        getattr(backend, kernel_name)(*example_args(kernel_name, dtype, shape=(2, 3)))
    return time.perf_counter() - start
