"""Elementwise activations and softmax: Y = f(X), same shape as X.

relu, leaky_relu, sigmoid and tanh share one kernel pair, told apart by an
integer code; their gradients are taken from the output Y, so X may be
overwritten in place. softmax normalizes over the last axis of a vector.
"""
from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from ..kernels.codes import ACTIVATION_CODES
from .base import NodeModel, OpRecord, Reference, ReferenceContext, Value, feature_vector, same_shape
from .examples import OpExample, affine, example, node
from .lowering import ALIAS, LowerContext, Step


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


# ---- reference math: X (N, ...) -> Y of X's shape; `node` may be an affine running the activation


def _relu_reference(node: Any, xs: list[np.ndarray], ctx: ReferenceContext) -> np.ndarray:
    return np.maximum(xs[0], 0.0)


def _leaky_relu_reference(node: Any, xs: list[np.ndarray], ctx: ReferenceContext) -> np.ndarray:
    return np.where(xs[0] > 0, xs[0], node.alpha * xs[0])


def _sigmoid_reference(node: Any, xs: list[np.ndarray], ctx: ReferenceContext) -> np.ndarray:
    # 1 / (1 + exp(-x)), written so that neither branch overflows
    x = xs[0]
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _tanh_reference(node: Any, xs: list[np.ndarray], ctx: ReferenceContext) -> np.ndarray:
    return np.tanh(xs[0])


def _identity_reference(node: Any, xs: list[np.ndarray], ctx: ReferenceContext) -> np.ndarray:
    return xs[0]


def _softmax_reference(node: Any, xs: list[np.ndarray], ctx: ReferenceContext) -> np.ndarray:
    z = xs[0] - xs[0].max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _activation_examples(op: str, **fields: Any) -> dict[str, OpExample]:
    return {
        "fused-into-affine": example(affine("fc", "x", 5), node("act", op, "fc", **fields)),
        "standalone-after-add": example(affine("fc1", "x", 5), affine("fc2", "x", 5),
                                        node("sum", "add", "fc1", "fc2"), node("act", op, "sum", **fields)),
        "affine-output-read-twice": example(affine("fc", "x", 5), node("act", op, "fc", **fields),
                                            node("sum", "add", "act", "fc")),
        "on-the-input": example(node("act", op, "x", **fields), affine("fc", "act", 5)),
    }


def _activation_record(name: str, model: type[NodeModel], reference: Reference,
                       examples: dict[str, OpExample]) -> OpRecord:
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

    return OpRecord(name=name, model=model, infer_shape=same_shape, forward=forward, backward=backward,
                    activation_code=code, reference=reference, examples=examples)


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


RELU = _activation_record("relu", Relu, _relu_reference, _activation_examples("relu"))
LEAKY_RELU = _activation_record("leaky_relu", LeakyRelu, _leaky_relu_reference, {
    **_activation_examples("leaky_relu", alpha=0.3),
    "fused-alpha-0.5": example(affine("fc", "x", 5), node("act", "leaky_relu", "fc", alpha=0.5)),
})
SIGMOID = _activation_record("sigmoid", Sigmoid, _sigmoid_reference, _activation_examples("sigmoid"))
TANH = _activation_record("tanh", Tanh, _tanh_reference, _activation_examples("tanh"))
IDENTITY = OpRecord(name="identity", model=Identity, infer_shape=same_shape,
                    forward=_identity_forward, backward=lambda node, ctx: [], reference=_identity_reference,
                    examples={
                        "after-affine": example(affine("fc", "x", 5), node("same", "identity", "fc")),
                        "of-the-input": example(node("same", "identity", "x"),
                                                affine("fc", "same", 5, activation="relu")),
                    })
SOFTMAX = OpRecord(name="softmax", model=Softmax, infer_shape=_softmax_shape,
                   forward=_softmax_forward, backward=_softmax_backward, reference=_softmax_reference,
                   examples={
                       "into-cross-entropy-fused": example(affine("fc", "x", 5, activation="tanh"),
                                                           loss="cross_entropy"),
                       "into-cross-entropy-also-an-output": example(affine("fc", "x", 5, activation="tanh"),
                                                                    loss="cross_entropy",
                                                                    outputs=["head", "probs"]),
                       "feeds-an-affine": example(affine("fc", "x", 5), node("p", "softmax", "fc")),
                       "feeds-mse": example(affine("fc", "x", 5), node("p", "softmax", "fc"), affine("fc2", "p", 3),
                                            node("q", "softmax", "fc2"), head_from="q", loss="mse"),
                   })

#: The elementwise activations by name: an affine's fused `activation` (and its reference) is one of these.
ELEMENTWISE = {record.name: record for record in (RELU, LEAKY_RELU, SIGMOID, TANH, IDENTITY)}
