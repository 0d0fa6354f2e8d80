"""Stateful updates inside backward (plan kind train_update, graphnet.compiler.updates):
each parameter updated right after its last backward step must compute exactly what
forward + backward + one update over the flat buffers computes."""
from __future__ import annotations

import math

import numpy as np
import pytest
from graphnet.kernels import get_backend
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphnet as gn
from graphnet import PlanError
from graphnet.compiler import UpdateRule, lower
from graphnet.compiler.graph import build_graph
from graphnet.compiler.parameters import ParameterStore
from graphnet.compiler.updates import insert_update_steps
from graphnet.ops.target import Target
from graphnet.runtime.optimizer import RULES

from tests._support import reference, strategies
from tests._support.allocations import counting_numpy_allocations
from tests._support.optimizer_checks import assert_nan_step_changes_nothing
from tests._support.zoo import SPECS, ZOO, randomize, zoo_network

STATEFUL = [rule for rule in RULES if rule != "sgd"]
HYPER = {"momentum": {}, "nesterov": {}, "rmsprop": {}, "adam": {}, "adamw": {"weight_decay": 0.1}}


def optimizer_pair(spec, rule, backend, dtype="float32", batch_size=8, **options):
    """Two identical networks and optimizers: updates inside backward, and the separate update pass."""
    pair = []
    for fuse in (True, False):
        net = gn.compile(spec, batch_size=batch_size, dtype=dtype, backend=backend, seed=0)
        randomize(net)
        opt = gn.Optimizer(net, rule, learning_rate=1e-3, fuse_update=fuse, **HYPER[rule], **options)
        pair.append((net, opt))
    return pair


def assert_same(fused, plain, exact):
    """Bitwise for the numpy backend (elementwise ufuncs round alike on any segment); for numba
    within 1 ulp, since a segment's first and last elements may take the scalar remainder loop."""
    for what in ("values", "grads", "state"):
        a, b = getattr(fused.store, what), getattr(plain.store, what)
        if exact:
            np.testing.assert_array_equal(a, b, err_msg=what)
        else:
            np.testing.assert_array_max_ulp(a, b, maxulp=1)


def assert_same_slots(fused_opt, plain_opt, exact):
    for name, slot in fused_opt.slots.items():
        if exact:
            np.testing.assert_array_equal(slot, plain_opt.slots[name], err_msg=name)
        else:
            np.testing.assert_array_max_ulp(slot, plain_opt.slots[name], maxulp=1)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("rule", STATEFUL)
@pytest.mark.parametrize("path", ZOO, ids=lambda p: p.stem)
def test_update_in_backward_equals_the_separate_update_on_every_zoo_network(path, rule, backend):
    spec = zoo_network(path)  # l2 kept: the update steps take the l2 term per weight
    (fused, fused_opt), (plain, plain_opt) = optimizer_pair(spec, rule, backend)
    assert fused_opt.fuse_update and not plain_opt.fuse_update
    for step, n in enumerate([8, 5, 8]):  # full and partial batches
        inputs, labels = reference.random_batch(spec, n, seed=step, dtype=np.float32)
        # the l2 term is summed per weight instead of over all weights at once: float64 rounding
        assert fused_opt.step(inputs, labels) == pytest.approx(plain_opt.step(inputs, labels), rel=1e-12)
        assert_same(fused, plain, exact=backend == "numpy")
        assert_same_slots(fused_opt, plain_opt, exact=backend == "numpy")
    assert kinds_compiled(fused) == {"train_update"} and kinds_compiled(plain) == {"train"}
    assert fused_opt.t == plain_opt.t == 3


def kinds_compiled(net):
    """The plan kinds `net` compiled so far."""
    return {kind for kind, _ in net.stats.plans}


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("rule", ["adam", "adamw", "momentum"])
def test_update_in_backward_follows_learning_rate_changes_with_batchnorm(rule, backend):
    spec = zoo_network(SPECS / "fc_bn_dropout.json")
    (fused, fused_opt), (plain, plain_opt) = optimizer_pair(spec, rule, backend)
    inputs, labels = reference.random_batch(spec, 8, seed=4, dtype=np.float32)
    for rate in (0.1, 0.01, 0.0, 0.3, 1e-3):  # as a schedule sets it between steps
        fused_opt.learning_rate = plain_opt.learning_rate = rate
        fused_opt.step(inputs, labels)
        plain_opt.step(inputs, labels)
        assert_same(fused, plain, exact=backend == "numpy")
    assert np.any(fused.store.state != 0)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=strategies.network_specs(), rule=st.sampled_from(STATEFUL), n=st.integers(2, 6))
