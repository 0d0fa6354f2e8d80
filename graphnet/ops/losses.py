"""Losses: each takes (scores, labels), returns the mean over the batch, and
writes the gradient of its scores in the same pass (so its backward is empty).

softmax_cross_entropy, cross_entropy and svm take integer class labels;
mse and sigmoid_binary_cross_entropy take float targets of the scores' shape
and average over all elements (as PyTorch and Keras do).
"""
from __future__ import annotations

from typing import Literal

import numpy as np

from .base import NodeModel, OpRecord, Reference, ReferenceContext, ShapeError, Value
from .examples import OpExample, affine, example
from .lowering import LowerContext, Step


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


# ---- reference math: (scores (N, ...), labels (N,) int or targets of the scores' shape) -> mean loss


def _softmax_cross_entropy_reference(node, xs: list[np.ndarray], ctx: ReferenceContext) -> float:
    scores, labels = xs
    z = scores - scores.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(scores)), labels].mean())


def _cross_entropy_reference(node, xs: list[np.ndarray], ctx: ReferenceContext) -> float:
    probs, labels = xs
    picked = np.maximum(probs[np.arange(len(probs)), labels], np.finfo(probs.dtype).tiny)
    return float(-np.log(picked).mean())


def _svm_reference(node, xs: list[np.ndarray], ctx: ReferenceContext) -> float:
    scores, labels = xs
    rows = np.arange(len(scores))
    margins = np.maximum(0.0, scores - scores[rows, labels][:, None] + 1.0)
    margins[rows, labels] = 0.0
    return float(margins.sum(axis=1).mean())


def _mse_reference(node, xs: list[np.ndarray], ctx: ReferenceContext) -> float:
    scores, targets = xs
    return float(((scores - targets.reshape(scores.shape)) ** 2).mean())


def _sigmoid_bce_reference(node, xs: list[np.ndarray], ctx: ReferenceContext) -> float:
    scores, targets = xs
    t = targets.reshape(scores.shape)
    # -(t log s + (1 - t) log(1 - s)) with s = sigmoid(x), in the stable form
    terms = np.maximum(scores, 0) - scores * t + np.log1p(np.exp(-np.abs(scores)))
    return float(terms.mean())


def _plain(loss: str, activation: str) -> dict[str, OpExample]:
    return {"plain": example(affine("fc", "x", 5, activation=activation), loss=loss)}


def _loss_record(name: str, model: type[NodeModel], kernel: str, label_kind: str, reference: Reference,
                 examples: dict[str, OpExample]) -> OpRecord:
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
                    label_kind=label_kind, forward=forward, backward=lambda node, ctx: [],
                    reference=reference, examples=examples)


SOFTMAX_CROSS_ENTROPY = _loss_record("softmax_cross_entropy", SoftmaxCrossEntropy, "softmax_cross_entropy", "classes",
                                     _softmax_cross_entropy_reference, _plain("softmax_cross_entropy", "relu"))
CROSS_ENTROPY = _loss_record("cross_entropy", CrossEntropy, "cross_entropy", "classes", _cross_entropy_reference, {
    "fused": example(affine("fc", "x", 5, activation="relu"), loss="cross_entropy"),
    "unfused-probs-output": example(affine("fc", "x", 5), loss="cross_entropy", outputs=["probs", "head"]),
})
SVM = _loss_record("svm", Svm, "svm_loss", "classes", _svm_reference, _plain("svm", "relu"))
MSE = _loss_record("mse", Mse, "mse_loss", "float", _mse_reference, _plain("mse", "tanh"))
SIGMOID_BINARY_CROSS_ENTROPY = _loss_record(
    "sigmoid_binary_cross_entropy", SigmoidBinaryCrossEntropy, "sigmoid_bce_loss", "float",
    _sigmoid_bce_reference, _plain("sigmoid_binary_cross_entropy", "relu"))
