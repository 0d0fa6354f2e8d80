"""Elementwise activations and softmax: Y = f(X), same shape as X.

relu, leaky_relu, sigmoid and tanh share one kernel pair, told apart by an
integer code; their gradients are taken from the output Y, so X may be
overwritten in place. softmax normalizes over the last axis of a vector.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..lowering import ALIAS, LowerContext, Step
from .base import ACTIVATION_CODES, NodeModel, OpRecord, Value, feature_vector, same_shape


class Relu(NodeModel):
    op: Literal["relu"] = "relu"


class LeakyRelu(NodeModel):
    op: Literal["leaky_relu"] = "leaky_relu"
    alpha: float = Field(0.01, ge=0, description="slope for negative inputs")


class Sigmoid(NodeModel):
    op: Literal["sigmoid"] = "sigmoid"


class Tanh(NodeModel):
    op: Literal["tanh"] = "tanh"


class Identity(NodeModel):
    op: Literal["identity"] = "identity"


class Softmax(NodeModel):
    op: Literal["softmax"] = "softmax"


def _activation_record(name: str, model: type[NodeModel]) -> OpRecord:
    code = ACTIVATION_CODES[name]

    def forward(node, ctx: LowerContext) -> list[Step]:
        act_forward, alpha = ctx.kernels.act_forward, getattr(node, "alpha", 0.0)

        def activation(X, Y):
            act_forward(X, code, alpha, Y)

        return [Step(node.id, f"act_forward[{name}]", activation, (ctx.x(0), ctx.y()),
                     writes=frozenset({1}), inplace=((0, 1),))]

    def backward(node, ctx: LowerContext) -> list[Step]:
        act_backward, alpha = ctx.kernels.act_backward, getattr(node, "alpha", 0.0)
        dX = ctx.dx(0)
        if dX is None:
            return []

        def activation_backward(dY, Y, dX):
            act_backward(dY, Y, code, alpha, dX)

        return [Step(node.id, f"act_backward[{name}]", activation_backward, (ctx.dy(), ctx.y(), dX),
                     writes=frozenset({2}), inplace=((0, 2),))]

    return OpRecord(name=name, model=model, infer_shape=same_shape, family="activation",
                    forward=forward, backward=backward)


def _identity_forward(node, ctx: LowerContext):
    return ALIAS


def _softmax_shape(node: Softmax, inputs: list[Value]) -> Value:
    return Value((feature_vector(node, inputs, "softmax"),))


def _softmax_forward(node: Softmax, ctx: LowerContext) -> list[Step]:
    return [Step(node.id, "softmax_forward", ctx.kernels.softmax_forward, (ctx.x(0), ctx.y()),
                 writes=frozenset({1}), inplace=((0, 1),))]


def _softmax_backward(node: Softmax, ctx: LowerContext) -> list[Step]:
    dX = ctx.dx(0)
    if dX is None:
        return []
    return [Step(node.id, "softmax_backward", ctx.kernels.softmax_backward, (ctx.dy(), ctx.y(), dX),
                 writes=frozenset({2}), inplace=((0, 2),))]


RELU = _activation_record("relu", Relu)
LEAKY_RELU = _activation_record("leaky_relu", LeakyRelu)
SIGMOID = _activation_record("sigmoid", Sigmoid)
TANH = _activation_record("tanh", Tanh)
IDENTITY = OpRecord(name="identity", model=Identity, infer_shape=same_shape, family="activation",
                    forward=_identity_forward, backward=lambda node, ctx: [])
SOFTMAX = OpRecord(name="softmax", model=Softmax, infer_shape=_softmax_shape, family="activation",
                   forward=_softmax_forward, backward=_softmax_backward)
