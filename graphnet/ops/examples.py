"""Example networks for the table-driven op tests: each op's record lists its own.

An `OpExample` is a tiny network `x -> nodes -> head -> loss`: the op under
test sits in `nodes`; `head` is an affine with one unit per class, read from
`head_from` (default: the last node); `loss` closes the network (for
`cross_entropy` through a softmax node `probs`). `network()` returns the spec
document, ready for `graphnet.parse_network`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FLOAT_TARGET_LOSSES = frozenset({"mse", "mae", "huber", "sigmoid_binary_cross_entropy"})


def affine(node_id: str, src: str, units: int, **fields: Any) -> dict[str, Any]:
    """An affine node document."""
    return {"id": node_id, "op": "affine", "inputs": [src], "units": units, **fields}


def conv(node_id: str, src: str, filters: int, kernel: int | list[int], **fields: Any) -> dict[str, Any]:
    """A conv2d node document."""
    return {"id": node_id, "op": "conv2d", "inputs": [src], "filters": filters, "kernel": kernel, **fields}


def node(node_id: str, op: str, *inputs: str, **fields: Any) -> dict[str, Any]:
    """A node document of any op."""
    return {"id": node_id, "op": op, "inputs": list(inputs), **fields}


@dataclass(frozen=True)
class OpExample:
    """A small network around an op (see the module docstring)."""

    nodes: tuple[dict[str, Any], ...]
    loss: str = "softmax_cross_entropy"
    input_shape: tuple[int, ...] = (4,)
    classes: int = 3
    head_from: str | None = None
    outputs: tuple[str, ...] = ("head",)
    l2: float = 0.0
    loss_fields: tuple[tuple[str, Any], ...] = ()  # fields of the loss node (class_weight, delta)

    def network(self) -> dict[str, Any]:
        """The network's spec document."""
        nodes = [dict(n) for n in self.nodes]
        src = self.head_from or (nodes[-1]["id"] if nodes else "x")
        nodes.append(affine("head", src, self.classes))
        if self.loss == "cross_entropy":
            nodes.append(node("probs", "softmax", "head"))
            nodes.append(node("loss", "cross_entropy", "probs", "y"))
        else:
            nodes.append(node("loss", self.loss, "head", "y", **dict(self.loss_fields)))
        labels = ({"y": {"shape": [self.classes]}} if self.loss in FLOAT_TARGET_LOSSES
                  else {"y": {"classes": self.classes}})
        return {"name": "case", "inputs": {"x": {"shape": list(self.input_shape)}}, "labels": labels,
                "nodes": nodes, "outputs": list(self.outputs), "loss": "loss", "l2": self.l2}


def example(*nodes: dict[str, Any], **options: Any) -> OpExample:
    """`OpExample(nodes, **options)`, with the nodes as arguments."""
    if "outputs" in options:
        options["outputs"] = tuple(options["outputs"])
    if "input_shape" in options:
        options["input_shape"] = tuple(options["input_shape"])
    if "loss_fields" in options:
        options["loss_fields"] = tuple(dict(options["loss_fields"]).items())
    return OpExample(tuple(nodes), **options)
