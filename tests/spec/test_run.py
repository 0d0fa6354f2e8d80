"""Run settings (graphnet/spec/run.py) checked against the network: train.augment. The other
run settings' field checks: tests/spec/test_spec.py."""
from __future__ import annotations

import json

import pytest

import graphnet as gn
from graphnet.spec import AugmentSpec

from tests._support.image_data import SIZE, image_run
from tests._support.paths import SPECS


def test_augment_parses_and_round_trips():
    run = gn.parse_run(image_run("d.npz", {"flip": "horizontal", "shift": 2}))
    assert run.train.augment == AugmentSpec(flip="horizontal", shift=2)
    assert gn.parse_run(run.to_json()) == run
    assert json.loads(run.as_trained_json())["train"]["augment"] == {"flip": "horizontal", "shift": 2}
    assert gn.parse_run(image_run("d.npz")).train.augment is None


@pytest.mark.parametrize("augment, location, words", [
    ({"flip": "vertical"}, "train.augment.flip", "'none' or 'horizontal'"),
    ({"shift": -1}, "train.augment.shift", "greater than or equal to 0"),
    ({"shift": 1.5}, "train.augment.shift", "integer"),
    ({"shift": SIZE}, "train.augment.shift", f"shift {SIZE} moves the image out of sight"),
    ({"shift": 1, "rotate": 10}, "train.augment.rotate", "unknown field"),
    ("flip", "train.augment", "valid dictionary"),
], ids=["flip", "negative", "fraction", "too-far", "unknown", "not-an-object"])
def test_bad_augment_values_are_located(augment, location, words):
    with pytest.raises(gn.SpecError) as caught:
        gn.parse_run(image_run("d.npz", augment), "run.json")
    assert len(caught.value.problems) == 1
    where, message = caught.value.problems[0]
    assert where == location and words in message
    assert str(caught.value).startswith(f"run.json: {location}: ")


def test_augment_needs_an_image_input():
    document = json.loads((SPECS / "fashion_mlp.json").read_text())
    document["train"]["augment"] = {"flip": "horizontal"}
    with pytest.raises(gn.SpecError) as caught:
        gn.parse_run(document, "fashion_mlp.json")
    assert caught.value.problems == [(
        "train.augment", "augmentation flips and shifts images [C, H, W]; the input 'x' has shape [784]: "
                         "remove \"augment\" or give the input an image shape")]
