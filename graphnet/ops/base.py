"""What every op record holds, and the base of every node model.

An op is one record in the registry (`graphnet.ops.OPS`): its node model (the
spec fields), how many inputs it takes, how its output shape follows from its
inputs, which parameters it declares, how it runs forward and backward (for
the compiler), its plain-NumPy reference forward and its example networks
(for the table-driven tests). The spec parser, validator, graph builder and
lowering read this table and know no op by name; the memory planner and the
plan printer read what the hooks return (steps, their refs and in-place pairs),
not the table. The fusion rules (`graphnet.compiler.fusion_rules`) name the
producer/consumer pairs they rewrite, and `graphnet.ops.tasks` the binary loss.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import TYPE_CHECKING, Annotated, Any, Callable, Literal, Mapping

import numpy as np
from pydantic import Field, model_serializer

from ..kernels.codes import ACTIVATION_CODES
from ..specmodel import NodeId, SpecModel

if TYPE_CHECKING:
    from .examples import OpExample
    from .lowering import LowerContext, Step

Shape = tuple[int, ...]

# Sizes are bounded by what a machine could hold (graphnet.system.limits), not by a fixed cap;
# this bound only keeps index arithmetic in int32 range.
MAX_UNITS = (1 << 31) - 1
MAX_DIM = 1 << 24

# Initializers a spec may name (graphnet.ops.initializers implements them, plus "ones").
Initializer = Literal["xavier_uniform", "xavier_normal", "he_uniform", "he_normal", "normal", "zeros"]
INITIALIZERS: tuple[str, ...] = Initializer.__args__  # type: ignore[attr-defined]

# Activations an affine node may run as its epilogue: the names of the kernels' codes.
Activation = Literal[tuple(ACTIVATION_CODES)]  # type: ignore[valid-type]


class NodeModel(SpecModel):
    """Fields every node has: `id`, `inputs` (ids of inputs, labels or nodes) and `trainable`
    (false: training keeps the node's parameters fixed)."""

    id: NodeId
    inputs: list[Annotated[str, Field(min_length=1, max_length=64)]]
    trainable: bool = Field(True, description="false: training keeps this node's parameters fixed (fine-tuning)")

    @model_serializer(mode="wrap")
    def _op_always(self, handler: Any) -> Any:
        # `op` has a default (so Python code need not repeat it) but is the union's
        # tag: keep it in every dump, right after the id, even with exclude_defaults.
        data = handler(self)
        if isinstance(data, dict):
            return {"id": data.pop("id", self.id), "op": getattr(self, "op"), **data}
        return data


@dataclass(frozen=True)
class Value:
    """What the graph knows of a value, per example.

    `kind` is "float" for activations and float targets, "classes" for integer
    class labels (then `shape` is `()` and `classes` the number of classes).
    """

    shape: Shape
    kind: Literal["float", "classes"] = "float"
    classes: int = 0

    @property
    def size(self) -> int:
        """Elements per example."""
        return prod(self.shape)

    def describe(self) -> str:
        if self.kind == "classes":
            return f"labels in [0, {self.classes})"
        return str(self.shape)


@dataclass(frozen=True)
class ParamDecl:
    """A trainable parameter of a node: `name` is local (`W`); the graph prefixes the node id."""

    name: str
    shape: Shape
    init: str = "zeros"
    std: float = 0.0
    fan_in: int = 0
    fan_out: int = 0
    regularized: bool = False  # counted by the spec's l2 term (affine weights only)


@dataclass(frozen=True)
class StateDecl:
    """A non-trainable, persistent array of a node (batchnorm running stats, a loss's class
    weights): it starts as `values` (one per element, in C order) when given, else `fill`."""

    name: str
    shape: Shape
    fill: float = 0.0
    values: tuple[float, ...] | None = None


class ShapeError(Exception):
    """Raised by `infer_shape`; `slot` is the offending input's index, if one is to blame."""

    def __init__(self, message: str, slot: int | None = None):
        super().__init__(message)
        self.message = message
        self.slot = slot


@dataclass
class ReferenceContext:
    """What an op's reference forward may read besides its inputs (see `OpRecord.reference`).

    `params` and `state` hold this node's arrays by local name (`W`,
    `running_mean`), as float64; a train-mode reference may replace entries of
    `state` (batchnorm's running statistics). `rng` is the generator dropout
    draws its uniforms from, in topological order, as the compiled plan does.
    """

    mode: Literal["train", "eval"]
    params: Mapping[str, np.ndarray]
    state: dict[str, np.ndarray]
    rng: np.random.Generator | None = None


# reference(node, xs, ctx): xs[k] is input k of the batch, (N, *shape_k) float64
# (integer class labels: (N,) int). Returns the output (N, *shape), or a loss's float.
Reference = Callable[[Any, list[np.ndarray], ReferenceContext], Any]


def no_params(node: Any, inputs: list[Value]) -> list[ParamDecl]:
    return []


def no_state(node: Any, inputs: list[Value]) -> list[StateDecl]:
    return []


@dataclass(frozen=True)
class OpRecord:
    """One op: everything the rest of graphnet needs to know about it.

    - `model`: the pydantic node model (its `op` field is the tag).
    - `min_inputs` / `max_inputs` (None = unbounded).
    - `infer_shape(node, inputs) -> Value`: the output value per example, or ShapeError.
    - `params(node, inputs)` / `state(node, inputs)`: declarations.
    - `is_loss`: a loss op takes (scores, labels) and produces a scalar.
    - `label_kind`: for losses, "classes" (int labels) or "float" (targets).
    - `forward(node, ctx)` / `backward(node, ctx)`: the compiler's hooks (see
      `graphnet.ops.lowering`): steps over symbolic refs, or ALIAS for view ops.
      A loss computes its gradient in its forward step; its backward is empty.
    - `activation_code`: for an elementwise activation an affine can run as its
      epilogue, the kernels' code (`graphnet.kernels.codes`); the fusion table
      (`graphnet.compiler.fusion_rules`) fuses `affine -> op` for every op that has one.
    - `reference(node, xs, ctx)`: the op's math in plain float64 NumPy, straight
      from its definition (no kernels, no in-place tricks); the tests' reference
      interpreter (`tests/_support/reference.py`) checks compiled plans against it.
    - `examples`: small networks containing the op, by case name
      (`graphnet.ops.examples.OpExample`); the table-driven tests run each one.
    - `min_train_batch`: the fewest examples a train-mode batch may have
      (batchnorm: 2, as its batch statistics need more than one example).
    """

    name: str
    model: type[NodeModel]
    infer_shape: Callable[[Any, list[Value]], Value]
    min_inputs: int = 1
    max_inputs: int | None = 1
    params: Callable[[Any, list[Value]], list[ParamDecl]] = no_params
    state: Callable[[Any, list[Value]], list[StateDecl]] = no_state
    is_loss: bool = False
    label_kind: Literal["classes", "float"] | None = None
    min_train_batch: int = 1
    forward: "Callable[[Any, LowerContext], Any] | None" = field(default=None, compare=False)
    backward: "Callable[[Any, LowerContext], list[Step]] | None" = field(default=None, compare=False)
    activation_code: int | None = None
    reference: Reference | None = field(default=None, compare=False)
    examples: "Mapping[str, OpExample]" = field(default_factory=dict, compare=False)

    def arity_text(self) -> str:
        if self.max_inputs == self.min_inputs:
            return f"exactly {self.min_inputs} input{'s' if self.min_inputs != 1 else ''}"
        if self.max_inputs is None:
            return f"at least {self.min_inputs} inputs"
        return f"{self.min_inputs} to {self.max_inputs} inputs"


def same_shape(node: Any, inputs: list[Value]) -> Value:
    """Elementwise ops: the output has the input's shape."""
    return Value(inputs[0].shape)


def feature_vector(node: Any, inputs: list[Value], what: str) -> int:
    """The feature count of a 1-D per-example input, or ShapeError naming the shape."""
    shape = inputs[0].shape
    if len(shape) != 1:
        raise ShapeError(
            f"{what} expects a vector per example, got shape {shape}; add a 'flatten' node first", 0
        )
    return shape[0]
