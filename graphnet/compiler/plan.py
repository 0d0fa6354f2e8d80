"""A compiled plan: steps bound to preallocated arrays.

Every batch-shaped buffer is a region of one arena sized for `capacity`
examples; a batch of n <= capacity runs on the leading n rows of the same
regions (the step list for each n is bound once and cached), so running a
plan allocates no arrays. Inputs and labels are the caller's arrays, checked
for dtype, shape and layout on every call.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from ..errors import PlanError, did_you_mean
from ..ops.lowering import PARAMS_VERSION, PLANNED_KINDS, SGD_LEARNING_RATE, FusionDecision, Ref, Step
from .batch_checks import INT64, as_class_labels, as_dtype, check_batch_labels
from .parameters import ParameterStore

if TYPE_CHECKING:  # the compiler builds plans: at run time this module does not import it
    from . import MemoryPlan, PlanKind, Schedule
    from .updates import RuleSlot

BoundStep = tuple[Callable[..., Any], list[Any], bool]


@dataclass
class Binding:
    """The steps bound for one batch size; `patches` are the input/label slots filled per call.
    `steps[:forward_count]` are the forward steps (with their poison fills)."""

    steps: list[BoundStep]
    patches: list[tuple[list[Any], int, Ref]]
    forward_count: int


def debug_poison_default() -> bool:
    return os.environ.get("GRAPHNET_DEBUG_PLAN", "") not in ("", "0")


class Plan:
    """Forward (and in train mode backward) steps over preallocated buffers; built by
    graphnet.compiler.build_plan, for one plan kind (graphnet.compiler.kinds)."""

    def __init__(
        self,
        schedule: Schedule,
        memory: MemoryPlan,
        store: ParameterStore,
        *,
        kind: PlanKind,
        capacity: int,
        dtype: np.dtype,
        backend: str,
        fusions: list[FusionDecision],
        extra_steps: list[Step],
        poison: bool = False,
        updates: RuleSlot | None = None,
        tick: Callable[[], None] = lambda: None,
    ):
        """A kind with an update ("sgd": the rate each run is given goes to the steps through
        SGD_LEARNING_RATE; "rule": the rule goes into `updates`) changes the parameters after
        forward, so `run` skips everything after forward when the loss is not finite. `tick` is
        called once per run (the target's: the contention governor of graphnet.runtime)."""
        self.schedule, self.memory, self.store, self.kind = schedule, memory, store, kind
        self.graph, self.mode = schedule.graph, schedule.mode
        self.capacity, self.dtype, self.backend = capacity, np.dtype(dtype), backend
        self.fusions, self.poison, self.tick = fusions, poison, tick
        self.steps: list[Step] = schedule.steps + extra_steps
        self._arena = _aligned_zeros(memory.arena_size * capacity, self.dtype)
        self._fixed = {
            ref.name: np.zeros(ref.shape, self.dtype)
            for step in self.steps for ref in step.args if ref is not None and ref.kind == "fixed"
        }
        self._bindings: dict[int, Binding] = {}
        self.input_shapes = {name: tuple(value.shape) for name, value in self.graph.inputs.items()}
        self.label_values = dict(self.graph.labels) if schedule.loss else {}
        self.bound_counts = 0  # how many batch sizes were bound (for tests and stats)
        self.updates_params = kind.update != "none"
        self._updates = updates
        self._learning_rate = self._fixed.get(SGD_LEARNING_RATE.name)
        # the weight gradients this plan never writes (each weight updated inside its backward GEMM)
        self.unwritten_grads: frozenset[str] = schedule.updated_params if kind.update == "sgd" else frozenset()
        if PARAMS_VERSION.name in self._fixed:
            self._fixed[PARAMS_VERSION.name] = store.version
        # A train-mode forward writes the running statistics: they are saved here before a
        # run and put back when the run fails, so a step changes them only when it succeeds.
        self._state_backup: np.ndarray | None = \
            np.empty_like(store.state) if self.mode == "train" and store.state.size else None
        self.min_batch, self._min_batch_node = min_batch(self.graph, self.mode)

    # ---- binding ----------------------------------------------------------------------------

    def buffer_view(self, kind: str, name: str, n: int) -> np.ndarray:
        """Planned buffer (kind, name) of `self.memory.buffers` for a batch of n, (n, elements per
        example), as the steps see it: what the last run left there (NaN once dead, in debug mode)."""
        buffer = self.memory.buffers[(kind, name)]
        start = buffer.offset * self.capacity
        return self._arena[start:start + n * buffer.size].reshape((n, buffer.size))

    def _planned_view(self, ref: Ref, n: int) -> np.ndarray:
        return self.buffer_view(ref.kind, ref.name, n).reshape((n, *ref.shape))

    def _resolve(self, ref: Ref, n: int) -> np.ndarray:
        if ref.kind in PLANNED_KINDS:
            return self._planned_view(ref, n)
        if ref.kind == "param":
            return self.store.view(ref.name)
        if ref.kind == "param_grad":
            return self.store.grad_view(ref.name)
        if ref.kind == "state":
            return self.store.state_view(ref.name)
        if ref.kind == "fixed":
            return self._fixed[ref.name]
        if ref.kind == "param_span":
            return self.store.values[self.store.span(ref.name)]
        if ref.kind == "grad_span":
            return self.store.grads[self.store.span(ref.name)]
        raise AssertionError(f"unresolvable ref {ref}")

    def bind(self, n: int) -> Binding:
        """The step list for a batch of n (cached)."""
        binding = self._bindings.get(n)
        if binding is not None:
            return binding
        steps: list[BoundStep] = []
        patches: list[tuple[list[Any], int, Ref]] = []
        dying = self._dying_storage() if self.poison else {}
        forward_count = 0
        for t, step in enumerate(self.steps):
            if t == self.schedule.n_forward:
                forward_count = len(steps)
            args: list[Any] = []
            for j, ref in enumerate(step.args):
                if ref is None:
                    args.append(None)
                elif ref.kind in ("input", "label"):
                    args.append(None)
                    patches.append((args, j, ref))
                else:
                    args.append(self._resolve(ref, n))
            merged = t in self.memory.merged_steps and step.fn_inplace is not None
            steps.append((step.fn_inplace if merged else step.fn, args, step.returns_loss))
            for region in dying.get(t, []):
                steps.append((_fill_nan, [self._arena[region]], False))
        if len(self.steps) <= self.schedule.n_forward:
            forward_count = len(steps)
        binding = Binding(steps, patches, forward_count)
        self._bindings[n] = binding
        self.bound_counts += 1
        return binding

    def _dying_storage(self) -> dict[int, list[slice]]:
        """step -> arena regions whose last reader is that step (poisoned after it in debug mode)."""
        groups: dict[int, tuple[int, int, int]] = {}
        for buffer in self.memory.buffers.values():
            first, last, size = groups.get(buffer.storage, (buffer.first, buffer.last, buffer.size))
            groups[buffer.storage] = (min(first, buffer.first), max(last, buffer.last), max(size, buffer.size))
        by_offset = {b.storage: b.offset for b in self.memory.buffers.values()}
        dying: dict[int, list[slice]] = {}
        for storage, (_, last, size) in groups.items():
            if last < len(self.schedule.steps):
                start = by_offset[storage] * self.capacity
                dying.setdefault(last, []).append(slice(start, start + size * self.capacity))
        return dying

    # ---- running ----------------------------------------------------------------------------

    def check_batch(self, inputs: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray] | None,
                    *, whole: bool = False) -> int:
        """The batch size of `inputs`, or PlanError naming expected vs actual.

        The common case (right type, dtype, shape and layout) costs a few
        attribute reads; anything else goes to the detailed checks. `whole`:
        a batch of any size (one to be run in chunks of the capacity).
        """
        n = -1
        dtype = self.dtype
        if len(inputs) != len(self.input_shapes):
            self._check_input_names(inputs)
        for name, shape in self.input_shapes.items():
            X = inputs.get(name)
            if not (X.__class__ is np.ndarray and X.dtype is dtype and X.shape[1:] == shape
                    and X.flags.c_contiguous and (n < 0 or X.shape[0] == n)):
                self._diagnose_input(inputs, name, shape, X, n)
            n = X.shape[0]  # type: ignore[union-attr]
        if n < self.min_batch:
            self._refuse_small_batch(n)
        if n > self.capacity and not whole:
            raise PlanError(f"batch of {n} exceeds this plan's capacity {self.capacity}")
        for name, value in self.label_values.items():
            y = labels.get(name) if labels is not None else None
            if value.kind == "classes" and y.__class__ is np.ndarray and y.dtype is INT64 \
                    and y.shape == (n,) and y.flags.c_contiguous:
                continue  # the loss kernels check the label range as they read it
            if y is None:
                raise PlanError(f"missing labels '{name}'")
            check_batch_labels(name, y, value, n, dtype)
        return n

    def _refuse_small_batch(self, n: int) -> None:
        if n == 0:
            raise PlanError("the batch is empty")
        node = self.graph.node(self._min_batch_node)  # type: ignore[arg-type]
        raise PlanError(f"{node.op} '{node.id}': training needs more than {self.min_batch - 1} example"
                        f"{'s' if self.min_batch > 2 else ''} per batch (got {n})")

    def admit(self, inputs: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray] | None, *,
              whole: bool = False) -> tuple[int, Mapping[str, np.ndarray], Mapping[str, np.ndarray] | None]:
        """(batch size, inputs, labels) as the kernels take them, or PlanError.

        Arrays of another numeric dtype are converted (copies, as Keras does):
        inputs and float targets to the plan's dtype, class labels of any integer
        dtype to int64. Batches that need no conversion are returned as given,
        after `check_batch`'s fast checks only.
        """
        try:
            return self.check_batch(inputs, labels, whole=whole), inputs, labels
        except PlanError as error:
            return self._admit_converted(inputs, labels, error, whole)

    def _admit_converted(self, inputs: Mapping[str, Any], labels: Mapping[str, Any] | None, error: PlanError,
                         whole: bool = False) -> tuple[int, Mapping[str, np.ndarray], Mapping[str, np.ndarray] | None]:
        """`admit` for a batch that failed the checks: converted and checked again, or `error`."""
        converted = self._converted(inputs, labels)
        if converted is None:
            raise error
        inputs, labels = converted
        return self.check_batch(inputs, labels, whole=whole), inputs, labels

    def _converted(self, inputs: Mapping[str, Any], labels: Mapping[str, Any] | None
                   ) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
        """New mappings with every convertible array converted, or None when nothing is."""
        new_inputs = {name: as_dtype(f"input '{name}'", X, self.dtype) if name in self.input_shapes else X
                      for name, X in inputs.items()}
        new_labels = None if labels is None else dict(labels)
        if new_labels is not None:
            for name, value in self.label_values.items():
                if name in new_labels:
                    y = new_labels[name]
                    new_labels[name] = as_class_labels(name, y) if value.kind == "classes" \
                        else as_dtype(f"targets '{name}'", y, self.dtype)
        changed = any(new_inputs[k] is not inputs[k] for k in inputs) or \
            (labels is not None and any(new_labels[k] is not labels[k] for k in labels))  # type: ignore[index]
        return (new_inputs, new_labels) if changed else None

    def _check_input_names(self, inputs: Mapping[str, Any]) -> None:
        """PlanError naming the first input the network does not have (with the closest name)."""
        for name in inputs:
            if name in self.graph.labels:
                raise PlanError(f"'{name}' is a label, not an input: pass labels separately "
                                f"(inputs: {', '.join(self.input_shapes)})")
            if name not in self.input_shapes:
                raise PlanError(f"unknown input '{name}'{did_you_mean(str(name), self.input_shapes)} "
                                f"(inputs: {', '.join(self.input_shapes)})")

    def _diagnose_input(self, inputs: Mapping[str, Any], name: str, shape: tuple[int, ...], X: Any, n: int) -> None:
        """The PlanError for an input that failed the fast check (returns if it is fine after all)."""
        expected = f"{self.dtype.name} array of shape (N, {', '.join(map(str, shape))})"
        if X is None:
            self._check_input_names(inputs)
            raise PlanError(f"missing input '{name}' (expected a {expected})")
        if not isinstance(X, np.ndarray):
            raise PlanError(f"input '{name}': expected a {expected}, got {type(X).__name__}")
        if X.dtype != self.dtype:
            raise PlanError(f"input '{name}': expected {self.dtype.name}, got {X.dtype.name} "
                            f"(convert with X.astype(np.{self.dtype.name}))")
        if X.shape[1:] != shape or X.ndim != len(shape) + 1:
            raise PlanError(f"input '{name}': expected a {expected}, got shape {X.shape}")
        if not X.flags.c_contiguous:
            raise PlanError(f"input '{name}': expected a C-contiguous array (use np.ascontiguousarray(X))")
        if n >= 0 and X.shape[0] != n:
            raise PlanError(f"input '{name}' has {X.shape[0]} rows but another input has {n}")

    def _bind_batch(self, n: int, inputs: Mapping[str, np.ndarray],
                    labels: Mapping[str, np.ndarray] | None) -> Binding:
        """The binding for n, with this call's inputs and labels in their slots."""
        binding = self.bind(n)
        for args, j, ref in binding.patches:
            source = inputs[ref.name] if ref.kind == "input" else labels[ref.name]  # type: ignore[index]
            args[j] = source if source.shape[1:] == ref.shape else source.reshape((n, *ref.shape))
        return binding

    def run(self, inputs: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray] | None = None,
            update: Any = None, *, checked_n: int | None = None) -> float:
        """Run every step on the batch; returns the loss (0.0 when the plan has none).

        `update` is what the kind's update needs: the learning rate (a float) for an
        "sgd" plan, a graphnet.compiler.updates.UpdateRule for a "rule" plan, None
        otherwise (PlanError for anything else).
        All or nothing for the persistent state: when the loss is not finite, or a
        step raises, the running statistics are restored to their values before the run.
        """
        if update.__class__ is float and self._learning_rate is not None:  # an SGD step: the hot path
            self._learning_rate[0] = update
        elif update is not None or self.updates_params:
            self._take_update(update)
        if checked_n is not None:
            n = checked_n
        else:
            try:
                n = self.check_batch(inputs, labels)
            except PlanError as error:  # admit(), inlined: this is the training hot path
                n, inputs, labels = self._admit_converted(inputs, labels, error)
        binding = self._bind_batch(n, inputs, labels)
        if self.mode == "train":  # its steps (SGD in backward, updates) may change the parameters
            self.store.touch()
        elif self.store.shared:  # a user holds a parameter view: it may have been written through
            self.store.touch_if_shared()
        backup = self._state_backup
        if backup is None:
            return self._run_binding(binding, labels, n)
        np.copyto(backup, self.store.state)
        try:
            loss = self._run_binding(binding, labels, n)
        except BaseException:
            np.copyto(self.store.state, backup)
            raise
        if not math.isfinite(loss):
            np.copyto(self.store.state, backup)
        return loss

    def _take_update(self, update: Any) -> None:
        """Hand this run's update to the steps (see `run`), or PlanError naming what was expected."""
        kind = self.kind.update
        if kind == "sgd" and isinstance(update, (int, float, np.integer, np.floating)) and not isinstance(update, bool):
            if self._learning_rate is not None:  # else no parameters to update
                self._learning_rate[0] = update
        elif kind == "rule" and callable(getattr(update, "kernel", None)):
            self._updates.install(update)  # type: ignore[union-attr]
        else:
            expected = {"sgd": "a learning rate", "rule": "an UpdateRule", "none": "no update"}[kind]
            raise PlanError(f"a {self.kind.name} plan runs with {expected}, got {update!r}")

    def _run_binding(self, binding: Binding, labels: Mapping[str, np.ndarray] | None, n: int) -> float:
        steps, forward_count = binding.steps, binding.forward_count
        self.tick()
        try:
            if not self.updates_params:
                return run_steps(steps, 0, len(steps))
            # the backward steps update parameters: run them only when the loss is finite
            loss = run_steps(steps, 0, forward_count)
            if not math.isfinite(loss):
                return loss
            return loss + run_steps(steps, forward_count, len(steps))
        except ValueError as error:  # the loss kernels refuse labels outside [0, classes)
            self._diagnose_label_range(labels, n, error)
            raise

    def _diagnose_label_range(self, labels: Mapping[str, np.ndarray] | None, n: int, error: Exception) -> None:
        for name, value in self.label_values.items():
            y = labels[name] if labels is not None else None
            if value.kind == "classes" and y is not None and n and (y.min() < 0 or y.max() >= value.classes):
                raise PlanError(f"labels '{name}': values must be in [0, {value.classes}), "
                                f"got [{y.min()}, {y.max()}]") from error

    def output(self, name: str, n: int, inputs: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """A view of output `name` for the last batch of n (overwritten by the next run).

        An output that is a view of a network input (flatten, identity, or dropout
        in eval mode, of an input) is read from `inputs`, the batch just run."""
        ref = self.schedule.outputs[name]
        if ref.kind in PLANNED_KINDS:
            return self._planned_view(ref, n)
        if ref.kind == "input" and inputs is not None:
            return inputs[ref.name].reshape((n, *ref.shape))
        raise PlanError(f"output '{name}' is the network input '{ref.name}' itself")

    def first_nonfinite(self, inputs: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray] | None) -> str | None:
        """Run the forward steps one by one; the first node whose output is not finite, if any.
        The running statistics are left as they were (this is a diagnosis, not a step)."""
        saved = self.store.state.copy()
        try:
            return self._first_nonfinite(inputs, labels)
        finally:
            np.copyto(self.store.state, saved)

    def _first_nonfinite(self, inputs: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray] | None) -> str | None:
        n, inputs, labels = self.admit(inputs, labels)
        binding = self._bind_batch(n, inputs, labels)
        for name, X in inputs.items():
            if not np.isfinite(X).all():
                return f"input '{name}'"
        forward = self.schedule.n_forward
        index = 0
        for step in self.steps[:forward]:
            while binding.steps[index][0] is _fill_nan:
                index += 1
            fn, args, returns_loss = binding.steps[index]
            index += 1
            result = fn(*args)
            if returns_loss and not np.isfinite(result):
                return f"{step.node} (the loss)"
            for j in step.writes:
                ref = step.args[j]
                if ref is not None and ref.kind == "value" and not np.isfinite(args[j]).all():
                    return step.node
        return None

    # ---- description ------------------------------------------------------------------------

    def arena_bytes(self) -> int:
        return self._arena.nbytes

    def naive_bytes(self) -> int:
        return self.memory.naive_size() * self.capacity * self.dtype.itemsize

    def describe(self) -> str:
        """Steps, buffers and bytes (planned vs naive), and the fusion decisions."""
        from .describe import describe_plan

        return describe_plan(self)


def min_batch(graph: Any, mode: str) -> tuple[int, str | None]:
    """The fewest examples a batch of a `mode` plan may have, and the node that needs them."""
    if mode != "train":
        return 1, None
    needs = [(node.record.min_train_batch, node.id) for node in graph.nodes]
    fewest, node = max(needs, default=(1, None), key=lambda need: need[0])
    return (fewest, node) if fewest > 1 else (1, None)


def run_steps(steps: list[BoundStep], start: int, stop: int) -> float:
    """Call steps[start:stop] in order; the sum of what the loss steps return."""
    loss = 0.0
    for t in range(start, stop):
        fn, args, returns_loss = steps[t]
        if returns_loss:
            loss += fn(*args)
        else:
            fn(*args)
    return loss


def _fill_nan(region: np.ndarray) -> None:
    region.fill(np.nan)


def _aligned_zeros(size: int, dtype: np.dtype, alignment: int = 64) -> np.ndarray:
    """A zeroed 1-D array whose data starts on an `alignment`-byte boundary."""
    raw = np.zeros(size * dtype.itemsize + alignment, np.uint8)
    start = (-raw.ctypes.data) % alignment
    return raw[start:start + size * dtype.itemsize].view(dtype)
