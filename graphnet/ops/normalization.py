"""batchnorm over a feature vector X: (N, D) or channels first X: (N, C, ...), and layernorm
over a feature vector.

batchnorm normalizes each feature over the batch -- each channel over the batch and
its positions for an image [C, H, W] (the homework's spatial batchnorm) -- in train
mode, updating the running stats as running = momentum * running + (1 - momentum) *
batch (the homework's convention), or with the running stats (eval mode). layernorm
normalizes each example over its features, the same in both modes.
"""
from __future__ import annotations

from math import prod
from typing import Literal

import numpy as np
from pydantic import Field

from .base import NodeModel, OpRecord, ParamDecl, ReferenceContext, StateDecl, Value, feature_vector
from .examples import affine, conv, example, node
from .lowering import LowerContext, Step


class BatchNorm(NodeModel):
    op: Literal["batchnorm"] = "batchnorm"
    momentum: float = Field(0.9, ge=0, lt=1, description="weight of the old running statistics")
    eps: float = Field(1e-5, gt=0)


class LayerNorm(NodeModel):
    op: Literal["layernorm"] = "layernorm"
    eps: float = Field(1e-5, gt=0)


def _vector_shape(node, inputs: list[Value]) -> Value:
    return Value((feature_vector(node, inputs, node.op),))


def _batchnorm_shape(node, inputs: list[Value]) -> Value:
    """A vector (per feature) or channels first [C, ...] (per channel): the input's shape."""
    return Value(inputs[0].shape)


def _spatial(ctx: LowerContext) -> tuple[int, int] | None:
    """(C, positions) of a channels-first input, None for a vector."""
    shape = ctx.inputs[0].shape
    return None if len(shape) == 1 else (shape[0], prod(shape[1:]))


def _scale_shift(node, inputs: list[Value]) -> list[ParamDecl]:
    features = inputs[0].shape[0]
    return [ParamDecl("gamma", (features,), "ones"), ParamDecl("beta", (features,), "zeros")]


def _running_stats(node, inputs: list[Value]) -> list[StateDecl]:
    features = inputs[0].shape[0]
    return [StateDecl("running_mean", (features,), 0.0), StateDecl("running_var", (features,), 1.0)]


def _batchnorm_forward(node: BatchNorm, ctx: LowerContext) -> list[Step]:
    k, spatial = ctx.kernels, _spatial(ctx)
    shape, features = (spatial, spatial[0]) if spatial else (ctx.output.shape, ctx.output.shape[0])
    prefix = "spatial_" if spatial else ""
    gamma, beta = ctx.param("gamma"), ctx.param("beta")
    mean, var = ctx.state("running_mean"), ctx.state("running_var")
    eps, momentum = node.eps, node.momentum
    if ctx.mode == "eval":
        eval_forward = getattr(k, f"{prefix}batchnorm_eval_forward")

        def batchnorm_eval(X, gamma, beta, mean, var, Y):
            eval_forward(X, gamma, beta, mean, var, eps, Y)

        return [Step(node.id, f"{prefix}batchnorm_eval_forward", batchnorm_eval,
                     (ctx.x(0, shape), gamma, beta, mean, var, ctx.y(shape)), writes=frozenset({5}),
                     inplace=((0, 5),))]
    train_forward = getattr(k, f"{prefix}batchnorm_train_forward")

    def batchnorm_train(X, gamma, beta, mean, var, Y, xhat, inv_std):
        train_forward(X, gamma, beta, eps, momentum, mean, var, Y, xhat, inv_std)

    args = (ctx.x(0, shape), gamma, beta, mean, var, ctx.y(shape), ctx.saved("xhat", shape),
            ctx.fixed("inv_std", (features,)))
    return [Step(node.id, f"{prefix}batchnorm_train_forward", batchnorm_train, args,
                 writes=frozenset({3, 4, 5, 6, 7}), inplace=((0, 5),))]


def _batchnorm_backward(node: BatchNorm, ctx: LowerContext) -> list[Step]:
    spatial = _spatial(ctx)
    shape, features = (spatial, spatial[0]) if spatial else (ctx.output.shape, ctx.output.shape[0])
    prefix = "spatial_" if spatial else ""
    dY, dX = ctx.dy(shape), ctx.dx(0, shape)
    args = (dY, ctx.saved("xhat", shape), ctx.param("gamma"), ctx.fixed("inv_std", (features,)),
            dX if dX is not None else dY,  # dY is dead afterwards: a free target when dX is not needed
            ctx.param_grad("gamma"), ctx.param_grad("beta"))
    return [Step(node.id, f"{prefix}batchnorm_backward", getattr(ctx.kernels, f"{prefix}batchnorm_backward"), args,
                 writes=frozenset({4, 5, 6}), inplace=((0, 4),) if dX is not None else ())]


