"""conv2d: Y = act(conv(X, W) + b) over images. X: [C, H, W], W: (filters, C, kh, kw), b: (filters,).

Lowered as im2col + one GEMM + a transposing bias/activation epilogue (why:
kernels/conv.py). The im2col patches (`~<id>.cols`, OH*OW rows of C*kh*kw per
example) and the GEMM's positions-by-filters result (`~<id>.Z`) are planned
buffers of the arena like every value; in training the patches are kept for the
weight gradient, and backward's `~<id>.dZ` and `~<id>.dcols` live only in its step.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from ..kernels.codes import ACTIVATION_CODES
from .activations import ELEMENTWISE
from .batch_halves import batch_cut, on_halves
from .base import MAX_UNITS, Activation, Initializer, NodeModel, OpRecord, ParamDecl, ReferenceContext, Value
from .examples import OpExample, conv, example, node
from .images import Padding, Size, Window, image, window_of, windowed_shape
from .lowering import LowerContext, Step


class Conv2d(NodeModel):
    """A 2-D convolution (cross-correlation, as PyTorch and ONNX) with `filters` output channels;
    `activation` fuses an elementwise activation into it."""

    op: Literal["conv2d"] = "conv2d"
    filters: int = Field(ge=1, le=MAX_UNITS)
    kernel: Size
    stride: Size = 1
    padding: Padding = "valid"
    bias: bool = True
    activation: Activation | None = None
    alpha: float = Field(0.01, ge=0, description="negative slope when activation='leaky_relu'")
    init: Initializer = "xavier_uniform"
    std: float = Field(0.01, gt=0, description="standard deviation for init='normal'")


def window(node: Conv2d, shape: tuple[int, ...]) -> Window:
    """The node's window on an input of per-example `shape` [C, H, W]."""
    return window_of(node, node.padding, shape[1], shape[2])


def infer_shape(node: Conv2d, inputs: list[Value]) -> Value:
    _, h, w = image(node, inputs)
    return windowed_shape(node, inputs, node.filters, window(node, inputs[0].shape))


def params(node: Conv2d, inputs: list[Value]) -> list[ParamDecl]:
    c = inputs[0].shape[0]
    geometry = window(node, inputs[0].shape)
    fan_in, fan_out = c * geometry.kh * geometry.kw, node.filters * geometry.kh * geometry.kw
    decls = [ParamDecl("W", (node.filters, c, geometry.kh, geometry.kw), node.init, node.std, fan_in, fan_out,
                       regularized=True)]
    if node.bias:
        decls.append(ParamDecl("b", (node.filters,), "zeros"))
    return decls


def _sizes(node: Conv2d, ctx: LowerContext) -> tuple[Window, int, int, int, int, int]:
    """(window, F, K = C*kh*kw, P = OH*OW, OH, OW)."""
    geometry = window(node, ctx.inputs[0].shape)
    f, oh, ow = ctx.output.shape
    return geometry, f, ctx.inputs[0].shape[0] * geometry.kh * geometry.kw, oh * ow, oh, ow


def forward(node: Conv2d, ctx: LowerContext) -> list[Step]:
    geometry, f, k, p, oh, ow = _sizes(node, ctx)
    act = ACTIVATION_CODES[node.activation or "identity"]
    alpha, (kh, kw, sh, sw, ph, pw) = node.alpha, geometry.args
    im2col, epilogue = ctx.kernels.im2col, ctx.kernels.channel_bias_act_forward
    matmul = ctx.target.matmul()  # C = A @ B, cut over graphnet's threads (graphnet.runtime.gemm_split)
    gather = on_halves(ctx, lambda X, cols: im2col(X, kh, kw, sh, sw, ph, pw, cols))
    finish = on_halves(ctx, lambda Z, Y, b: epilogue(Z, b, act, alpha, Y))

    def conv(X, W, b, cols, Z, Y):
        n = X.shape[0]
        cut = batch_cut(n, p * k)
        gather(cut, (X, cols))
        matmul(cols.reshape(n * p, k), W.reshape(f, k).T, Z.reshape(n * p, f))
        finish(cut, (Z, Y), (b,))

    bias = ctx.param("b") if node.bias else ctx.fixed("zero_bias", (f,))
    args = (ctx.x(0), ctx.param("W"), bias, ctx.saved("cols", (oh, ow, k)), ctx.saved("Z", (p, f)), ctx.y((f, p)))
    label = f"conv {geometry.describe()}: im2col+matmul+channel_bias_act[{node.activation or 'identity'}]"
    return [Step(node.id, label, conv, args, writes=frozenset({3, 4, 5}))]


