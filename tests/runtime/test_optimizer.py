"""gn.Optimizer: every rule against a hand-computed update, clipping, errors
that name the problem, NonFiniteError that leaves the parameters alone, and
the steady-state training step allocating no numpy memory.
"""
from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

import graphnet as gn
from graphnet import NonFiniteError, SpecError

from tests._support import reference
from tests._support.allocations import counting_numpy_allocations
from tests._support.optimizer_checks import assert_nan_step_changes_nothing
from tests._support.zoo import SPECS, ZOO, randomize, zoo_network


def tiny_net(dtype="float64", backend="numba", seed=0, l2=1e-2):
    spec = gn.sequential([{"op": "affine", "units": 5, "activation": "tanh"}, {"op": "affine", "units": 3}],
                         input_shape=[4], classes=3, l2=l2)
    return gn.compile(spec, batch_size=6, dtype=dtype, backend=backend, seed=seed)


def tiny_batch(dtype=np.float64):
    rng = np.random.default_rng(42)
    return rng.standard_normal((6, 4)).astype(dtype), rng.integers(0, 3, 6)


# ---- the update rules, by hand --------------------------------------------------------------


def sgd(w, g, s, h, t):
    return w - h["learning_rate"] * g


def momentum(w, g, s, h, t):
    s["v"] = h["momentum"] * s.get("v", 0.0) - h["learning_rate"] * g
    return w + s["v"]


def nesterov(w, g, s, h, t):
    previous = s.get("v", 0.0)
    s["v"] = h["momentum"] * previous - h["learning_rate"] * g
    return w - h["momentum"] * previous + (1 + h["momentum"]) * s["v"]


def rmsprop(w, g, s, h, t):
    s["cache"] = h["decay_rate"] * s.get("cache", 0.0) + (1 - h["decay_rate"]) * g * g
    return w - h["learning_rate"] * g / (np.sqrt(s["cache"]) + h["epsilon"])


def adam(w, g, s, h, t):
    s["m"] = h["beta1"] * s.get("m", 0.0) + (1 - h["beta1"]) * g
    s["v"] = h["beta2"] * s.get("v", 0.0) + (1 - h["beta2"]) * g * g
    m_hat = s["m"] / (1 - h["beta1"] ** t)
    v_hat = s["v"] / (1 - h["beta2"] ** t)
    return w - h["learning_rate"] * m_hat / (np.sqrt(v_hat) + h["epsilon"])


def adamw(w, g, s, h, t):
    w = w - h["learning_rate"] * h["weight_decay"] * w  # decoupled decay, then Adam
    return adam(w, g, s, h, t)


RULES = {
    "sgd": (sgd, {"learning_rate": 0.1}),
    "momentum": (momentum, {"learning_rate": 0.1, "momentum": 0.8}),
    "nesterov": (nesterov, {"learning_rate": 0.1, "momentum": 0.7}),
    "rmsprop": (rmsprop, {"learning_rate": 0.01, "decay_rate": 0.9, "epsilon": 1e-6}),
    "adam": (adam, {"learning_rate": 0.01, "beta1": 0.8, "beta2": 0.95, "epsilon": 1e-6}),
    "adamw": (adamw, {"learning_rate": 0.01, "beta1": 0.8, "beta2": 0.95, "epsilon": 1e-6, "weight_decay": 0.1}),
}


def test_every_rule_is_tested():
    from graphnet.runtime.optimizer import RULES as IMPLEMENTED

    assert set(RULES) == set(IMPLEMENTED)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("rule", list(RULES))
def test_rule_matches_the_hand_computed_update(rule, backend):
    update, hyper = RULES[rule]
    net = tiny_net(backend=backend)
    X, y = tiny_batch()
    opt = gn.Optimizer(net, rule, **hyper)
    assert opt.hyperparameters == hyper
    state: dict = {}
    for t in range(1, 4):
        w = net.store.values.copy()
        loss, grads = net.loss(X, y)
        g = np.concatenate([grads[name].ravel() for name in net.params])
        expected = update(w, g, state, hyper, t)
        assert opt.step(X, y) == loss  # the loss before the update
        np.testing.assert_allclose(net.store.values, expected, rtol=1e-12, atol=1e-15)
        assert opt.t == t
    assert not np.array_equal(net.store.values, w)


