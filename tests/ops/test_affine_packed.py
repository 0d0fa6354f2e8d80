"""The packed-weight inference kernel (affine_packed_forward) and the eval-mode affine
step that runs it on a copy of W transposed once (graphnet.ops.affine.packed_affine)."""
from __future__ import annotations

import dataclasses
import types

import numpy as np
import pytest
from graphnet.kernels import KERNEL_NAMES, get_backend

import graphnet as gn
import graphnet.ops.affine as affine_op
from graphnet.runtime.config import resolve_target
from graphnet.runtime.optimizer import Optimizer

from tests._support.affine_twins import assert_affine_twins_agree
from tests._support.allocations import counting_numpy_allocations
from tests._support.extras import needs_numba

PACKED = ("affine_packed_forward", "affine_packed_forward_columns")


def mlp(backend: str = "numba", batch_size: int = 16, dtype: str = "float32", seed: int = 3, threads: int = 1,
        live_threads: int | None = None, kernels: types.SimpleNamespace | None = None) -> gn.CompiledNetwork:
    """The test MLP, compiled with the settings in effect on a target set up for `threads` BLAS
    threads (the count at each call: `live_threads`, default the same), running `kernels` (default
    the backend's)."""
    layers = [{"op": "affine", "units": 37, "activation": "relu"},
              {"op": "affine", "units": 19, "activation": "tanh"},
              {"op": "affine", "units": 5}]
    spec = gn.sequential(layers, input_shape=[23], classes=5, name="mlp")
    live = threads if live_threads is None else live_threads
    target = dataclasses.replace(resolve_target(kernels or get_backend(backend), np.dtype(dtype)), threads=threads,
                                 live_threads=lambda: live)
    return gn.compile(spec, batch_size=batch_size, seed=seed, target=target)


def batch(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 23)).astype(np.float32)


def reference(net: gn.CompiledNetwork, X: np.ndarray) -> np.ndarray:
    """The network in float64 NumPy, from its parameters."""
    h = X.astype(np.float64)
    for i, act in enumerate((lambda z: np.maximum(z, 0), np.tanh, lambda z: z), start=1):
        h = act(h @ net.params[f"affine{i}.W"].astype(np.float64) + net.params[f"affine{i}.b"])
    return h


@pytest.fixture
def packed_from_two_rows():
    """Inference runs affine_small_forward at one row, affine_packed_forward from 2 to 8 rows
    (on mlp()'s default target, set up for one BLAS thread, where the serial packed kernel runs)."""
    with gn.config_context(small_batch_rows=1, small_work=0, packed_max_rows=8, packed_serial_work=10**9):
        yield


# ---- the kernel -----------------------------------------------------------------------------


def column_range(name: str, h: int) -> tuple[int, ...]:
    """The extra arguments of kernel `name` that make it compute all `h` columns."""
    return (0, h) if name == "affine_packed_forward_columns" else ()


@needs_numba
@pytest.mark.parametrize("name", PACKED)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [1, 3, 4, 9, 32])
@pytest.mark.parametrize("shape", [(784, 512), (13, 37), (1, 9), (70, 1), (5, 10), (256, 10)])
def test_packed_kernel_matches_its_numpy_twin(name, dtype, n, shape):
    d, h = shape
    assert_affine_twins_agree(name, n, d, h, dtype, True, *column_range(name, h))


@needs_numba
@pytest.mark.parametrize("name", PACKED)
def test_packed_kernel_refuses_mismatched_shapes(name):
    X, WT, b = np.ones((3, 4), np.float32), np.ones((5, 4), np.float32), np.ones(5, np.float32)
    with pytest.raises(ValueError, match="affine_packed_forward"):
        get_backend("numba")[name](X, WT.T.copy(), b, 0, 0.0, np.empty((3, 5), np.float32), *column_range(name, 5))
    with pytest.raises(ValueError, match="affine_packed_forward"):
        get_backend("numba")[name](X, WT, b, 0, 0.0, np.empty((3, 4), np.float32), *column_range(name, 5))


# ---- where inference runs it ----------------------------------------------------------------


