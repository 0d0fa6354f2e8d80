"""Network: a spec compiled into plans over one set of parameters, the runtime of
graphnet.model.compiled.CompiledNetwork (which adds the model record, predictions on raw
inputs and saving).

    net = Network(spec, batch_size=128, dtype="float32", backend="numba", seed=0)
    scores = net.forward(X)            # eval mode: dropout off, batchnorm running stats
    loss, grads = net.loss(X, y)       # train mode; the homework Solver's contract
    scores = net.loss(X)               # no labels: scores (eval mode), as in the homework
    loss = net.step(X, y, 0.1)         # one training step: forward, backward, an SGD update

The network's Target (graphnet.ops.target: backend, dtype, threads, kernel
switches, GEMM) is resolved once, here, from the arguments and the settings in
effect (graphnet.runtime.config). The compiler (`graphnet.compiler.build_plan`) builds
the plans on it; this runtime asks for them lazily per (kind, capacity) and
caches them. A batch larger than the capacity compiles a bigger plan (logged,
counted in `net.stats`); smaller batches run on views of the same buffers.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping

import numpy as np

from ..compiler import PLAN_KINDS, PlanKind, PlanSpec, UpdateRule, build_plan, check_memory, plan_graph, plan_kind
from ..compiler.graph import Graph, build_graph, frozen_params
from ..compiler.parameters import ArrayView, ParameterStore
from ..compiler.plan import Plan, debug_poison_default
from ..errors import PlanError
from ..ops.lowering import FusionDecision
from ..ops.target import Target
from ..spec import NetworkSpec, RunSpec, load
from .backends import kernel_backend
from .config import resolve_target
from .fast_forward import FastForward, bind_fast_forward
from .threads import apply_default_threads_once

log = logging.getLogger("graphnet")


@dataclass
class NetworkStats:
    """Counters a user (or a test) can read to see what the runtime did."""

    plans_compiled: int = 0
    plans: list[tuple[str, int]] = field(default_factory=list)  # (kind, capacity) of every plan compiled
    fast_forwards: int = 0  # input shapes bound for forward's hot path (graphnet.runtime.fast_forward)
    replans: list[str] = field(default_factory=list)  # the reason of every capacity growth


class Network:
    """A network compiled for the CPU: parameters in one flat buffer, plans per mode.

    `target`: compile for this graphnet.ops.target.Target instead of the one resolved from
    `backend`, `dtype` (default float32) and the settings in effect (graphnet.runtime.config);
    `backend` and `dtype`, when given too, must agree with it. `freeze`: parameter names or
    node ids whose parameters training keeps fixed, besides the nodes with `"trainable": false`
    (SpecError for a name that is neither)."""

    def __init__(self, spec: NetworkSpec, *, batch_size: int = 128, dtype: Any = None,
                 backend: str | None = None, seed: int | None = 0, fuse: bool = True,
                 share_memory: bool = True, debug_poison: bool | None = None, max_bytes: int | None = None,
                 target: Target | None = None, freeze: Iterable[str] = ()):
        spec = network_spec(spec)
        apply_default_threads_once()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.spec = spec
        if dtype is not None:
            wanted = np.dtype(dtype)
        else:
            wanted = np.dtype(np.float32) if target is None else target.dtype
        if wanted not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {wanted.name}")
        if target is None:
            target = resolve_target(kernel_backend(backend), wanted)
        elif wanted != target.dtype or backend not in (None, target.backend):
            given = f"dtype {wanted.name}" if wanted != target.dtype else f"backend {backend}"
            raise ValueError(f"{given} disagrees with the target ({target.dtype.name}, {target.backend} kernels)")
        self._target = target
        self.dtype, self.backend = target.dtype, target.backend
        self.seed = seed
        self.capacity = batch_size
        self.fuse_ops, self.share_memory = fuse, share_memory
        self.debug_poison = debug_poison_default() if debug_poison is None else debug_poison
        self.graph: Graph = build_graph(spec)
        self._input_names, self._label_names = list(self.graph.inputs), list(self.graph.labels)
        check_memory(self.graph, self.dtype, batch_size, max_bytes)
        self.store = ParameterStore(self.graph, self.dtype, frozen_params(spec, self.graph, freeze))
        self.rng = np.random.default_rng(seed)
        self.store.initialize(self.rng)
        self.dropout_rng = np.random.default_rng(self.rng.integers(2**63))
        self.stats = NetworkStats()
        self._plans: dict[tuple[str, int], Plan] = {}
        self._fast_forwards: dict[tuple[tuple[int, ...], str | None], FastForward] = {}  # see forward()
        self._hot_plans: dict[str, Plan] = {}  # the last plan of each training kind, for the hot path
        self._unwritten_grads: frozenset[str] = frozenset()  # weight gradients the last step did not write
        self._params = ArrayView(self.store.names(), self.store.user_view, "parameter")
        self._grads = ArrayView(self.store.names(), self._grad_view, "gradient")
        self._state = ArrayView(list(self.store.state_slots), self.store.state_view, "state array")

    @property
    def target(self) -> Target:
        """What the network was compiled for (graphnet.ops.target): fixed for its lifetime."""
        return self._target

    @property
    def kernels(self) -> Any:
        """The kernel backend the network runs (its target's)."""
        return self._target.kernels

    # ---- plans ------------------------------------------------------------------------------

    def plan(self, kind: PlanKind | str = "train", batch_size: int | None = None) -> Plan:
        """The plan of `kind` (a graphnet.compiler.PLAN_KINDS name or record) able to run
        `batch_size` examples (compiled on first use); PlanError for an unknown kind."""
        kind = plan_kind(kind)
        n = batch_size or self.capacity
        capacity = max(n, self.capacity)
        for (name, cap), plan in self._plans.items():
            if name == kind.name and cap >= n:
                return plan
        if n > self.capacity:
            reason = f"{kind} plan: batch of {n} exceeds capacity {self.capacity}"
            log.info("graphnet: compiling a larger plan (%s)", reason)
            self.stats.replans.append(reason)
        spec = PlanSpec(kind, capacity, fuse=self.fuse_ops, share_memory=self.share_memory, poison=self.debug_poison)
        plan = build_plan(self.graph, spec, self._target, store=self.store, rng=self.dropout_rng)
        self.stats.plans_compiled += 1
        self.stats.plans.append((kind.name, capacity))
        self._plans[(kind.name, capacity)] = plan
        return plan

    # ---- running ----------------------------------------------------------------------------

    def _inputs(self, X: Any) -> dict[str, np.ndarray]:
        return self._by_name(X, self._input_names, "inputs")

    def _labels(self, y: Any) -> dict[str, np.ndarray]:
        return self._by_name(y, self._label_names, "labels")

    def _by_name(self, value: Any, names: list[str], what: str) -> dict[str, np.ndarray]:
        """A dict as given, or a single array under the network's only input/label name."""
        if isinstance(value, Mapping):
            return dict(value)
        if len(names) != 1:
            raise PlanError(f"network '{self.graph.name}' has {what} {names}: pass a dict")
        return {names[0]: value}

    def forward(self, X: Any, output: str | None = None,
                batch_size: int | None = None) -> np.ndarray | dict[str, np.ndarray]:
        """Eval-mode outputs for a batch of any size: X: (N, *input shape) -> (N, *output shape).

        With one output (or `output=` naming one): that array. With several: a dict
        {output name: array}, in the spec's order. Inputs of another numeric dtype
        are converted to the network's. Returns new arrays (the plan's buffers are
        reused by the next call). Large batches run in chunks of `batch_size`
        (default: the capacity). A repeated call on an array of the same shape,
        dtype and layout takes the hot path (graphnet.runtime.fast_forward).
        """
        if batch_size is None and X.__class__ is np.ndarray:
            fast = self._fast_forwards.get((X.shape, output))
            if fast is not None and X.dtype is self.dtype and X.flags.c_contiguous:
                return fast(X)
        return self._forward_general(X, output, batch_size)

    def _forward_general(self, X: Any, output: str | None = None,
                         batch_size: int | None = None) -> np.ndarray | dict[str, np.ndarray]:
        """`forward` without the hot path: checks, converts and binds on every call; a batch
        it ran as given is bound for the hot path (graphnet.runtime.fast_forward) for the next call."""
        inputs = self._inputs(X)
        names = self._output_names(output)
        plan = self.plan("infer", min(max(_rows(inputs), 1), batch_size or self.capacity))
        total, checked, _ = plan.admit(inputs, None, whole=True)
        if total <= plan.capacity:
            plan.run(checked, None, checked_n=total)
            results = {name: plan.output(name, total, checked).copy() for name in names}
            if batch_size is None and checked is inputs and X.__class__ is np.ndarray:
                self._bind_fast_forward(plan, X.shape, output, names)
        else:
            results = _forward_in_chunks(plan, checked, names, total)
        return results[names[0]] if len(names) == 1 else results

    def _bind_fast_forward(self, plan: Plan, shape: tuple[int, ...], output: str | None, names: list[str]) -> None:
        fast = bind_fast_forward(plan, shape[0], names, single=len(names) == 1)
        if fast is not None:
            self._fast_forwards[(shape, output)] = fast
            self.stats.fast_forwards += 1

    def _output_names(self, output: str | None) -> list[str]:
        if output is None:
            return list(self.graph.outputs)
        if output not in self.graph.outputs:
            raise PlanError(f"'{output}' is not an output (outputs: {', '.join(self.graph.outputs)})")
        return [output]

    def loss(self, X: Any, y: Any = None):
        """With labels: (loss, grads) in train mode, grads a fresh dict of arrays.
        Without labels: the scores of the first output (eval mode), as the homework models do."""
        if y is None:
            return self.forward(X, output=self.graph.outputs[0])
        loss = self.step(X, y)
        grads = self.store.grads.copy()
        return loss, {name: grads[slot.start:slot.stop].reshape(slot.shape) for name, slot in self.store.slots.items()}

    def step(self, X: Any, y: Any, update: float | UpdateRule | None = None) -> float:
        """One training step on a batch: forward and backward in train mode, then `update`;
        returns the loss before the update. Allocation-free once the batch size was seen.

        - None: no update; the gradients land in `net.grads` (l2 term included).
        - a learning rate (float): plain SGD, params -= rate * grads. Each weight whose op
          can (affine) is updated inside its backward GEMM, W = W - rate * X.T @ dY, so its
          gradient is never written (`net.grads` refuses it until a step writes it again);
          the other parameters are updated after backward, from their gradients.
        - an UpdateRule (graphnet.compiler.UpdateRule: a kernel, its state buffers, this
          step's hyperparameters; what gn.Optimizer passes): each parameter is updated right
          after the backward step that writes its gradient, while that gradient is still in
          cache; the gradients stay readable in `net.grads` (l2 term included).

        On a non-finite loss nothing after forward runs: no gradient is written, nothing is
        updated, the running statistics are restored, and the loss is returned.
        PlanError for a malformed batch or an `update` of none of these kinds.
        """
        if update is None:
            kind = _TRAIN
        elif update.__class__ is not float and isinstance(update, UpdateRule):
            kind = _TRAIN_UPDATE
        else:
            kind = _TRAIN_SGD
        inputs = X if X.__class__ is dict else self._inputs(X)
        labels = y if y.__class__ is dict else self._labels(y)
        n = _rows(inputs)
        plan = self._hot_plans.get(kind.name)
        if plan is None or n > plan.capacity:
            plan = self._hot_plans[kind.name] = self.plan(kind, n)
        self._unwritten_grads = plan.unwritten_grads
        return plan.run(inputs, labels, update)

    def _grad_view(self, name: str) -> np.ndarray:
        if name in self._unwritten_grads:
            raise PlanError(f"the gradient of '{name}' was not computed: the last step was an SGD step "
                            "that updated it inside backward; call net.step(X, y) or net.loss(X, y) "
                            "for gradients (or use Optimizer(..., fuse_update=False))")
        return self.store.grad_view(name)

    def check_grads_materialized(self) -> None:
        """PlanError if the last step left some weight gradients unwritten (an SGD step, see `step`)."""
        if self._unwritten_grads:
            self._grad_view(sorted(self._unwritten_grads)[0])

    def evaluate_loss(self, X: Any, y: Any, mode: Literal["eval", "train"] = "eval") -> float:
        """The loss without gradients, in eval mode (dropout off, running stats) or train mode."""
        inputs, labels = self._inputs(X), self._labels(y)
        n = _rows(inputs)
        return self.plan("eval_loss" if mode == "eval" else "train_loss", n).run(inputs, labels)

    def first_nonfinite(self, X: Any, y: Any) -> str | None:
        """The first node whose train-mode output is not finite on this batch (diagnostics)."""
        inputs, labels = self._inputs(X), self._labels(y)
        n = _rows(inputs)
        return self.plan("train", n).first_nonfinite(inputs, labels)

    # ---- parameters and state ---------------------------------------------------------------

    @property
    def params(self) -> ArrayView:
        """Named views of the parameters (`net.params["fc1.W"]`); assignment copies in."""
        return self._params

    @params.setter
    def params(self, values: Mapping[str, np.ndarray]) -> None:
        self._params.update_from(values)

    @property
    def grads(self) -> ArrayView:
        """Named views of the gradients of the last train step."""
        return self._grads

    @property
    def state(self) -> ArrayView:
        """Named views of the persistent state (batchnorm running statistics)."""
        return self._state

    @property
    def num_params(self) -> int:
        return self.store.size

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and state array, by name."""
        result = {name: self.store.view(name).copy() for name in self.store.names()}
        result.update({name: self.store.state_view(name).copy() for name in self.store.state_slots})
        return result

    def load_state_dict(self, values: Mapping[str, np.ndarray], strict: bool = True) -> None:
        """Copy arrays in by name; `strict` requires exactly this network's names,
        otherwise missing names keep their values and unknown names are ignored (as PyTorch)."""
        expected = set(self.store.names()) | set(self.store.state_slots)
        if strict and set(values) != expected:
            missing, unexpected = sorted(expected - set(values)), sorted(set(values) - expected)
            raise ValueError(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
        for name, value in values.items():
            if name not in expected:
                continue
            target = self.store.view(name) if name in self.store.slots else self.store.state_view(name)
            value = np.asarray(value)
            if value.shape != target.shape:
                raise ValueError(f"'{name}' has shape {target.shape}, got {value.shape}")
            np.copyto(target, value, casting="same_kind")

    def fusion_decisions(self, kind: PlanKind | str = "train") -> list[FusionDecision]:
        """The fusions that fired (or did not, and why) in a plan of `kind`."""
        return plan_graph(self.graph, kind, self.fuse_ops).decisions

    def describe(self, kind: PlanKind | str = "train") -> str:
        return self.plan(kind).describe()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}('{self.graph.name}', {self.num_params:,} params, {self.dtype.name}, "
                f"backend={self.backend}, capacity={self.capacity})")


_TRAIN, _TRAIN_SGD, _TRAIN_UPDATE = PLAN_KINDS["train"], PLAN_KINDS["train_sgd"], PLAN_KINDS["train_update"]


def network_spec(spec: Any) -> NetworkSpec:
    """The NetworkSpec of what compile() was given: a NetworkSpec or RunSpec, a spec
    document (dict), or a spec file path (or zoo name); SpecError if it is invalid."""
    if isinstance(spec, (Mapping, str, Path)):
        spec = load(spec)
    if isinstance(spec, RunSpec):
        spec = spec.network
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"compile() takes a NetworkSpec, RunSpec, spec dict or spec file path, "
                        f"got {type(spec).__name__}")
    return spec


def _forward_in_chunks(plan: Plan, inputs: Mapping[str, np.ndarray], names: list[str],
                       total: int) -> dict[str, np.ndarray]:
    """The outputs `names` of a checked batch of `total` rows, run `plan.capacity` rows at a time."""
    results: dict[str, np.ndarray] = {}
    for start in range(0, total, plan.capacity):
        chunk = {k: v[start:start + plan.capacity] for k, v in inputs.items()}
        n = len(next(iter(chunk.values())))
        plan.run(chunk, None, checked_n=n)
        for name in names:
            out = plan.output(name, n, chunk)
            if name not in results:
                results[name] = np.empty((total, *out.shape[1:]), plan.dtype)
            results[name][start:start + n] = out
    return results


def _rows(inputs: Mapping[str, Any]) -> int:
    """The batch size the caller meant, to pick a plan; the plan's `check_batch` then
    rejects anything malformed (a list, a scalar, a missing input) with a PlanError."""
    for X in inputs.values():
        if isinstance(X, np.ndarray) and X.ndim >= 1:
            return X.shape[0]
    return 1
