"""The op registry: one record per op (see `graphnet.ops.base.OpRecord`).

Adding an op means one module that defines its node model and record
(compiler hooks, reference math, example networks), and one entry in `OPS`
below; the spec parser, graph builder, compiler, plan printer, fusion table
and the table-driven tests all pick it up from here. (An activation an affine
can fuse also needs its code in the kernels, `graphnet.kernels.codes`.)
"""
from __future__ import annotations

from ..kernels.codes import ACTIVATION_CODES
from . import activations, affine, conv, dropout, losses, normalization, pool, structure
from .base import (
    INITIALIZERS,
    NodeModel,
    OpRecord,
    ParamDecl,
    ReferenceContext,
    ShapeError,
    StateDecl,
    Value,
)
from .examples import OpExample

_RECORDS: list[OpRecord] = [
    affine.OP,
    activations.RELU,
    activations.LEAKY_RELU,
    activations.SIGMOID,
    activations.TANH,
    activations.SOFTMAX,
    activations.IDENTITY,
    conv.OP,
    pool.MAX_POOL2D,
    pool.AVG_POOL2D,
    pool.GLOBAL_AVG_POOL,
    normalization.BATCHNORM,
    normalization.LAYERNORM,
    dropout.OP,
    structure.FLATTEN,
    structure.ADD,
    structure.CONCAT,
    losses.SOFTMAX_CROSS_ENTROPY,
    losses.CROSS_ENTROPY,
    losses.SVM,
    losses.MSE,
    losses.MAE,
    losses.HUBER,
    losses.SIGMOID_BINARY_CROSS_ENTROPY,
]

OPS: dict[str, OpRecord] = {record.name: record for record in _RECORDS}
LOSS_OPS: tuple[str, ...] = tuple(name for name, record in OPS.items() if record.is_loss)

__all__ = [
    "ACTIVATION_CODES",
    "INITIALIZERS",
    "LOSS_OPS",
    "NodeModel",
    "OPS",
    "OpExample",
    "OpRecord",
    "ParamDecl",
    "ReferenceContext",
    "ShapeError",
    "StateDecl",
    "Value",
]