def spying_backend(name: str, calls: list[tuple[str, int]]) -> types.SimpleNamespace:
    """The kernels of backend `name`, recording (kernel, rows) of every affine inference kernel call."""
    backend = get_backend(name)
    kernels = types.SimpleNamespace(name=backend.name, **{k: getattr(backend, k) for k in KERNEL_NAMES})
    for kernel in ("affine_small_forward", *PACKED):
        def spy(X, *args, kernel=kernel):
            calls.append((kernel, X.shape[0]))
            backend[kernel](X, *args)

        setattr(kernels, kernel, spy)
    return kernels


@needs_numba
@pytest.mark.parametrize("parallel, threads, packed", [(True, 2, "affine_packed_forward_columns"),
                                                       (True, 1, "affine_packed_forward"),
                                                       (False, 1, "affine_packed_forward"),
                                                       (False, 2, "affine_packed_forward")])
def test_inference_runs_the_packed_kernel_between_the_small_kernel_and_the_gemm(
        packed_from_two_rows, parallel, threads, packed):
    calls: list[tuple[str, int]] = []
    with gn.config_context(packed_parallel=parallel, packed_parallel_work=0, helper_lag_work=0):
        net = mlp(threads=threads, kernels=spying_backend("numba", calls))
    for n in (1, 2, 5, 8, 16):
        X = batch(n, seed=n)
        np.testing.assert_allclose(net.forward(X), reference(net, X), rtol=1e-4, atol=1e-5)
    halves = 2 if packed == "affine_packed_forward_columns" else 1  # each layer's two halves
    small = [("affine_small_forward", 1)] * 3
    packed_calls = [(packed, n) for n in (2, 5, 8) for _ in range(3 * halves)] if packed else []
    # the helper thread's calls may come in any order: compare sorted
    assert sorted(calls) == sorted(small + packed_calls)  # on any thread count: the same kernels, the same bits
    assert "affine_packed_forward up to 8" in net.describe("infer")


def test_the_helper_thread_gets_less_than_half_by_its_lag():
    assert affine_op.helper_split(512, 4000, lag=1000) == 320  # (work - lag) / 2: 3/8 of the 128 blocks
    assert affine_op.helper_split(512, 1000, lag=1000) == 512  # no more work than the lag: no helper
    assert affine_op.helper_split(512, 4000, lag=0) == 256  # no lag: half the columns
    assert affine_op.helper_split(10, 4000, lag=0) == 8  # whole blocks of 4 columns: 1 of 3 here
    assert affine_op.helper_split(4, 4000, lag=0) == 4  # a single block: no helper


@needs_numba
def test_serial_packed_kernel_only_on_layers_of_little_work(packed_from_two_rows):
    calls: list[tuple[str, int]] = []
    with gn.config_context(packed_serial_work=4 * 19 * 5):  # the 19x5 layer up to 4 rows
        net = mlp(threads=1, kernels=spying_backend("numba", calls))
    for n in (2, 4, 5):
        X = batch(n, seed=n)
        np.testing.assert_allclose(net.forward(X), reference(net, X), rtol=1e-4, atol=1e-5)
    assert calls == [("affine_packed_forward", 2), ("affine_packed_forward", 4)]


def test_the_numpy_backend_keeps_the_gemm(packed_from_two_rows):
    calls: list[tuple[str, int]] = []
    net = mlp("numpy", kernels=spying_backend("numpy", calls))
    X = batch(5)
    np.testing.assert_allclose(net.forward(X), reference(net, X), rtol=1e-4, atol=1e-5)
    assert calls == []


@needs_numba
def test_training_never_runs_the_packed_kernel(packed_from_two_rows):
    calls: list[tuple[str, int]] = []
    net = mlp(kernels=spying_backend("numba", calls))
    net.step(batch(5), np.array([0, 1, 2, 3, 4]))
    net.evaluate_loss(batch(5), np.array([0, 1, 2, 3, 4]), mode="train")
    assert calls == []


@needs_numba
@pytest.mark.parametrize("parallel", [False, True])
def test_packed_inference_allocates_only_its_result(packed_from_two_rows, parallel):
    with gn.config_context(packed_parallel=parallel, packed_parallel_work=0, helper_lag_work=0):
        net = mlp(threads=2)
    X = batch(5)
    net.forward(X)  # binds the hot path and packs the weights
    net.forward(X)
    with counting_numpy_allocations() as sizes:
        net.forward(X)
    assert sizes == [5 * 5 * 4]  # the (5, 5) float32 copy it returns


# ---- the packed copy follows the weights ----------------------------------------------------


