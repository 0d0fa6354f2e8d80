"""net.forward's hot path (graphnet.runtime.fast_forward) and the small-batch affine kernel it runs."""
from __future__ import annotations

import dataclasses
import types

import numpy as np
import pytest
from graphnet.kernels import KERNEL_NAMES, available_backends, get_backend

import graphnet as gn
from graphnet.errors import PlanError

from tests._support.affine_twins import assert_affine_twins_agree
from tests._support.allocations import counting_numpy_allocations

BACKENDS = available_backends()


def mlp(backend: str, batch_size: int = 16, dtype: str = "float32", kernels=None) -> gn.CompiledNetwork:
    """The test MLP, compiled with the settings in effect (running `kernels` when given)."""
    layers = [{"op": "affine", "units": 37, "activation": "relu"},
              {"op": "affine", "units": 19, "activation": "tanh"},
              {"op": "affine", "units": 5}]
    spec = gn.sequential(layers, input_shape=[23], classes=5, name="mlp")
    net = gn.compile(spec, batch_size=batch_size, dtype=dtype, backend=backend, seed=3)
    if kernels is None:
        return net
    return gn.compile(spec, batch_size=batch_size, seed=3, target=dataclasses.replace(net.target, kernels=kernels))


def batch(n: int, dtype: str = "float32", seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 23)).astype(dtype)


def reference(net: gn.CompiledNetwork, X: np.ndarray) -> np.ndarray:
    """The network in float64 NumPy, from its parameters."""
    h = X.astype(np.float64)
    for i, act in enumerate((lambda z: np.maximum(z, 0), np.tanh, lambda z: z), start=1):
        h = act(h @ net.params[f"affine{i}.W"].astype(np.float64) + net.params[f"affine{i}.b"])
    return h


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n", [1, 2, 7, 16])
def test_the_hot_path_gives_the_general_paths_bits(backend, n):
    net, twin = mlp(backend), mlp(backend)
    X = batch(n)
    general = twin.forward(X)  # a shape's first call takes the general path
    assert net.forward(X).tobytes() == general.tobytes()  # binds the hot path
    assert net.stats.fast_forwards == 1
    assert net.forward(X).tobytes() == general.tobytes()  # runs it
    assert net.stats.fast_forwards == 1
    np.testing.assert_allclose(general, reference(net, X), rtol=1e-4, atol=1e-5)


def test_the_second_call_of_a_shape_skips_the_general_path():
    """The general path binds the hot path for every input it runs as given: a call that took it
    again would bind a second one."""
    net = mlp("numpy")
    X = batch(3)
    net.forward(X)
    net.forward(batch(3, seed=1))
    net.forward(X, output=None)
    assert net.stats.fast_forwards == 1
    net.forward(batch(4))
    assert net.stats.fast_forwards == 2


def test_hot_path_results_are_fresh_arrays_and_follow_new_weights():
    net = mlp("numpy")
    X = batch(4)
    first = net.forward(X)
    second = net.forward(X)
    assert first is not second and not np.shares_memory(first, second)
    second[:] = 0
    np.testing.assert_array_equal(net.forward(X), first)
    net.params["affine3.b"] = net.params["affine3.b"] + 1
    np.testing.assert_allclose(net.forward(X), first + 1, rtol=1e-6, atol=1e-6)


def test_outputs_by_name_and_several_outputs_take_the_hot_path_too():
    spec = gn.sequential([{"op": "affine", "units": 6, "activation": "relu"}, {"op": "affine", "units": 3}],
                         input_shape=[4], classes=3, name="two")
    spec = spec.model_copy(update={"outputs": ["affine1", "affine2"]})
    net = gn.compile(spec, batch_size=8, backend="numpy")
    X = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    expected = net.forward(X)  # the general path, which binds the hot path for every output
    for _ in range(2):
        got = net.forward(X)
        assert list(got) == ["affine1", "affine2"]
        for name in got:
            np.testing.assert_array_equal(got[name], expected[name])
        np.testing.assert_array_equal(net.forward(X, output="affine1"), expected["affine1"])
    assert net.stats.fast_forwards == 2  # all outputs, and "affine1" alone: each bound once, then reused


def test_an_input_of_several_dimensions_per_example_is_flattened_on_the_hot_path():
    spec = gn.sequential([{"op": "affine", "units": 4, "activation": "sigmoid"}], input_shape=[2, 3], classes=4)
    net, twin = gn.compile(spec, batch_size=4, backend="numpy"), gn.compile(spec, batch_size=4, backend="numpy")
    X = np.arange(18, dtype=np.float32).reshape(3, 2, 3) / 10
    expected = twin.forward(X)  # a shape's first call takes the general path
    for _ in range(2):
        np.testing.assert_array_equal(net.forward(X), expected)
    assert net.stats.fast_forwards == 1


