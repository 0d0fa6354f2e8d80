"""Pooling over images: max_pool2d and avg_pool2d ([C, H, W] -> [C, OH, OW]) and
global_avg_pool ([C, H, W] -> [C]).

max_pool2d leaves the padding out of each window; avg_pool2d counts it as zeros
(divides by kh*kw, PyTorch's default count_include_pad=True). The padding is at
most half the kernel on each axis (as PyTorch requires), so every window holds an
input value. The stride defaults to the kernel (windows side by side).
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import model_validator

from .base import NodeModel, OpRecord, ReferenceContext, Value
from .batch_halves import batch_cut, on_halves
from .examples import OpExample, affine, conv, example, node
from .images import PadSize, Size, Window, image, pair, window_of, windowed_shape
from .lowering import LowerContext, Step


class _Pool(NodeModel):
    kernel: Size
    stride: Size | None = None
    padding: PadSize = 0

    @model_validator(mode="after")
    def _padding_within_half_the_kernel(self) -> "_Pool":
        kernel, padding = pair(self.kernel), pair(self.padding)
        if any(p > k // 2 for p, k in zip(padding, kernel)):
            raise ValueError(f"padding {list(padding)} must be at most half the kernel {list(kernel)} "
                             "on each axis (a window would hold only padding)")
        return self


class MaxPool2d(_Pool):
    """The maximum over each window."""

    op: Literal["max_pool2d"] = "max_pool2d"


class AvgPool2d(_Pool):
    """The mean over each window, the padding counted as zeros."""

    op: Literal["avg_pool2d"] = "avg_pool2d"


class GlobalAvgPool(NodeModel):
    """The mean of each channel over all positions: [C, H, W] -> [C]."""

    op: Literal["global_avg_pool"] = "global_avg_pool"


def window(node: _Pool, shape: tuple[int, ...]) -> Window:
    """The node's window on an input of per-example `shape` [C, H, W]."""
    return window_of(node, node.padding, shape[1], shape[2])


def _pool_shape(node: _Pool, inputs: list[Value]) -> Value:
    image(node, inputs)
    return windowed_shape(node, inputs, None, window(node, inputs[0].shape))


def _pool_record(name: str, model: type[_Pool], reference, examples: dict[str, OpExample]) -> OpRecord:  # noqa: ANN001
    forward_kernel, backward_kernel = f"{name.split('_')[0]}_pool_forward", f"{name.split('_')[0]}_pool_backward"
    reads_input = name == "max_pool2d"  # max pooling's backward finds each window's maximum again

    def forward(node: _Pool, ctx: LowerContext) -> list[Step]:
        geometry = window(node, ctx.inputs[0].shape)
        kernel, args = getattr(ctx.kernels, forward_kernel), geometry.args
        per_example = int(np.prod(ctx.inputs[0].shape))
        halves = on_halves(ctx, lambda X, Y: kernel(X, *args, Y))

        def pool(X, Y):
            halves(batch_cut(X.shape[0], per_example), (X, Y))

        return [Step(node.id, f"{forward_kernel} {geometry.describe()}", pool, (ctx.x(0), ctx.y()),
                     writes=frozenset({1}))]

    def backward(node: _Pool, ctx: LowerContext) -> list[Step]:
        dX = ctx.dx(0)
        if dX is None:
            return []
        geometry = window(node, ctx.inputs[0].shape)
        kernel, args = getattr(ctx.kernels, backward_kernel), geometry.args
        per_example = int(np.prod(ctx.inputs[0].shape))
        if reads_input:
            halves = on_halves(ctx, lambda dY, X, dX: kernel(dY, X, *args, dX))

            def pool_backward(dY, X, dX):
                halves(batch_cut(dY.shape[0], per_example), (dY, X, dX))

            refs = (ctx.dy(), ctx.x(0), dX)
        else:
            halves = on_halves(ctx, lambda dY, dX: kernel(dY, *args, dX))

            def pool_backward(dY, X, dX):
                halves(batch_cut(dY.shape[0], per_example), (dY, dX))

            refs = (ctx.dy(), None, dX)
        return [Step(node.id, backward_kernel, pool_backward, refs, writes=frozenset({2}))]

    return OpRecord(name=name, model=model, infer_shape=_pool_shape, forward=forward, backward=backward,
                    reference=reference, examples=examples)


