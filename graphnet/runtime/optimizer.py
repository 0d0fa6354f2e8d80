"""gn.Optimizer: one fused update over the flat parameter buffer.

    opt = gn.Optimizer(net, "adam", learning_rate=1e-3)
    loss = opt.step(X, y)      # forward + backward + update; allocation-free

Rules and hyperparameters (CS231n names and defaults): sgd (learning_rate),
momentum and nesterov (momentum), rmsprop (decay_rate, epsilon), adam and
adamw (beta1, beta2, epsilon; adamw: weight_decay). Optional clipping of the
gradient to a global L2 norm. Frozen parameters (a node's `"trainable": false`, a
run's `"freeze"`) are never updated and have no optimizer state: the state
buffers cover the trainable parameters, the first `trainable_size` values of the
flat buffer.

Each step is one `net.step` (graphnet.runtime.network). Plain SGD without clipping
passes the learning rate: each affine weight is updated inside its backward
GEMM (W -= lr * X.T @ dY), so its gradient is never written to memory. The
other rules without clipping pass their UpdateRule: each parameter is updated
right after the backward step that writes its gradient, while the gradient is
still in cache (gradients stay readable in `net.grads`); this computes what the
separate update computes. Clipping needs the global norm of all gradients
before any update, so it keeps the separate pass: `net.step(X, y)` (forward
and backward), then one kernel over the flat buffers. `fuse_update=False`
keeps the two apart for every rule.

On a non-finite loss backward does not run and nothing changes (parameters,
state buffers, t, running statistics). A finite loss with non-finite
gradients is applied as is, on both paths: the parameters it reaches become
non-finite and the next step's loss reports it.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..compiler.updates import UpdateRule
from ..errors import NonFiniteError, SpecError, did_you_mean
from ..spec import OPTIMIZERS
from .network import Network

# rule -> (kernel, state buffers, hyperparameters passed after the state, in order)
RULES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "sgd": ("sgd_update", (), ("learning_rate",)),
    "momentum": ("momentum_update", ("velocity",), ("learning_rate", "momentum")),
    "nesterov": ("nesterov_update", ("velocity",), ("learning_rate", "momentum")),
    "rmsprop": ("rmsprop_update", ("cache",), ("learning_rate", "decay_rate", "epsilon")),
    "adam": ("adam_update", ("m", "v"), ("learning_rate", "beta1", "beta2", "epsilon")),
    "adamw": ("adamw_update", ("m", "v"), ("learning_rate", "beta1", "beta2", "epsilon", "weight_decay")),
}


def optimizer_settings(rule: str, hyperparameters: dict[str, Any]):
    """Validated hyperparameters of `rule` (unknown rule or keyword -> SpecError naming it)."""
    if rule not in OPTIMIZERS:
        hint = did_you_mean(rule, OPTIMIZERS)
        raise SpecError([("rule", f"unknown update rule '{rule}'{hint} (rules: {', '.join(OPTIMIZERS)})")])
    return OPTIMIZERS[rule](**{k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
                                for k, v in hyperparameters.items()})


class Optimizer:
    """Updates `net`'s parameters in place with one kernel call per step."""

    def __init__(self, net: Network, rule: str = "adam", *, clip_norm: float | None = None,
                 fuse_update: bool = True, **hyperparameters: Any):
        self.net = net
        self.settings = optimizer_settings(rule, hyperparameters)
        self.rule = rule
        if clip_norm is not None and not clip_norm > 0:
            raise ValueError(f"clip_norm must be > 0, got {clip_norm}")
        self.clip_norm = clip_norm
        kernel, state_names, self._hyper_names = RULES[rule]
        self._update = getattr(net.kernels, kernel)
        self._sum_squares, self._scale = net.kernels.sum_squares, net.kernels.scale_inplace
        # state for the trainable parameters only: the frozen ones sit after them (graphnet.compiler.parameters)
        self.slots = {name: np.zeros_like(net.store.trainable()[0]) for name in state_names}
        self.hyperparameters = {name: getattr(self.settings, name) for name in self._hyper_names}
        self.t = 0  # completed updates
        self.last_grad_norm = float("nan")
        self._fuse_requested = fuse_update
        self._in_backward = UpdateRule(self._update, tuple(self.slots.values()))

    @property
    def fuse_update(self) -> bool:
        """Whether `step` updates the parameters inside backward (no clipping, not turned off)."""
        return self._fuse_requested and self.clip_norm is None

    @property
    def learning_rate(self) -> float:
        return self.hyperparameters["learning_rate"]

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self.hyperparameters["learning_rate"] = float(value)

    def step(self, X: Any, y: Any) -> float:
        """Forward, backward and update on one batch; returns the loss before the update.

        A non-finite loss raises NonFiniteError naming the step and the first
        node whose output is not finite; the parameters are left untouched.
        """
        loss = self.step_or_skip(X, y)
        if not math.isfinite(loss):
            node = self.net.first_nonfinite(X, y)
            where = f"; first non-finite value at node {node}" if node else ""
            raise NonFiniteError(f"loss is {loss} at step {self.t + 1}{where}")
        return loss

    def step_or_skip(self, X: Any, y: Any) -> float:
        """`step`, except that a non-finite loss is returned, not raised; nothing changed then."""
        if not self.fuse_update:
            loss = self.net.step(X, y)
            if math.isfinite(loss):
                self.apply()
            return loss
        if self.rule == "sgd":
            loss = self.net.step(X, y, self.hyperparameters["learning_rate"])
        else:
            self._in_backward.args = self._kernel_args(self.t + 1)
            loss = self.net.step(X, y, self._in_backward)
        if math.isfinite(loss):
            self.t += 1
        return loss

    def _kernel_args(self, t: int) -> tuple[Any, ...]:
        """The update kernel's arguments after the state buffers, for update number t."""
        args = tuple(self.hyperparameters[name] for name in self._hyper_names)
        return (*args, t) if self.rule in ("adam", "adamw") else args

    def apply(self) -> None:
        """Update the parameters from the gradients already in `net.grads`."""
        self.net.check_grads_materialized()
        values, grads = self.net.store.trainable()
        if self.clip_norm is not None:
            norm = math.sqrt(self._sum_squares(grads))
            self.last_grad_norm = norm
            if norm > self.clip_norm:
                self._scale(grads, self.clip_norm / norm)
        self.t += 1
        self.net.store.touch()
        self._update(values, grads, *self.slots.values(), *self._kernel_args(self.t))

    def state_dict(self) -> dict[str, Any]:
        """Rule, hyperparameters, step count and state buffers (arrays are copies)."""
        return {
            "rule": self.rule,
            "hyperparameters": dict(self.hyperparameters),
            "clip_norm": self.clip_norm,
            "t": self.t,
            "slots": {name: buffer.copy() for name, buffer in self.slots.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["rule"] != self.rule:
            raise ValueError(f"optimizer state is for '{state['rule']}', this optimizer is '{self.rule}'")
        for name, buffer in self.slots.items():
            value = np.asarray(state["slots"][name])
            if value.shape != buffer.shape:
                raise ValueError(f"optimizer state '{name}' has shape {value.shape}, expected {buffer.shape}")
            buffer[...] = value
        self.hyperparameters.update({k: float(v) for k, v in state["hyperparameters"].items()})
        self.t = int(state["t"])

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v:g}" for k, v in self.hyperparameters.items())
        return f"Optimizer({self.rule}, {settings}, t={self.t})"
