"""graphnet.spec.builder.sequential, and building NetworkSpec directly from node models in Python."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from graphnet import SpecError
from graphnet.compiler.graph import build_graph
from graphnet.ops.activations import Relu
from graphnet.ops.affine import Affine
from graphnet.ops.dropout import Dropout
from graphnet.ops.losses import SoftmaxCrossEntropy
from graphnet.ops.structure import Add
from graphnet.spec import InputSpec, LabelSpec, NetworkSpec, parse
from graphnet.spec.builder import sequential


def spec_error(fn, *args, **kwargs) -> SpecError:
    with pytest.raises(SpecError) as info:
        fn(*args, **kwargs)
    assert not isinstance(info.value, ValidationError)
    assert info.value.problems
    return info.value


def locations(error: SpecError) -> list[str]:
    return [loc for loc, _ in error.problems]


# ---- sequential ---------------------------------------------------------------------------------


def test_classification_mlp():
    spec = sequential(
        [{"op": "affine", "units": 16, "activation": "relu", "init": "he_normal"},
         {"op": "dropout", "rate": 0.2},
         {"op": "affine", "units": 10}],
        input_shape=[784], classes=10, l2=1e-4, name="mlp")
    assert [(n.id, n.op) for n in spec.nodes] == [
        ("affine1", "affine"), ("dropout1", "dropout"), ("affine2", "affine"), ("loss", "softmax_cross_entropy")]
    assert [n.inputs for n in spec.nodes] == [["x"], ["affine1"], ["dropout1"], ["affine2", "y"]]
    assert spec.name == "mlp" and spec.l2 == 1e-4
    assert spec.outputs == ["affine2"] and spec.loss == "loss"
    assert spec.labels["y"].classes == 10
    assert spec.value("affine2").shape == (10,)
    assert {p.name: p.shape for p in build_graph(spec).params} == {
        "affine1.W": (784, 16), "affine1.b": (16,), "affine2.W": (16, 10), "affine2.b": (10,)}


@pytest.mark.parametrize("loss", ["svm", "cross_entropy"])
def test_other_classification_losses(loss):
    spec = sequential([{"op": "affine", "units": 3}, {"op": "softmax"}], input_shape=[2], classes=3, loss=loss)
    assert spec.node("loss").op == loss


@pytest.mark.parametrize("loss", ["mse", "sigmoid_binary_cross_entropy"])
def test_regression_losses_take_targets_shaped_like_the_output(loss):
    spec = sequential([{"op": "affine", "units": 5, "activation": "tanh"}, {"op": "affine", "units": 2}],
                      input_shape=[3], loss=loss)
    assert spec.labels["y"].shape == [2] and spec.labels["y"].classes is None
    assert spec.node("loss").op == loss and spec.value("loss").shape == ()


def test_explicit_target_shape_must_match():
    spec = sequential([{"op": "affine", "units": 2}], input_shape=[3], loss="mse", target_shape=[2])
    assert spec.labels["y"].shape == [2]
    error = spec_error(sequential, [{"op": "affine", "units": 2}], input_shape=[3], loss="mse", target_shape=[3])
    assert locations(error) == ["nodes[1].inputs[1]"]
    assert "shape (3,)" in error.problems[0][1] and "(2,)" in error.problems[0][1]


def test_inference_only_network():
    spec = sequential([{"op": "flatten"}, {"op": "affine", "units": 2}], input_shape=[2, 2], loss=None)
    assert spec.loss is None and spec.labels == {}
    assert spec.outputs == ["affine1"] and spec.value("flatten1").shape == (4,)


def test_custom_ids_names_and_node_models_as_layers():
    spec = sequential(
        [{"id": "hidden", "op": "affine", "units": 4}, Relu(id="act", inputs=[]),
         Affine(id="out", inputs=["ignored"], units=3, init="zeros")],
        input_shape=[2], classes=3, input_name="features", label_name="target")
    assert [n.id for n in spec.nodes] == ["hidden", "act", "out", "loss"]
    assert spec.node("act").inputs == ["hidden"] and spec.node("out").inputs == ["act"]
    assert spec.node("out").init == "zeros"
    assert list(spec.inputs) == ["features"] and list(spec.labels) == ["target"]
    assert spec.node("loss").inputs == ["out", "target"]


def test_default_ids_count_per_op():
    spec = sequential([{"op": "affine", "units": 4}, {"op": "relu"}, {"op": "affine", "units": 4}, {"op": "relu"},
                       {"op": "affine", "units": 2}], input_shape=[2], loss=None)
    assert [n.id for n in spec.nodes] == ["affine1", "relu1", "affine2", "relu2", "affine3"]


def test_built_spec_round_trips():
    spec = sequential([{"op": "batchnorm"}, {"op": "affine", "units": 3}], input_shape=[5], classes=3)
    assert parse(spec.to_json()) == spec


def test_builder_errors():
    error = spec_error(sequential, [{"op": "affine", "units": 3}], input_shape=[4])
    assert error.problems == [("classes", "softmax_cross_entropy needs the number of classes")]
    error = spec_error(sequential, [{"op": "affine", "units": 3}], input_shape=[4], loss="relu")
    assert locations(error) == ["loss"] and "'relu' is not a loss op" in error.problems[0][1]
    error = spec_error(sequential, [{"op": "affine", "units": 3}, "relu"], input_shape=[4], classes=3)
    assert error.problems == [("layers[1]", "a layer is a dict of node fields, got str")]
    error = spec_error(sequential, [{"op": "affine", "units": 3, "inputs": ["x"]}], input_shape=[4], classes=3)
    assert locations(error) == ["layers[0].inputs"]


@pytest.mark.parametrize(
    "layers, location, part",
    [
        ([{"op": "afine", "units": 3}], "nodes[0]", "did you mean 'affine'?"),
        ([{"units": 3}], "nodes[0]", "missing 'op' field"),
        ([{"op": "affine", "units": 0}], "nodes[0].units", "greater than or equal to 1"),
        ([{"op": "affine", "unitz": 3}], "nodes[0].unitz", "did you mean 'units'?"),
        ([{"op": "affine", "units": "3"}], "nodes[0].units", "valid integer"),
        ([{"op": "affine", "units": 4}], "nodes[1].inputs[1]", "4 scores"),
        ([{"op": "affine", "units": 3}, {"op": "dropout", "rate": 1}], "nodes[1].rate", "less than 1"),
        ([{"id": "loss", "op": "affine", "units": 3}], "nodes[1].id", "duplicate id 'loss'"),
        ([{"id": "a", "op": "affine", "units": 3}, {"id": "a", "op": "relu"}], "nodes[1].id", "duplicate id 'a'"),
        ([{"id": "x", "op": "affine", "units": 3}], "nodes[0].id", "already an input name"),
        ([{"op": "affine", "units": 3}, {"op": "add"}], "nodes[1].inputs", "at least 2 inputs"),
    ],
)
def test_bad_layers(layers, location, part):
    error = spec_error(sequential, layers, input_shape=[4], classes=3)
    assert any(loc == location and part in message for loc, message in error.problems), error.problems


def test_bad_layer_in_a_regression_network():
    error = spec_error(sequential, [{"op": "affine", "units": 0}], input_shape=[4], loss="mse")
    assert locations(error) == ["nodes[0].units"]


def test_bad_network_settings():
    assert locations(spec_error(sequential, [{"op": "relu"}], input_shape=[0], loss=None)) == ["inputs.x.shape[0]"]
    assert locations(spec_error(sequential, [{"op": "relu"}], input_shape=[3], loss=None, l2=-1.0)) == ["l2"]
    assert locations(spec_error(sequential, [{"op": "relu"}], input_shape=[3], classes=1)) == ["labels.y.classes"]


# ---- NetworkSpec(...) in Python --------------------------------------------------------------------


def test_network_spec_from_node_models():
    spec = NetworkSpec(
        name="py",
        inputs={"x": InputSpec(shape=[4])},
        labels={"y": LabelSpec(classes=3)},
        nodes=[Affine(id="fc1", inputs=["x"], units=4), Relu(id="h", inputs=["fc1"]),
               Add(id="sum", inputs=["fc1", "h"]), Dropout(id="drop", inputs=["sum"], rate=0.1),
               Affine(id="fc2", inputs=["drop"], units=3), SoftmaxCrossEntropy(id="loss", inputs=["fc2", "y"])],
        outputs=["fc2"], loss="loss")
    assert spec.value("sum").shape == (4,)
    assert parse(spec.to_json()) == spec
    assert parse(spec.model_dump(by_alias=True)) == spec


def test_network_spec_from_dicts_and_alias():
    spec = NetworkSpec(**{"$schema": "./schema.json", "inputs": {"x": {"shape": [2]}},
                          "nodes": [{"id": "h", "op": "relu", "inputs": ["x"]}], "outputs": ["h"]})
    assert spec.schema_ref == "./schema.json"
    assert NetworkSpec(schema_ref="s.json", inputs={"x": {"shape": [2]}},
                       nodes=[Relu(id="h", inputs=["x"])], outputs=["h"]).schema_ref == "s.json"


def test_bad_node_model_raises_spec_error_not_validation_error():
    error = spec_error(Affine, id="fc1", inputs=["x"], units=0)
    assert locations(error) == ["units"]
    error = spec_error(Affine, id="fc1", inputs=["x"], unitz=3)
    assert set(locations(error)) == {"units", "unitz"}
    assert any("did you mean 'units'?" in message for _, message in error.problems)
    error = spec_error(Dropout, id="1d", inputs=["x"], rate=1.0)
    assert set(locations(error)) == {"id", "rate"}
    error = spec_error(InputSpec, shape=[0])
    assert locations(error) == ["shape[0]"]
    error = spec_error(LabelSpec)
    assert "exactly one of" in error.problems[0][1]


def test_bad_network_spec_raises_spec_error_with_json_locations():
    good_nodes = [Affine(id="fc1", inputs=["x"], units=3), SoftmaxCrossEntropy(id="loss", inputs=["fc1", "y"])]
    base = dict(inputs={"x": {"shape": [4]}}, labels={"y": {"classes": 3}}, nodes=good_nodes, outputs=["fc1"],
                loss="loss")
    error = spec_error(NetworkSpec, **{**base, "outputs": ["fc2"]})
    assert error.problems == [("outputs[0]", "'fc2' is not a node; did you mean 'fc1'?")]
    error = spec_error(NetworkSpec, **{**base, "l2": -1.0})
    assert locations(error) == ["l2"]
    error = spec_error(NetworkSpec, **{**base, "lr": 0.1})
    assert locations(error) == ["lr"]
    error = spec_error(NetworkSpec, **{**base, "nodes": [*good_nodes, Relu(id="fc1", inputs=["x"])]})
    assert locations(error) == ["nodes[2].id"]
    error = spec_error(NetworkSpec, **{**base, "nodes": [{"id": "fc1", "op": "affine", "inputs": ["x"],
                                                          "units": 0}, good_nodes[1]]})
    assert error.problems == [("nodes[0].units", "node 'fc1' (affine): input should be greater than or equal to 1")]
    error = spec_error(NetworkSpec, **{**base, "nodes": [Affine(id="fc1", inputs=["x"], units=5), good_nodes[1]]})
    assert locations(error) == ["nodes[1].inputs[1]"]
    error = spec_error(NetworkSpec, **{**base, "schema_version": True})
    assert locations(error) == ["schema_version"]


def test_models_are_frozen():
    node = Affine(id="fc1", inputs=["x"], units=3)
    with pytest.raises(ValidationError):
        node.units = 4  # type: ignore[misc]
