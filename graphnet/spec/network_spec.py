"""The network models: a network's inputs, labels and nodes (`NetworkSpec`).

A NetworkSpec is checked completely when it is constructed, from JSON or from
Python: field types and ranges here, then references, arity, labels, cycles and
per-example shapes (`graphnet.spec.validation`).
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field, PrivateAttr, model_validator

from ..ops import OPS, NodeModel, Value
from ..ops.base import MAX_DIM
from ..specmodel import NodeId, SpecModel
from .validation import check_network

SCHEMA_VERSION = 1

Node = Annotated[Union[tuple(record.model for record in OPS.values())], Field(discriminator="op")]


def _exact_int(value: Any) -> Any:
    # pydantic's Literal[1] accepts true and 1.0 even in strict mode.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"input should be the integer {SCHEMA_VERSION}")
    return value


SchemaVersion = Annotated[Literal[1], BeforeValidator(_exact_int)]


class InputSpec(SpecModel):
    """A network input: `shape` per example (the batch dimension is implicit)."""

    shape: list[Annotated[int, Field(ge=1, le=MAX_DIM)]] = Field(min_length=1, max_length=4)


class LabelSpec(SpecModel):
    """A label input: integer `classes` (labels in [0, classes)) or float targets of `shape`."""

    classes: Annotated[int, Field(ge=2, le=MAX_DIM)] | None = None
    shape: list[Annotated[int, Field(ge=1, le=MAX_DIM)]] | None = Field(None, min_length=1, max_length=4)

    @model_validator(mode="after")
    def _one_kind(self) -> "LabelSpec":
        if (self.classes is None) == (self.shape is None):
            raise ValueError('give exactly one of "classes" (integer labels) or "shape" (float targets)')
        return self

    def value(self) -> Value:
        if self.classes is not None:
            return Value((), "classes", self.classes)
        return Value(tuple(self.shape or ()))


class NetworkSpec(SpecModel):
    """A network: inputs, labels, a DAG of nodes, its outputs, its loss and l2 strength."""

    schema_ref: str | None = Field(None, alias="$schema", description="path of the JSON Schema, for editors")
    schema_version: SchemaVersion = SCHEMA_VERSION
    name: str = Field("network", min_length=1, max_length=100)
    description: str = ""
    inputs: dict[NodeId, InputSpec] = Field(min_length=1)
    labels: dict[NodeId, LabelSpec] = {}
    nodes: list[Node] = Field(min_length=1, max_length=100_000)
    outputs: list[str] = Field(min_length=1)
    loss: str | None = None
    l2: float = Field(0.0, ge=0, description="0.5 * l2 * sum(W**2) over affine weights")

    _order: list[int] = PrivateAttr(default_factory=list)
    _values: dict[str, Value] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check_graph(self) -> "NetworkSpec":
        order, values = check_network(self)
        self._order, self._values = order, values
        return self

    def topological_nodes(self) -> list[NodeModel]:
        """The nodes, each after all the nodes it reads."""
        return [self.nodes[i] for i in self._order]

    def value(self, name: str) -> Value:
        """The per-example value of an input, label or node id."""
        return self._values[name]

    def node(self, node_id: str) -> NodeModel:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def to_json(self, indent: int | None = 2) -> str:
        """Canonical JSON: defaults omitted, so it reads like a hand-written spec."""
        return self.model_dump_json(indent=indent, exclude_defaults=True, exclude_none=True)
