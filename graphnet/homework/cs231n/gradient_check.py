"""Numeric gradients by central differences (the homework's `gradient_check.py`).

``eval_numerical_gradient(f, x)`` perturbs ``x`` IN PLACE, one entry at a
time, and restores it; with ``x = model.params[name]`` of a graphnet model
(a live view into the compiled network's parameter buffer) the perturbation
reaches the compiled network, exactly as the notebooks expect.
"""
from __future__ import annotations

from random import randrange
from typing import Any, Callable

import numpy as np

from ...model.gradcheck import central_difference

__all__ = [
    "central_difference",
    "eval_numerical_gradient",
    "eval_numerical_gradient_array",
    "grad_check_sparse",
    "rel_error",
]


def rel_error(x: Any, y: Any) -> float:
    """max |x - y| / max(1e-8, |x| + |y|), elementwise over arrays of one shape."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size == 0:
        return 0.0
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def eval_numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, verbose: bool = True, h: float = 1e-5
) -> np.ndarray:
    """Gradient of the scalar f(x) at x (any shape) by central differences: (f(x+h) - f(x-h)) / 2h.

    x is perturbed in place and restored. Returns an array of x's shape (float64).
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    for ix in np.ndindex(*x.shape):
        grad[ix] = central_difference(f, x, ix, h)
        if verbose:
            print(ix, grad[ix])
    return grad


def eval_numerical_gradient_array(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, df: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Gradient of sum(f(x) * df) at x: the backward of an array function, df of f(x)'s shape.

    x (any shape) is perturbed in place and restored. Returns an array of x's shape.
    """
    grad = np.zeros(x.shape, dtype=np.result_type(x.dtype, np.float32))
    df = np.asarray(df)
    for ix in np.ndindex(*x.shape):
        grad[ix] = np.sum(central_difference(f, x, ix, h) * df)
    return grad


def grad_check_sparse(
    f: Callable[[np.ndarray], float], x: np.ndarray, analytic_grad: np.ndarray, num_checks: int = 10,
    h: float = 1e-5,
) -> list[float]:
    """Compare analytic_grad with central differences at num_checks random entries of x.

    Prints one line per entry (as the homework does) and returns the relative errors.
    Entries are drawn with Python's `random` module (seed it for repeatable checks).
    """
    errors = []
    for _ in range(num_checks):
        ix = tuple(randrange(m) for m in x.shape)
        numeric = central_difference(f, x, ix, h)
        analytic = float(analytic_grad[ix])
        denominator = abs(numeric) + abs(analytic)
        error = abs(numeric - analytic) / denominator if denominator > 0 else 0.0
        errors.append(error)
        print(f"numerical: {numeric:f} analytic: {analytic:f}, relative error: {error:e}")
    return errors