def assign(net, rng):
    net.params["affine1.W"] = rng.standard_normal(net.params["affine1.W"].shape)


def write_through_a_view(net, rng):
    net.params["affine2.W"][3:7] *= -2.0


def load_state_dict(net, rng):
    state = net.state_dict()
    net.load_state_dict({name: value + rng.standard_normal(value.shape).astype(value.dtype) * 0.1
                         for name, value in state.items()})


def sgd_step(net, rng):
    net.step(batch(16, seed=9), np.arange(16) % 5, 0.5)


def optimizer_step(net, rng):
    Optimizer(net, "adam", learning_rate=0.05).step(batch(16, seed=9), np.arange(16) % 5)


@needs_numba
@pytest.mark.parametrize("change", [assign, write_through_a_view, load_state_dict, sgd_step, optimizer_step])
def test_inference_after_a_weight_change_matches_a_fresh_compile(packed_from_two_rows, change):
    net, rng = mlp(), np.random.default_rng(0)
    X = batch(5)
    change(net, rng)  # binds the plans the change runs: binding hands out views
    before = net.forward(X)  # packs the weights (hot path bound)
    net.forward(X)
    change(net, rng)
    after = net.forward(X)  # before anything else reads the parameters
    fresh = mlp(seed=11)
    fresh.load_state_dict(net.state_dict())
    assert not np.allclose(after, before)
    np.testing.assert_allclose(after, fresh.forward(X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(after, reference(net, X), rtol=1e-4, atol=1e-5)


@needs_numba
def test_an_optimizer_update_of_gradients_taken_before_inference_is_seen(packed_from_two_rows):
    net = mlp()
    X = batch(5)
    net.step(batch(16, seed=9), np.arange(16) % 5)
    before = net.forward(X)
    Optimizer(net, "sgd", learning_rate=0.5).apply()
    after = net.forward(X)
    assert not np.allclose(after, before)
    np.testing.assert_allclose(after, reference(net, X), rtol=1e-4, atol=1e-5)


@needs_numba
def test_a_version_bump_alone_repacks_nothing_wrong(packed_from_two_rows):
    net = mlp()
    X = batch(5)
    first = net.forward(X)
    net.store.touch()
    assert net.forward(X).tobytes() == first.tobytes()


@needs_numba
@pytest.mark.parametrize("general_path", [False, True])
def test_a_view_kept_and_written_after_inference_is_seen(packed_from_two_rows, general_path):
    """A parameter view a user keeps (as the homework's gradient check does) may be written at
    any time: inference must not run on a packed copy of the old values."""
    net = mlp()
    X = batch(5)
    W = net.params["affine1.W"]
    before = net.forward(X if not general_path else X.astype(np.float64))  # float64: the checked path
    net.forward(X)
    W *= -1.5  # no call into graphnet between the pack and this write
    after = net.forward(X if not general_path else X.astype(np.float64))
    assert not np.allclose(after, before)
    np.testing.assert_allclose(after, reference(net, X), rtol=1e-4, atol=1e-5)
    del W  # no live view: the packed copy is reused as is
    version = int(net.store.version[0])
    net.forward(X)
    net.forward(X)
    assert int(net.store.version[0]) == version


@needs_numba
@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("threads, live", [(2, 1), (1, 1), (2, 2)])
def test_neither_the_thread_count_nor_the_governors_passing_count_changes_the_kernels(
        packed_from_two_rows, parallel, threads, live):
    """Inference on 1 or 2 threads, or with a governor that lowers the count for a while, must not
    switch to other kernels (other rounding): the serial packed kernel runs on any count, and the
    2-thread split's rows run the packed kernel on one thread (the split computes the same bits)."""
    calls: list[tuple[str, int]] = []
    with gn.config_context(packed_parallel=parallel, packed_parallel_work=0, helper_lag_work=0):
        net = mlp(threads=threads, live_threads=live, kernels=spying_backend("numba", calls))
    X = batch(5)
    np.testing.assert_allclose(net.forward(X), reference(net, X), rtol=1e-4, atol=1e-5)
    names = [name for name, _ in calls if name.startswith("affine_packed")]
    if parallel and threads == live == 2:
        assert names == ["affine_packed_forward_columns"] * 6
    else:
        assert names == ["affine_packed_forward"] * 3