def test_update_in_backward_equals_the_separate_update_on_random_dags(case, rule, n):
    (fused, fused_opt), (plain, plain_opt) = optimizer_pair(case.spec, rule, "numpy", batch_size=6)
    for seed in range(2):
        inputs, labels = reference.random_batch(case.spec, n, seed=seed, dtype=np.float32)
        with np.errstate(all="ignore"):
            losses = fused_opt.step_or_skip(inputs, labels), plain_opt.step_or_skip(inputs, labels)
        assert losses[0] == pytest.approx(losses[1], rel=1e-12, nan_ok=True)
        assert_same(fused, plain, exact=True)
        assert fused_opt.t == plain_opt.t


def test_float64_updates_in_backward_match_too():
    spec = zoo_network(SPECS / "residual_mlp.json")
    (fused, fused_opt), (plain, plain_opt) = optimizer_pair(spec, "adam", "numba", dtype="float64")
    inputs, labels = reference.random_batch(spec, 8, seed=2)
    for _ in range(3):
        fused_opt.step(inputs, labels)
        plain_opt.step(inputs, labels)
    assert_same(fused, plain, exact=False)


def two_output_spec() -> gn.NetworkSpec:
    """A network whose second output's affine has no path to the loss: backward never reaches it."""
    return gn.NetworkSpec.model_validate({
        "name": "side_output", "inputs": {"x": {"shape": [4]}}, "labels": {"y": {"classes": 3}},
        "nodes": [
            {"id": "fc1", "op": "affine", "inputs": ["x"], "units": 3},
            {"id": "side", "op": "affine", "inputs": ["x"], "units": 2},
            {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc1", "y"]},
        ],
        "outputs": ["fc1", "side"], "loss": "loss", "l2": 0.01,
    })


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_parameters_backward_does_not_reach_are_updated_after_their_gradients_are_zeroed(backend):
    spec = two_output_spec()
    (fused, fused_opt), (plain, plain_opt) = optimizer_pair(spec, "adam", backend)
    X, y = reference.random_batch(spec, 6, seed=1, dtype=np.float32)
    side_before = fused.params["side.W"].copy()
    for _ in range(2):
        fused_opt.step(X, y)
        plain_opt.step(X, y)
    assert_same(fused, plain, exact=backend == "numpy")
    assert not np.array_equal(fused.params["side.W"], side_before)  # its l2 gradient moved it
    assert "update 2 parameters backward does not reach" in fused.describe("train_update")


def test_the_update_pass_returns_new_steps_and_leaves_what_it_was_given_unchanged():
    graph = build_graph(zoo_network(SPECS / "two_layer_net.json"))
    store, kernels = ParameterStore(graph, np.float32), get_backend("numpy")
    schedule = lower(graph, "train", Target(kernels, np.dtype(np.float32)), np.random.default_rng(0),
                     with_loss=True, with_backward=True)
    steps, extra = list(schedule.steps), []
    updated, updated_extra, _ = insert_update_steps(schedule, extra, store, kernels, 0.0)
    assert schedule.steps == steps and extra == []
    assert len(updated.steps) == len(steps) + 2 and updated.n_forward == schedule.n_forward
    with pytest.raises(AttributeError):  # a Schedule is frozen: no pass changes one it handed out
        schedule.steps = []  # type: ignore[misc]


def test_a_rule_plan_refuses_to_run_without_a_rule_and_a_rule_of_the_wrong_shape():
    spec = zoo_network(SPECS / "two_layer_net.json")
    net = gn.compile(spec, batch_size=8, seed=0)
    inputs, labels = reference.random_batch(spec, 8, seed=3, dtype=np.float32)
    plan = net.plan("train_update")
    with pytest.raises(PlanError, match="a train_update plan runs with an UpdateRule, got None"):
        plan.run(inputs, labels)
    wrong = UpdateRule(net.kernels.adam_update, (np.zeros(3, np.float32),) * 2, (1e-3, 0.9, 0.999, 1e-8, 1))
    with pytest.raises(PlanError, match=r"optimizer state of shape \(3,\) float32, expected"):
        net.step(inputs, labels, wrong)


def test_each_parameter_is_updated_right_after_its_last_backward_step():
    net = gn.compile(zoo_network(SPECS / "fc_bn_dropout.json"), batch_size=8)
    plan = net.plan("train_update")
    labels = [step.kernel for step in plan.steps[plan.schedule.n_forward:]]
    updates = [k for k in labels if k.startswith("update[")]
    assert sorted(name for k in updates for name in k[len("update["):-1].split(", ")) == sorted(net.params)
    for i, label in enumerate(labels):
        if label.startswith("update["):
            node = plan.steps[plan.schedule.n_forward + i].node
            assert plan.steps[plan.schedule.n_forward + i - 1].node == node  # its own backward step


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("rule", ["adam", "momentum", "rmsprop"])
def test_a_non_finite_loss_changes_nothing_in_the_update_in_backward(rule, backend):
    spec = zoo_network(SPECS / "fc_bn_dropout.json")
    net = gn.compile(spec, batch_size=8, backend=backend, seed=0)
    opt = gn.Optimizer(net, rule, learning_rate=0.01)
    inputs, labels = reference.random_batch(spec, 8, seed=1, dtype=np.float32)
    opt.step(inputs, labels)
    assert opt.fuse_update and "train_update" in kinds_compiled(net)
    assert_nan_step_changes_nothing(opt, lambda: inputs["x"].__setitem__((1, 2), np.nan), inputs, labels)


def test_a_finite_loss_with_non_finite_gradients_is_applied_as_the_separate_pass_applies_it():
    """The documented contract of both paths: a finite loss lets every update run."""
    spec = gn.sequential([{"op": "affine", "units": 3}], input_shape=[2], classes=3, loss="mse")
    results = []
    for fuse in (True, False):
        net = gn.compile(spec, batch_size=2, dtype="float32", seed=0)
        opt = gn.Optimizer(net, "adam", learning_rate=0.01, fuse_update=fuse)
        X = np.array([[1.0, 0.0], [1e30, 0.0]], np.float32)
        T = np.zeros((2, 3), np.float32)
        with np.errstate(all="ignore"):
            loss = opt.step_or_skip(X, T)
        results.append((loss, net.store.values.copy(), opt.t))
    (loss_a, values_a, t_a), (loss_b, values_b, t_b) = results
    np.testing.assert_array_equal(values_a, values_b)
    assert t_a == t_b
    assert (math.isfinite(loss_a) and not np.isfinite(values_a).all()) or not math.isfinite(loss_a)


def test_gradients_stay_readable_after_an_update_in_backward():
    spec = zoo_network(SPECS / "two_layer_net.json")
    (fused, fused_opt), (plain, plain_opt) = optimizer_pair(spec, "adam", "numpy")
    inputs, labels = reference.random_batch(spec, 8, seed=3, dtype=np.float32)
    fused_opt.step(inputs, labels)
    plain_opt.step(inputs, labels)
    for name in fused.params:
        np.testing.assert_array_equal(fused.grads[name], plain.grads[name], err_msg=name)


def test_clipping_keeps_the_separate_update_pass():
    spec = zoo_network(SPECS / "two_layer_net.json")
    net = gn.compile(spec, batch_size=8, seed=0)
    opt = gn.Optimizer(net, "adam", learning_rate=0.01, clip_norm=0.1)
    inputs, labels = reference.random_batch(spec, 8, seed=3, dtype=np.float32)
    opt.step(inputs, labels)
    assert not opt.fuse_update and kinds_compiled(net) == {"train"}
    assert opt.last_grad_norm > 0.1


def test_two_optimizers_on_one_network_each_update_with_their_own_state():
    spec = zoo_network(SPECS / "two_layer_net.json")
    net = gn.compile(spec, batch_size=8, seed=0)
    twin = gn.compile(spec, batch_size=8, seed=0)
    inputs, labels = reference.random_batch(spec, 8, seed=3, dtype=np.float32)
    first, second = gn.Optimizer(net, "adam", learning_rate=0.01), gn.Optimizer(net, "momentum", learning_rate=0.1)
    twin_first = gn.Optimizer(twin, "adam", learning_rate=0.01, fuse_update=False)
    twin_second = gn.Optimizer(twin, "momentum", learning_rate=0.1, fuse_update=False)
    for opt, twin_opt in ((first, twin_first), (second, twin_second), (first, twin_first)):
        opt.step(inputs, labels)
        twin_opt.step(inputs, labels)
        np.testing.assert_array_max_ulp(net.store.values, twin.store.values, maxulp=1)


STEADY = [("fashion_mlp", 32), ("fashion_mlp", 20), ("fc_bn_dropout", 32), ("fc_bn_dropout", 20),
          ("fashion_cnn", 32), ("fashion_cnn", 9)]


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("rule", ["adam", "nesterov"])
@pytest.mark.parametrize("name, n", STEADY, ids=[f"{name}-n{n}" for name, n in STEADY])
def test_steady_update_in_backward_step_allocates_nothing(name, n, rule, backend):
    spec = zoo_network(SPECS / f"{name}.json")
    net = gn.compile(spec, batch_size=32, dtype="float32", backend=backend, seed=0)
    opt = gn.Optimizer(net, rule, learning_rate=1e-3)
    inputs, labels = reference.random_batch(spec, n, seed=1, dtype=np.float32)
    X, y = inputs["x"], labels["y"]
    for _ in range(3):  # warm up: compile kernels, bind the plan for n, cut the state segments
        opt.step(X, y)
    assert opt.fuse_update
    with counting_numpy_allocations() as sizes:
        for _ in range(3):
            opt.step(X, y)
    assert sizes == [], f"{len(sizes)} numpy allocations in 3 steps, bytes: {sizes[:10]}"
    assert net.plan("train_update").bound_counts == 1
