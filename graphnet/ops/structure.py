"""Structure ops: flatten (a free view), add (elementwise sum of n inputs), concat (along the feature axis)."""
from __future__ import annotations

from math import prod
from typing import Literal

import numpy as np

from ..lowering import ALIAS, LowerContext, Step
from .base import NodeModel, OpRecord, ShapeError, Value


class Flatten(NodeModel):
    op: Literal["flatten"] = "flatten"


class Add(NodeModel):
    op: Literal["add"] = "add"


class Concat(NodeModel):
    op: Literal["concat"] = "concat"


def _flatten_shape(node: Flatten, inputs: list[Value]) -> Value:
    return Value((prod(inputs[0].shape),))


def _add_shape(node: Add, inputs: list[Value]) -> Value:
    first = inputs[0].shape
    for k, value in enumerate(inputs[1:], start=1):
        if value.shape != first:
            raise ShapeError(
                f"add needs equal shapes: input '{node.inputs[k]}' has shape {value.shape} "
                f"but input '{node.inputs[0]}' has shape {first}", k)
    return Value(first)


def _concat_shape(node: Concat, inputs: list[Value]) -> Value:
    for k, value in enumerate(inputs):
        if len(value.shape) != 1:
            raise ShapeError(
                f"concat joins vectors: input '{node.inputs[k]}' has shape {value.shape}; "
                "add a 'flatten' node first", k)
    return Value((sum(value.shape[0] for value in inputs),))


def _add_forward(node: Add, ctx: LowerContext) -> list[Step]:
    add, add_into = ctx.kernels.add, ctx.kernels.add_into
    count = len(node.inputs)

    def add_n(*arrays):
        Y = arrays[count]
        add(arrays[0], arrays[1], Y)
        for X in arrays[2:count]:
            add_into(Y, X)

    args = (*(ctx.x(k) for k in range(count)), ctx.y())
    return [Step(node.id, f"add x{count - 1}", add_n, args, writes=frozenset({count}), inplace=((0, count),))]


def _add_backward(node: Add, ctx: LowerContext) -> list[Step]:
    copy_into = ctx.kernels.copy_into
    steps = []
    for k in range(len(node.inputs)):
        dX = ctx.dx(k)
        if dX is not None:
            steps.append(Step(node.id, "copy", copy_into, (dX, ctx.dy()), writes=frozenset({0}),
                              inplace=((1, 0),), fn_inplace=_nothing))
    return steps


def _nothing(*arrays) -> None:
    """A copy whose source and target were planned into the same buffer."""


def _concat_bounds(inputs: list[Value]) -> list[tuple[int, int]]:
    bounds, start = [], 0
    for value in inputs:
        bounds.append((start, start + value.shape[0]))
        start += value.shape[0]
    return bounds


def _concat_forward(node: Concat, ctx: LowerContext) -> list[Step]:
    bounds = _concat_bounds(ctx.inputs)
    copyto = np.copyto

    def concat(*arrays):
        Y = arrays[-1]
        for X, (start, stop) in zip(arrays, bounds):
            copyto(Y[:, start:stop], X)

    args = (*(ctx.x(k) for k in range(len(node.inputs))), ctx.y())
    return [Step(node.id, f"concat x{len(node.inputs)}", concat, args, writes=frozenset({len(args) - 1}))]


def _concat_backward(node: Concat, ctx: LowerContext) -> list[Step]:
    copyto = np.copyto
    steps = []
    for k, (start, stop) in enumerate(_concat_bounds(ctx.inputs)):
        dX = ctx.dx(k)
        if dX is None:
            continue

        def split(dY, dX, start=start, stop=stop):
            copyto(dX, dY[:, start:stop])

        steps.append(Step(node.id, f"split[{start}:{stop}]", split, (ctx.dy(), dX), writes=frozenset({1})))
    return steps


FLATTEN = OpRecord(name="flatten", model=Flatten, infer_shape=_flatten_shape, family="structure",
                   forward=lambda node, ctx: ALIAS, backward=lambda node, ctx: [])
ADD = OpRecord(name="add", model=Add, infer_shape=_add_shape, min_inputs=2, max_inputs=None,
               family="structure", forward=_add_forward, backward=_add_backward)
CONCAT = OpRecord(name="concat", model=Concat, infer_shape=_concat_shape, min_inputs=2, max_inputs=None,
                  family="structure", forward=_concat_forward, backward=_concat_backward)