def _layernorm_forward(node: LayerNorm, ctx: LowerContext) -> list[Step]:
    (features,) = ctx.output.shape
    layernorm_forward, eps = ctx.kernels.layernorm_forward, node.eps

    def layernorm(X, gamma, beta, Y, xhat, inv_std):
        layernorm_forward(X, gamma, beta, eps, Y, xhat, inv_std)

    args = (ctx.x(0), ctx.param("gamma"), ctx.param("beta"), ctx.y(),
            ctx.saved("xhat", (features,)), ctx.saved("inv_std", ()))
    return [Step(node.id, "layernorm_forward", layernorm, args, writes=frozenset({3, 4, 5}), inplace=((0, 3),))]


def _layernorm_backward(node: LayerNorm, ctx: LowerContext) -> list[Step]:
    (features,) = ctx.output.shape
    dY, dX = ctx.dy(), ctx.dx(0)
    args = (dY, ctx.saved("xhat", (features,)), ctx.param("gamma"), ctx.saved("inv_std", ()),
            dX if dX is not None else dY, ctx.param_grad("gamma"), ctx.param_grad("beta"))
    return [Step(node.id, "layernorm_backward", ctx.kernels.layernorm_backward, args,
                 writes=frozenset({4, 5, 6}), inplace=((0, 4),) if dX is not None else ())]


def _batchnorm_reference(node: BatchNorm, xs: list[np.ndarray], ctx: ReferenceContext) -> np.ndarray:
    """gamma * (X - mu) / sqrt(var + eps) + beta, X: (N, D) per feature, or (N, C, ...) per
    channel (the statistics over the batch and the positions); train mode: batch statistics
    (biased variance, as the homework), running statistics updated in ctx.state."""
    x = xs[0]
    axes = (0, *range(2, x.ndim))
    along = (slice(None), *(None,) * (x.ndim - 2))  # a (C,) vector against (N, C, ...)
    if ctx.mode == "train":
        mu = x.mean(axis=axes)
        var = ((x - mu[along]) ** 2).mean(axis=axes)
        for name, batch in (("running_mean", mu), ("running_var", var)):
            ctx.state[name] = node.momentum * ctx.state[name] + (1 - node.momentum) * batch
    else:
        mu, var = ctx.state["running_mean"], ctx.state["running_var"]
    return ctx.params["gamma"][along] * (x - mu[along]) / np.sqrt(var[along] + node.eps) + ctx.params["beta"][along]


def _layernorm_reference(node: LayerNorm, xs: list[np.ndarray], ctx: ReferenceContext) -> np.ndarray:
    """gamma * (X - mu) / sqrt(var + eps) + beta with each row's statistics, X: (N, D)."""
    x = xs[0]
    mu = x.mean(axis=1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
    return ctx.params["gamma"] * (x - mu) / np.sqrt(var + node.eps) + ctx.params["beta"]


BATCHNORM = OpRecord(
    name="batchnorm", model=BatchNorm, infer_shape=_batchnorm_shape, params=_scale_shift, state=_running_stats,
    min_train_batch=2,
    forward=_batchnorm_forward, backward=_batchnorm_backward, reference=_batchnorm_reference, examples={
        "affine-bn-relu": example(affine("fc", "x", 5, bias=False), node("bn", "batchnorm", "fc"),
                                  node("h", "relu", "bn")),
        "momentum-0.5-eps": example(affine("fc", "x", 5, bias=False),
                                    node("bn", "batchnorm", "fc", momentum=0.5, eps=1e-3)),
        "bn-read-twice": example(affine("fc", "x", 5), node("bn", "batchnorm", "fc"),
                                 node("sum", "add", "bn", "fc")),
        "conv-bn-relu-images": example(conv("c", "x", 3, 2, padding=1, bias=False), node("bn", "batchnorm", "c"),
                                       node("h", "relu", "bn"), input_shape=(2, 4, 5)),
        "images-read-twice-momentum": example(conv("c", "x", 2, 3, padding="same"),
                                              node("bn", "batchnorm", "c", momentum=0.5),
                                              node("sum", "add", "bn", "c"), input_shape=(1, 3, 3)),
    })
LAYERNORM = OpRecord(
    name="layernorm", model=LayerNorm, infer_shape=_vector_shape, params=_scale_shift,
    forward=_layernorm_forward, backward=_layernorm_backward, reference=_layernorm_reference, examples={
        "affine-ln-tanh": example(affine("fc", "x", 5), node("ln", "layernorm", "fc"), node("h", "tanh", "ln")),
        "eps-ln-read-twice": example(affine("fc", "x", 5), node("ln", "layernorm", "fc", eps=1e-3),
                                     node("sum", "add", "ln", "fc")),
    })
