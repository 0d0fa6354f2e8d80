"""graphnet.ops.conv: a conv layer's GEMMs run on the target's GEMM kernels, cut over graphnet's threads."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import graphnet as gn
import graphnet.ops.batch_halves as batch_halves
import graphnet.runtime.gemm_split as gemm_split
from graphnet.kernels import get_backend
from graphnet.runtime.config import resolve_target
from graphnet.runtime.gemm_split import GemmSplit


def test_a_conv_layers_three_gemms_are_cut_over_the_threads(monkeypatch):
    """Forward (N*P, K) @ (K, F), the weight gradient (F, N*P) @ (N*P, K) and the input gradient
    (N*P, F) @ (F, K) of a conv layer that is not the first: each cut in two blocks while two
    threads run (a plain np.matmul would leave the second core idle: numpy's BLAS runs on one)."""
    cut: list[tuple[int, ...]] = []  # the shape of C of every GEMM cut, its blocks put together
    run_parts = gemm_split.run_parts

    def spy(kernel, parts):
        if not (len(parts[0]) == 3 and all(a.ndim == 2 for a in parts[0])):  # a batch cut in halves, not a GEMM
            run_parts(kernel, parts)
            return
        axis = 0 if parts[0][2].shape[1] == parts[1][2].shape[1] else 1
        c = parts[0][2].shape
        cut.append((c[0] + parts[1][2].shape[0], c[1]) if axis == 0 else (c[0], c[1] + parts[1][2].shape[1]))
        run_parts(kernel, parts)

    monkeypatch.setattr(gemm_split, "run_parts", spy)
    spec = gn.sequential([{"op": "conv2d", "filters": 16, "kernel": 3, "padding": "same"},
                          {"op": "conv2d", "filters": 32, "kernel": 3, "padding": "same"},
                          {"op": "global_avg_pool"}], input_shape=[8, 24, 24], classes=32)
    target = resolve_target(get_backend("numpy"), np.dtype("float32"))
    target = dataclasses.replace(target, threads=2, split=GemmSplit(parts=2, live=lambda: 2))
    net = gn.compile(spec, batch_size=32, seed=0, target=target)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((32, 8, 24, 24)).astype(np.float32), rng.integers(0, 32, 32)
    net.loss(X, y)
    rows, k = 32 * 24 * 24, 16 * 9
    assert {(rows, 32), (32, k), (rows, k)} <= set(cut)


def _conv_net(monkeypatch, live: int, split_elements: int | None = None, backend: str = "numba"):
    """A two-conv network in float64 whose batch of 32 the conv steps cut in two (or not, with
    a larger SPLIT_ELEMENTS), on a target whose threads run `live` parts at once."""
    if split_elements is not None:
        monkeypatch.setattr(batch_halves, "SPLIT_ELEMENTS", split_elements)
    spec = gn.sequential([{"op": "conv2d", "filters": 16, "kernel": 3, "padding": "same", "activation": "relu"},
                          {"op": "conv2d", "filters": 8, "kernel": 3, "stride": 2},
                          {"op": "global_avg_pool"}], input_shape=[3, 20, 20], classes=8)
    target = resolve_target(get_backend(backend), np.dtype("float64"))
    target = dataclasses.replace(target, threads=2, split=GemmSplit(parts=2, live=lambda: live))
    return gn.compile(spec, batch_size=32, seed=0, target=target)


def _loss_and_grads(net) -> tuple[float, dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((32, 3, 20, 20)), rng.integers(0, 8, 32)
    loss = net.loss(X, y)[0]
    return loss, {name: np.array(net.grads[name]) for name in net.params}


def test_a_conv_steps_gather_epilogues_and_scatter_run_on_the_two_halves_of_the_batch(monkeypatch):
    halves: list[tuple[int, int]] = []  # the rows of the two parts of every batch cut
    run_parts = gemm_split.run_parts

    def spy(kernel, parts):
        if parts[0][0].ndim >= 3:  # a batch cut (a GEMM's parts are 2-D)
            halves.append((len(parts[0][0]), len(parts[1][0])))
        run_parts(kernel, parts)

    monkeypatch.setattr(gemm_split, "run_parts", spy)
    _loss_and_grads(_conv_net(monkeypatch, live=2))
    # forward: im2col and the epilogue of each conv; backward: both epilogues and the second's col2im
    assert halves == [(16, 16)] * 7


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_a_cut_batch_gives_the_same_bits_on_one_thread_and_two_and_the_uncut_result(monkeypatch, backend):
    one_loss, one = _loss_and_grads(_conv_net(monkeypatch, live=1, backend=backend))
    two_loss, two = _loss_and_grads(_conv_net(monkeypatch, live=2, backend=backend))
    assert one_loss == two_loss and all(np.array_equal(one[name], two[name]) for name in one)
    whole_loss, whole = _loss_and_grads(_conv_net(monkeypatch, live=2, split_elements=1 << 40, backend=backend))
    assert whole_loss == pytest.approx(two_loss, rel=1e-12)
    for name in whole:  # only the bias gradients are summed in another order
        np.testing.assert_allclose(two[name], whole[name], rtol=1e-10, atol=1e-13)
