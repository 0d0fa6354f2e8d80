"""The homework's update rules (CS231n `optim.py`), on graphnet's flat-buffer kernels.

Each rule is ``update(w, dw, config=None) -> (next_w, config)``: `w` and `dw`
have one shape (any), `config` holds the hyperparameters (defaults filled in
with the CS231n values) and the rule's state, which is returned updated.
The inputs are never modified: `next_w` and the state arrays in `config` are
new arrays, as in the homework.

| rule         | hyperparameters (defaults)                                    | state            |
|--------------|---------------------------------------------------------------|------------------|
| sgd          | learning_rate 1e-2                                            |                  |
| sgd_momentum | learning_rate 1e-2, momentum 0.9                              | velocity         |
| rmsprop      | learning_rate 1e-2, decay_rate 0.99, epsilon 1e-8             | cache            |
| adam         | learning_rate 1e-3, beta1 0.9, beta2 0.999, epsilon 1e-8      | m, v, t          |

Adam increments `t` before using it (the first step uses t = 1).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ...kernels import get_backend
from .layers import as_float, float_dtype

__all__ = ["sgd", "sgd_momentum", "rmsprop", "adam", "UPDATE_RULES", "DEFAULTS", "FUSED_RULES"]

Config = dict[str, Any]
UpdateFunction = Callable[[np.ndarray, np.ndarray, "Config | None"], "tuple[np.ndarray, Config]"]

#: Hyperparameters of each rule with the CS231n defaults.
DEFAULTS: dict[str, dict[str, float]] = {
    "sgd": {"learning_rate": 1e-2},
    "sgd_momentum": {"learning_rate": 1e-2, "momentum": 0.9},
    "rmsprop": {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8},
    "adam": {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
}

#: Homework rule name -> `gn.Optimizer` rule (the Solver's fused fast path).
FUSED_RULES: dict[str, str] = {"sgd": "sgd", "sgd_momentum": "momentum", "rmsprop": "rmsprop", "adam": "adam"}


def _begin(rule: str, w: np.ndarray, dw: np.ndarray, config: Config | None) -> tuple[np.ndarray, np.ndarray, Config]:
    """Fill in defaults; return (next_w, dw) as fresh flat arrays of w's float dtype, and config."""
    if config is None:
        config = {}
    for key, value in DEFAULTS[rule].items():
        config.setdefault(key, value)
    dtype = float_dtype(w)
    if np.shape(dw) != np.shape(w):
        raise ValueError(f"{rule}: w has shape {np.shape(w)} but dw has shape {np.shape(dw)}")
    next_w = np.array(w, dtype=dtype, copy=True, order="C")
    return next_w, as_float(dw, dtype), config


def _state(config: Config, key: str, like: np.ndarray) -> np.ndarray:
    """A fresh copy of config[key] (zeros when absent) in like's shape and dtype."""
    value = config.get(key)
    if value is None:
        return np.zeros(like.shape, like.dtype)
    return np.array(np.broadcast_to(value, like.shape), dtype=like.dtype, copy=True, order="C")


def _flat(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1)


def sgd(w: np.ndarray, dw: np.ndarray, config: Config | None = None) -> tuple[np.ndarray, Config]:
    """Vanilla SGD: next_w = w - learning_rate * dw."""
    next_w, g, config = _begin("sgd", w, dw, config)
    get_backend().sgd_update(_flat(next_w), _flat(g), float(config["learning_rate"]))
    return next_w, config


def sgd_momentum(w: np.ndarray, dw: np.ndarray, config: Config | None = None) -> tuple[np.ndarray, Config]:
    """SGD with momentum: v = momentum * v - learning_rate * dw; next_w = w + v (state 'velocity')."""
    next_w, g, config = _begin("sgd_momentum", w, dw, config)
    v = _state(config, "velocity", next_w)
    get_backend().momentum_update(_flat(next_w), _flat(g), _flat(v), float(config["learning_rate"]),
                                  float(config["momentum"]))
    config["velocity"] = v
    return next_w, config


def rmsprop(w: np.ndarray, dw: np.ndarray, config: Config | None = None) -> tuple[np.ndarray, Config]:
    """RMSProp: cache = decay_rate * cache + (1 - decay_rate) * dw**2;
    next_w = w - learning_rate * dw / (sqrt(cache) + epsilon) (state 'cache')."""
    next_w, g, config = _begin("rmsprop", w, dw, config)
    cache = _state(config, "cache", next_w)
    get_backend().rmsprop_update(_flat(next_w), _flat(g), _flat(cache), float(config["learning_rate"]),
                                 float(config["decay_rate"]), float(config["epsilon"]))
    config["cache"] = cache
    return next_w, config


def adam(w: np.ndarray, dw: np.ndarray, config: Config | None = None) -> tuple[np.ndarray, Config]:
    """Adam with bias correction; state 'm', 'v' and the step count 't' (incremented first)."""
    next_w, g, config = _begin("adam", w, dw, config)
    m = _state(config, "m", next_w)
    v = _state(config, "v", next_w)
    t = int(config.get("t", 0)) + 1
    get_backend().adam_update(_flat(next_w), _flat(g), _flat(m), _flat(v), float(config["learning_rate"]),
                              float(config["beta1"]), float(config["beta2"]), float(config["epsilon"]), t)
    config["m"], config["v"], config["t"] = m, v, t
    return next_w, config


#: Name -> update rule, for the Solver's `update_rule="adam"`.
UPDATE_RULES: dict[str, UpdateFunction] = {"sgd": sgd, "sgd_momentum": sgd_momentum, "rmsprop": rmsprop, "adam": adam}
