"""Gradients: every zoo spec passes a float64 gradcheck; on random DAGs the
compiled gradients match central differences of the NumPy reference
interpreter (an oracle that shares no code with graphnet); and
`graphnet.model.gradcheck` itself detects wrong gradients and leaves the network
as it found it.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphnet as gn
import graphnet.model.gradcheck as gradcheck
from graphnet.gradient_check import central_difference
from graphnet.model.gradcheck import check_gradients, norm_relative_error, redundant_biases

from tests._support import reference, strategies
from tests._support.zoo import ZOO, randomize, zoo_network

GRAD_TOL = 1e-6


def test_zoo_is_not_empty():
    assert len(ZOO) >= 5, ZOO


# ---- the zoo ----------------------------------------------------------------------------------


# the Fashion CNN's gradcheck takes about 3 s
ZOO_CASES = [pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.stem == "fashion_cnn" else []) for p in ZOO]


@pytest.mark.parametrize("path", ZOO_CASES)
def test_zoo_gradcheck(path):
    spec = zoo_network(path)
    net = gn.compile(spec, batch_size=6, dtype="float64", backend="numba", seed=0)
    inputs, labels = reference.random_batch(spec, 6, seed=2)
    results = check_gradients(net, inputs, labels, entries=16)
    assert [r.name for r in results] == list(net.params)
    for result in results:
        assert result.checked == min(16, net.params[result.name].size)
        assert result.rel_error < GRAD_TOL, result


@pytest.mark.parametrize("path", ZOO, ids=[p.stem for p in ZOO])
def test_zoo_loss_matches_reference(path):
    """The zoo in float64, eval and train mode, against the NumPy interpreter."""
    spec = zoo_network(path)
    net = gn.compile(spec, batch_size=6, dtype="float64", seed=0)
    inputs, labels = reference.random_batch(spec, 6, seed=2)
    params = {k: net.params[k].copy() for k in net.params}
    state = {k: net.state[k].copy() for k in net.state}
    values, loss, _ = reference.run_reference(spec, params, state, inputs, labels, mode="eval")
    np.testing.assert_allclose(net.forward(inputs), values[spec.outputs[0]], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(net.evaluate_loss(inputs, labels), loss, rtol=1e-10, atol=1e-12)
    rng = np.random.default_rng()
    rng.bit_generator.state = net.dropout_rng.bit_generator.state
    _, train_loss, _ = reference.run_reference(spec, params, state, inputs, labels, mode="train", rng=rng)
    np.testing.assert_allclose(net.step(inputs, labels), train_loss, rtol=1e-10, atol=1e-12)


# ---- random DAGs against central differences of the reference ---------------------------------


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=strategies.network_specs(), n=st.integers(3, 6), seed=st.integers(0, 2**16))
def test_random_dag_gradients_match_reference_differences(case, n, seed):
    spec = case.spec
    net = gn.compile(spec, batch_size=6, dtype="float64", seed=seed)
    randomize(net, seed + 1)
    inputs, labels = reference.random_batch(spec, n, seed)
    params = {k: net.params[k].copy() for k in net.params}
    state = {k: net.state[k].copy() for k in net.state}
    rng_state = net.dropout_rng.bit_generator.state

    loss, grads = net.loss(inputs, labels)

    def f(p):
        return reference.reference_loss(spec, p, state, inputs, labels, mode="train", rng_state=rng_state)

    np.testing.assert_allclose(loss, f(params), rtol=1e-10, atol=1e-12)
    for name in params:
        numeric = reference.numeric_gradient(f, params, name)
        analytic = grads[name]
        gap = np.linalg.norm(analytic - numeric)
        scale = np.linalg.norm(analytic) + np.linalg.norm(numeric)
        assert gap <= GRAD_TOL * scale + 1e-8, (name, gap / max(scale, 1e-300), analytic, numeric)


# ---- the checker itself -----------------------------------------------------------------------


def test_relative_error_definition():
    assert norm_relative_error(np.zeros(3), np.zeros(3)) == 0.0
    a, b = np.array([3.0, 4.0]), np.array([3.0, 4.0 + 1e-3])
    assert norm_relative_error(a, b) == pytest.approx(1e-3 / (5.0 + np.linalg.norm(b)))
    assert norm_relative_error(np.array([1.0]), np.array([-1.0])) == pytest.approx(1.0)


def _small_net(**options):
    spec = gn.sequential([{"op": "affine", "units": 6, "activation": "tanh"}, {"op": "batchnorm"},
                          {"op": "dropout", "rate": 0.4}, {"op": "affine", "units": 3}],
                         input_shape=[5], classes=3)
    return gn.compile(spec, batch_size=8, dtype="float64", seed=0, **options)


def gradients_off_by_one_percent(net, monkeypatch) -> None:
    """Make `net.step` report every gradient 1% too large (a wrong backward)."""
    honest = net.step

    def off_by_one_percent(X, y):
        loss = honest(X, y)
        net.store.grads[:] *= 1.01
        return loss

    monkeypatch.setattr(net, "step", off_by_one_percent)


def test_gradcheck_detects_a_wrong_gradient(monkeypatch):
    net = _small_net()
    inputs, labels = reference.random_batch(net.spec, 8, seed=0)
    gradients_off_by_one_percent(net, monkeypatch)
    results = check_gradients(net, inputs, labels, entries=None)
    assert all(r.rel_error > 1e-3 for r in results), results


def test_gradcheck_leaves_params_state_and_dropout_stream_unchanged():
    net = _small_net()
    inputs, labels = reference.random_batch(net.spec, 8, seed=0)
    params, state = net.store.values.copy(), net.store.state.copy()
    rng_state = net.dropout_rng.bit_generator.state
    results = check_gradients(net, inputs, labels, entries=5, seed=3)
    np.testing.assert_array_equal(net.store.values, params)
    np.testing.assert_array_equal(net.store.state, state)
    assert net.dropout_rng.bit_generator.state == rng_state
    assert all(r.checked == min(5, net.params[r.name].size) for r in results)
    assert all(r.rel_error < GRAD_TOL for r in results), results
    # the worst entry is reported at an index of the parameter's shape
    for r in results:
        assert len(r.worst_index) == net.params[r.name].ndim
        assert all(0 <= i < s for i, s in zip(r.worst_index, net.params[r.name].shape))


# ---- vanishing gradients and redundant biases --------------------------------------------------


def _dense_bn(bias=True, activation=None, also_output=False):
    fc1 = {"id": "fc1", "op": "affine", "inputs": ["x"], "units": 4, "bias": bias}
    if activation:
        fc1["activation"] = activation
    return gn.parse_network({
        "inputs": {"x": {"shape": [5]}}, "labels": {"y": {"classes": 3}},
        "nodes": [fc1, {"id": "bn1", "op": "batchnorm", "inputs": ["fc1"]},
                  {"id": "fc2", "op": "affine", "inputs": ["bn1"], "units": 3},
                  {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc2", "y"]}],
        "outputs": ["fc2", "fc1"] if also_output else ["fc2"], "loss": "loss"})


def test_a_vanishing_gradient_passes_on_the_absolute_tolerance():
    net = gn.compile(_dense_bn(), batch_size=4, dtype="float64", seed=0)
    inputs, labels = reference.random_batch(net.spec, 4, seed=0)
    with pytest.warns(UserWarning, match=r"fc1\.b: the bias of affine 'fc1' feeds only batchnorm 'bn1'"):
        results = {r.name: r for r in check_gradients(net, inputs, labels)}
    bias = results["fc1.b"]
    assert abs(bias.analytic) < 1e-12 and abs(bias.numeric) < 1e-9  # both sides are rounding noise
    assert bias.abs_error <= bias.atol < 1e-6
    assert all(r.passed(GRAD_TOL) for r in results.values()), results
    assert all(r.rel_error < GRAD_TOL for name, r in results.items() if name != "fc1.b")


def test_the_absolute_tolerance_does_not_hide_a_wrong_gradient(monkeypatch):
    net = gn.compile(_dense_bn(), batch_size=4, dtype="float64", seed=0)
    inputs, labels = reference.random_batch(net.spec, 4, seed=0)
    gradients_off_by_one_percent(net, monkeypatch)
    with pytest.warns(UserWarning):
        results = check_gradients(net, inputs, labels)
    assert [r.name for r in results if not r.passed(GRAD_TOL)] == [r.name for r in results if r.name != "fc1.b"]


@pytest.mark.parametrize("options", [{"bias": False}, {"activation": "relu"}, {"also_output": True}],
                         ids=["no bias", "fused activation", "fc1 is an output"])
def test_no_redundant_bias_note_where_the_bias_matters_or_is_absent(options):
    assert redundant_biases(gn.compile(_dense_bn(**options), batch_size=2).graph) == []
    assert len(redundant_biases(gn.compile(_dense_bn(), batch_size=2).graph)) == 1


def test_numeric_gradients_come_from_the_shared_central_difference(monkeypatch):
    """gradcheck and the homework's gradient_check share one central-difference helper."""
    calls = []

    def spy(f, x, ix, h):
        calls.append(ix)
        return central_difference(f, x, ix, h)

    monkeypatch.setattr(gradcheck, "central_difference", spy)
    spec = zoo_network(ZOO[0])
    net = gn.compile(spec, batch_size=4, dtype="float64", backend="numpy", seed=0)
    inputs, labels = reference.random_batch(spec, 4, seed=1)
    results = check_gradients(net, inputs, labels, entries=4)
    assert len(calls) == sum(result.checked for result in results) > 0
    assert all(result.rel_error < GRAD_TOL for result in results)
