"""graphnet.runtime.gemm_split: a plan's GEMMs cut into blocks of rows or columns over graphnet's
threads give the bits of the uncut one-thread call, on any number of threads and under any load."""
from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import graphnet as gn
from graphnet.benchmarks.step import SIZES
from graphnet.runtime.blas import find_gemm
from graphnet.runtime.gemm_split import ALIGN, GemmSplit
from tests._support.allocations import counting_numpy_allocations
from tests._support.zoo import ZOO, zoo_network


@pytest.fixture(autouse=True)
def one_blas_thread():
    """numpy's BLAS on one thread, as in a process that compiled a network."""
    with threadpool_limits(1, user_api="blas"):
        yield


def affine_shapes() -> list[tuple[int, int, int]]:
    """(batch, fan_in, units) of every affine layer of the model zoo and of the step benchmark's
    networks, at the batch sizes they train with, a partial last batch and one row."""
    shapes = set()
    for path in ZOO:
        spec = gn.load(path)
        batch = spec.train.batch_size if isinstance(spec, gn.RunSpec) else 64
        net = gn.compile(zoo_network(path), batch_size=batch, backend="numpy")
        for name, value in net.params.items():
            if name.endswith(".W") and value.ndim == 2:  # an affine layer's (conv weights are 4-D)
                shapes |= {(n, *value.shape) for n in (batch, 88, 1)}
    for dims, batch in SIZES.values():
        shapes |= {(n, a, b) for a, b in zip(dims[:-1], dims[1:]) for n in (batch, 88)}
    return sorted(shapes)


SHAPES = affine_shapes()
SPLITS = [GemmSplit(parts=2), GemmSplit(parts=3), GemmSplit(parts=2, lag_work=0), GemmSplit(parts=4, lag_work=0)]


def data(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed + sum(shape)).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("n, fan_in, units", SHAPES)
def test_every_gemm_of_a_training_step_cut_in_blocks_gives_the_bits_of_the_whole_call(n, fan_in, units):
    """Forward X @ W, the input gradient dY @ W.T and the weight gradient X.T @ dY of every
    affine layer of the zoo, cut in 2, 3 and 4 blocks, against one uncut one-thread call."""
    X, W, dY = data(n, fan_in), data(fan_in, units), data(n, units)
    for A, B in ((X, W), (dY, W.T), (X.T, dY)):
        whole = np.matmul(A, B)
        for split in SPLITS:
            cut = np.full_like(whole, np.nan)
            split.matmul()(A, B, cut)
            assert cut.tobytes() == whole.tobytes(), (A.shape, B.shape, split)


@pytest.mark.skipif(find_gemm(np.float32) is None, reason="no cblas GEMM")
@pytest.mark.parametrize("n, fan_in, units", SHAPES)
def test_the_sgd_update_gemm_cut_in_blocks_gives_the_bits_of_the_whole_call(n, fan_in, units):
    """W = W - rate * X.T @ dY, the update inside backward, cut by rows or columns of W."""
    X, dY, W = data(n, fan_in), data(n, units), data(fan_in, units, seed=1)
    gemm = find_gemm(np.float32)
    whole = W.copy()
    gemm.update_at_b(X, dY, whole, -0.01, 1.0)
    for split in SPLITS:
        cut = W.copy()
        split.at_b_update(gemm)(X, dY, cut, -0.01, 1.0)
        assert cut.tobytes() == whole.tobytes(), split


def test_blocks_are_aligned_cover_the_dimension_and_each_holds_the_part_work():
    split = GemmSplit(parts=2, part_work=1 << 21, lag_work=1 << 20)
    bounds = split.bounds(784, 784 * 128 * 512)  # a weight gradient: 784 rows
    assert bounds[0] == 0 and bounds[-1] == 784 and len(bounds) == 3
    assert all(edge % ALIGN == 0 for edge in bounds[:-1])
    assert bounds[1] > 784 - bounds[1]  # the caller's block is the larger: the helper starts later
    assert GemmSplit(parts=3, lag_work=0).bounds(512, 512 * 784 * 128) == [0, 176, 336, 512]
    assert GemmSplit(parts=1).bounds(512, 1 << 30) == [0, 512]  # one thread: never cut
    assert GemmSplit(parts=2, part_work=0).bounds(512, 1 << 30) == [0, 512]  # 0: never cut
    assert GemmSplit(parts=2).bounds(512, 1 << 21) == [0, 512]  # too little work for two blocks
    assert GemmSplit(parts=8, lag_work=0).bounds(40, 1 << 30) == [0, 16, 40]  # at most size // ALIGN blocks


