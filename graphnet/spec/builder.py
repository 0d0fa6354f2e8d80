"""Build network specs in Python as easily as in JSON.

    spec = gn.sequential(
        [{"op": "affine", "units": 512, "activation": "relu", "init": "he_normal"},
         {"op": "dropout", "rate": 0.2},
         {"op": "affine", "units": 10}],
        input_shape=[784], classes=10)

A layer is a dict of node fields without `inputs` (each layer reads the one
before it); `id` is optional (`affine1`, `dropout1`, ... by default). For
DAGs with branches, build `NetworkSpec(...)` directly from node dicts or the
models in `graphnet.ops`.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Mapping, Sequence

from ..errors import SpecError
from ..ops import OPS, NodeModel
from . import NetworkSpec, parse_network


def _layer_dict(layer: Mapping[str, Any] | NodeModel, position: int) -> dict[str, Any]:
    if isinstance(layer, NodeModel):
        return layer.model_dump(exclude={"inputs"}, exclude_defaults=True)
    if not isinstance(layer, Mapping):
        raise SpecError([(f"layers[{position}]", f"a layer is a dict of node fields, got {type(layer).__name__}")])
    if "inputs" in layer:
        raise SpecError([(f"layers[{position}].inputs", "a sequential layer reads the layer before it; "
                                                         "leave 'inputs' out")])
    return dict(layer)


def sequential(
    layers: Sequence[Mapping[str, Any] | NodeModel],
    *,
    input_shape: Sequence[int],
    classes: int | None = None,
    target_shape: Sequence[int] | None = None,
    loss: str | None = "softmax_cross_entropy",
    l2: float = 0.0,
    name: str = "sequential",
    input_name: str = "x",
    label_name: str = "y",
) -> NetworkSpec:
    """A chain of layers -> NetworkSpec.

    The output is the last layer. With `loss` (an op name), a loss node `loss`
    reads the output and the labels `label_name`: integer `classes` for
    classification losses, float targets of `target_shape` for mse and
    sigmoid_binary_cross_entropy. `loss=None` gives an inference-only network.
    """
    counts: Counter[str] = Counter()
    nodes: list[dict[str, Any]] = []
    previous = input_name
    for position, layer in enumerate(layers):
        fields = _layer_dict(layer, position)
        op = str(fields.get("op", "layer"))  # a missing "op" stays missing: the parser reports it
        counts[op] += 1
        node_id = fields.pop("id", None) or f"{op}{counts[op]}"
        nodes.append({"id": node_id, "inputs": [previous], **fields})
        previous = node_id
    document: dict[str, Any] = {
        "name": name,
        "inputs": {input_name: {"shape": list(input_shape)}},
        "nodes": nodes,
        "outputs": [previous],
        "l2": l2,
    }
    if loss is not None:
        record = OPS.get(loss)
        if record is None or not record.is_loss:
            known = ", ".join(n for n, r in OPS.items() if r.is_loss)
            raise SpecError([("loss", f"'{loss}' is not a loss op (loss ops: {known})")])
        if record.label_kind == "classes":
            if classes is None:
                raise SpecError([("classes", f"{loss} needs the number of classes")])
            document["labels"] = {label_name: {"classes": classes}}
        else:
            if target_shape is None:  # targets shaped like the output
                target_shape = parse_network({**document, "l2": 0.0}).value(previous).shape
            document["labels"] = {label_name: {"shape": list(target_shape)}}
        nodes.append({"id": "loss", "op": loss, "inputs": [previous, label_name]})
        document["loss"] = "loss"
    return parse_network(document)
