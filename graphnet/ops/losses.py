"""Losses: each takes (scores, labels), returns the mean over the batch, and
writes the gradient of its scores in the same pass (so its backward is empty).

softmax_cross_entropy, cross_entropy and svm take integer class labels;
mse, mae, huber and sigmoid_binary_cross_entropy take float targets of the scores'
shape and average over all elements (as PyTorch and Keras do).

softmax_cross_entropy and sigmoid_binary_cross_entropy may weigh classes
(`class_weight`, PyTorch's `weight`): the weights are the node's state
`<id>.class_weight`, and the loss runs a weighted kernel
(graphnet.kernels.weighted_losses). Training sets them from the run's
`train.class_weight` (graphnet.training.class_weights).
"""
from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from .base import NodeModel, OpRecord, Reference, ReferenceContext, ShapeError, StateDecl, Value, no_state
from .examples import OpExample, affine, example
from .lowering import LowerContext, Step

ClassWeight = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class SoftmaxCrossEntropy(NodeModel):
    op: Literal["softmax_cross_entropy"] = "softmax_cross_entropy"
    class_weight: list[ClassWeight] | None = Field(None, min_length=2, max_length=1 << 24, description=(
        "a weight per class (PyTorch's CrossEntropyLoss weight): the loss is sum_i w[y_i] l_i / sum_i w[y_i]"))


class CrossEntropy(NodeModel):
    op: Literal["cross_entropy"] = "cross_entropy"


class Svm(NodeModel):
    op: Literal["svm"] = "svm"


class Mse(NodeModel):
    op: Literal["mse"] = "mse"


class Mae(NodeModel):
    op: Literal["mae"] = "mae"


class Huber(NodeModel):
    op: Literal["huber"] = "huber"
    delta: float = Field(1.0, gt=0, allow_inf_nan=False, description=(
        "where the loss turns from quadratic (0.5 d^2) to linear (delta (|d| - delta / 2))"))


class SigmoidBinaryCrossEntropy(NodeModel):
    op: Literal["sigmoid_binary_cross_entropy"] = "sigmoid_binary_cross_entropy"
    class_weight: list[ClassWeight] | None = Field(None, min_length=2, max_length=2, description=(
        "the weights of targets 0 and 1 (a soft target t weighs w0 + (w1 - w0) t), as PyTorch's "
        "BCEWithLogitsLoss weight: the loss is the mean of the weighted terms"))


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
    weights = getattr(node, "class_weight", None)
    if weights is not None and len(weights) != labels.classes:
        raise ShapeError(f"class_weight has {len(weights)} weights but labels '{node.inputs[1]}' have "
                         f"{labels.classes} classes", 1)
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


def _mae_reference(node, xs: list[np.ndarray], ctx: ReferenceContext) -> float:
    scores, targets = xs
    return float(np.abs(scores - targets.reshape(scores.shape)).mean())


def _huber_reference(node, xs: list[np.ndarray], ctx: ReferenceContext) -> float:
    scores, targets = xs
    d = np.abs(scores - targets.reshape(scores.shape))
    return float(np.where(d <= node.delta, 0.5 * d ** 2, node.delta * (d - 0.5 * node.delta)).mean())


def _weighted_softmax_cross_entropy_reference(node, xs: list[np.ndarray], ctx: ReferenceContext) -> float:
    if node.class_weight is None:
        return _softmax_cross_entropy_reference(node, xs, ctx)
    scores, labels = xs
    z = scores - scores.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    w = ctx.state["class_weight"][labels]
    return float(-(w * log_p[np.arange(len(scores)), labels]).sum() / w.sum())


def _sigmoid_bce_reference(node, xs: list[np.ndarray], ctx: ReferenceContext) -> float:
    scores, targets = xs
    t = targets.reshape(scores.shape)
    # -(t log s + (1 - t) log(1 - s)) with s = sigmoid(x), in the stable form
    terms = np.maximum(scores, 0) - scores * t + np.log1p(np.exp(-np.abs(scores)))
    if node.class_weight is not None:
        w0, w1 = ctx.state["class_weight"]
        terms = terms * ((1 - t) * w0 + t * w1)
    return float(terms.mean())


def _class_weight_state(node, inputs: list[Value]) -> list[StateDecl]:
    """A weighted loss keeps its class weights as the state `class_weight`."""
    weights = node.class_weight
    return [] if weights is None else [StateDecl("class_weight", (len(weights),), values=tuple(weights))]