def test_defaults_follow_cs231n_and_learning_rate_is_settable():
    net = tiny_net()
    assert gn.Optimizer(net, "adam").hyperparameters == {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999,
                                                         "epsilon": 1e-8}
    assert gn.Optimizer(net, "sgd").learning_rate == 1e-2
    opt = gn.Optimizer(net, "sgd", learning_rate=1)  # ints become floats
    assert opt.learning_rate == 1.0 and isinstance(opt.learning_rate, float)
    opt.learning_rate = 0.5
    X, y = tiny_batch()
    w = net.store.values.copy()
    _, grads = net.loss(X, y)
    opt.step(X, y)
    g = np.concatenate([grads[name].ravel() for name in net.params])
    np.testing.assert_allclose(net.store.values, w - 0.5 * g, rtol=1e-12)


@pytest.mark.parametrize("rule", ["sgd", "adam"])
def test_clip_norm_scales_the_gradient_to_the_global_norm(rule):
    update, hyper = RULES[rule]
    net = tiny_net()
    X, y = tiny_batch()
    w = net.store.values.copy()
    _, grads = net.loss(X, y)
    g = np.concatenate([grads[name].ravel() for name in net.params])
    norm = float(np.linalg.norm(g))
    clip = norm / 4
    opt = gn.Optimizer(net, rule, clip_norm=clip, **hyper)
    opt.step(X, y)
    assert opt.last_grad_norm == pytest.approx(norm, rel=1e-12)
    np.testing.assert_allclose(net.store.values, update(w, g * (clip / norm), {}, hyper, 1), rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(net.store.grads), clip, rtol=1e-12)  # clipped in place


def test_clip_norm_leaves_small_gradients_alone():
    net = tiny_net()
    X, y = tiny_batch()
    w = net.store.values.copy()
    _, grads = net.loss(X, y)
    g = np.concatenate([grads[name].ravel() for name in net.params])
    opt = gn.Optimizer(net, "sgd", learning_rate=0.1, clip_norm=10 * np.linalg.norm(g))
    opt.step(X, y)
    np.testing.assert_allclose(net.store.values, w - 0.1 * g, rtol=1e-12)
    with pytest.raises(ValueError, match="clip_norm"):
        gn.Optimizer(net, "sgd", clip_norm=0)
    with pytest.raises(ValueError, match="clip_norm"):
        gn.Optimizer(net, "sgd", clip_norm=-1.0)


# ---- errors -------------------------------------------------------------------------------------


def test_unknown_rule_is_named_with_a_suggestion():
    net = tiny_net()
    with pytest.raises(SpecError, match=r"unknown update rule 'adamm'.*did you mean 'adam'") as info:
        gn.Optimizer(net, "adamm")
    assert "sgd" in str(info.value)  # lists the known rules
    with pytest.raises(SpecError, match="'bogus'"):
        gn.Optimizer(net, "bogus")


@pytest.mark.parametrize("rule, keyword", [("sgd", "lr"), ("adam", "momentum"), ("momentum", "beta1"),
                                           ("rmsprop", "decay")])
def test_unknown_hyperparameter_is_named(rule, keyword):
    with pytest.raises(SpecError, match=keyword):
        gn.Optimizer(tiny_net(), rule, **{keyword: 0.1})


def test_out_of_range_hyperparameter_is_named():
    with pytest.raises(SpecError, match="learning_rate"):
        gn.Optimizer(tiny_net(), "sgd", learning_rate=-1.0)
    with pytest.raises(SpecError, match="beta1"):
        gn.Optimizer(tiny_net(), "adam", beta1=1.5)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_non_finite_loss_names_a_node_and_leaves_params_untouched(backend):
    net = tiny_net(dtype="float32", backend=backend)
    X, y = tiny_batch(np.float32)
    opt = gn.Optimizer(net, "sgd", learning_rate=1e30)
    with np.errstate(all="ignore"):
        for _ in range(10):
            before = net.store.values.copy()
            try:
                opt.step(X, y)
            except NonFiniteError as error:
                message = str(error)
                break
        else:
            pytest.fail("a learning rate of 1e30 never produced a non-finite loss")
    assert f"step {opt.t + 1}" in message
    assert "node affine" in message, message
    assert any(f"node {node.id}" in message for node in net.graph.nodes)
    np.testing.assert_array_equal(net.store.values, before)
    assert isinstance(NonFiniteError("x"), FloatingPointError)


