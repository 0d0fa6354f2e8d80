"""From the nodes an ONNX walk recorded to a spec document: bias folding, activation
fusion, pruning to what the outputs need, node ids, and the arrays by parameter name."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..compiler.graph import upstream
from .onnx_graph import Importer, Pending, Val
from .onnx_rules import bias_vector

AFFINE_ACTIVATIONS = {"relu", "leaky_relu", "sigmoid", "tanh"}
MAX_ID = 64


def identifier(text: str, prefix: str) -> str:
    """`text` made into a valid node id: other characters become `_`, a leading digit gets `prefix_`."""
    cleaned = re.sub(r"[^\w\-]+", "_", text).strip("_")
    if not cleaned:
        return prefix
    if not re.match(r"[^\W\d]", cleaned):
        cleaned = f"{prefix}_{cleaned}"
    return cleaned[:MAX_ID]


def _readers(nodes: dict[str, Pending], outputs: list[str]) -> dict[str, int]:
    """How many node inputs and graph outputs read each value key."""
    count: dict[str, int] = {}
    for pending in nodes.values():
        for key in pending.inputs:
            count[key] = count.get(key, 0) + 1
    for key in outputs:
        count[key] = count.get(key, 0) + 1
    return count


def _merge_into_producer(nodes: dict[str, Pending], consumer: Pending, producer: Pending) -> None:
    """`producer` takes over `consumer`'s output (and its place in the graph)."""
    del nodes[producer.output]
    producer.output = consumer.output
    producer.hints += consumer.hints
    nodes[consumer.output] = producer


def _fold_biases(imp: Importer, output_keys: list[str]) -> None:
    """An Add of a constant after a bias-less affine (MatMul) that nothing else reads becomes its bias."""
    readers = _readers(imp.nodes, output_keys)
    for pending in list(imp.nodes.values()):
        if pending.op != "bias_add":
            continue
        producer = imp.nodes.get(pending.inputs[0])
        if producer is None or producer.op != "affine" or producer.fields["bias"] or readers[producer.output] != 1:
            raise imp.error(pending.where, "Add of a constant is only supported as the bias of a MatMul "
                                  "(or Gemm without bias) that nothing else reads")
        producer.arrays["b"] = bias_vector(imp, pending.where, pending.arrays["b"], producer.fields["units"])
        producer.fields["bias"] = True
        _merge_into_producer(imp.nodes, pending, producer)


def _fuse_activations(imp: Importer, output_keys: list[str]) -> None:
    """An affine or conv2d whose only reader is an elementwise activation runs it as its epilogue."""
    readers = _readers(imp.nodes, output_keys)
    for pending in list(imp.nodes.values()):
        if pending.op not in AFFINE_ACTIVATIONS:
            continue
        producer = imp.nodes.get(pending.inputs[0])
        if producer is None or producer.op not in ("affine", "conv2d") or "activation" in producer.fields \
                or readers[producer.output] != 1:
            continue
        producer.fields["activation"] = pending.op
        if pending.op == "leaky_relu":
            producer.fields["alpha"] = pending.fields["alpha"]
        _merge_into_producer(imp.nodes, pending, producer)


def _needed(nodes: dict[str, Pending], output_keys: list[str]) -> list[Pending]:
    """The nodes the outputs are computed from, in the graph's order."""
    needed = upstream(output_keys, lambda key: nodes[key].inputs if key in nodes else ())
    return [pending for key, pending in nodes.items() if key in needed]


def _assign_ids(nodes: list[Pending], taken: set[str], outputs: set[str]) -> dict[str, str]:
    """value key -> node id: the first free name among the module path of its weight
    (`fc1.weight` -> `fc1`), the graph output it is, its ONNX node name, its output's name."""
    ids = {}
    for pending in nodes:
        hints = [(name, prefix) for name, prefix, from_weight in pending.hints if from_weight and name]
        if pending.output in outputs:
            hints.append((pending.output, "output"))
        hints += [(name, prefix) for name, prefix, from_weight in pending.hints if not from_weight and name]
        candidates = [identifier(name, prefix) for name, prefix in hints]
        chosen = next((c for c in candidates if c not in taken), None)
        if chosen is None:
            base = (candidates[0] if candidates else pending.op)[:MAX_ID - 6]
            chosen = next(f"{base}_{k}" for k in range(2, 1 << 30) if f"{base}_{k}" not in taken)
        taken.add(chosen)
        ids[pending.output] = chosen
    return ids


def spec_document(imp: Importer, name: str) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, str]]:
    """The spec document, the arrays by parameter/state name, and the renamed inputs/outputs."""
    graph = imp.model.graph
    renamed: dict[str, str] = {}
    input_ids: dict[str, str] = {}
    taken: set[str] = set()
    inputs_doc = {}
    initializers = {t.name for t in graph.initializer}
    for value_info in graph.input:
        if value_info.name in initializers:
            continue
        spec_name = identifier(value_info.name, "input")
        while spec_name in taken:
            spec_name = f"{spec_name}_"
        taken.add(spec_name)
        input_ids[value_info.name] = spec_name
        inputs_doc[spec_name] = {"shape": list(imp.values[value_info.name].shape)}  # type: ignore[union-attr]
        if spec_name != value_info.name:
            renamed[value_info.name] = spec_name
    output_keys = []
    for output in graph.output:
        found = imp.values.get(output.name)
        if not isinstance(found, Val):
            raise imp.error(f"output '{output.name}'", "is a constant or not computed by a supported node")
        output_keys.append(found.key)
    _fold_biases(imp, output_keys)
    _fuse_activations(imp, output_keys)
    nodes = _needed(imp.nodes, output_keys)
    ids = {**input_ids, **_assign_ids(nodes, taken, {o.name for o in graph.output})}
    node_docs, arrays = [], {}
    for pending in nodes:
        node_id = ids[pending.output]
        node_docs.append({"id": node_id, "op": pending.op, "inputs": [ids[k] for k in pending.inputs],
                          **pending.fields})
        arrays.update({f"{node_id}.{local}": array for local, array in pending.arrays.items()})
    outputs = []
    for output, key in zip(graph.output, output_keys):
        wanted = identifier(output.name, "output")
        if ids[key] == wanted or wanted in taken:
            outputs.append(ids[key])
        else:  # name the output as the ONNX model does
            taken.add(wanted)
            node_docs.append({"id": wanted, "op": "identity", "inputs": [ids[key]]})
            outputs.append(wanted)
        if outputs[-1] != output.name:
            renamed[output.name] = outputs[-1]
    document = {"name": name, "description": f"imported from {Path(imp.source).name}", "inputs": inputs_doc,
                "nodes": node_docs, "outputs": outputs}
    return document, arrays, renamed