def test_the_cut_goes_along_the_larger_dimension_of_c():
    matmul = GemmSplit(parts=2, lag_work=0).matmul()
    X, W = data(128, 784), data(784, 512)
    matmul(X, W, np.empty((128, 512), np.float32))
    assert [part[1].shape for part in matmul.parts] == [(784, 256), (784, 256)]  # columns: X packed twice
    matmul(X.T, data(128, 512), np.empty((784, 512), np.float32))
    assert [part[0].shape for part in matmul.parts] == [(384, 128), (400, 128)]  # rows: dY packed twice


@pytest.mark.parametrize("live", [1, 2])
def test_the_blocks_run_on_the_helper_threads_only_while_two_or_more_threads_run(monkeypatch, live):
    """On one thread (the governor's count on a busy machine) a cut GEMM is one whole call, not
    its blocks one after the other (each would pack the shared operand again): the same bits."""
    import graphnet.runtime.gemm_split as module

    offered, blocks = [], []
    monkeypatch.setattr(module, "run_parts", lambda kernel, parts: offered.append(len(parts)) or
                        [kernel(*part) for part in parts])
    monkeypatch.setattr(module, "_matmul_into", lambda A, B, C: blocks.append(C.shape) or np.matmul(A, B, out=C))
    matmul = GemmSplit(parts=2, live=lambda: live).matmul()
    X, W = data(128, 784), data(784, 512)
    Y = np.empty((128, 512), np.float32)
    matmul(X, W, Y)
    assert offered == ([2] if live > 1 else [])
    assert len(blocks) == (2 if live > 1 else 0)
    assert Y.tobytes() == np.matmul(X, W).tobytes()


@pytest.mark.skipif(find_gemm(np.float32) is None, reason="no cblas GEMM")
@pytest.mark.parametrize("live", [1, 2])
def test_the_cut_sgd_update_is_one_call_on_one_thread(live):
    X, dY, W = data(128, 784), data(128, 512), data(784, 512, seed=1)
    gemm = find_gemm(np.float32)
    whole = W.copy()
    gemm.update_at_b(X, dY, whole, -0.01, 1.0)
    update = GemmSplit(parts=2, live=lambda: live).at_b_update(gemm)
    calls = []
    one_call = update.whole
    update.whole = lambda *args: calls.append(args[2].shape) or one_call(*args)
    update(X, dY, W, -0.01, 1.0)
    assert calls == ([] if live > 1 else [(784, 512)]) and len(update.parts) == 2
    assert W.tobytes() == whole.tobytes()


def test_a_small_gemm_is_one_call():
    matmul = GemmSplit(parts=2).matmul()
    X, W = data(128, 256), data(256, 10)
    Y = np.empty((128, 10), np.float32)
    matmul(X, W, Y)
    assert matmul.parts is None and Y.tobytes() == np.matmul(X, W).tobytes()


@pytest.mark.skipif(find_gemm(np.float32) is None, reason="no cblas GEMM")
def test_a_steady_cut_gemm_allocates_nothing():
    split = GemmSplit(parts=2, live=lambda: 2)
    matmul, update = split.matmul(), split.at_b_update(find_gemm(np.float32))
    X, W, dY = data(128, 784), data(784, 512), data(128, 512)
    Y = np.empty((128, 512), np.float32)
    matmul(X, W, Y)
    update(X, dY, W, -0.01, 1.0)
    with counting_numpy_allocations() as sizes:
        for _ in range(3):
            matmul(X, W, Y)
            matmul(X.T, dY, W)
            update(X, dY, W, -0.01, 1.0)
    assert sizes == []


def test_an_error_in_a_block_reaches_the_caller():
    matmul = GemmSplit(parts=2, live=lambda: 2).matmul()
    with pytest.raises(ValueError):
        matmul(data(128, 784), data(784, 512), np.empty((128, 500), np.float32))