def test_optimizer_state_dict_round_trip():
    X, y = tiny_batch()
    net_a, net_b = tiny_net(), tiny_net()
    opt_a = gn.Optimizer(net_a, "adam", learning_rate=0.01)
    for _ in range(3):
        opt_a.step(X, y)
    saved, weights = opt_a.state_dict(), net_a.state_dict()
    net_b.load_state_dict(weights)
    opt_b = gn.Optimizer(net_b, "adam", learning_rate=0.5)
    opt_b.load_state_dict(saved)
    assert opt_b.t == 3 and opt_b.learning_rate == 0.01
    for _ in range(2):
        assert opt_a.step(X, y) == opt_b.step(X, y)
    np.testing.assert_array_equal(net_a.store.values, net_b.store.values)
    with pytest.raises(ValueError, match="'adam'"):
        gn.Optimizer(net_b, "sgd").load_state_dict(saved)


# ---- the steady-state step allocates nothing ---------------------------------------------------
#
# Two instruments:
# - tracemalloc filtered to numpy's domain: no numpy memory retained by a step
#   (no cache that grows, nothing leaked, nothing bound anew);
# - a counting numpy data-memory handler (numpy >= 1.22, PyDataMem_SetHandler):
#   every array-data allocation, even one freed before the step returns. This is
#   the one that catches a transient 0-d array such as `y.min()`.


def numpy_memory_retained(fn, repeats=3) -> list:
    domain = [tracemalloc.DomainFilter(True, np.lib.tracemalloc_domain)]
    tracemalloc.start(5)
    try:
        before = tracemalloc.take_snapshot().filter_traces(domain)
        for _ in range(repeats):
            fn()
        after = tracemalloc.take_snapshot().filter_traces(domain)
    finally:
        tracemalloc.stop()
    return [d for d in after.compare_to(before, "traceback") if d.size_diff or d.count_diff]


def test_the_allocation_counter_counts():
    with counting_numpy_allocations() as sizes:
        a = np.empty(10)
        b = np.arange(3).min()  # a transient 0-d array
        del a
    assert sizes == [80, 24, 8]
    del b
    with counting_numpy_allocations() as sizes:
        pass
    assert sizes == []


STEADY = [("fashion_mlp", 32), ("fashion_mlp", 20), ("fc_bn_dropout", 32), ("fc_bn_dropout", 20),
          ("fashion_cnn", 32), ("fashion_cnn", 9)]
STEADY_IDS = [f"{name}-n{n}" for name, n in STEADY]


def steady_optimizer(name, n, rule="adam", clip_norm=5.0):
    spec = gn.load(SPECS / f"{name}.json")
    spec = spec.network if isinstance(spec, gn.RunSpec) else spec
    net = gn.compile(spec, batch_size=32, dtype="float32", backend="numba", seed=0)
    opt = gn.Optimizer(net, rule, learning_rate=1e-3, clip_norm=clip_norm)
    inputs, labels = reference.random_batch(spec, n, seed=1, dtype=np.float32)
    X, y = inputs["x"], labels["y"]
    for _ in range(3):  # warm up: compile kernels, bind the plan for n
        opt.step(X, y)
    return net, opt, X, y


@pytest.mark.parametrize("name, n", STEADY, ids=STEADY_IDS)
def test_steady_training_step_retains_no_numpy_memory(name, n):
    net, opt, X, y = steady_optimizer(name, n)
    compiled = net.stats.plans_compiled
    assert numpy_memory_retained(lambda: opt.step(X, y)) == []
    assert net.stats.plans_compiled == compiled and net.plan("train").bound_counts == 1


