"""Structure ops: flatten (a free view), add (elementwise sum of n inputs), concat (vectors
along the feature axis, images [C, H, W] along the channels)."""
from __future__ import annotations

from math import prod
from typing import Literal

import numpy as np

from .base import NodeModel, OpRecord, ReferenceContext, ShapeError, Value
from .examples import affine, conv, example, node
from .lowering import ALIAS, LowerContext, Step


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
    """Vectors (D_k,) -> (sum D_k,); channels first (C_k, *rest) with one `rest` -> (sum C_k, *rest)."""
    rest = inputs[0].shape[1:]
    for k, value in enumerate(inputs):
        if value.shape[1:] != rest:
            what = "vectors" if not rest else f"images of {rest[0]}x{rest[1]} positions" if len(rest) == 2 \
                else f"values of shape [C, {', '.join(map(str, rest))}]"
            raise ShapeError(
                f"concat joins {what} along their first axis: input '{node.inputs[k]}' has shape {value.shape} "
                f"but input '{node.inputs[0]}' has shape {inputs[0].shape}"
                + ("; add a 'flatten' node first" if not rest or not value.shape[1:] else ""), k)
    return Value((sum(value.shape[0] for value in inputs), *rest))


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


def _flatten_reference(node: Flatten, xs: list[np.ndarray], ctx: ReferenceContext) -> np.ndarray:
    return xs[0].reshape(len(xs[0]), -1)


def _add_reference(node: Add, xs: list[np.ndarray], ctx: ReferenceContext) -> np.ndarray:
    return sum(xs[1:], xs[0].copy())


def _concat_reference(node: Concat, xs: list[np.ndarray], ctx: ReferenceContext) -> np.ndarray:
    return np.concatenate(xs, axis=1)


FLATTEN = OpRecord(
    name="flatten", model=Flatten, infer_shape=_flatten_shape,
    forward=lambda node, ctx: ALIAS, backward=lambda node, ctx: [], reference=_flatten_reference, examples={
        "2d-input": example(node("flat", "flatten", "x"), affine("fc", "flat", 4, activation="relu"),
                            input_shape=(2, 3)),
        "after-conv-pool": example(conv("c", "x", 2, 2, activation="relu"), node("p", "max_pool2d", "c", kernel=2),
                                   node("flat", "flatten", "p"), affine("fc", "flat", 4, activation="relu"),
                                   input_shape=(1, 5, 5)),
    })
ADD = OpRecord(
    name="add", model=Add, infer_shape=_add_shape, min_inputs=2, max_inputs=None,
    forward=_add_forward, backward=_add_backward, reference=_add_reference, examples={
        "value-read-twice": example(affine("fc", "x", 5), node("sum", "add", "fc", "fc")),
        "value-read-three-times": example(affine("fc", "x", 5), node("sum", "add", "fc", "fc", "fc")),
        "three-inputs": example(affine("a", "x", 5), affine("b", "x", 5, activation="tanh"),
                                affine("c", "a", 5), node("sum", "add", "a", "b", "c")),
        "residual-images": example(conv("stem", "x", 2, 3, padding="same", activation="relu"),
                                   conv("f", "stem", 2, 3, padding=1), node("sum", "add", "stem", "f"),
                                   node("out", "relu", "sum"), input_shape=(1, 4, 4)),
        "residual": example(affine("stem", "x", 5, activation="relu"), affine("f1", "stem", 5, activation="relu"),
                            affine("f2", "f1", 5), node("sum", "add", "stem", "f2"), node("out", "relu", "sum")),
    })
CONCAT = OpRecord(
    name="concat", model=Concat, infer_shape=_concat_shape, min_inputs=2, max_inputs=None,
    forward=_concat_forward, backward=_concat_backward, reference=_concat_reference, examples={
        "two-branches": example(affine("a", "x", 3, activation="relu"), affine("b", "x", 2, activation="tanh"),
                                node("cat", "concat", "a", "b")),
        "value-twice": example(affine("a", "x", 3), node("cat", "concat", "a", "a", "x")),
        "images-along-channels": example(conv("a", "x", 2, 3, padding="same", activation="relu"),
                                         conv("b", "x", 1, [1, 3], padding=[0, 1]), node("cat", "concat", "a", "b", "x"),
                                         input_shape=(2, 3, 4)),
    })
