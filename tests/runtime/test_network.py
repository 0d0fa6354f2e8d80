"""CompiledNetwork end to end: forward/evaluate_loss of random DAGs against
the NumPy reference interpreter, numba vs numpy backends on the zoo,
determinism by seed, parameter/state access and state_dict round trips.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphnet as gn
from graphnet import PlanError
from graphnet.compiler import UpdateRule

from tests._support import reference, strategies
from tests._support.zoo import SPECS, ZOO, randomize, zoo_network


def snapshot(net):
    return {k: net.params[k].copy() for k in net.params}, {k: net.state[k].copy() for k in net.state}


# ---- random DAGs against the reference interpreter --------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=strategies.network_specs(), n=st.integers(2, 9), seed=st.integers(0, 2**16),
       capacity=st.sampled_from([4, 9]))
def test_random_dag_forward_and_losses_match_reference(case, n, seed, capacity):
    spec = case.spec
    net = gn.compile(spec, batch_size=capacity, dtype="float64", seed=seed)
    randomize(net, seed)
    inputs, labels = reference.random_batch(spec, n, seed)
    params, state = snapshot(net)

    values, eval_loss, _ = reference.run_reference(spec, params, state, inputs, labels, mode="eval")
    for output in spec.outputs:
        got = net.forward(inputs, output=output)
        np.testing.assert_allclose(got, values[output], rtol=1e-9, atol=1e-12, err_msg=output)
    np.testing.assert_allclose(net.loss(inputs), values[spec.outputs[0]], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(net.evaluate_loss(inputs, labels, mode="eval"), eval_loss, rtol=1e-9, atol=1e-12)
    assert net.stats.replans == [] or n > capacity

    rng = np.random.default_rng()
    rng.bit_generator.state = net.dropout_rng.bit_generator.state
    _, train_loss, new_state = reference.run_reference(spec, params, state, inputs, labels, mode="train", rng=rng)
    np.testing.assert_allclose(net.evaluate_loss(inputs, labels, mode="train"), train_loss, rtol=1e-9, atol=1e-12)
    for key, value in new_state.items():  # train mode updates the running statistics
        np.testing.assert_allclose(net.state[key], value, rtol=1e-10, atol=1e-12, err_msg=key)
    # the parameters are read, never written, by forward and loss evaluation
    for key, value in params.items():
        np.testing.assert_array_equal(net.params[key], value)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=strategies.network_specs(), n=st.integers(2, 9), seed=st.integers(0, 2**16), keep_l2=st.booleans())
def test_random_dag_sgd_step_with_the_update_in_backward_equals_gradients_then_update(case, n, seed, keep_l2):
    spec = case.spec if keep_l2 else case.spec.model_copy(update={"l2": 0.0})
    if spec.loss is None:
        return
    nets = []
    for fuse in (True, False):
        net = gn.compile(spec, batch_size=9, dtype="float64", seed=seed)
        randomize(net, seed, scale=0.3)
        nets.append((net, gn.Optimizer(net, "sgd", learning_rate=0.01, fuse_update=fuse)))
    inputs, labels = reference.random_batch(spec, n, seed)
    for _ in range(2):
        losses = [opt.step(inputs, labels) for _, opt in nets]
        np.testing.assert_allclose(losses[0], losses[1], rtol=1e-10)
        (fused, _), (plain, _) = nets
        scale = max(1.0, np.abs(plain.store.values).max())
        np.testing.assert_allclose(fused.store.values, plain.store.values, rtol=1e-10, atol=1e-12 * scale)
        np.testing.assert_allclose(fused.store.state, plain.store.state, rtol=1e-10, atol=1e-12)
    updated = fused.plan("train_sgd").schedule.updated_params
    assert not updated if spec.l2 else all(name.endswith(".W") for name in updated)


def test_output_that_views_an_input_is_served():
    """Bug found by these tests: an output that is flatten/identity/eval-mode dropout of a
    network input raised PlanError ("is the network input itself") from forward()."""
    spec = gn.parse_network({
        "name": "views", "inputs": {"x": {"shape": [2, 3]}}, "labels": {"y": {"classes": 3}},
        "nodes": [{"id": "flat", "op": "flatten", "inputs": ["x"]},
                  {"id": "drop", "op": "dropout", "inputs": ["flat"], "rate": 0.5},
                  {"id": "head", "op": "affine", "inputs": ["drop"], "units": 3},
                  {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["head", "y"]}],
        "outputs": ["head", "flat", "drop"], "loss": "loss"})
    net = gn.compile(spec, batch_size=4, dtype="float64")
    X = np.random.default_rng(0).standard_normal((6, 2, 3))  # more rows than the capacity: chunks
    for name in ("flat", "drop"):
        out = net.forward(X, output=name)
        np.testing.assert_array_equal(out, X.reshape(6, 6))
        assert not np.shares_memory(out, X)


def test_forward_rejects_an_unknown_output():
    spec = gn.sequential([{"op": "affine", "units": 3}], input_shape=[4], classes=3)
    net = gn.compile(spec, batch_size=2)
    with pytest.raises(PlanError, match="'nope' is not an output"):
        net.forward(np.zeros((2, 4), np.float32), output="nope")


def test_there_is_no_mode_flag_that_does_nothing():
    """The mode is the plan's (forward: eval, loss/step: train); a PyTorch-style
    net.train() / net.eval() that set an unread flag would mislead, so there is none."""
    net = gn.compile(gn.sequential([{"op": "affine", "units": 3}], input_shape=[4], classes=3), batch_size=2)
    for name in ("train", "eval", "training"):
        assert not hasattr(net, name), name


# ---- one step entry point ----------------------------------------------------------------------


def test_one_step_entry_point_with_each_kind_of_update():
    """net.step(X, y, update): None writes the gradients, a rate runs SGD (weights inside their
    backward GEMM, when there is a GEMM), an UpdateRule its kernel; the same result as gradients
    then the separate update."""
    spec = gn.sequential([{"op": "affine", "units": 5, "activation": "relu"}, {"op": "affine", "units": 3}],
                         input_shape=[4], classes=3)
    nets = [gn.compile(spec, batch_size=6, dtype="float64", seed=0) for _ in range(3)]
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    plain, sgd, ruled = nets
    loss = plain.step(X, y)
    grads = {name: plain.grads[name].copy() for name in plain.grads}
    expected = {name: plain.params[name] - 0.1 * grads[name] for name in plain.params}
    assert sgd.step(X, y, 0.1) == loss
    velocity = np.zeros_like(ruled.store.values)
    assert ruled.step(X, y, UpdateRule(ruled.kernels.momentum_update, (velocity,), (0.1, 0.0))) == loss
    for name in plain.params:
        np.testing.assert_allclose(sgd.params[name], expected[name], rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(ruled.params[name], expected[name], rtol=1e-12, err_msg=name)
        np.testing.assert_array_equal(ruled.grads[name], grads[name])  # a rule leaves the gradients readable
    in_gemm = sgd.plan("train_sgd").unwritten_grads
    assert in_gemm == (frozenset({"affine1.W", "affine2.W"}) if sgd.target.gemm is not None else frozenset())
    for name in in_gemm:
        with pytest.raises(PlanError, match=f"the gradient of '{name}' was not computed"):
            sgd.grads[name]
    sgd.step(X, y)  # a step without update writes every gradient again
    assert all(np.isfinite(sgd.grads[name]).all() for name in sgd.grads)


@pytest.mark.parametrize("update", ["0.1", [0.1], True, object()])
def test_a_step_refuses_an_update_of_no_known_kind(update):
    net = gn.compile(gn.sequential([{"op": "affine", "units": 3}], input_shape=[4], classes=3), batch_size=2)
    params = net.store.values.copy()
    with pytest.raises(PlanError, match="a train_sgd plan runs with a learning rate, got"):
        net.step(np.ones((2, 4), np.float32), np.zeros(2, np.int64), update)
    np.testing.assert_array_equal(net.store.values, params)


def test_there_is_one_step_entry_point():
    net = gn.compile(gn.sequential([{"op": "affine", "units": 3}], input_shape=[4], classes=3), batch_size=2)
    for name in ("train_step", "sgd_step", "update_step"):
        assert not hasattr(net, name), name


# ---- numba and numpy backends agree -----------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("path", ZOO, ids=[p.stem for p in ZOO])
def test_backends_agree_on_the_zoo(path, dtype):
    spec = zoo_network(path)
    nets = {b: gn.compile(spec, batch_size=16, dtype=dtype, backend=b, seed=7) for b in ("numba", "numpy")}
    assert {b: n.backend for b, n in nets.items()} == {"numba": "numba", "numpy": "numpy"}
    inputs, labels = reference.random_batch(spec, 16, seed=5, dtype=dtype)
    results = {}
    for backend, net in nets.items():
        loss, grads = net.loss(inputs, labels)
        results[backend] = (loss, grads, net.forward(inputs), net.evaluate_loss(inputs, labels),
                            snapshot(net)[1])
    rtol, atol = (2e-4, 2e-5) if dtype == "float32" else (1e-10, 1e-12)
    (loss_a, grads_a, out_a, eval_a, state_a), (loss_b, grads_b, out_b, eval_b, state_b) = results.values()
    assert loss_a == pytest.approx(loss_b, rel=rtol)
    assert eval_a == pytest.approx(eval_b, rel=rtol)
    np.testing.assert_allclose(out_a, out_b, rtol=rtol, atol=atol)
    for name in grads_a:
        scale = np.abs(grads_b[name]).max()
        np.testing.assert_allclose(grads_a[name], grads_b[name], rtol=rtol * 10, atol=atol + rtol * scale,
                                   err_msg=name)
    for name in state_a:
        np.testing.assert_allclose(state_a[name], state_b[name], rtol=rtol, atol=atol, err_msg=name)


# ---- determinism ------------------------------------------------------------------------------


def _trajectory(seed, steps=4, rule="adam"):
    spec = zoo_network(SPECS / "fc_bn_dropout.json")
    net = gn.compile(spec, batch_size=16, dtype="float32", seed=seed)
    opt = gn.Optimizer(net, rule, learning_rate=1e-3)
    inputs, labels = reference.random_batch(spec, 16, seed=0, dtype=np.float32)
    losses = [opt.step(inputs, labels) for _ in range(steps)]
    return net, losses


def test_same_seed_same_params_and_loss_trajectory():
    net_a, losses_a = _trajectory(11)
    net_b, losses_b = _trajectory(11)
    assert losses_a == losses_b
    assert np.array_equal(net_a.store.values, net_b.store.values)
    assert np.array_equal(net_a.store.state, net_b.store.state)
    fresh_a = gn.compile(zoo_network(SPECS / "fc_bn_dropout.json"), batch_size=4, seed=11)
    fresh_b = gn.compile(zoo_network(SPECS / "fc_bn_dropout.json"), batch_size=64, seed=11, dtype="float32")
    assert np.array_equal(fresh_a.store.values, fresh_b.store.values)  # capacity does not change the draw


def test_different_seeds_differ():
    net_a, losses_a = _trajectory(11)
    net_b, losses_b = _trajectory(12)
    assert losses_a != losses_b
    assert not np.array_equal(net_a.store.values, net_b.store.values)


def test_dropout_masks_differ_between_steps_but_replay_by_seed():
    spec = zoo_network(SPECS / "fashion_mlp.json")
    inputs, labels = reference.random_batch(spec, 8, seed=0, dtype=np.float32)
    net = gn.compile(spec, batch_size=8, seed=3)
    first, second = net.evaluate_loss(inputs, labels, "train"), net.evaluate_loss(inputs, labels, "train")
    assert first != second  # a new mask every step
    assert net.evaluate_loss(inputs, labels, "eval") == net.evaluate_loss(inputs, labels, "eval")
    again = gn.compile(spec, batch_size=8, seed=3)
    assert [again.evaluate_loss(inputs, labels, "train") for _ in range(2)] == [first, second]


# ---- parameters, gradients and state ----------------------------------------------------------


@pytest.fixture
def bn_net():
    return gn.compile(zoo_network(SPECS / "fc_bn_dropout.json"), batch_size=8, dtype="float32", seed=0)


def test_params_are_named_views_into_one_flat_buffer(bn_net):
    net = bn_net
    assert list(net.params) == list(net.store.slots)
    assert {"fc1.W", "bn1.gamma", "bn1.beta", "fc3.b"} <= set(net.params)
    assert "fc1.b" not in net.params  # bias: false
    assert net.params["fc1.W"].shape == (784, 256)
    assert net.num_params == net.store.values.size == sum(v.size for v in net.params.values())
    for name in net.params:
        assert np.shares_memory(net.params[name], net.store.values)
        assert np.shares_memory(net.grads[name], net.store.grads)
    assert set(net.state) == {"bn1.running_mean", "bn1.running_var", "bn2.running_mean", "bn2.running_var"}
    np.testing.assert_array_equal(net.state["bn1.running_var"], 1.0)
    np.testing.assert_array_equal(net.state["bn1.running_mean"], 0.0)
    with pytest.raises(KeyError, match="fc9.W"):
        net.params["fc9.W"]
    with pytest.raises(TypeError):
        del net.params["fc1.W"]


def test_param_assignment_copies_in_and_checks_the_shape(bn_net):
    net = bn_net
    view = net.params["fc3.W"]
    new = np.full(view.shape, 0.5)
    net.params["fc3.W"] = new
    new[...] = 9.0  # the caller's array is not aliased
    np.testing.assert_array_equal(view, 0.5)  # earlier views see the new values
    assert view.dtype == np.float32
    with pytest.raises(ValueError, match=r"fc3.W.*\(128, 10\).*\(10, 256\)"):
        net.params["fc3.W"] = np.zeros((10, 256))
    with pytest.raises(KeyError):
        net.params["nope"] = np.zeros(3)
    np.testing.assert_array_equal(view, 0.5)


def test_assigning_a_dict_copies_every_entry(bn_net):
    net = bn_net
    other = gn.compile(net.spec, batch_size=8, dtype="float64", seed=99)
    net.params = {k: other.params[k] for k in other.params}
    for name in net.params:
        np.testing.assert_allclose(net.params[name], other.params[name].astype(np.float32))
    with pytest.raises(ValueError):
        net.params = {"fc1.W": np.zeros((2, 2))}


def test_state_dict_round_trip(bn_net):
    net = bn_net
    saved = net.state_dict()
    assert set(saved) == set(net.params) | set(net.state)
    assert all(not np.shares_memory(v, net.store.values) and not np.shares_memory(v, net.store.state)
               for v in saved.values())
    inputs, labels = reference.random_batch(net.spec, 8, dtype=np.float32)
    opt = gn.Optimizer(net, "sgd", learning_rate=0.1)
    for _ in range(3):
        opt.step(inputs, labels)
    assert not np.array_equal(net.params["fc1.W"], saved["fc1.W"])
    assert not np.array_equal(net.state["bn1.running_mean"], saved["bn1.running_mean"])
    trained = net.state_dict()
    net.load_state_dict(saved)
    for name, value in saved.items():
        np.testing.assert_array_equal(net.state_dict()[name], value)
    # into another network compiled from the same spec (other seed, other capacity)
    twin = gn.compile(net.spec, batch_size=3, dtype="float32", seed=5)
    twin.load_state_dict(trained)
    net.load_state_dict(trained)
    # (capacity 3 runs the batch of 8 in chunks: BLAS may round differently)
    np.testing.assert_allclose(twin.forward(inputs), net.forward(inputs), rtol=1e-5, atol=1e-5)
    assert twin.evaluate_loss(inputs, labels) == pytest.approx(net.evaluate_loss(inputs, labels), rel=1e-5)


def test_load_state_dict_rejects_mismatches(bn_net):
    net = bn_net
    saved = net.state_dict()
    partial = dict(saved)
    del partial["bn2.running_var"]
    with pytest.raises(ValueError, match=r"missing \['bn2.running_var'\]"):
        net.load_state_dict(partial)
    with pytest.raises(ValueError, match=r"unexpected \['extra'\]"):
        net.load_state_dict({**saved, "extra": np.zeros(1)})
    net.params["fc1.W"][...] = 0.25
    net.load_state_dict({"fc1.W": saved["fc1.W"], "extra": np.zeros(1)}, strict=False)  # as PyTorch
    np.testing.assert_array_equal(net.params["fc1.W"], saved["fc1.W"])
    net.load_state_dict(partial, strict=False)
    wrong = {**saved, "fc1.W": np.zeros((3, 3))}
    with pytest.raises(ValueError, match=r"fc1.W"):
        net.load_state_dict(wrong)


def test_loss_returns_fresh_gradient_arrays(bn_net):
    net = bn_net
    inputs, labels = reference.random_batch(net.spec, 8, dtype=np.float32)
    loss, grads = net.loss(inputs, labels)
    assert isinstance(loss, float)
    assert list(grads) == list(net.params)
    for name, grad in grads.items():
        assert grad.shape == net.params[name].shape
        assert not np.shares_memory(grad, net.store.grads)
        np.testing.assert_array_equal(grad, net.grads[name])
    before = {k: v.copy() for k, v in grads.items()}
    net.loss({"x": np.ascontiguousarray(inputs["x"][::-1])}, labels)  # another batch
    for name in grads:
        np.testing.assert_array_equal(grads[name], before[name])


# ---- compile options and plan kinds -----------------------------------------------------------


def test_compile_validates_its_arguments():
    spec = gn.sequential([{"op": "affine", "units": 3}], input_shape=[4], classes=3)
    with pytest.raises(ValueError, match="batch_size"):
        gn.compile(spec, batch_size=0)
    with pytest.raises(ValueError, match="dtype"):
        gn.compile(spec, dtype="int32")
    with pytest.raises(ValueError, match="backend"):
        gn.compile(spec, backend="cuda")
    with pytest.raises(TypeError, match="NetworkSpec"):
        gn.compile(["not", "a", "spec"])
    run = gn.load(SPECS / "spiral_mlp.json")
    assert isinstance(run, gn.RunSpec)
    assert gn.compile(run, batch_size=2).graph.name == "spiral_mlp"


def test_plan_kinds():
    spec = gn.sequential([{"op": "affine", "units": 4, "activation": "relu"}, {"op": "dropout", "rate": 0.5},
                          {"op": "affine", "units": 3}], input_shape=[4], classes=3)
    net = gn.compile(spec, batch_size=4)
    plans = {kind: net.plan(kind) for kind in ("train", "train_loss", "eval_loss", "infer")}
    assert net.stats.plans_compiled == 4
    assert plans["train"].schedule.backward and plans["train"].mode == "train"
    assert not plans["train_loss"].schedule.backward and plans["train_loss"].mode == "train"
    assert plans["eval_loss"].mode == "eval" and plans["eval_loss"].schedule.loss == "loss"
    assert plans["infer"].schedule.loss is None
    assert "dropout_forward" in {s.kernel for s in plans["train_loss"].steps}
    assert "dropout_forward" not in {s.kernel for s in plans["eval_loss"].steps}
    assert net.plan("infer") is plans["infer"] and net.stats.plans_compiled == 4

    no_loss = gn.sequential([{"op": "affine", "units": 3}], input_shape=[4], loss=None)
    inference_only = gn.compile(no_loss, batch_size=2)
    assert inference_only.forward(np.zeros((2, 4), np.float32)).shape == (2, 3)
    with pytest.raises(PlanError, match="no loss"):
        inference_only.plan("train")


def test_mse_network_trains_on_float_targets():
    spec = gn.sequential([{"op": "affine", "units": 8, "activation": "tanh"}, {"op": "affine", "units": 2}],
                         input_shape=[3], loss="mse")
    net = gn.compile(spec, batch_size=32, dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((32, 3))
    T = np.stack([X[:, 0] * X[:, 1], np.sin(X[:, 2])], axis=1)
    opt = gn.Optimizer(net, "adam", learning_rate=2e-2)
    first = opt.step(X, T)
    for _ in range(300):
        last = opt.step(X, T)
    assert last < 0.2 * first


# ---- predict: what fits the loss the output feeds ---------------------------------------------


def one_output_net(loss: str, label: dict, units: int = 1) -> gn.CompiledNetwork:
    spec = gn.parse_network({
        "inputs": {"x": {"shape": [2]}}, "labels": {"y": label},
        "nodes": [{"id": "fc", "op": "affine", "inputs": ["x"], "units": units},
                  {"id": "loss", "op": loss, "inputs": ["fc", "y"]}],
        "outputs": ["fc"], "loss": "loss"})
    net = gn.compile(spec, batch_size=8, dtype="float64")
    net.params["fc.W"] = np.arange(2 * units, dtype=np.float64).reshape(2, units) - 1.0
    net.params["fc.b"] = np.full(units, 0.5)
    return net


X_PREDICT = np.array([[1.0, 0.0], [0.0, 1.0], [-2.0, 3.0], [3.0, -1.0], [0.5, 0.0]])


def test_predict_binary_thresholds_the_sigmoid_at_one_half():
    net = one_output_net("sigmoid_binary_cross_entropy", {"shape": [1]})
    logits = net.forward(X_PREDICT)[:, 0]  # x0 * -1 + x1 * 0 + 0.5: [-0.5, 0.5, 2.5, -2.5, 0]
    predicted = net.predict(X_PREDICT)
    assert predicted.dtype == np.int64 and predicted.shape == (5,)
    np.testing.assert_array_equal(predicted, (1 / (1 + np.exp(-logits)) > 0.5).astype(np.int64))
    np.testing.assert_array_equal(predicted, [0, 1, 1, 0, 0])


def test_predict_regression_returns_the_values():
    net = one_output_net("mse", {"shape": [1]})
    predicted = net.predict(X_PREDICT)
    assert predicted.shape == (5, 1) and predicted.dtype == np.float64
    np.testing.assert_allclose(predicted[:, 0], -X_PREDICT[:, 0] + 0.5)
    wide = one_output_net("mse", {"shape": [3]}, units=3)
    assert wide.predict(X_PREDICT).shape == (5, 3)
    np.testing.assert_array_equal(wide.predict(X_PREDICT), wide.forward(X_PREDICT))


def test_predict_classification_is_the_argmax():
    net = one_output_net("softmax_cross_entropy", {"classes": 3}, units=3)
    np.testing.assert_array_equal(net.predict(X_PREDICT), net.forward(X_PREDICT).argmax(axis=1))


def test_predict_returns_class_names_when_the_network_knows_them():
    net = one_output_net("softmax_cross_entropy", {"classes": 3}, units=3)
    net.class_names = ("ant", "bee", "cat")
    np.testing.assert_array_equal(net.predict(X_PREDICT), np.array(["ant", "bee", "cat"])[net.forward(X_PREDICT).argmax(1)])


def test_predict_proba_is_the_softmax_of_the_scores():
    net = one_output_net("softmax_cross_entropy", {"classes": 3}, units=3)
    proba = net.predict_proba(X_PREDICT)
    scores = net.forward(X_PREDICT)
    expected = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(proba, expected, rtol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(proba.argmax(axis=1), net.predict(X_PREDICT))


def test_predict_proba_does_not_apply_softmax_twice():
    spec = gn.parse_network({
        "inputs": {"x": {"shape": [2]}}, "labels": {"y": {"classes": 3}},
        "nodes": [{"id": "fc", "op": "affine", "inputs": ["x"], "units": 3},
                  {"id": "p", "op": "softmax", "inputs": ["fc"]},
                  {"id": "loss", "op": "cross_entropy", "inputs": ["p", "y"]}],
        "outputs": ["p"], "loss": "loss"})
    net = gn.compile(spec, batch_size=8, dtype="float64")
    np.testing.assert_array_equal(net.predict_proba(X_PREDICT), net.forward(X_PREDICT))


def test_predict_proba_binary_is_the_sigmoid_and_regression_has_none():
    net = one_output_net("sigmoid_binary_cross_entropy", {"shape": [1]})
    proba = net.predict_proba(X_PREDICT)
    assert proba.shape == (5, 2)  # p(0), p(1): the columns p_0, p_1 of graphnet predict --proba
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-net.forward(X_PREDICT)[:, 0])), rtol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(proba.argmax(axis=1), net.predict(X_PREDICT))
    with pytest.raises(gn.GraphnetError, match="regression output"):
        one_output_net("mse", {"shape": [1]}).predict_proba(X_PREDICT)

# ---- a step is all or nothing ------------------------------------------------------------------


def bn_batch(n=8, seed=3):
    spec = zoo_network(SPECS / "fc_bn_dropout.json")
    inputs, labels = reference.random_batch(spec, n, seed=seed, dtype=np.float32)
    return spec, inputs["x"], labels["y"]


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("rule", ["sgd", "adam"])
def test_a_nan_batch_changes_no_running_statistic(rule, backend):
    spec, X, y = bn_batch()
    net = gn.compile(spec, batch_size=8, dtype="float32", backend=backend, seed=0)
    opt = gn.Optimizer(net, rule, learning_rate=1e-2)
    opt.step(X, y)
    params, state = snapshot(net)
    scores = net.forward(X)
    bad = X.copy()
    bad[3, 5] = np.nan
    with np.errstate(all="ignore"), pytest.raises(gn.NonFiniteError):
        opt.step(bad, y)
    for name in net.state:
        np.testing.assert_array_equal(net.state[name], state[name], err_msg=name)
    for name in net.params:
        np.testing.assert_array_equal(net.params[name], params[name], err_msg=name)
    np.testing.assert_array_equal(net.forward(X), scores)
    assert np.isfinite(opt.step(X, y))


def test_a_step_on_a_nan_batch_restores_the_running_statistics():
    spec, X, y = bn_batch()
    net = gn.compile(spec, batch_size=8, dtype="float64", seed=0)
    X = X.astype(np.float64)
    net.step(X, y)
    state = {k: net.state[k].copy() for k in net.state}
    X[0, 0] = np.inf
    with np.errstate(all="ignore"):
        assert not np.isfinite(net.step(X, y))
        assert net.first_nonfinite(X, y) == "input 'x'"
        assert not np.isfinite(net.evaluate_loss(X, y, mode="train"))
    for name in net.state:
        np.testing.assert_array_equal(net.state[name], state[name], err_msg=name)


def test_a_successful_step_still_updates_the_running_statistics():
    spec, X, y = bn_batch()
    net = gn.compile(spec, batch_size=8, dtype="float32", seed=0)
    before = net.store.state.copy()
    net.step(X, y)
    assert not np.array_equal(net.store.state, before)


def test_a_step_refused_for_its_labels_changes_no_running_statistic():
    spec, X, y = bn_batch()
    net = gn.compile(spec, batch_size=8, dtype="float32", seed=0)
    before = net.store.state.copy()
    y = y.copy()
    y[2] = 10  # the loss kernel refuses it after the batchnorms ran
    with pytest.raises(PlanError, match=r"values must be in \[0, 10\)"):
        net.step(X, y)
    np.testing.assert_array_equal(net.store.state, before)


# ---- what compile() and forward() take -------------------------------------------------------


def test_compile_takes_a_spec_dict_a_spec_file_or_a_zoo_name():
    path = SPECS / "spiral_mlp.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    expected = zoo_network(path)
    for source in (document, document["network"], str(path), path, "spiral_mlp"):
        assert gn.compile(source, batch_size=4).spec == expected, source
    with pytest.raises(gn.SpecError, match="missing required field 'inputs'"):
        gn.compile({"nodes": []})
    with pytest.raises(TypeError, match="spec dict or spec file path, got int"):
        gn.compile(3)


def two_headed_network() -> gn.NetworkSpec:
    return gn.parse_network({
        "name": "two_heads", "inputs": {"x": {"shape": [4]}}, "labels": {"y": {"classes": 3}},
        "nodes": [{"id": "fc", "op": "affine", "inputs": ["x"], "units": 5, "activation": "relu"},
                  {"id": "head", "op": "affine", "inputs": ["fc"], "units": 3},
                  {"id": "probs", "op": "softmax", "inputs": ["head"]},
                  {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["head", "y"]}],
        "outputs": ["head", "probs", "fc"], "loss": "loss"})


@pytest.mark.parametrize("rows", [3, 7])  # within the capacity, and in chunks
def test_forward_of_several_outputs_returns_each_by_name(rows):
    net = gn.compile(two_headed_network(), batch_size=4, dtype="float64")
    randomize(net)
    X = np.random.default_rng(0).standard_normal((rows, 4))
    result = net.forward(X)
    assert isinstance(result, dict) and list(result) == ["head", "probs", "fc"]
    for name, value in result.items():
        np.testing.assert_array_equal(value, net.forward(X, output=name))
    np.testing.assert_allclose(result["probs"].sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(net.loss(X), result["head"])  # the homework's scores: the first output
    np.testing.assert_array_equal(net.predict(X), result["head"].argmax(axis=1))


@pytest.mark.parametrize("rows", [3, 300])  # 300 > capacity: the shape is checked before chunking
def test_a_shape_error_names_the_shape_given(rows):
    net = gn.compile(two_headed_network(), batch_size=128)
    with pytest.raises(PlanError, match=rf"expected a float32 array of shape \(N, 4\), got shape \({rows}, 3\)"):
        net.forward(np.zeros((rows, 3), np.float32))


def test_an_unknown_input_name_is_named():
    net = gn.compile(gn.parse_network({
        "inputs": {"a": {"shape": [2]}, "b": {"shape": [2]}},
        "nodes": [{"id": "sum", "op": "add", "inputs": ["a", "b"]}], "outputs": ["sum"]}), batch_size=4)
    X = np.ones((2, 2), np.float32)
    for inputs in ({"a": X, "bb": X}, {"a": X, "b": X, "bb": X}):
        with pytest.raises(PlanError, match=r"unknown input 'bb'; did you mean 'b'\? \(inputs: a, b\)"):
            net.forward(inputs)
    np.testing.assert_array_equal(net.forward({"a": X, "b": X}), 2 * X)


def test_a_label_among_the_inputs_is_named_as_a_label():
    net = gn.compile(two_headed_network(), batch_size=4)
    X = np.ones((2, 4), np.float32)
    with pytest.raises(PlanError, match=r"'y' is a label, not an input: pass labels separately \(inputs: x\)"):
        net.forward({"x": X, "y": np.zeros(2, np.int64)})


def test_training_batchnorm_on_one_example_is_refused_naming_the_node():
    spec = gn.sequential([{"op": "affine", "units": 4}, {"op": "batchnorm", "id": "bn1"}, {"op": "relu"},
                          {"op": "affine", "units": 3}], input_shape=[2], classes=3)
    net = gn.compile(spec, batch_size=8)
    X, y = np.ones((1, 2), np.float32), np.zeros(1, np.int64)
    message = r"batchnorm 'bn1': training needs more than 1 example per batch \(got 1\)"
    for call in (lambda: net.step(X, y), lambda: net.step(X, y, 0.1),
                 lambda: net.evaluate_loss(X, y, mode="train")):
        with pytest.raises(PlanError, match=message):
            call()
    assert net.forward(X).shape == (1, 3)  # eval mode uses the running statistics
    assert np.isfinite(net.evaluate_loss(X, y))
    assert np.isfinite(net.step(np.ones((2, 2), np.float32), np.zeros(2, np.int64)))
