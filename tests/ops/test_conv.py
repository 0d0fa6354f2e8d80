"""graphnet.ops.conv: a conv layer's GEMMs run on the target's GEMM kernels, cut over graphnet's threads."""
from __future__ import annotations

import dataclasses

import numpy as np

import graphnet as gn
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
