"""The image ops' spec fields and geometry (graphnet/ops/images.py, conv.py, pool.py): output
shapes for every padding form, and located shape errors that name the node and both shapes."""
from __future__ import annotations

from typing import Any

import pytest

import graphnet as gn
from graphnet import SpecError
from graphnet.ops.images import Window, window_of


def network(*nodes: dict[str, Any], shape: list[int] | None = None) -> dict[str, Any]:
    """x [1, 6, 7] -> nodes -> head (3 classes) -> loss."""
    last = nodes[-1]["id"]
    return {"inputs": {"x": {"shape": shape or [1, 6, 7]}}, "labels": {"y": {"classes": 3}},
            "nodes": [*nodes, {"id": "head", "op": "affine", "inputs": [last], "units": 3},
                      {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["head", "y"]}],
            "outputs": ["head"], "loss": "loss"}


def conv(**fields: Any) -> dict[str, Any]:
    return {"id": "c", "op": "conv2d", "inputs": ["x"], "filters": 4, "kernel": 3, **fields}


def shape_of(doc: dict[str, Any], node: str) -> tuple[int, ...]:
    return gn.parse_network(doc).value(node).shape


def problems(doc: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as info:
        gn.parse_network(doc)
    return info.value.problems


@pytest.mark.parametrize("fields, expected", [
    ({}, (4, 4, 5)),
    ({"padding": "same"}, (4, 6, 7)),
    ({"padding": "same", "stride": 2}, (4, 3, 4)),
    ({"padding": 1, "stride": [2, 3]}, (4, 3, 3)),
    ({"padding": [0, 2], "kernel": [1, 5]}, (4, 6, 7)),
    ({"kernel": [6, 7]}, (4, 1, 1)),
])
def test_conv_output_shapes(fields, expected):
    assert shape_of(network(conv(**fields)), "c") == expected


def test_same_padding_puts_the_odd_row_after():
    node = gn.parse_network(network(conv(kernel=2, padding="same"))).node("c")
    assert window_of(node, node.padding, 6, 7) == Window(2, 2, 1, 1, 0, 0, 1, 1)


@pytest.mark.parametrize("op, fields, expected", [
    ("max_pool2d", {"kernel": 2}, (1, 3, 3)),
    ("avg_pool2d", {"kernel": 3, "stride": 2, "padding": 1}, (1, 3, 4)),
    ("max_pool2d", {"kernel": [2, 3], "stride": [1, 2]}, (1, 5, 3)),
    ("global_avg_pool", {}, (1,)),
])
def test_pool_output_shapes(op, fields, expected):
    assert shape_of(network({"id": "p", "op": op, "inputs": ["x"], **fields}), "p") == expected


def test_conv_parameters_are_laid_out_as_pytorch_and_onnx():
    net = gn.compile(gn.parse_network(network(conv(kernel=[2, 3]))), batch_size=2)
    assert net.params["c.W"].shape == (4, 1, 2, 3)
    assert net.params["c.b"].shape == (4,)


def test_kernel_larger_than_the_padded_input_names_node_and_both_shapes():
    found = problems(network(conv(kernel=[5, 10], padding=1)))
    assert found == [("nodes[0].inputs[0]", "node 'c' (conv2d): kernel (5, 10) is larger than the padded input "
                      "(8, 9) (input shape (1, 6, 7), padding top/left/bottom/right (1, 1, 1, 1))")]


def test_pool_window_larger_than_the_input():
    found = problems(network({"id": "p", "op": "max_pool2d", "inputs": ["x"], "kernel": 8}))
    assert [loc for loc, _ in found] == ["nodes[0].inputs[0]"]
    assert "node 'p' (max_pool2d): kernel (8, 8) is larger than the padded input (6, 7)" in found[0][1]


@pytest.mark.parametrize("op", ["conv2d", "max_pool2d", "avg_pool2d", "global_avg_pool"])
def test_image_ops_refuse_vectors(op):
    node = {"id": "v", "op": op, "inputs": ["x"], **({"filters": 2} if op == "conv2d" else {}),
            **({"kernel": 2} if op != "global_avg_pool" else {})}
    found = problems(network(node, shape=[784]))
    assert [loc for loc, _ in found] == ["nodes[0].inputs[0]"]
    assert f"({op}): expects an image [C, H, W] per example, got shape (784,)" in found[0][1]


def test_pool_padding_over_half_the_kernel_is_located():
    found = problems(network({"id": "p", "op": "avg_pool2d", "inputs": ["x"], "kernel": 3, "padding": [1, 2]}))
    assert found[0][0].startswith("nodes[0]")
    assert "padding [1, 2] must be at most half the kernel [3, 3]" in found[0][1]


@pytest.mark.parametrize("fields, location", [
    ({"kernel": 0}, "nodes[0].kernel"),
    ({"kernel": [3, 3, 3]}, "nodes[0].kernel"),
    ({"stride": 0}, "nodes[0].stride"),
    ({"padding": "full"}, "nodes[0].padding"),
    ({"padding": -1}, "nodes[0].padding"),
    ({"filters": 0}, "nodes[0].filters"),
    ({"dilation": 2}, "nodes[0].dilation"),
])
def test_conv_fields_are_checked_where_they_are(fields, location):
    found = problems(network(conv(**fields)))
    assert any(loc == location for loc, _ in found), found


def test_concat_of_images_with_other_sizes_names_both_shapes():
    doc = network({"id": "a", "op": "conv2d", "inputs": ["x"], "filters": 2, "kernel": 3},
                  {"id": "cat", "op": "concat", "inputs": ["a", "x"]})
    found = problems(doc)
    assert found[0][0] == "nodes[1].inputs[1]"
    assert "'x' has shape (1, 6, 7) but input 'a' has shape (2, 4, 5)" in found[0][1]


def test_concat_joins_images_along_channels():
    doc = network({"id": "a", "op": "conv2d", "inputs": ["x"], "filters": 2, "kernel": 3, "padding": "same"},
                  {"id": "cat", "op": "concat", "inputs": ["a", "x"]})
    assert shape_of(doc, "cat") == (3, 6, 7)


def test_batchnorm_of_images_has_one_scale_per_channel():
    doc = network(conv(), {"id": "bn", "op": "batchnorm", "inputs": ["c"]})
    net = gn.compile(gn.parse_network(doc), batch_size=2)
    assert net.params["bn.gamma"].shape == (4,) and net.state["bn.running_var"].shape == (4,)