def backward(node: Conv2d, ctx: LowerContext) -> list[Step]:
    geometry, f, k, p, oh, ow = _sizes(node, ctx)
    act = ACTIVATION_CODES[node.activation or "identity"]
    alpha, (kh, kw, sh, sw, ph, pw) = node.alpha, geometry.args
    gradient, col2im = ctx.kernels.act_channel_bias_backward, ctx.kernels.col2im
    weight_gradient, input_gradient = ctx.target.matmul(), ctx.target.matmul()
    identity = act == ACTIVATION_CODES["identity"]
    run_parts = ctx.target.run_parts
    scatter = on_halves(ctx, lambda dcols, dX: col2im(dcols, kh, kw, sh, sw, ph, pw, dX))

    def gradient_of(dY, Y, dZ, db):
        gradient(dY, Y, act, alpha, dZ, db)

    def conv_backward(dY, Y, db, db_second, dZ, cols, W, dW, dcols, dX):
        n = dY.shape[0]
        Y = dY if Y is None else Y
        cut = batch_cut(n, p * k)
        if cut:  # db = the first half's sum + the second's, however many threads ran them
            run_parts(gradient_of, [(dY[:cut], Y[:cut], dZ[:cut], db), (dY[cut:], Y[cut:], dZ[cut:], db_second)])
            np.add(db, db_second, out=db)
        else:
            gradient_of(dY, Y, dZ, db)
        rows = dZ.reshape(n * p, f)
        weight_gradient(rows.T, cols.reshape(n * p, k), dW.reshape(f, k))
        if dX is not None:
            input_gradient(rows, W.reshape(f, k), dcols.reshape(n * p, k))
            scatter(cut, (dcols, dX))

    dX = ctx.dx(0)
    args = (ctx.dy((f, p)), None if identity else ctx.y((f, p)),
            ctx.param_grad("b") if node.bias else ctx.fixed("db_unused", (f,)), ctx.fixed("db_second_half", (f,)),
            ctx.saved("dZ", (p, f)), ctx.saved("cols", (oh, ow, k)),
            ctx.param("W") if dX is not None else None, ctx.param_grad("W"),
            ctx.saved("dcols", (oh, ow, k)) if dX is not None else None, dX)
    label = f"conv backward: act_channel_bias_backward[{node.activation or 'identity'}]+matmul"
    label += "+matmul+col2im" if dX is not None else ""
    return [Step(node.id, label, conv_backward, args, writes=frozenset({2, 3, 4, 7, 8, 9}))]


def reference(node: Conv2d, xs: list[np.ndarray], ctx: ReferenceContext) -> np.ndarray:
    """act(sum over c, i, j of W[f, c, i, j] * Xpad[n, c, oy*sh + i, ox*sw + j] + b[f]), from the
    definition: X zero-padded, one kernel offset at a time."""
    x = xs[0]
    n, c, h, w = x.shape
    geometry = window(node, x.shape[1:])
    oh, ow = geometry.output(h, w)
    padded = np.zeros((n, c, h + geometry.top + geometry.bottom, w + geometry.left + geometry.right))
    padded[:, :, geometry.top:geometry.top + h, geometry.left:geometry.left + w] = x
    weights = ctx.params["W"]
    out = np.zeros((n, node.filters, oh, ow))
    for i in range(geometry.kh):
        for j in range(geometry.kw):
            patch = padded[:, :, i:i + geometry.sh * (oh - 1) + 1:geometry.sh, j:j + geometry.sw * (ow - 1) + 1:geometry.sw]
            out += np.einsum("nchw,fc->nfhw", patch, weights[:, :, i, j])
    if node.bias:
        out += ctx.params["b"][None, :, None, None]
    return ELEMENTWISE[node.activation or "identity"].reference(node, [out], ctx)


def _examples() -> dict[str, OpExample]:
    image_in = {"input_shape": (2, 5, 6)}
    return {
        "relu-stride-pad": example(conv("c", "x", 3, [2, 3], stride=[1, 2], padding=1, activation="relu"),
                                   **image_in),
        "same-even-kernel-no-bias": example(conv("c", "x", 2, 2, padding="same", bias=False), **image_in),
        "relu-node-fused": example(conv("c", "x", 3, 3, padding=[1, 0]), node("h", "relu", "c"), **image_in),
        "leaky-node-fused-into-second": example(conv("c1", "x", 2, 2), conv("c2", "c1", 3, 2, stride=2),
                                                node("h", "leaky_relu", "c2", alpha=0.2), **image_in),
        "tanh-read-twice": example(conv("c", "x", 2, [1, 3], padding="same", activation="tanh"),
                                   conv("d", "c", 2, 3, padding="same"), node("sum", "add", "c", "d"),
                                   **image_in),
        "sigmoid-l2": example(conv("c", "x", 2, 3, activation="sigmoid"), input_shape=(1, 4, 4), l2=0.05),
    }


OP = OpRecord(
    name="conv2d",
    model=Conv2d,
    infer_shape=infer_shape,
    params=params,
    forward=forward,
    backward=backward,
    reference=reference,
    examples=_examples(),
)
