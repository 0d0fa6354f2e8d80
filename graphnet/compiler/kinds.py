"""Plan kinds: what a plan computes, as one small record per kind, all built from one table.

A kind says the mode (train: dropout on, batch statistics; eval: dropout off,
running statistics), how far forward runs (to the outputs, or to the loss),
whether backward runs, and which parameter update the plan carries:

- "none": no update (gradients are written, when backward runs);
- "sgd": plain SGD with the rate given at run time, each weight whose op can
  (affine) inside its backward GEMM, the others by one step after backward;
- "rule": a stateful rule given at run time (graphnet.compiler.updates.UpdateRule),
  each parameter updated right after the backward step that last uses it.

A new kind is one row of `_TABLE`; `build_plan` reads the fields, never the name.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import PlanError, did_you_mean

Mode = Literal["train", "eval"]
Update = Literal["none", "sgd", "rule"]


@dataclass(frozen=True)
class PlanKind:
    """One kind of plan (see the module docstring); `name` is how users and the CLI ask for it."""

    name: str
    mode: Mode
    runs_to: Literal["outputs", "loss"]
    backward: bool
    update: Update

    @property
    def has_loss(self) -> bool:
        return self.runs_to == "loss"

    def __str__(self) -> str:
        return self.name


_TABLE: tuple[tuple[str, Mode, Literal["outputs", "loss"], bool, Update], ...] = (
    # name          mode     runs to    backward update    used by
    ("infer",        "eval",  "outputs", False,  "none"),  # net.forward, net.predict
    ("eval_loss",    "eval",  "loss",    False,  "none"),  # net.evaluate_loss: the validation loss
    ("train_loss",   "train", "loss",    False,  "none"),  # net.evaluate_loss(mode="train"): gradient checks
    ("train",        "train", "loss",    True,   "none"),  # net.step(X, y), net.loss(X, y)
    ("train_sgd",    "train", "loss",    True,   "sgd"),   # net.step(X, y, rate)
    ("train_update", "train", "loss",    True,   "rule"),  # net.step(X, y, rule)
)

PLAN_KINDS: dict[str, PlanKind] = {row[0]: PlanKind(*row) for row in _TABLE}


def plan_kind(kind: str | PlanKind) -> PlanKind:
    """The kind named `kind` (or `kind` itself); PlanError naming the kinds for an unknown name."""
    if isinstance(kind, PlanKind):
        return kind
    found = PLAN_KINDS.get(kind)
    if found is None:
        raise PlanError(f"unknown plan kind '{kind}'{did_you_mean(str(kind), PLAN_KINDS)} "
                        f"(kinds: {', '.join(PLAN_KINDS)})")
    return found


@dataclass(frozen=True)
class PlanSpec:
    """What plan to build: its kind, its capacity (the most examples a batch may have),
    whether fusion runs, whether buffers share storage, and whether buffers are poisoned
    with NaN once dead (the debug mode, $GRAPHNET_DEBUG_PLAN)."""

    kind: PlanKind
    capacity: int
    fuse: bool = True
    share_memory: bool = True
    poison: bool = False
