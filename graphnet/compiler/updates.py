"""The stateful update inside backward (plan kind "train_update").

A separate update pass reads every gradient back from memory after the whole
backward pass, when the first layers' gradients have long left the cache. A
train_update plan instead updates each parameter right after the backward
step that last touches it (the step that writes its gradient, which also
reads its old value), while that gradient is still in cache. The rule (adam,
momentum, ...) is not known when the plan is built: the optimizer installs an
`UpdateRule` (kernel, state buffers, hyperparameters) into the plan's
`ParamUpdates`, and each update step calls that kernel on its parameters'
segments of the flat buffers. Elementwise kernels on segments compute what
one call over the whole buffer computes.

Parameters no backward step reaches (their gradient is zeroed after backward)
are updated by one last step, after the zeroing. The l2 term (`0.5 * l2 *
sum(W**2)`, `dW += l2 * W`) is taken per weight inside its update step, just
before the weight changes, so l2 networks keep the fused path.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..lowering import Step
from ..parameters import ParameterStore
from .autodiff import Schedule


@dataclass
class UpdateRule:
    """`kernel(w, g, *slots, *args)` over 1-D segments: w, g of the store's flat values
    and gradients, `slots` the rule's flat state buffers (each shaped like the values),
    `args` the hyperparameters (and Adam's step count t) for the coming step."""

    kernel: Callable[..., None]
    slots: tuple[np.ndarray, ...]
    args: tuple[Any, ...] = ()


# One parameter segment as an update call takes it: (w, g, *slot segments), and whether it is l2-penalized.
Segment = tuple[tuple[np.ndarray, ...], bool]


@dataclass
class ParamUpdates:
    """The update calls of one train_update plan: `groups[k]` lists the flat-buffer
    slices updated together by update step k (the last group: what backward does not reach)."""

    store: ParameterStore
    groups: list[list[slice]]
    l2: float
    l2_penalty: Callable[..., float]
    rule: UpdateRule | None = None
    _segments: list[list[Segment]] = field(default_factory=list)

    def install(self, rule: UpdateRule) -> None:
        """Make the update steps apply `rule` (cuts its state buffers into the segments once)."""
        if rule is self.rule:
            return
        for slot in rule.slots:
            if slot.shape != self.store.values.shape or slot.dtype != self.store.values.dtype:
                raise ValueError(f"optimizer state of shape {slot.shape} {slot.dtype}, expected "
                                 f"{self.store.values.shape} {self.store.values.dtype}")
        values, grads, boundary = self.store.values, self.store.grads, self.store.regularized_size
        self._segments = [[((values[s], grads[s], *(slot[s] for slot in rule.slots)), s.stop <= boundary)
                           for s in _split(group, boundary)] for group in self.groups]
        self.rule = rule

    def step_fn(self, k: int) -> Callable[[], float]:
        """The plan step applying the rule to group k; returns the group's l2 term (0.0 without l2)."""
        holder, l2, l2_penalty = self, self.l2, self.l2_penalty

        def update_params() -> float:
            rule = holder.rule
            if rule is None:
                raise RuntimeError("a train_update plan ran without an installed update rule")
            kernel, args = rule.kernel, rule.args
            term = 0.0
            for arrays, regularized in holder._segments[k]:
                if regularized and l2:
                    term += l2_penalty(arrays[0], arrays[1], l2)
                kernel(*arrays, *args)
            return term

        return update_params


def _split(group: list[slice], boundary: int) -> list[slice]:
    """The slices cut at `boundary` (the end of the l2-penalized weights)."""
    result = []
    for s in group:
        if s.start < boundary < s.stop:
            result.extend((slice(s.start, boundary), slice(boundary, s.stop)))
        else:
            result.append(s)
    return result


def contiguous(store: ParameterStore, names: list[str]) -> list[slice]:
    """The fewest slices of the flat buffers covering the parameters `names`."""
    wanted = set(names)
    return store.segments(exclude=frozenset(n for n in store.names() if n not in wanted))


def last_backward_use(schedule: Schedule) -> dict[str, int]:
    """Parameter -> index of the last backward step that reads it or writes its gradient,
    for the parameters whose gradient some backward step writes."""
    last: dict[str, int] = {}
    for i in range(schedule.n_forward, len(schedule.steps)):
        for ref in schedule.steps[i].args:
            if ref is not None and ref.kind in ("param", "param_grad"):
                last[ref.name] = i
    return {name: i for name, i in last.items() if name in schedule.written_param_grads}


def insert_update_steps(schedule: Schedule, extra_steps: list[Step], store: ParameterStore, kernels: Any,
                        l2: float) -> tuple[list[Step], ParamUpdates]:
    """Put an update step after each backward step that last uses some parameters (in
    `schedule.steps`, in place), and one for all other parameters after `extra_steps`
    (which must not contain the l2 term: the update steps take it). Returns the new
    extra steps and the plan's ParamUpdates."""
    last = last_backward_use(schedule)
    with_l2 = bool(l2 and store.regularized_size)
    after: dict[int, list[str]] = {}
    for name in store.names():
        if name in last:
            after.setdefault(last[name], []).append(name)
    groups: list[list[slice]] = []
    updates = ParamUpdates(store, groups, l2, kernels.l2_penalty)
    steps: list[Step] = []
    for i, step in enumerate(schedule.steps):
        steps.append(step)
        if i in after:
            groups.append(contiguous(store, after[i]))
            steps.append(Step(step.node, f"update[{', '.join(after[i])}]", updates.step_fn(len(groups) - 1), (),
                              returns_loss=with_l2))
    schedule.steps = steps
    rest = [name for name in store.names() if name not in last]
    extra = list(extra_steps)
    if rest:
        groups.append(contiguous(store, rest))
        extra.append(Step("(params)", f"update {len(rest)} parameters backward does not reach",
                          updates.step_fn(len(groups) - 1), (), returns_loss=with_l2))
    schedule.updated_params = frozenset(last)
    return extra, updates
