"""Frozen parameters (a node's "trainable": false, a run's "freeze"): kept fixed by every update
path, given no optimizer state, no update steps and no backward steps that only they would need."""
from __future__ import annotations

import json

import numpy as np
import pytest

import graphnet as gn
from graphnet.cli import main
from graphnet.errors import SpecError
from graphnet.model.checkpoint import spec_hash

NETWORK = {
    "name": "frozen_body",
    "inputs": {"x": {"shape": [4]}},
    "labels": {"y": {"classes": 3}},
    "nodes": [
        {"id": "fc1", "op": "affine", "inputs": ["x"], "units": 8, "activation": "relu"},
        {"id": "bn", "op": "batchnorm", "inputs": ["fc1"]},
        {"id": "fc2", "op": "affine", "inputs": ["bn"], "units": 3},
        {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc2", "y"]},
    ],
    "outputs": ["fc2"],
    "loss": "loss",
    "l2": 1e-3,
}


def network(**frozen_flags: bool) -> dict:
    document = json.loads(json.dumps(NETWORK))
    for node in document["nodes"]:
        if node["id"] in frozen_flags:
            node["trainable"] = frozen_flags[node["id"]]
    return document


def batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((16, 4)).astype(np.float32), rng.integers(0, 3, 16)


@pytest.mark.parametrize("rule, options", [("sgd", {}), ("adam", {}), ("momentum", {}),
                                            ("adam", {"clip_norm": 0.1}), ("adam", {"fuse_update": False})])
def test_frozen_parameters_stay_and_have_no_optimizer_state(rule, options):
    net = gn.compile(network(fc1=False), batch_size=16, seed=0)
    body = {name: net.params[name].copy() for name in ("fc1.W", "fc1.b")}
    head = net.params["fc2.W"].copy()
    optimizer = gn.Optimizer(net, rule, learning_rate=0.1, **options)
    for seed in range(3):
        optimizer.step(*batch(seed))
    for name, value in body.items():
        np.testing.assert_array_equal(net.params[name], value)
    assert not np.allclose(net.params["fc2.W"], head)
    trainable = sum(net.params[name].size for name in ("bn.gamma", "bn.beta", "fc2.W", "fc2.b"))
    assert all(slot.shape == (trainable,) for slot in optimizer.slots.values())


@pytest.mark.parametrize("fuse_update", [True, False])
def test_the_head_trains_as_if_the_body_were_constants(fuse_update):
    """The frozen network's head follows the same trajectory whichever update path runs it
    (fused into backward, or after it), and the body's gradients are never needed."""
    frozen = gn.compile(network(fc1=False, bn=False), batch_size=16, seed=0)
    reference = gn.compile(network(fc1=False, bn=False), batch_size=16, seed=0)
    a = gn.Optimizer(frozen, "adam", learning_rate=0.05, fuse_update=fuse_update)
    b = gn.Optimizer(reference, "adam", learning_rate=0.05, fuse_update=not fuse_update)
    for seed in range(4):
        assert a.step(*batch(seed)) == pytest.approx(b.step(*batch(seed)), rel=1e-6)
    np.testing.assert_allclose(frozen.params["fc2.W"], reference.params["fc2.W"], rtol=1e-5, atol=1e-7)


def test_a_frozen_body_has_no_update_and_no_backward_steps():
    """No step after forward touches a frozen parameter or its gradient: no update, no gradient."""
    def backward_refs(net, kind):
        plan = net.plan(kind)
        return [(step.node, step.kernel, ref.name) for step in plan.steps[plan.schedule.n_forward:]
                for ref in step.args if ref is not None and ref.kind in ("param", "param_grad", "param_span",
                                                                         "grad_span")]

    net = gn.compile(network(fc1=False, bn=False), batch_size=16, seed=0)
    for kind in ("train", "train_sgd", "train_update"):
        touched = backward_refs(net, kind)
        assert touched and all(name.startswith("fc2.") for _, _, name in touched), (kind, touched)
    unfrozen = gn.compile(network(), batch_size=16, seed=0)
    assert any(name.startswith("fc1.") for _, _, name in backward_refs(unfrozen, "train_update"))


def test_the_runs_freeze_list_takes_parameter_names_and_node_ids(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 4)).astype(np.float32)
    data = {"X_train": X, "y_train": (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 1)}
    run = gn.parse_run({"network": NETWORK, "train": {"data": "spiral", "epochs": 2, "batch_size": 16,
                                                      "freeze": ["fc1", "fc2.b"]}})
    start = gn.compile(NETWORK, batch_size=16, seed=0)
    result = gn.train(run, data=data, log=None, progress=False)
    for name in ("fc1.W", "fc1.b", "fc2.b"):
        np.testing.assert_array_equal(result.net.params[name], start.params[name])
    assert not np.allclose(result.net.params["fc2.W"], start.params["fc2.W"])


def test_an_unknown_name_to_freeze_is_a_located_spec_error(tmp_path, capsys):
    with pytest.raises(SpecError) as error:
        gn.compile(NETWORK, freeze=["fc3"])
    assert error.value.problems[0][0] == "train.freeze[0]"
    assert "'fc3' is neither a parameter nor a node with parameters" in str(error.value)
    assert "fc1.W, fc1.b, bn.gamma, bn.beta, fc2.W, fc2.b" in str(error.value)
    relu = network()
    relu["nodes"].insert(1, {"id": "h", "op": "relu", "inputs": ["fc1"], "trainable": False})
    relu["nodes"][2]["inputs"] = ["h"]
    with pytest.raises(SpecError, match=r"nodes\[1\]\.trainable: node 'h' \(relu\) has no parameters"):
        gn.compile(relu)
    run_file = tmp_path / "run.json"
    run_file.write_text(json.dumps({"network": NETWORK, "train": {"data": "spiral", "freeze": ["fc1.w"]}}))
    assert main(["train", str(run_file), "--out", str(tmp_path / "out"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train.freeze[0]: 'fc1.w' is neither a parameter" in err, err
    assert not (tmp_path / "out").exists()


def test_trainable_true_is_the_default_and_keeps_the_hash():
    default, explicit, frozen = (gn.parse_network(network(**flags)) for flags in ({}, {"fc1": True}, {"fc1": False}))
    assert spec_hash(default) == spec_hash(explicit) != spec_hash(frozen)
    assert "trainable" not in default.to_json() and '"trainable": false' in frozen.to_json()


@pytest.mark.parametrize("how", ["trainable", "freeze"])
def test_a_run_with_every_parameter_frozen_is_refused_before_it_trains(how, tmp_path, capsys):
    document = network(fc1=False, bn=False, fc2=False) if how == "trainable" else json.loads(json.dumps(NETWORK))
    train = {"data": "spiral", "epochs": 1, **({"freeze": ["fc1", "bn", "fc2"]} if how == "freeze" else {})}
    run_file = tmp_path / "run.json"
    run_file.write_text(json.dumps({"network": document, "train": train}))
    assert main(["train", str(run_file), "--out", str(tmp_path / "out"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "every parameter is frozen (bn.beta, bn.gamma, fc1.W, fc1.b, fc2.W, fc2.b): nothing would train" in err
    assert ("train.freeze" if how == "freeze" else "network.nodes") in err
    assert not (tmp_path / "out").exists()
    gn.compile(network(fc1=False, bn=False, fc2=False))  # an inference network may be all fixed