def _windows(node: _Pool, x: np.ndarray, fill: float) -> np.ndarray:
    """(N, C, OH, OW, kh, kw): every window of x (N, C, H, W), `fill` in the padding."""
    n, c, h, w = x.shape
    g = window(node, x.shape[1:])
    oh, ow = g.output(h, w)
    padded = np.full((n, c, h + g.top + g.bottom, w + g.left + g.right), fill)
    padded[:, :, g.top:g.top + h, g.left:g.left + w] = x
    out = np.empty((n, c, oh, ow, g.kh, g.kw))
    for oy in range(oh):
        for ox in range(ow):
            out[:, :, oy, ox] = padded[:, :, oy * g.sh:oy * g.sh + g.kh, ox * g.sw:ox * g.sw + g.kw]
    return out


def _max_reference(node: MaxPool2d, xs: list[np.ndarray], ctx: ReferenceContext) -> np.ndarray:
    """The maximum of each window, the padding left out."""
    return _windows(node, xs[0], -np.inf).max(axis=(4, 5))


def _avg_reference(node: AvgPool2d, xs: list[np.ndarray], ctx: ReferenceContext) -> np.ndarray:
    """The mean of each window's kh*kw entries, the padding counted as zeros."""
    return _windows(node, xs[0], 0.0).mean(axis=(4, 5))


def _global_shape(node: GlobalAvgPool, inputs: list[Value]) -> Value:
    c, _, _ = image(node, inputs)
    return Value((c,))


def _global_forward(node: GlobalAvgPool, ctx: LowerContext) -> list[Step]:
    c, h, w = ctx.inputs[0].shape
    return [Step(node.id, "global_avg_pool_forward", ctx.kernels.global_avg_pool_forward,
                 (ctx.x(0, (c, h * w)), ctx.y()), writes=frozenset({1}))]


def _global_backward(node: GlobalAvgPool, ctx: LowerContext) -> list[Step]:
    c, h, w = ctx.inputs[0].shape
    dX = ctx.dx(0, (c, h * w))
    if dX is None:
        return []
    return [Step(node.id, "global_avg_pool_backward", ctx.kernels.global_avg_pool_backward, (ctx.dy(), dX),
                 writes=frozenset({1}))]


def _global_reference(node: GlobalAvgPool, xs: list[np.ndarray], ctx: ReferenceContext) -> np.ndarray:
    """The mean of each channel over its H*W positions."""
    return xs[0].mean(axis=(2, 3))


def _pool_examples(op: str) -> dict[str, OpExample]:
    image_in = {"input_shape": (2, 5, 6)}
    return {
        "after-conv": example(conv("c", "x", 2, 2, padding=1, activation="tanh"), node("p", op, "c", kernel=2),
                              **image_in),
        "stride-pad-overlapping": example(conv("c", "x", 3, [2, 1]), node("p", op, "c", kernel=3, stride=2, padding=1),
                                          **image_in),
        "rect-window-then-affine": example(conv("c", "x", 2, 1), node("p", op, "c", kernel=[2, 3], stride=[1, 2]),
                                           affine("fc", "p", 4, activation="relu"), **image_in),
        "on-the-input": example(node("p", op, "x", kernel=2, stride=1), conv("c", "p", 2, 2), **image_in),
    }


MAX_POOL2D = _pool_record("max_pool2d", MaxPool2d, _max_reference, _pool_examples("max_pool2d"))
AVG_POOL2D = _pool_record("avg_pool2d", AvgPool2d, _avg_reference, _pool_examples("avg_pool2d"))
GLOBAL_AVG_POOL = OpRecord(
    name="global_avg_pool", model=GlobalAvgPool, infer_shape=_global_shape, forward=_global_forward,
    backward=_global_backward, reference=_global_reference, examples={
        "after-conv": example(conv("c", "x", 4, 3, padding="same", activation="relu"), node("g", "global_avg_pool", "c"),
                              input_shape=(2, 5, 6)),
        "one-by-one": example(conv("c", "x", 3, 2), node("g", "global_avg_pool", "c"), input_shape=(1, 2, 2)),
    })
