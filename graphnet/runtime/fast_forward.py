"""`net.forward`'s hot path: an inference plan bound once per input shape.

The general `forward` looks up a plan, checks and converts the batch, binds
the step list and builds the result dict on every call. For a repeated call
on an input it has already run (one array, the network's dtype, C-contiguous,
the same shape) almost all of that is known in advance: `bind_fast_forward`
does it once and returns a function that only puts the new array in its
slots, runs the steps and copies the outputs out. Every other input (a dict,
another dtype or shape, a non-contiguous array) takes the general path, with
its located errors.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..compiler.plan import Plan, run_steps
from ..ops.lowering import PLANNED_KINDS

FastForward = Callable[[np.ndarray], "np.ndarray | dict[str, np.ndarray]"]


def bind_fast_forward(plan: Plan, n: int, names: list[str], single: bool) -> FastForward | None:
    """A function X: (n, *input shape) -> the outputs `names` (one array when `single`,
    else a dict), running `plan`'s steps bound for n rows; None when the plan does not
    fit the hot path (several inputs, or an output that is a view of the input)."""
    if len(plan.input_shapes) != 1 or not 1 <= n <= plan.capacity:
        return None
    if any(plan.schedule.outputs[name].kind not in PLANNED_KINDS for name in names):
        return None
    (input_shape,) = plan.input_shapes.values()
    binding = plan.bind(n)
    slots = [(args, j, None if ref.shape == input_shape else (n, *ref.shape)) for args, j, ref in binding.patches]
    steps, count = binding.steps, len(binding.steps)
    views = [plan.output(name, n) for name in names]
    store, tick = plan.store, plan.tick
    shared = store.shared  # the live parameter views of users (see ParameterStore.user_view)

    def fast_forward(X: np.ndarray) -> np.ndarray | dict[str, np.ndarray]:
        if shared:
            store.touch_if_shared()
        for args, j, shape in slots:
            args[j] = X if shape is None else X.reshape(shape)
        tick()
        run_steps(steps, 0, count)
        if single:
            return views[0].copy()
        return {name: view.copy() for name, view in zip(names, views)}

    return fast_forward