BAD_INPUTS = {
    "float16": lambda X: X.astype(np.float16),  # converted, not refused
    "wrong width": lambda X: np.zeros((X.shape[0], 22), np.float32),
    "a list": lambda X: X.tolist(),
    "Fortran order": lambda X: np.asfortranarray(np.zeros((X.shape[0], 23), np.float32)),
    "1-D": lambda X: X[0],
    "strings": lambda X: np.full(X.shape, "a"),
    "a label dict": lambda X: {"y": X},
}


def outcome(net: gn.CompiledNetwork, value) -> str:
    try:
        return f"ok {np.asarray(net.forward(value)).round(4).tolist()}"
    except (PlanError, ValueError, TypeError) as error:
        return f"{type(error).__name__}: {error}"


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_a_bound_hot_path_does_not_change_what_other_inputs_get(case):
    X = batch(2)
    fresh, warm = mlp("numpy"), mlp("numpy")
    warm.forward(X)
    warm.forward(X)
    value = BAD_INPUTS[case](X)
    assert outcome(warm, value) == outcome(fresh, value)
    assert warm.stats.fast_forwards == 1  # only arrays taken as given are bound


def test_a_batch_above_the_capacity_or_in_chunks_is_not_bound():
    net = mlp("numpy", batch_size=4)
    X = batch(9)
    np.testing.assert_allclose(net.forward(X, batch_size=3), net.forward(X), rtol=1e-6)
    net.forward(X[:3], batch_size=3)
    assert net.stats.fast_forwards == 0
    net.forward(X[:3])
    assert net.stats.fast_forwards == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_hot_path_allocates_only_the_result(backend):
    net = mlp(backend)
    X = batch(1)
    net.forward(X)
    net.forward(X)
    with counting_numpy_allocations() as sizes:
        net.forward(X)
    assert sizes == [5 * 4]  # the (1, 5) float32 copy it returns


# ---- the small-batch affine kernel ----------------------------------------------------------


def spying_backend(name: str, calls: list[int]) -> types.SimpleNamespace:
    """The kernels of backend `name`, with affine_small_forward counting the rows it is called on."""
    backend = get_backend(name)
    kernels = types.SimpleNamespace(name=backend.name, **{k: getattr(backend, k) for k in KERNEL_NAMES})

    def affine_small_forward(X, *args):
        calls.append(X.shape[0])
        backend.affine_small_forward(X, *args)

    kernels.affine_small_forward = affine_small_forward
    return kernels


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("rows, work, expected", [
    (2, 0, [1, 1, 1, 2, 2, 2]),  # every layer up to two rows; GEMMs above
    (1, 3 * 19 * 5, [1, 1, 1, 2, 3]),  # the 19x5 layer up to three rows, the others at one
    (0, 10**9, []),  # off
])
def test_inference_runs_the_small_batch_kernel_on_small_work(backend, rows, work, expected):
    calls: list[int] = []
    with gn.config_context(small_batch_rows=rows, small_work=work):
        net = mlp(backend, kernels=spying_backend(backend, calls))
    for n in (1, 2, 3, 4, 16):
        X = batch(n, seed=n)
        np.testing.assert_allclose(net.forward(X), reference(net, X), rtol=1e-4, atol=1e-5)
    assert calls == expected


def test_the_plan_says_where_the_small_batch_kernel_runs():
    assert "affine_small_forward" not in mlp("numpy").describe("infer")  # off by default
    with gn.config_context(small_batch_rows=1):
        net = mlp("numpy")
    assert "affine_small_forward up to" in net.describe("infer")  # the settings it was compiled with


def test_set_config_reaches_networks_compiled_after_it():
    before = gn.get_config()
    try:
        assert gn.set_config(small_batch_rows=1).small_batch_rows == 1
        assert "affine_small_forward up to" in mlp("numpy").describe("infer")
        with gn.config_context(small_batch_rows=0):
            assert "affine_small_forward" not in mlp("numpy").describe("infer")
    finally:
        gn.set_config(**dataclasses.asdict(before))
    assert gn.get_config() == before


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_never_runs_the_small_batch_kernel(backend):
    calls: list[int] = []
    with gn.config_context(small_batch_rows=1):
        net = mlp(backend, kernels=spying_backend(backend, calls))
    net.step(batch(1), np.array([2]))
    net.evaluate_loss(batch(1), np.array([2]), mode="train")
    assert calls == []


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [1, 3, 8])
@pytest.mark.parametrize("shape", [(784, 512), (13, 37), (3, 1), (1, 70)])
def test_small_batch_kernel_matches_its_numpy_twin(dtype, n, shape):
    if "numba" not in BACKENDS:
        pytest.skip("numba is not installed")
    assert_affine_twins_agree("affine_small_forward", n, *shape, dtype, False)


def test_small_batch_kernel_refuses_mismatched_shapes():
    if "numba" not in BACKENDS:
        pytest.skip("numba is not installed")
    X, W, b = np.ones((2, 4), np.float32), np.ones((4, 3), np.float32), np.ones(3, np.float32)
    with pytest.raises(ValueError, match="affine_small_forward"):
        get_backend("numba").affine_small_forward(X, W, b, 0, 0.0, np.empty((2, 4), np.float32))
