"""graphnet.ops.batch_halves: image steps cut their batch in two by shape alone, and pooling's
halves give the whole batch's bits on one thread and two."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import graphnet as gn
import graphnet.runtime.gemm_split as gemm_split
from graphnet.kernels import get_backend
from graphnet.ops.batch_halves import SPLIT_ELEMENTS, batch_cut
from graphnet.runtime.config import resolve_target
from graphnet.runtime.gemm_split import GemmSplit


@pytest.mark.parametrize("n, per_example, cut", [
    (128, 784, 64), (33, SPLIT_ELEMENTS, 16), (1, 10 * SPLIT_ELEMENTS, 0), (0, 784, 0),
    (2, SPLIT_ELEMENTS // 2, 1), (2, SPLIT_ELEMENTS // 2 - 1, 0),
])
def test_a_batch_is_cut_in_the_middle_once_it_is_large_enough(n, per_example, cut):
    assert batch_cut(n, per_example) == cut


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("pool", ["max_pool2d", "avg_pool2d"])
def test_pooling_runs_on_the_halves_and_gives_the_same_bits_on_one_thread_and_two(monkeypatch, backend, pool):
    halves: list[tuple[int, int]] = []
    run_parts = gemm_split.run_parts

    def spy(kernel, parts):
        halves.append((len(parts[0][0]), len(parts[1][0])))
        run_parts(kernel, parts)

    monkeypatch.setattr(gemm_split, "run_parts", spy)
    spec = gn.sequential([{"op": "conv2d", "filters": 4, "kernel": 1},  # gives the pooling a backward step
                          {"op": pool, "kernel": 3, "stride": 2, "padding": 1}, {"op": "flatten"}],
                         input_shape=[4, 33, 33], classes=4 * 17 * 17)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((21, 4, 33, 33)), rng.integers(0, 4 * 17 * 17, 21)
    results = []
    for live in (1, 2):
        target = resolve_target(get_backend(backend), np.dtype("float64"))
        target = dataclasses.replace(target, threads=2, split=GemmSplit(parts=2, live=lambda live=live: live))
        net = gn.compile(spec, batch_size=21, seed=0, target=target)
        loss, grads = net.loss(X, y)
        results.append((loss, grads["conv2d1.W"], net.forward(X)))
    assert halves.count((10, 11)) >= 4 and set(halves) == {(10, 11)}  # pooling forward and backward among them
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])
    np.testing.assert_array_equal(results[0][2], results[1][2])