def _plain(loss: str, activation: str, **fields: object) -> dict[str, OpExample]:
    return {"plain": example(affine("fc", "x", 5, activation=activation), loss=loss, loss_fields=fields)}


def _loss_record(name: str, model: type[NodeModel], kernel: str, label_kind: str, reference: Reference,
                 examples: dict[str, OpExample], weighted_kernel: str | None = None,
                 fields: tuple[str, ...] = ()) -> OpRecord:
    """A loss op: one fused step `kernel(scores, labels, *fields, dscores)` that returns the
    loss (`fields`: node fields the kernel takes as scalars, huber's delta); with
    `weighted_kernel`, a node with class weights runs `weighted_kernel(scores, labels,
    class_weight, dscores)` instead."""
    def forward(node, ctx: LowerContext) -> list[Step]:
        # Without a parameter upstream the score gradient is not needed, but the
        # fused kernel writes it anyway: give it a scratch buffer then.
        dX = ctx.dx(0)
        if dX is None:
            dX = ctx.saved("dscores", ctx.inputs[0].shape)
        if getattr(node, "class_weight", None) is not None:
            args = (ctx.x(0), ctx.x(1), ctx.state("class_weight"), dX)
            return [Step(node.id, weighted_kernel, getattr(ctx.kernels, weighted_kernel), args,  # type: ignore[arg-type]
                         writes=frozenset({3}), returns_loss=True)]
        fn = getattr(ctx.kernels, kernel)
        scalars = tuple(getattr(node, field) for field in fields)
        if scalars:
            with_scalars = fn

            def fn(scores, labels, dscores):
                return with_scalars(scores, labels, *scalars, dscores)

        return [Step(node.id, kernel, fn, (ctx.x(0), ctx.x(1), dX), writes=frozenset({2}), returns_loss=True)]

    shape = _class_loss_shape if label_kind == "classes" else _target_loss_shape
    return OpRecord(name=name, model=model, infer_shape=shape, min_inputs=2, max_inputs=2, is_loss=True,
                    label_kind=label_kind, state=_class_weight_state if weighted_kernel else no_state,
                    forward=forward, backward=lambda node, ctx: [], reference=reference, examples=examples)


SOFTMAX_CROSS_ENTROPY = _loss_record(
    "softmax_cross_entropy", SoftmaxCrossEntropy, "softmax_cross_entropy", "classes",
    _weighted_softmax_cross_entropy_reference,
    {**_plain("softmax_cross_entropy", "relu"),
     "class-weighted": example(affine("fc", "x", 5, activation="relu"), loss="softmax_cross_entropy",
                               loss_fields={"class_weight": [0.5, 2.0, 1.25]})},
    weighted_kernel="weighted_softmax_cross_entropy")
CROSS_ENTROPY = _loss_record("cross_entropy", CrossEntropy, "cross_entropy", "classes", _cross_entropy_reference, {
    "fused": example(affine("fc", "x", 5, activation="relu"), loss="cross_entropy"),
    "unfused-probs-output": example(affine("fc", "x", 5), loss="cross_entropy", outputs=["probs", "head"]),
})
SVM = _loss_record("svm", Svm, "svm_loss", "classes", _svm_reference, _plain("svm", "relu"))
MSE = _loss_record("mse", Mse, "mse_loss", "float", _mse_reference, _plain("mse", "tanh"))
MAE = _loss_record("mae", Mae, "mae_loss", "float", _mae_reference, _plain("mae", "tanh"))
HUBER = _loss_record("huber", Huber, "huber_loss", "float", _huber_reference, {
    **_plain("huber", "tanh"),
    # a small delta puts most differences on the linear part
    "delta-0.1": example(affine("fc", "x", 5, activation="tanh"), loss="huber", loss_fields={"delta": 0.1}),
}, fields=("delta",))
SIGMOID_BINARY_CROSS_ENTROPY = _loss_record(
    "sigmoid_binary_cross_entropy", SigmoidBinaryCrossEntropy, "sigmoid_bce_loss", "float",
    _sigmoid_bce_reference,
    {**_plain("sigmoid_binary_cross_entropy", "relu"),
     "class-weighted": example(affine("fc", "x", 5, activation="relu"), loss="sigmoid_binary_cross_entropy",
                               loss_fields={"class_weight": [1.0, 4.0]})},
    weighted_kernel="weighted_sigmoid_bce_loss")
