"""The vocabulary ops use to tell the compiler how they run.

An op's `forward(node, ctx)` and `backward(node, ctx)` hooks return a list of
`Step`s: a function plus symbolic `Ref`s to the arrays it reads and writes.
The compiler collects the steps of every node into one schedule, computes each
buffer's lifetime from the refs, packs the buffers into one arena, and binds
the refs to array views. A hook sees no array: it gets the node's values (shapes),
the target (kernels, switches) and the dropout generator through its context, and
names arrays only by refs.

A forward hook may instead return `ALIAS`: its output is its first input,
viewed with the node's own shape (flatten, identity, dropout in eval mode).
Such a node costs nothing at run time and its gradient is its input's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, Protocol

Shape = tuple[int, ...]

RefKind = Literal[
    "input",  # a network input, supplied by the caller on each run
    "label",  # a label array, supplied by the caller
    "value",  # a node's output (batch-shaped, planned)
    "grad",  # the gradient of a value (batch-shaped, planned)
    "saved",  # scratch an op keeps from forward to backward (batch-shaped, planned)
    "param",  # a parameter view into the flat parameter buffer
    "param_grad",  # its gradient view into the flat gradient buffer
    "state",  # persistent non-trainable arrays (batchnorm running stats)
    "fixed",  # per-node scratch whose size does not depend on the batch
    "param_span",  # adjacent parameters as one 1-D view of the flat buffer, named "first..last"
    "grad_span",  # their gradients, the same span of the flat gradient buffer
]

BATCH_KINDS = frozenset({"input", "label", "value", "grad", "saved"})
PLANNED_KINDS = frozenset({"value", "grad", "saved"})  # the batch kinds a plan keeps in its arena


@dataclass(frozen=True)
class Ref:
    """A symbolic array: `kind` and `name` say which buffer; `shape` is the
    per-example shape to view it with (batch kinds) or the full shape (others)."""

    kind: RefKind
    name: str
    shape: Shape

    @property
    def batched(self) -> bool:
        return self.kind in BATCH_KINDS

    def __str__(self) -> str:
        if self.kind == "param_grad":  # fc1.W -> fc1.dW
            node, _, local = self.name.rpartition(".")
            return f"{node}.d{local}"
        if self.kind in ("param_span", "grad_span"):  # [fc1.W..fc2.W], d[fc1.W..fc2.W]
            return f"{'d' if self.kind == 'grad_span' else ''}[{self.name}]"
        prefix = {"grad": "d", "saved": "~"}.get(self.kind, "")
        return f"{prefix}{self.name}"


@dataclass(frozen=True)
class Step:
    """One call of the plan: `fn(*arrays)` where `arrays` are the bound `args`.

    - `writes`: indices of `args` the step writes (all others are read).
    - `inplace`: (read index, write index) pairs whose buffers may be the same
      array; the planner merges them only when the read buffer dies here.
    - `fn_inplace`: used instead of `fn` when every pair in `inplace` was
      merged (for example a copy that becomes a no-op).
    - `returns_loss`: the step returns a float to add to the loss.
    - `kernel`: a short label for the plan printer.
    """

    node: str
    kernel: str
    fn: Callable[..., Any]
    args: tuple[Ref | None, ...]
    writes: frozenset[int] = frozenset()
    inplace: tuple[tuple[int, int], ...] = ()
    fn_inplace: Callable[..., Any] | None = None
    returns_loss: bool = False


# The one-element array a plan's SGD-in-backward steps read the learning rate from
# (what `LowerContext.update_in_backward` hands an op).
SGD_LEARNING_RATE = Ref("fixed", "(sgd).learning_rate", (1,))

# The one-element int64 array a plan's steps read the parameters' version from
# (`ParameterStore.version`): a step that keeps a derived copy of a parameter
# (a packed weight) refreshes it when the version moved.
PARAMS_VERSION = Ref("fixed", "(params).version", (1,))


class _Alias:
    """Marker returned by a forward hook whose output is a view of its input."""

    def __repr__(self) -> str:
        return "ALIAS"


ALIAS = _Alias()


class LowerContext(Protocol):
    """What an op's hooks may ask the compiler for (see `graphnet.compiler`)."""

    mode: Literal["train", "eval"]
    target: Any  # the graphnet.ops.target.Target compiled for: kernel switches, threads, ...
    kernels: Any  # the kernel backend (target.kernels): attributes named as in graphnet.kernels.KERNEL_NAMES
    dtype: Any  # numpy dtype of float buffers (target.dtype)
    rng: Any  # numpy Generator for dropout masks
    inputs: list[Any]  # graphnet.ops.base.Value of each input, per example
    output: Any  # the node's output Value

    def x(self, k: int, shape: Shape | None = None) -> Ref: ...
    def y(self, shape: Shape | None = None) -> Ref: ...
    def dx(self, k: int, shape: Shape | None = None) -> Ref | None: ...
    def dy(self, shape: Shape | None = None) -> Ref: ...
    def param(self, name: str) -> Ref: ...
    def param_grad(self, name: str) -> Ref: ...
    def state(self, name: str) -> Ref: ...
    def saved(self, name: str, shape: Shape) -> Ref: ...
    def fixed(self, name: str, shape: Shape) -> Ref: ...
    def update_in_backward(self, name: str) -> Ref | None:
        """The learning-rate ref when this plan lets the op apply SGD to param `name`
        inside its backward step (it must then update the param instead of writing
        its gradient, after every read of the old value); otherwise None."""
    def at_b_update(self) -> Callable[..., None]:
        """A GEMM kernel `(A, B, C, alpha, beta)` on the target's GEMM (`target.at_b_update()`):
        C = beta * C + alpha * A.T @ B in place, for the update `update_in_backward` offered.
        A: (K, M), B: (K, N), C: (M, N), C-contiguous arrays of the plan's dtype; leading-row
        views of the batch buffers are fine. Each call returns a kernel of its own (it
        keeps the arrays of its last call), so an op asks once per step."""


@dataclass
class FusionDecision:
    """A fusion that fired, or did not and why (printed by `plan.describe()`)."""

    rule: str
    nodes: tuple[str, ...]
    fired: bool
    reason: str = ""

    def __str__(self) -> str:
        joined = " + ".join(self.nodes)
        return f"{self.rule}: {joined} fused" if self.fired else f"{self.rule}: {joined} not fused ({self.reason})"
