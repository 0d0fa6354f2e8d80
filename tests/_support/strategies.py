"""Hypothesis strategies for random valid network specs (small DAGs).

`network_specs()` draws a NetworkSpec built from:
- a vector input, or a 2-D input that is flattened first (or read by an
  affine directly, which flattens per example);
- a few blocks, each reading earlier values: affine (with or without bias,
  any fused activation), standalone activations (relu, leaky_relu with its
  alpha, sigmoid, tanh, identity, softmax), batchnorm, layernorm, dropout
  (rate 0 or > 0), add (of equal-width values, including a value read twice,
  `add(a, a)`, and residual joins), concat (2 or 3 values);
- a head affine producing the scores, and one loss of every kind: fused
  softmax_cross_entropy, softmax -> cross_entropy (fused, or not fused when
  the probabilities are an output too), svm, mse, sigmoid_binary_cross_entropy;
- sometimes an extra network output (an intermediate value), sometimes l2.

Nodes not on a path to an output or the loss are allowed: the compiler must
prune them (their parameters get zero gradients).

Test modules load this file by path (tests/ is not a package).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

from hypothesis import strategies as st

import graphnet as gn

LOSS_KINDS = ("softmax_cross_entropy", "cross_entropy_fused", "cross_entropy_unfused", "svm", "mse",
              "sigmoid_binary_cross_entropy")
BLOCK_KINDS = ("affine", "activation", "batchnorm", "layernorm", "dropout", "add", "residual", "concat")
STANDALONE = ("relu", "leaky_relu", "sigmoid", "tanh", "identity", "softmax")


@dataclass(frozen=True)
class NetCase:
    """A drawn network and what it was built from (shown by hypothesis on failure)."""

    spec: gn.NetworkSpec
    loss_kind: str
    blocks: tuple[str, ...]

    def __repr__(self) -> str:
        return f"NetCase({self.loss_kind}, blocks={list(self.blocks)}):\n{self.spec.to_json(indent=None)}"


@st.composite
def network_specs(draw, loss_kinds=LOSS_KINDS, max_blocks: int = 6, max_width: int = 6,
                  dropout: bool = True) -> NetCase:
    nodes: list[dict] = []
    pool: list[tuple[str, int]] = []  # vector values (id, width) a block may read
    counter = [0]

    def new_id(prefix: str) -> str:
        counter[0] += 1
        return f"{prefix}{counter[0]}"

    def add_node(prefix: str, op: str, inputs: list[str], width: int, **fields) -> str:
        node_id = new_id(prefix)
        nodes.append({"id": node_id, "op": op, "inputs": inputs, **fields})
        pool.append((node_id, width))
        return node_id

    def affine_fields(units: int) -> dict:
        fields: dict = {"units": units}
        fields["bias"] = draw(st.booleans())
        activation = draw(st.sampled_from([None, "identity", "relu", "leaky_relu", "sigmoid", "tanh"]))
        if activation is not None:
            fields["activation"] = activation
            if activation == "leaky_relu":
                fields["alpha"] = draw(st.sampled_from([0.01, 0.2, 0.5]))
        fields["init"] = draw(st.sampled_from(["xavier_uniform", "xavier_normal", "he_normal", "he_uniform"]))
        return fields

    two_d = draw(st.booleans())
    if two_d:
        shape = [draw(st.integers(2, 3)), draw(st.integers(2, 3))]
        if draw(st.booleans()):
            add_node("flat", "flatten", ["x"], shape[0] * shape[1])
        else:  # an affine reads a 2-D input directly (it flattens per example)
            units = draw(st.integers(2, max_width))
            add_node("fc", "affine", ["x"], units, **affine_fields(units))
    else:
        shape = [draw(st.integers(2, max_width))]
        pool.append(("x", shape[0]))

    kinds = draw(st.lists(st.sampled_from(BLOCK_KINDS), min_size=1, max_size=max_blocks))
    for kind in kinds:
        src, width = draw(st.sampled_from(pool))
        if kind == "affine":
            units = draw(st.integers(2, max_width))
            add_node("fc", "affine", [src], units, **affine_fields(units))
        elif kind == "activation":
            op = draw(st.sampled_from(STANDALONE))
            fields = {"alpha": draw(st.sampled_from([0.05, 0.3]))} if op == "leaky_relu" else {}
            add_node(op[:4], op, [src], width, **fields)
        elif kind == "batchnorm":
            add_node("bn", "batchnorm", [src], width, momentum=draw(st.sampled_from([0.0, 0.5, 0.9])))
        elif kind == "layernorm":
            add_node("ln", "layernorm", [src], width)
        elif kind == "dropout":
            rate = draw(st.sampled_from([0.0, 0.25, 0.5])) if dropout else 0.0
            add_node("drop", "dropout", [src], width, rate=rate)
        elif kind == "add":
            same = [name for name, w in pool if w == width]
            other = draw(st.sampled_from(same))  # may be src itself: add(a, a)
            inputs = [src, other]
            if draw(st.integers(0, 3)) == 0:
                inputs.append(draw(st.sampled_from(same)))
            add_node("add", "add", inputs, width)
        elif kind == "residual":  # src + affine(other): the classic skip connection
            other, _ = draw(st.sampled_from(pool))
            branch = add_node("fc", "affine", [other], width, **affine_fields(width))
            add_node("add", "add", [src, branch], width)
        elif kind == "concat":
            count = draw(st.integers(2, 3))
            inputs = [src] + [draw(st.sampled_from(pool))[0] for _ in range(count - 1)]
            add_node("cat", "concat", inputs, sum(dict(pool)[name] for name in inputs))

    loss_kind = draw(st.sampled_from(loss_kinds))
    last = pool[-1][0] if draw(st.integers(0, 3)) else draw(st.sampled_from(pool))[0]
    classes = draw(st.integers(2, 4))
    nodes.append({"id": "head", "op": "affine", "inputs": [last], "units": classes,
                  "init": "xavier_uniform", "bias": draw(st.booleans())})
    outputs = ["head"]
    if loss_kind in ("cross_entropy_fused", "cross_entropy_unfused"):
        nodes.append({"id": "probs", "op": "softmax", "inputs": ["head"]})
        nodes.append({"id": "loss", "op": "cross_entropy", "inputs": ["probs", "y"]})
        if loss_kind == "cross_entropy_unfused":
            outputs.append("probs")
    else:
        nodes.append({"id": "loss", "op": loss_kind, "inputs": ["head", "y"]})
    if loss_kind in ("mse", "sigmoid_binary_cross_entropy"):
        labels = {"y": {"shape": [classes]}}
    else:
        labels = {"y": {"classes": classes}}
    node_ids = [node["id"] for node in nodes if node["id"] != "loss"]
    if len(node_ids) > 1 and draw(st.integers(0, 3)) == 0:  # an intermediate value as an extra output
        extra = draw(st.sampled_from(node_ids))
        if extra not in outputs:
            outputs.append(extra)
    document = {
        "name": "drawn",
        "inputs": {"x": {"shape": shape}},
        "labels": labels,
        "nodes": nodes,
        "outputs": outputs,
        "loss": "loss",
        "l2": draw(st.sampled_from([0.0, 0.0, 1e-2])),
    }
    with warnings.catch_warnings():  # drawn DAGs may have dead ends on purpose: the compiler must cope
        warnings.simplefilter("ignore", gn.SpecWarning)
        spec = gn.parse_network(document)
    return NetCase(spec, loss_kind, tuple(kinds))
