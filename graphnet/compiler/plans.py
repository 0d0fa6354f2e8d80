"""Building a Plan for a network and a plan kind: the passes in order, plus the
steps no op owns (zeroing unreached gradients, the l2 term) and the decision
which weights a plain SGD step updates inside backward.

The runtime (`graphnet.network.CompiledNetwork`) caches the plans; this module
decides what goes into them.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal, NamedTuple

import numpy as np

from .. import limits
from ..errors import PlanError
from ..graph import Graph
from ..lowering import FusionDecision, Step
from ..parameters import ParameterStore
from ..plan import Plan
from .autodiff import Schedule, ancestors, lower
from .fusion import fuse
from .memory import plan_memory
from .updates import insert_update_steps

# train: train-mode forward + loss + backward; train_sgd: the same, with the SGD update of
# the weights done inside backward (see CompiledNetwork.sgd_step); train_loss: train-mode
# forward + loss (no backward); eval_loss: eval-mode forward + loss; infer: eval-mode
# forward to the outputs; train_update: train with each parameter updated by a stateful
# rule right after its last backward step (see graphnet.compiler.updates).
PlanKind = Literal["train", "train_sgd", "train_loss", "eval_loss", "infer", "train_update"]


class PlanGraph(NamedTuple):
    """The graph a plan of some kind computes (`source`), that graph fused, the fusion
    decisions, and the values fusion renamed (folded value -> node now producing it)."""

    source: Graph
    fused: Graph
    decisions: list[FusionDecision]
    renamed: dict[str, str]


def plan_graph(graph: Graph, kind: PlanKind, fuse_ops: bool = True) -> PlanGraph:
    """The (fused) graph a plan of `kind` computes.

    Only an inference plan returns the outputs. The others compute the loss, so
    they neither keep outputs alive nor let them block a fusion (a softmax that
    is the network's output still fuses with its cross_entropy for training).
    """
    source = graph
    if kind != "infer":
        # What the loss does not need still runs where it has running statistics
        # feeding an output: a batchnorm on an output branch learns its statistics.
        feeding = ancestors(graph, list(graph.outputs))
        stateful = tuple(dict.fromkeys(s.node for s in graph.state if s.node in feeding))
        source = replace(graph, outputs=stateful)
    fused, decisions, renamed = fuse(source) if fuse_ops else (source, [], {})
    return PlanGraph(source, fused, decisions, renamed)


def build_plan(graph: Graph, kind: PlanKind, capacity: int, *, store: ParameterStore, kernels: Any,
               dtype: np.dtype, rng: np.random.Generator, fuse_ops: bool = True, share_memory: bool = True,
               poison: bool = False) -> Plan:
    """A plan of `kind` for batches of up to `capacity` examples, over the parameters in
    `store`, running `kernels` (a backend) in `dtype`; `rng` draws the dropout masks.
    PlanError when the kind needs a loss the network does not have."""
    if kind != "infer" and graph.loss is None:
        raise PlanError(f"network '{graph.name}' has no loss: it can only run forward()")
    source, fused, decisions, renamed = plan_graph(graph, kind, fuse_ops)
    mode = "train" if kind.startswith("train") else "eval"
    offered, refusal = sgd_in_backward_offer(graph, store, dtype) if kind == "train_sgd" else (frozenset(), "")
    schedule = lower(fused, mode, kernels, dtype, rng,
                     with_loss=kind != "infer", with_backward=kind in ("train", "train_sgd", "train_update"),
                     update_in_backward=offered)
    if kind == "train_sgd":
        decisions = decisions + sgd_update_decisions(store.names(), schedule.updated_params, refusal)
    # A value folded into another node carries that node's id in the fused graph:
    # serve it under the output name the spec gave it.
    schedule.outputs = {name: schedule.outputs[renamed.get(name, name)] for name in source.outputs}
    extra = regularization_steps(graph, schedule, store, kernels, with_l2=kind != "train_update") \
        if kind != "infer" else []
    updates = None
    if kind == "train_update":
        extra, updates = insert_update_steps(schedule, extra, store, kernels, graph.l2)
    keep = {("value", ref.name) for ref in schedule.outputs.values() if ref.kind == "value"} \
        if kind == "infer" else set()
    memory = plan_memory(schedule.steps, keep, share=share_memory)
    plan = Plan(schedule, memory, store, capacity=capacity, dtype=dtype, backend=kernels.name,
                fusions=decisions, extra_steps=extra, poison=poison)
    if updates is not None:
        plan.param_updates, plan.updates_params = updates, True
    return plan


def regularization_steps(graph: Graph, schedule: Schedule, store: ParameterStore, kernels: Any,
                         with_l2: bool = True) -> list[Step]:
    """Zero the gradients no backward step writes, then (`with_l2`) add the l2 term over the weight segment."""
    steps: list[Step] = []
    if schedule.backward:
        unwritten = [name for name in store.names()
                     if name not in schedule.written_param_grads and name not in schedule.updated_params]
        if unwritten:
            views = [store.grad_view(name) for name in unwritten]

            def zero_unreached_grads() -> None:
                for view in views:
                    view.fill(0)

            steps.append(Step("(params)", f"zero {len(views)} unreached gradients", zero_unreached_grads, ()))
    l2 = graph.l2
    if with_l2 and l2 and store.regularized_size:
        W, dW = store.regularized()
        if schedule.backward:
            l2_penalty = kernels.l2_penalty

            def l2_term() -> float:
                return l2_penalty(W, dW, l2)
        else:
            sum_squares = kernels.sum_squares

            def l2_term() -> float:
                return 0.5 * l2 * sum_squares(W)

        steps.append(Step("(l2)", "l2_penalty", l2_term, (), returns_loss=True))
    return steps


def sgd_in_backward_offer(graph: Graph, store: ParameterStore, dtype: np.dtype) -> tuple[frozenset[str], str]:
    """The parameters a train_sgd plan may update inside backward, or why none."""
    from ..blas import find_gemm, gemm_status

    if find_gemm(dtype) is None:
        return frozenset(), gemm_status(dtype)
    if graph.l2:
        return frozenset(), "the l2 term reads the weights after backward"
    return frozenset(store.names()), ""


def sgd_update_decisions(names: list[str], updated: frozenset[str], refusal: str) -> list[FusionDecision]:
    """One decision per parameter: updated inside backward, or after it and why."""
    decisions = []
    for name in names:
        if name in updated:
            decisions.append(FusionDecision("sgd-update-in-backward", (name,), True))
        else:
            decisions.append(FusionDecision("sgd-update-in-backward", (name,), False,
                                            refusal or "updated after backward, from its gradient"))
    return decisions


def check_memory(graph: Graph, dtype: np.dtype, capacity: int, limit: int | None = None) -> None:
    """PlanError, before anything is allocated, when parameters, gradients and an
    unplanned bound on the activation buffers (values and gradients at this
    capacity) would exceed the memory limit (`max_bytes=`, or graphnet.limits)."""
    itemsize = np.dtype(dtype).itemsize
    parameters = 2 * graph.num_params * itemsize
    activations = 2 * capacity * sum(node.value.size for node in graph.nodes) * itemsize
    limit = limits.max_bytes() if limit is None else limit
    if parameters + activations > limit:
        raise PlanError(
            f"network '{graph.name}' would need about {limits.format_bytes(parameters + activations)} "
            f"({limits.format_bytes(parameters)} for {graph.num_params:,} {np.dtype(dtype).name} parameters and "
            f"gradients, up to {limits.format_bytes(activations)} for activations at batch {capacity}), over the "
            f"limit of {limits.format_bytes(limit)}; lower the batch size or set {limits.ENV_VAR} / max_bytes=")