@pytest.mark.parametrize("name, n", STEADY, ids=STEADY_IDS)
def test_steady_plan_run_and_update_allocate_nothing(name, n):
    """The step minus the input checks: every kernel, the dropout draws, the update."""
    net, opt, X, y = steady_optimizer(name, n)
    plan = net.plan("train")
    inputs, labels = {"x": X}, {"y": y}
    plan.run(inputs, labels, checked_n=n)
    with counting_numpy_allocations() as sizes:
        for _ in range(3):
            loss = plan.run(inputs, labels, checked_n=n)
            opt.apply()
    assert sizes == [], f"{len(sizes)} numpy allocations in 3 steps, bytes: {sizes[:10]}"
    assert math.isfinite(loss)


@pytest.mark.parametrize("name, n", STEADY, ids=STEADY_IDS)
def test_steady_optimizer_step_allocates_nothing(name, n):
    net, opt, X, y = steady_optimizer(name, n)
    with counting_numpy_allocations() as sizes:
        for _ in range(3):
            opt.step(X, y)
    assert sizes == [], f"{len(sizes)} numpy allocations in 3 steps, bytes: {sizes[:10]}"


# ---- plain SGD fused into the backward GEMMs ------------------------------------------------


def sgd_pair(spec, batch_size=8, dtype="float64", seed=0, **options):
    """Two identical networks: one stepping with the update fused into backward, one without."""
    pair = []
    for fuse in (True, False):
        net = gn.compile(spec, batch_size=batch_size, dtype=dtype, seed=seed)
        randomize(net)
        pair.append((net, gn.Optimizer(net, "sgd", fuse_update=fuse, learning_rate=0.01, **options)))
    return pair


def without_l2(spec):
    return spec.model_copy(update={"l2": 0.0})


@pytest.mark.parametrize("path", ZOO, ids=lambda p: p.stem)
@pytest.mark.parametrize("n", [8, 5])
def test_fused_sgd_equals_gradients_then_update_on_every_zoo_network(path, n):
    spec = without_l2(zoo_network(path))
    (fused, fused_opt), (plain, plain_opt) = sgd_pair(spec)
    inputs, labels = reference.random_batch(spec, n, seed=3)
    for step in range(3):
        assert fused_opt.step(inputs, labels) == pytest.approx(plain_opt.step(inputs, labels), rel=1e-10)
        # the GEMM sums W + (-rate * X.T @ dY) in its own order: equal up to float64 rounding
        scale = np.abs(plain.store.values).max()
        np.testing.assert_allclose(fused.store.values, plain.store.values, rtol=1e-10, atol=1e-12 * scale)
        np.testing.assert_allclose(fused.store.state, plain.store.state, rtol=1e-10, atol=1e-12)
    weights = {f"{node.id}.W" for node in fused.graph.nodes if node.spec.op == "affine"}
    assert fused.plan("train_sgd").schedule.updated_params == weights
    assert fused_opt.t == plain_opt.t == 3


def test_fused_sgd_follows_learning_rate_changes_in_float32():
    spec = without_l2(zoo_network(SPECS / "fc_bn_dropout.json"))
    (fused, fused_opt), (plain, plain_opt) = sgd_pair(spec, dtype="float32")
    inputs, labels = reference.random_batch(spec, 8, seed=4, dtype=np.float32)
    for rate in (0.1, 0.01, 0.0, 0.3):
        fused_opt.learning_rate = plain_opt.learning_rate = rate
        fused_opt.step(inputs, labels)
        plain_opt.step(inputs, labels)
        np.testing.assert_allclose(fused.store.values, plain.store.values, rtol=1e-5, atol=1e-6)


def test_fused_sgd_runs_no_backward_step_when_the_loss_is_not_finite():
    spec = gn.sequential([{"op": "affine", "units": 5, "activation": "relu"}, {"op": "affine", "units": 3}],
                         input_shape=[4], classes=3)
    net = gn.compile(spec, batch_size=6, dtype="float32")
    X, y = tiny_batch(np.float32)
    opt = gn.Optimizer(net, "sgd", learning_rate=0.1)
    opt.step(X, y)
    before = net.store.values.copy()
    X[2] = np.finfo(np.float32).max  # X @ W overflows in the first layer
    with np.errstate(all="ignore"), pytest.raises(NonFiniteError, match="at step 2; first non-finite value at node affine1"):
        opt.step(X, y)
    np.testing.assert_array_equal(net.store.values, before)
    assert opt.t == 1


