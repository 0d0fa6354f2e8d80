"""The update pass of a "rule" plan (plan kind train_update): a stateful update inside backward.

A separate update pass reads every gradient back from memory after the whole
backward pass, when the first layers' gradients have long left the cache. A
train_update plan instead updates each parameter right after the backward
step that last touches it (the step that writes its gradient, which also
reads its old value), while that gradient is still in cache. The rule (adam,
momentum, ...) is not known when the plan is built: each run is given an
`UpdateRule` (kernel, state buffers, hyperparameters), which the plan installs
into its `RuleSlot`; each update step calls that kernel on its parameters'
spans of the flat buffers (declared as its refs), with the same spans of the
rule's state buffers. Elementwise kernels on segments compute what one call
over the whole buffer computes.

Parameters no backward step reaches (their gradient is zeroed after backward)
are updated by one last step, after the zeroing. Frozen parameters (graphnet.compiler.parameters)
get no update step, and the rule's state buffers cover the trainable ones only. The l2 term (`0.5 * l2 *
sum(W**2)`, `dW += l2 * W`) is taken per weight inside its update step, just
before the weight changes, so l2 networks keep the fused path.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np

from ..errors import PlanError
from ..ops.lowering import Ref, Step
from .autodiff import Schedule
from .parameters import ParameterStore, span_name


@dataclass
class UpdateRule:
    """`kernel(w, g, *slots, *args)` over 1-D segments: w, g of the store's flat values
    and gradients, `slots` the rule's flat state buffers (each shaped like the trainable values),
    `args` the hyperparameters (and Adam's step count t) for the coming step."""

    kernel: Callable[..., None]
    slots: tuple[np.ndarray, ...]
    args: tuple[Any, ...] = ()


class RuleSlot:
    """The rule a train_update plan's update steps apply: `install`ed by each run
    (graphnet.compiler.plan.Plan.run); `states[k][i]` are the rule's state buffers cut to span i of
    update step k (`spans[k][i]`, a slice of the flat buffers)."""

    def __init__(self, store: ParameterStore, spans: list[list[slice]]):
        self.store, self.spans = store, spans
        self.rule: UpdateRule | None = None
        self.states: list[list[tuple[np.ndarray, ...]]] = []

    def install(self, rule: UpdateRule) -> None:
        """Make the update steps apply `rule` (cuts its state buffers into the spans once per rule);
        PlanError when its state buffers are not shaped like the parameters."""
        if rule is self.rule:
            return
        values = self.store.trainable()[0]
        for slot in rule.slots:
            if slot.shape != values.shape or slot.dtype != values.dtype:
                raise PlanError(f"optimizer state of shape {slot.shape} {slot.dtype}, expected "
                                f"{values.shape} {values.dtype} (the trainable parameters)")
        self.states = [[tuple(slot[s] for slot in rule.slots) for s in group] for group in self.spans]
        self.rule = rule


def span_refs(store: ParameterStore, names: list[str]) -> tuple[Ref, Ref]:
    """The refs of adjacent parameters `names` (in buffer order) as one span: (values, gradients)."""
    name = span_name(names)
    s = store.span(name)
    return Ref("param_span", name, (s.stop - s.start,)), Ref("grad_span", name, (s.stop - s.start,))


def names_in(store: ParameterStore, s: slice) -> list[str]:
    """The parameters a slice of the flat buffers covers, in buffer order."""
    return [name for name, slot in store.slots.items() if s.start <= slot.start < s.stop and slot.start < slot.stop]


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


def _update_step(node: str, label: str, store: ParameterStore, spans: list[slice], k: int, holder: RuleSlot,
                 l2: float, l2_penalty: Callable[..., float]) -> Step:
    """The step applying the installed rule to the spans of group k (their values and gradients
    its refs); it returns the spans' l2 term, taken just before the weights change."""
    boundary = store.regularized_size
    penalized = tuple(bool(l2) and s.stop <= boundary for s in spans)
    refs: list[Ref] = []
    for s in spans:
        refs.extend(span_refs(store, names_in(store, s)))
    writes = {2 * i for i in range(len(spans))} | {2 * i + 1 for i, p in enumerate(penalized) if p}

    def update_params(*arrays: np.ndarray) -> float:
        rule = holder.rule
        kernel, args, states = rule.kernel, rule.args, holder.states[k]  # type: ignore[union-attr]
        term = 0.0
        for i, state in enumerate(states):
            w, g = arrays[2 * i], arrays[2 * i + 1]
            if penalized[i]:
                term += l2_penalty(w, g, l2)
            kernel(w, g, *state, *args)
        return term

    return Step(node, label, update_params, tuple(refs), writes=frozenset(writes), returns_loss=any(penalized))


def _split(group: list[slice], boundary: int) -> list[slice]:
    """The slices cut at `boundary` (the end of the l2-penalized weights)."""
    result = []
    for s in group:
        if s.start < boundary < s.stop:
            result.extend((slice(s.start, boundary), slice(boundary, s.stop)))
        else:
            result.append(s)
    return result


def insert_update_steps(schedule: Schedule, extra_steps: list[Step], store: ParameterStore, kernels: Any,
                        l2: float) -> tuple[Schedule, list[Step], RuleSlot]:
    """The schedule with an update step after each backward step that last uses some
    parameters, and `extra_steps` (which must not contain the l2 term: the update steps take
    it) followed by one update step for all other parameters; and the RuleSlot their runs
    install the rule into. Returns new objects: `schedule` and `extra_steps` are unchanged."""
    last = last_backward_use(schedule)
    after: dict[int, list[str]] = {}
    for name in store.trainable_names():
        if name in last:
            after.setdefault(last[name], []).append(name)
    groups: list[list[slice]] = []
    holder = RuleSlot(store, groups)
    steps: list[Step] = []
    for i, step in enumerate(schedule.steps):
        steps.append(step)
        if i in after:
            groups.append(_split(contiguous(store, after[i]), store.regularized_size))
            steps.append(_update_step(step.node, f"update[{', '.join(after[i])}]", store, groups[-1],
                                      len(groups) - 1, holder, l2, kernels.l2_penalty))
    rest = [name for name in store.trainable_names() if name not in last]
    extra = list(extra_steps)
    if rest:
        groups.append(_split(contiguous(store, rest), store.regularized_size))
        extra.append(_update_step("(params)", f"update {len(rest)} parameters backward does not reach", store,
                                  groups[-1], len(groups) - 1, holder, l2, kernels.l2_penalty))
    return replace(schedule, steps=steps), extra, holder
