"""affine: Y = act(X @ W + b), X flattened per example. W: (D, units), b: (units,)."""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from ..kernels.codes import ACTIVATION_CODES
from .activations import ELEMENTWISE
from .base import (
    MAX_UNITS,
    Activation,
    Initializer,
    NodeModel,
    OpRecord,
    ParamDecl,
    ReferenceContext,
    Value,
)
from .examples import OpExample, affine, example
from .lowering import PARAMS_VERSION, LowerContext, Step
from .target import KernelSwitches, Target


class Affine(NodeModel):
    """A fully connected layer; `activation` fuses an elementwise activation into it."""

    op: Literal["affine"] = "affine"
    units: int = Field(ge=1, le=MAX_UNITS)
    init: Initializer = "xavier_uniform"
    std: float = Field(0.01, gt=0, description="standard deviation for init='normal'")
    bias: bool = True
    activation: Activation | None = None
    alpha: float = Field(0.01, ge=0, description="negative slope when activation='leaky_relu'")


def infer_shape(node: Affine, inputs: list[Value]) -> Value:
    return Value((node.units,))


def params(node: Affine, inputs: list[Value]) -> list[ParamDecl]:
    fan_in = inputs[0].size
    decls = [
        ParamDecl("W", (fan_in, node.units), node.init, node.std, fan_in, node.units, regularized=True)
    ]
    if node.bias:
        decls.append(ParamDecl("b", (node.units,), "zeros"))
    return decls


def forward(node: Affine, ctx: LowerContext) -> list[Step]:
    fan_in = ctx.inputs[0].size
    act = ACTIVATION_CODES[node.activation or "identity"]
    alpha = node.alpha
    X, W, Y = ctx.x(0, (fan_in,)), ctx.param("W"), ctx.y()
    matmul = ctx.target.matmul()  # C = A @ B, cut over graphnet's threads (graphnet.runtime.gemm_split)
    if node.bias:
        bias_act = ctx.kernels.bias_act_forward
        label = f"matmul+bias_act[{node.activation or 'identity'}]"
        target = ctx.target
        rows = small_batch_rows(target.switches, fan_in, node.units)
        work = fan_in * node.units
        if ctx.mode == "eval" and packed_rows(target, work) > rows:
            return [Step(node.id, f"{label} ({packed_label(target, rows, work)})",
                         packed_affine(target, act, alpha, rows, work),
                         (X, W, ctx.param("b"), Y, ctx.fixed("W_packed", (node.units, fan_in)), PARAMS_VERSION),
                         writes=frozenset({3, 4}))]
        if ctx.mode == "eval" and rows:
            return [Step(node.id, f"{label} (affine_small_forward up to {rows} rows)",
                         small_batch_affine(target, act, alpha, rows), (X, W, ctx.param("b"), Y),
                         writes=frozenset({3}))]

        def affine_bias_act(X, W, b, Y):
            matmul(X, W, Y)
            bias_act(Y, b, act, alpha)

        return [Step(node.id, label, affine_bias_act, (X, W, ctx.param("b"), Y), writes=frozenset({3}))]
    if act == ACTIVATION_CODES["identity"]:

        def affine_plain(X, W, Y):
            matmul(X, W, Y)

        return [Step(node.id, "matmul", affine_plain, (X, W, Y), writes=frozenset({2}))]
    act_forward = ctx.kernels.act_forward

    def affine_act(X, W, Y):
        matmul(X, W, Y)
        act_forward(Y, act, alpha, Y)

    return [Step(node.id, f"matmul+act[{node.activation}]", affine_act, (X, W, Y), writes=frozenset({2}))]