def test_after_a_fused_step_weight_gradients_are_refused_not_stale():
    net = tiny_net(l2=0.0)
    X, y = tiny_batch()
    opt = gn.Optimizer(net, "sgd", learning_rate=0.1)
    opt.step(X, y)
    with pytest.raises(gn.PlanError, match=r"gradient of 'affine1.W' was not computed.*fuse_update=False"):
        net.grads["affine1.W"]
    assert np.isfinite(net.grads["affine1.b"]).all()  # biases still get gradients
    with pytest.raises(gn.PlanError, match="not computed"):
        opt.apply()  # would apply stale weight gradients
    net.step(X, y)
    loss, grads = net.loss(X, y)
    np.testing.assert_array_equal(net.grads["affine1.W"], grads["affine1.W"])
    opt.apply()


def test_an_unfused_optimizer_leaves_gradients_readable():
    net = tiny_net(l2=0.0)
    X, y = tiny_batch()
    gn.Optimizer(net, "sgd", learning_rate=0.1, fuse_update=False).step(X, y)
    assert np.isfinite(net.grads["affine1.W"]).all()


@pytest.mark.parametrize("options, fused", [({}, True), ({"clip_norm": 1.0}, False), ({"fuse_update": False}, False)])
@pytest.mark.parametrize("rule", ["sgd", "momentum", "adam"])
def test_every_rule_fuses_unless_clipping_or_turned_off(rule, options, fused):
    net = tiny_net(l2=0.0)
    assert gn.Optimizer(net, rule, **options).fuse_update is fused


def test_clipping_turned_on_later_is_not_skipped():
    net = tiny_net(l2=0.0)
    X, y = tiny_batch()
    opt = gn.Optimizer(net, "sgd", learning_rate=1.0)
    opt.clip_norm = 1e-3
    assert not opt.fuse_update
    before = net.store.values.copy()
    opt.step(X, y)
    assert np.linalg.norm(net.store.values - before) == pytest.approx(1e-3, rel=1e-9)
    assert opt.last_grad_norm > 1e-3


def test_the_plan_says_which_updates_were_fused_and_why_not():
    net = tiny_net(l2=0.0)
    text = net.describe("train_sgd")
    assert "sgd-update-in-backward: affine1.W fused" in text
    assert "affine1.b not fused (updated after backward, from its gradient)" in text
    assert "gemm W -= rate * X.T @ dY" in text
    refused = tiny_net(l2=1e-2).describe("train_sgd")
    assert "affine1.W not fused (the l2 term reads the weights after backward)" in refused


def test_without_a_cblas_gemm_sgd_steps_are_correct_and_say_why(monkeypatch):
    monkeypatch.setenv("GRAPHNET_NO_CBLAS", "1")
    spec = without_l2(zoo_network(SPECS / "two_layer_net.json"))
    (fused, fused_opt), (plain, plain_opt) = sgd_pair(spec)
    assert fused.plan("train_sgd").schedule.updated_params == frozenset()
    assert "disabled by $GRAPHNET_NO_CBLAS" in fused.describe("train_sgd")
    inputs, labels = reference.random_batch(spec, 8, seed=5)
    fused_opt.step(inputs, labels)
    plain_opt.step(inputs, labels)
    np.testing.assert_array_equal(fused.store.values, plain.store.values)


@pytest.mark.parametrize("name, n", STEADY, ids=STEADY_IDS)
def test_steady_fused_sgd_step_allocates_nothing(name, n):
    net, opt, X, y = steady_optimizer(name, n, rule="sgd", clip_norm=None)
    assert opt.fuse_update
    with counting_numpy_allocations() as sizes:
        for _ in range(3):
            opt.step(X, y)
    assert sizes == [], f"{len(sizes)} numpy allocations in 3 steps, bytes: {sizes[:10]}"


@pytest.mark.parametrize("rule", ["adam", "momentum", "rmsprop"])
def test_a_non_finite_loss_leaves_moments_and_step_count_alone(rule):
    net = tiny_net()
    X, y = tiny_batch()
    opt = gn.Optimizer(net, rule, learning_rate=0.01)
    opt.step(X, y)
    assert_nan_step_changes_nothing(opt, lambda: X.__setitem__((1, 2), np.nan), X, y)
