"""Parameter initializers: fill an array in place from a numpy Generator.

`he_normal` draws from N(0, 2 / fan_in) (std = sqrt(2 / fan_in); the homework's
sqrt(2 / fan_in) / 2 mistake is not copied); `xavier_*` use fan_in + fan_out;
`normal` uses the node's `std` (the homework's `weight_scale`).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .base import ParamDecl

Initializer = Callable[[np.ndarray, ParamDecl, np.random.Generator], None]


def _uniform(out: np.ndarray, limit: float, rng: np.random.Generator) -> None:
    out[...] = rng.uniform(-limit, limit, size=out.shape)


def _normal(out: np.ndarray, std: float, rng: np.random.Generator) -> None:
    out[...] = rng.standard_normal(size=out.shape) * std


INITIALIZERS: dict[str, Initializer] = {
    "xavier_uniform": lambda out, d, rng: _uniform(out, math.sqrt(6.0 / (d.fan_in + d.fan_out)), rng),
    "xavier_normal": lambda out, d, rng: _normal(out, math.sqrt(2.0 / (d.fan_in + d.fan_out)), rng),
    "he_uniform": lambda out, d, rng: _uniform(out, math.sqrt(6.0 / d.fan_in), rng),
    "he_normal": lambda out, d, rng: _normal(out, math.sqrt(2.0 / d.fan_in), rng),
    "normal": lambda out, d, rng: _normal(out, d.std, rng),
    "zeros": lambda out, d, rng: out.fill(0),
    "ones": lambda out, d, rng: out.fill(1),
}


def initialize(out: np.ndarray, decl: ParamDecl, rng: np.random.Generator) -> None:
    """Fill `out` (shape `decl.shape`) as `decl.init` says."""
    INITIALIZERS[decl.init](out, decl, rng)
