"""Spec builders for the compiler tests: a one-input classifier from node dicts
(with a softmax_cross_entropy loss when given its inputs), affine and other node
dicts, and a small residual network."""
from __future__ import annotations

import graphnet as gn


def network(nodes, outputs, *, classes=3, input_shape=(4,), loss_inputs=None):
    doc = {"name": "t", "inputs": {"x": {"shape": list(input_shape)}}, "labels": {"y": {"classes": classes}},
           "nodes": list(nodes), "outputs": outputs}
    if loss_inputs:
        doc["nodes"].append({"id": "loss", "op": "softmax_cross_entropy", "inputs": loss_inputs})
        doc["loss"] = "loss"
    return gn.parse_network(doc)


def affine(node_id, src, units, **fields):
    return {"id": node_id, "op": "affine", "inputs": [src], "units": units, **fields}


def node(node_id, op, *inputs, **fields):
    return {"id": node_id, "op": op, "inputs": list(inputs), **fields}


def residual_spec():
    return network([affine("stem", "x", 5, activation="relu"), affine("f1", "stem", 5, activation="relu"),
                    affine("f2", "f1", 5), node("sum", "add", "stem", "f2"), node("out", "relu", "sum"),
                    affine("head", "out", 3)], ["head"], loss_inputs=["head", "y"])
