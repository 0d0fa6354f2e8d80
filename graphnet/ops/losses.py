"""Losses: each takes (scores, labels), returns the mean over the batch, and
writes the gradient of its scores in the same pass (so its backward is empty).

softmax_cross_entropy, cross_entropy and svm take integer class labels;
mse and sigmoid_binary_cross_entropy take float targets of the scores' shape
and average over all elements (as PyTorch and Keras do).
"""
from __future__ import annotations

from typing import Literal

from ..lowering import LowerContext, Step
from .base import NodeModel, OpRecord, ShapeError, Value


class SoftmaxCrossEntropy(NodeModel):
    op: Literal["softmax_cross_entropy"] = "softmax_cross_entropy"


class CrossEntropy(NodeModel):
    op: Literal["cross_entropy"] = "cross_entropy"


class Svm(NodeModel):
    op: Literal["svm"] = "svm"


class Mse(NodeModel):
    op: Literal["mse"] = "mse"


class SigmoidBinaryCrossEntropy(NodeModel):
    op: Literal["sigmoid_binary_cross_entropy"] = "sigmoid_binary_cross_entropy"


def _class_loss_shape(node, inputs: list[Value]) -> Value:
    scores, labels = inputs
    if len(scores.shape) != 1:
        raise ShapeError(f"{node.op} expects a vector of class scores per example, got shape {scores.shape}", 0)
    if labels.kind != "classes":
        raise ShapeError(f"{node.op} needs integer class labels: declare '{node.inputs[1]}' with \"classes\"", 1)
    if labels.classes != scores.shape[0]:
        raise ShapeError(
            f"'{node.inputs[0]}' has {scores.shape[0]} scores per example but labels "
            f"'{node.inputs[1]}' have {labels.classes} classes", 1)
    return Value(())


def _target_loss_shape(node, inputs: list[Value]) -> Value:
    scores, targets = inputs
    if targets.kind != "float":
        raise ShapeError(f"{node.op} needs float targets: declare '{node.inputs[1]}' with \"shape\"", 1)
    if targets.shape != scores.shape:
        raise ShapeError(
            f"targets '{node.inputs[1]}' have shape {targets.shape} but scores "
            f"'{node.inputs[0]}' have shape {scores.shape}", 1)
    return Value(())


def _loss_record(name: str, model: type[NodeModel], kernel: str, label_kind: str) -> OpRecord:
    def forward(node, ctx: LowerContext) -> list[Step]:
        # Without a parameter upstream the score gradient is not needed, but the
        # fused kernel writes it anyway: give it a scratch buffer then.
        dX = ctx.dx(0)
        if dX is None:
            dX = ctx.saved("dscores", ctx.inputs[0].shape)
        args = (ctx.x(0), ctx.x(1), dX)
        return [Step(node.id, kernel, getattr(ctx.kernels, kernel), args, writes=frozenset({2}),
                     returns_loss=True)]

    shape = _class_loss_shape if label_kind == "classes" else _target_loss_shape
    return OpRecord(name=name, model=model, infer_shape=shape, min_inputs=2, max_inputs=2, is_loss=True,
                    label_kind=label_kind, family="loss", forward=forward, backward=lambda node, ctx: [])


SOFTMAX_CROSS_ENTROPY = _loss_record("softmax_cross_entropy", SoftmaxCrossEntropy, "softmax_cross_entropy", "classes")
CROSS_ENTROPY = _loss_record("cross_entropy", CrossEntropy, "cross_entropy", "classes")
SVM = _loss_record("svm", Svm, "svm_loss", "classes")
MSE = _loss_record("mse", Mse, "mse_loss", "float")
SIGMOID_BINARY_CROSS_ENTROPY = _loss_record(
    "sigmoid_binary_cross_entropy", SigmoidBinaryCrossEntropy, "sigmoid_bce_loss", "float")
