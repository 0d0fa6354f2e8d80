"""The compiler: Graph -> Plan, as a few small passes, one module each.

1. `fusion`: `fuse_epilogues`, `fuse_into_consumers` (and `fuse`, both in
   order): Graph -> Graph, driven by the fusion table (`graphnet.compiler.fusion_rules`),
   each returning its FusionDecisions (fired, or not and why) and the values it
   renamed.
2. `autodiff`: `lower`: Graph -> Schedule. Each op's forward hook, in
   topological order, then (train mode) each backward hook in reverse order.
   Gradients of values read by several nodes are accumulated; only values on a
   path from a parameter to the loss get gradients; nodes no target needs are
   dropped.
3. `memory`: `plan_memory`: Schedule steps -> buffer offsets. Each buffer lives
   from its first to its last step; `merge_inplace` lets a declared in-place
   pair share storage when the input dies at that step; storage whose
   lifetimes don't overlap is shared.
4. `plans`: `build_plan(graph, spec, target, store=, rng=)` runs the passes for a
   plan spec (a kind from `kinds`, a capacity) on a Target (graphnet.ops.target), adds
   the steps no op owns (unreached gradients, the l2 term, the SGD update after
   backward) and returns a finished `graphnet.compiler.plan.Plan` over the parameter store.
   It reads no process state.
5. `updates`: `insert_update_steps` (plans of update "rule"): a stateful rule's update
   of each parameter right after the backward step that last uses it.

`kinds`: the plan kinds (infer, eval_loss, train_loss, train, train_sgd,
train_update), one `PlanKind` record each, from one table.
"""
from __future__ import annotations

from ..ops.lowering import SGD_LEARNING_RATE
from .autodiff import Schedule, ancestors, lower
from .fusion import Fused, fuse, fuse_epilogues, fuse_into_consumers
from .kinds import PLAN_KINDS, Mode, PlanKind, PlanSpec, plan_kind
from .memory import ALIGN, PLANNED_KINDS, Buffer, InplaceMerges, MemoryPlan, merge_inplace, plan_memory
from .plans import (
                    PlanGraph,
                    build_plan,
                    check_memory,
                    plan_graph,
                    regularization_steps,
                    sgd_after_backward_steps,
                    sgd_in_backward_offer,
                    sgd_update_decisions,
)
from .updates import UpdateRule

__all__ = [
    "ALIGN",
    "PLANNED_KINDS",
    "PLAN_KINDS",
    "SGD_LEARNING_RATE",
    "Buffer",
    "Fused",
    "InplaceMerges",
    "MemoryPlan",
    "Mode",
    "PlanGraph",
    "PlanKind",
    "PlanSpec",
    "Schedule",
    "UpdateRule",
    "ancestors",
    "build_plan",
    "check_memory",
    "fuse",
    "fuse_epilogues",
    "fuse_into_consumers",
    "lower",
    "merge_inplace",
    "plan_graph",
    "plan_kind",
    "plan_memory",
    "regularization_steps",
    "sgd_after_backward_steps",
    "sgd_in_backward_offer",
    "sgd_update_decisions",
]