# The eval-mode kernel choice reads the target's KernelSwitches (graphnet.ops.target; set with
# gn.set_config / gn.config_context), never its thread count. What the defaults rest on:
#
# small_batch_rows, small_work: affine_small_forward (one pass over W, bias and activation
# fused) on batches of at most small_batch_rows rows, and on batches whose multiply-adds
# (rows * fan_in * units) stay within small_work; larger ones run a BLAS GEMM + the
# epilogue kernel. Alone, the kernel matches a 1-row sgemv on 784x512 (23 us against 22,
# both bound by reading W) and halves the 256x10 layer (0.8 us against 1.7). In the whole
# M network it does not pay: with all affine layers on the GEMM, a batch-1 forward took
# 0.89x the time on 2 BLAS threads and 1.0x on 1 thread (one process, interleaved, 50 ms
# samples). So it is off by default (small_batch_rows = 0 turns both rules off);
# gn.set_config(small_batch_rows=1) before compiling turns it on.


def small_batch_rows(switches: KernelSwitches, fan_in: int, units: int) -> int:
    """The most rows an eval-mode affine (fan_in -> units) runs with affine_small_forward."""
    if switches.small_batch_rows < 1:
        return 0
    return max(switches.small_batch_rows, switches.small_work // max(fan_in * units, 1))


def small_batch_affine(target: Target, act: int, alpha: float, rows: int):  # noqa: ANN201
    """The eval-mode affine step (X, W, b, Y): Y = act(X @ W + b), with the small-batch
    kernel up to `rows` rows and the GEMM + epilogue above. X: (N, D), Y: (N, H)."""
    kernels = target.kernels
    small, bias_act, matmul = kernels.affine_small_forward, kernels.bias_act_forward, target.matmul()

    def affine_bias_act(X, W, b, Y):
        if X.shape[0] <= rows:
            small(X, W, b, act, alpha, Y)
        else:
            matmul(X, W, Y)
            bias_act(Y, b, act, alpha)

    return affine_bias_act


# packed_max_rows, packed_serial_work, packed_parallel, packed_parallel_work: above
# affine_small_forward's rows, an eval-mode affine layer (numba backend) can run
# affine_packed_forward on a copy of W transposed once (re-packed when
# ParameterStore.version moved), bias and activation fused: serially on layers of at
# most packed_serial_work multiply-adds (rows * fan_in * units), on any thread count
# (numpy's BLAS runs on one thread in a process that compiled a network, and a GEMM that
# small is not cut over graphnet's threads: graphnet.runtime.gemm_split), so that the
# kernel chosen, hence the bits, do not depend on the threads; and, when packed_parallel
# is set, split over two threads (affine_packed_forward_columns on each half of the
# columns, Target.helper) up to packed_max_rows rows from packed_parallel_work
# multiply-adds on, on the calls where graphnet runs 2+ threads (Target.live_threads;
# the split's rows run serially otherwise, the same bits). Larger batches run a BLAS
# GEMM + the epilogue. Measured on 2 cores against 2-thread OpenBLAS + the epilogue
# kernel, medians: serial, 256x10 at 32 rows 2.9 us against 3.8, at 64 rows 5.6 against
# 6.3, but 784x512 at 32 rows 262 us against 172; split, 784x512 at 32 rows ~180 us, at
# 256 rows ~1190 against 2080 serially. On a 1-thread BLAS the packed 256x10 layer took
# a batch-1 forward of the M network to 0.95x of the GEMM path. packed_parallel is off
# by default: on the M network (bench/inference_latency.py, 50 ms samples) it won at
# batch 256 (1.17x ONNX Runtime against 1.25x for the GEMM path) but not at batch 32
# (1.39x against 1.30x). The numpy backend keeps the GEMM. packed_max_rows = 0 turns the
# packed kernel off.
#
# helper_lag_work: the helper thread starts its half ~20-30 us after the caller (a
# wake-up through a lock, then the GIL to enter its kernel; measured on 2 vCPUs), about
# this many multiply-adds of the packed kernel: its half is smaller by as much, so that
# it usually finishes first and the caller does not sleep waiting for it.


def packed_rows(target: Target, work_per_row: int) -> int:
    """The most rows an eval-mode affine layer of `work_per_row` multiply-adds per row
    (fan_in * units) runs with the packed kernel on `target` (0: never)."""
    if target.backend != "numba":
        return 0
    if target.switches.packed_parallel:
        return target.switches.packed_max_rows
    return _serial_rows(target.switches, work_per_row)


def _serial_rows(switches: KernelSwitches, work_per_row: int) -> int:
    return min(switches.packed_max_rows, switches.packed_serial_work // max(work_per_row, 1))


def packed_label(target: Target, small_rows: int, work_per_row: int) -> str:
    """How the eval-mode affine step picks its kernel, for plan.describe()."""
    text = f"affine_small_forward up to {small_rows} rows, " if small_rows else ""
    text += f"affine_packed_forward up to {packed_rows(target, work_per_row)} rows"
    if target.switches.packed_parallel:
        text += f", on 2 threads from {_parallel_rows(target.switches, work_per_row)} while BLAS has 2+"
    return text


def _parallel_rows(switches: KernelSwitches, work_per_row: int) -> int:
    return -(-switches.packed_parallel_work // max(work_per_row, 1))


def packed_affine(target: Target, act: int, alpha: float, small_rows: int, work_per_row: int):  # noqa: ANN201
    """The eval-mode affine step (X, W, b, Y, WT, version): Y = act(X @ W + b) with
    affine_small_forward up to `small_rows` rows, the packed kernel on WT (W transposed,
    refreshed when version[0] moved) where packed_rows() says (on two threads where
    `packed_parallel` says so and graphnet runs 2+ threads at the call), and the GEMM +
    epilogue otherwise. X: (N, D), W: (D, H), WT: (H, D), Y: (N, H)."""
    kernels, switches, live_threads, helper = target.kernels, target.switches, target.live_threads, target.helper
    small, bias_act, matmul = kernels.affine_small_forward, kernels.bias_act_forward, target.matmul()
    serial, columns = kernels.affine_packed_forward, kernels.affine_packed_forward_columns
    serial_rows = _serial_rows(switches, work_per_row)
    max_rows = packed_rows(target, work_per_row)
    parallel_rows = _parallel_rows(switches, work_per_row) if switches.packed_parallel else max_rows + 1
    lag = switches.helper_lag_work
    packed_version = [-1]  # the parameters' version WT was packed at

    def affine_packed_bias_act(X, W, b, Y, WT, version):
        n = X.shape[0]
        if n <= small_rows:
            small(X, W, b, act, alpha, Y)
            return
        packed_split = parallel_rows <= n <= max_rows  # the split's rows: packed, on 1 or 2 threads (same bits)
        split = packed_split and helper is not None and live_threads() > 1
        if not packed_split and n > serial_rows:
            matmul(X, W, Y)
            bias_act(Y, b, act, alpha)
            return
        if packed_version[0] != version[0]:
            np.copyto(WT, W.T)
            packed_version[0] = int(version[0])
        h = WT.shape[0]
        mid = helper_split(h, n * work_per_row, lag) if split else h
        if mid < h:
            helper().run(columns, (X, WT, b, act, alpha, Y, 0, mid), (X, WT, b, act, alpha, Y, mid, h))  # type: ignore[misc]
        else:
            serial(X, WT, b, act, alpha, Y)

    return affine_packed_bias_act


def helper_split(units: int, work: int, lag: int) -> int:
    """The first of the `units` columns the helper thread computes (a multiple of 4; `units`:
    none): a share of the blocks of 4 columns `lag` multiply-adds smaller than half the `work`."""
    blocks = (units + 3) // 4
    helper_blocks = int(blocks * max(0.0, 0.5 - lag / (2 * max(work, 1))))
    return 4 * (blocks - helper_blocks) if helper_blocks else units


def backward(node: Affine, ctx: LowerContext) -> list[Step]:
    fan_in = ctx.inputs[0].size
    act = ACTIVATION_CODES[node.activation or "identity"]
    alpha = node.alpha
    identity = act == ACTIVATION_CODES["identity"]
    act_bias_backward, act_backward = ctx.kernels.act_bias_backward, ctx.kernels.act_backward
    weight_gradient, input_gradient = ctx.target.matmul(), ctx.target.matmul()  # each keeps its arrays

    # dY is dead after this step, so the activation gradient overwrites it in place.
    def activation_gradient(dY, Y, db):
        if db is not None:
            act_bias_backward(dY, Y if Y is not None else dY, act, alpha, dY, db)
        elif Y is not None:
            act_backward(dY, Y, act, alpha, dY)

    def affine_backward(dY, Y, db, X, W, dW, dX):
        activation_gradient(dY, Y, db)
        weight_gradient(X.T, dY, dW)
        if dX is not None:
            input_gradient(dY, W.T, dX)

    # With SGD fused in, W = W - rate * X.T @ dY is one GEMM (beta = 1): the weight
    # gradient never goes to memory. dX must read W before that update.
    def affine_backward_sgd(dY, Y, db, X, W, rate, dX):
        activation_gradient(dY, Y, db)
        if dX is not None:
            input_gradient(dY, W.T, dX)
        update_at_b(X, dY, W, -float(rate[0]), 1.0)

    dX = ctx.dx(0, (fan_in,))
    rate = ctx.update_in_backward("W")
    head = (
        ctx.dy(),
        None if identity else ctx.y(),  # the activation gradient is taken from the output
        ctx.param_grad("b") if node.bias else None,
        ctx.x(0, (fan_in,)),
    )
    parts = [f"act_bias_backward[{node.activation or 'identity'}]" if node.bias else ""]
    parts.append("" if node.bias or identity else f"act_backward[{node.activation}]")
    if rate is not None:
        update_at_b = ctx.at_b_update()
        parts.append("" if dX is None else "matmul")
        parts.append("gemm W -= rate * X.T @ dY")
        label = "+".join(p for p in parts if p)
        return [Step(node.id, label, affine_backward_sgd, (*head, ctx.param("W"), rate, dX),
                     writes=frozenset({0, 2, 4, 6}))]
    parts.append("matmul" if dX is None else "matmul x2")
    label = "+".join(p for p in parts if p)
    args = (*head, ctx.param("W") if dX is not None else None, ctx.param_grad("W"), dX)
    return [Step(node.id, label, affine_backward, args, writes=frozenset({0, 2, 5, 6}))]


def reference(node: Affine, xs: list[np.ndarray], ctx: ReferenceContext) -> np.ndarray:
    """act(X @ W + b) with X: (N, ...) flattened to (N, D); the activation is its op's own reference."""
    z = xs[0].reshape(len(xs[0]), -1) @ ctx.params["W"]
    if node.bias:
        z = z + ctx.params["b"]
    return ELEMENTWISE[node.activation or "identity"].reference(node, [z], ctx)


def _examples() -> dict[str, OpExample]:
    cases = {}
    for bias in (True, False):
        for activation in (None, *ACTIVATION_CODES):
            fields: dict = {"bias": bias}
            if activation:
                fields["activation"] = activation
            if activation == "leaky_relu":
                fields["alpha"] = 0.2
            cases[f"bias={bias}-act={activation}"] = example(affine("fc", "x", 5, **fields))
    cases["2d-input"] = example(affine("fc", "x", 5, activation="tanh"), input_shape=(2, 3))
    cases["l2"] = example(affine("fc", "x", 5, activation="relu"), l2=0.05)
    return cases


OP = OpRecord(
    name="affine",
    model=Affine,
    infer_shape=infer_shape,
    params=params,
    forward=forward,
    backward=backward,
    reference=reference,
    examples=_examples(),
)
