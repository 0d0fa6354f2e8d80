"""dropout: inverted dropout in train mode (Y = X * mask, mask in {0, 1/(1-rate)}), identity in eval mode.

`rate` is the probability of dropping a unit. The mask comes from the
network's seeded generator, so a run is reproducible from its seed.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from .base import NodeModel, OpRecord, ReferenceContext, same_shape
from .examples import affine, conv, example, node
from .lowering import ALIAS, LowerContext, Step


class Dropout(NodeModel):
    op: Literal["dropout"] = "dropout"
    rate: float = Field(ge=0, lt=1, description="probability of dropping a unit")


def forward(node: Dropout, ctx: LowerContext):
    if ctx.mode == "eval" or node.rate == 0:
        return ALIAS
    random, dropout_forward, rate = ctx.rng.random, ctx.kernels.dropout_forward, node.rate

    def dropout(X, Y, mask):
        random(out=mask, dtype=mask.dtype)  # uniforms in [0, 1), turned into the mask by the kernel
        dropout_forward(X, rate, mask, Y)

    args = (ctx.x(0), ctx.y(), ctx.saved("mask", ctx.output.shape))
    return [Step(node.id, "dropout_forward", dropout, args, writes=frozenset({1, 2}), inplace=((0, 1),))]


def backward(node: Dropout, ctx: LowerContext) -> list[Step]:
    dX = ctx.dx(0)
    if dX is None or node.rate == 0:
        return []
    args = (ctx.dy(), ctx.saved("mask", ctx.output.shape), dX)
    return [Step(node.id, "dropout_backward", ctx.kernels.dropout_backward, args,
                 writes=frozenset({2}), inplace=((0, 2),))]


def reference(node: Dropout, xs: list[np.ndarray], ctx: ReferenceContext) -> np.ndarray:
    """Train mode: X * (U >= rate) / (1 - rate), U = ctx.rng.random(X.shape); eval mode: X."""
    x = xs[0]
    if ctx.mode != "train" or node.rate == 0:
        return x
    if ctx.rng is None:
        raise ValueError("train-mode dropout needs the generator the network draws from")
    mask = (ctx.rng.random(x.shape) >= node.rate) / (1.0 - node.rate)
    return x * mask


OP = OpRecord(name="dropout", model=Dropout, infer_shape=same_shape, forward=forward, backward=backward,
              reference=reference, examples={
                  "rate-0.3": example(affine("fc", "x", 6, activation="relu"), node("drop", "dropout", "fc", rate=0.3)),
                  "rate-0": example(affine("fc", "x", 6, activation="relu"), node("drop", "dropout", "fc", rate=0.0)),
                  "on-images": example(conv("c", "x", 2, 2, activation="relu"), node("drop", "dropout", "c", rate=0.4),
                                       input_shape=(1, 4, 4)),
                  "between-relu-and-affine-unfused": example(
                      affine("fc", "x", 6), node("h", "relu", "fc"), node("drop", "dropout", "h", rate=0.5),
                      affine("fc2", "drop", 4, activation="sigmoid")),
              })
