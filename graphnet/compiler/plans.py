"""Building a Plan: `build_plan(graph, spec, target, store=, rng=)` runs the passes for
the plan's kind (graphnet.compiler.kinds) and adds the steps no op owns (zeroing
unreached gradients, the l2 term, the parameter updates).

It reads no process state: what depends on the machine or the user's settings
arrives in the Target (graphnet.ops.target). The runtime
(`graphnet.runtime.network.CompiledNetwork`) resolves the target once and caches the
plans; this module decides what goes into them.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, NamedTuple

import numpy as np

from ..errors import PlanError
from ..ops.lowering import SGD_LEARNING_RATE, FusionDecision, Ref, Step
from ..ops.target import Target
from ..system import limits
from .autodiff import Schedule, ancestors, lower
from .fusion import fuse
from .graph import Graph
from .kinds import PlanKind, PlanSpec, plan_kind
from .memory import plan_memory
from .parameters import ParameterStore
from .plan import Plan
from .updates import insert_update_steps, span_refs


class PlanGraph(NamedTuple):
    """The graph a plan of some kind computes (`source`), that graph fused, the fusion
    decisions, and the values fusion renamed (folded value -> node now producing it)."""

    source: Graph
    fused: Graph
    decisions: list[FusionDecision]
    renamed: dict[str, str]


def plan_graph(graph: Graph, kind: PlanKind | str, fuse_ops: bool = True) -> PlanGraph:
    """The (fused) graph a plan of `kind` computes.

    Only a plan that runs to the outputs returns them. The others compute the loss, so
    they neither keep outputs alive nor let them block a fusion (a softmax that
    is the network's output still fuses with its cross_entropy for training).
    """
    source = graph
    if plan_kind(kind).has_loss:
        # What the loss does not need still runs where it has running statistics
        # feeding an output: a batchnorm on an output branch learns its statistics.
        feeding = ancestors(graph, list(graph.outputs))
        stateful = tuple(dict.fromkeys(s.node for s in graph.state if s.node in feeding))
        source = replace(graph, outputs=stateful)
    fused, decisions, renamed = fuse(source) if fuse_ops else (source, [], {})
    return PlanGraph(source, fused, decisions, renamed)


def build_plan(graph: Graph, spec: PlanSpec, target: Target, *, store: ParameterStore,
               rng: np.random.Generator) -> Plan:
    """The plan `spec` asks for (its kind, for batches of up to `spec.capacity` examples), over
    the parameters in `store`, running `target`'s kernels in its dtype; `rng` draws the
    dropout masks. PlanError when the kind needs a loss the network does not have."""
    kind = spec.kind
    if kind.has_loss and graph.loss is None:
        raise PlanError(f"network '{graph.name}' has no loss: it can only run forward()")
    source, fused, decisions, renamed = plan_graph(graph, kind, spec.fuse)
    offered, refusal = sgd_in_backward_offer(graph, store, target) if kind.update == "sgd" else (frozenset(), "")
    lowered = lower(fused, kind.mode, target, rng, with_loss=kind.has_loss, with_backward=kind.backward,
                    update_in_backward=offered, frozen=store.frozen)
    if kind.update == "sgd":
        decisions = decisions + sgd_update_decisions(store.trainable_names(), lowered.updated_params, refusal)
    # A value folded into another node carries that node's id in the fused graph:
    # serve it under the output name the spec gave it.
    schedule = replace(lowered, outputs={name: lowered.outputs[renamed.get(name, name)] for name in source.outputs})
    extra = regularization_steps(graph, schedule, store, target.kernels, with_l2=kind.update != "rule") \
        if kind.has_loss else []
    updates = None
    if kind.update == "sgd":
        extra += sgd_after_backward_steps(schedule, store, target.kernels)
    elif kind.update == "rule":
        schedule, extra, updates = insert_update_steps(schedule, extra, store, target.kernels, graph.l2)
    keep = {("value", ref.name) for ref in schedule.outputs.values() if ref.kind == "value"} \
        if not kind.has_loss else set()
    memory = plan_memory(schedule.steps, keep, share=spec.share_memory)
    return Plan(schedule, memory, store, kind=kind, capacity=spec.capacity, dtype=target.dtype,
                backend=target.backend, fusions=decisions, extra_steps=extra, poison=spec.poison, updates=updates,
                tick=target.tick)


def regularization_steps(graph: Graph, schedule: Schedule, store: ParameterStore, kernels: Any,
                         with_l2: bool = True) -> list[Step]:
    """Zero the gradients of trainable parameters no backward step writes, then (`with_l2`) add the
    l2 term over the trainable weight segment."""
    steps: list[Step] = []
    if schedule.backward:
        unwritten = [name for name in store.trainable_names()
                     if name not in schedule.written_param_grads and name not in schedule.updated_params]
        if unwritten:
            refs = tuple(Ref("param_grad", name, store.slots[name].shape) for name in unwritten)

            def zero_unreached_grads(*views: np.ndarray) -> None:
                for view in views:
                    view.fill(0)

            steps.append(Step("(params)", f"zero {len(refs)} unreached gradients", zero_unreached_grads, refs,
                              writes=frozenset(range(len(refs)))))
    l2 = graph.l2
    if with_l2 and l2 and store.regularized_size:
        weights = [name for name in store.trainable_names() if store.decls[name].regularized]
        W, dW = span_refs(store, weights)
        if schedule.backward:
            l2_penalty = kernels.l2_penalty

            def l2_term(W: np.ndarray, dW: np.ndarray) -> float:
                return l2_penalty(W, dW, l2)

            steps.append(Step("(l2)", "l2_penalty", l2_term, (W, dW), writes=frozenset({1}), returns_loss=True))
        else:
            sum_squares = kernels.sum_squares

            def l2_loss(W: np.ndarray) -> float:
                return 0.5 * l2 * sum_squares(W)

            steps.append(Step("(l2)", "l2_penalty", l2_loss, (W,), returns_loss=True))
    return steps


def sgd_after_backward_steps(schedule: Schedule, store: ParameterStore, kernels: Any) -> list[Step]:
    """A train_sgd plan's last step: params -= rate * grads for the trainable parameters no backward
    step updated inside its GEMM (rate: SGD_LEARNING_RATE, set by each run); none when all were."""
    spans: list[Ref] = []
    for segment in store.segments(exclude=schedule.updated_params | store.frozen):
        names = [name for name in store.names() if segment.start <= store.slots[name].start < segment.stop]
        spans.extend(span_refs(store, names))
    if not spans:
        return []
    sgd_update = kernels.sgd_update

    def sgd_after_backward(rate: np.ndarray, *arrays: np.ndarray) -> None:
        learning_rate = float(rate[0])
        for i in range(0, len(arrays), 2):
            sgd_update(arrays[i], arrays[i + 1], learning_rate)

    label = f"sgd_update ({len(spans) // 2} span{'s' if len(spans) > 2 else ''})"
    return [Step("(params)", label, sgd_after_backward, (SGD_LEARNING_RATE, *spans),
                 writes=frozenset(range(1, len(spans) + 1, 2)))]


def sgd_in_backward_offer(graph: Graph, store: ParameterStore, target: Target) -> tuple[frozenset[str], str]:
    """The parameters a train_sgd plan may update inside backward, or why none."""
    if target.gemm is None:
        return frozenset(), target.gemm_status
    if graph.l2:
        return frozenset(), "the l2 term reads the weights after backward"
    return frozenset(store.trainable_names()), ""


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
    capacity) would exceed the memory limit (`max_bytes=`, or graphnet.system.limits)."""
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
