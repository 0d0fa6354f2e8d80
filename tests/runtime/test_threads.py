"""graphnet.runtime.threads: graphnet's thread count, set by gn.set_threads, $GRAPHNET_THREADS,
`graphnet --threads`, or chosen from the load average; numpy's BLAS on one thread."""
from __future__ import annotations


import numpy as np
import pytest
from threadpoolctl import threadpool_info

import graphnet as gn
from graphnet.errors import GraphnetError
from graphnet.runtime import contention, threads
from graphnet.runtime.blas import blas_info
from tests._support.reference import random_batch
from tests._support.thread_state import no_thread_choice
from tests._support.zoo import ZOO, zoo_network


@pytest.fixture
def fresh_threads(monkeypatch):
    """No choice made yet in this process; BLAS limits (and graphnet's record of them) restored afterwards."""
    with no_thread_choice(monkeypatch):
        yield


def numpys_blas_threads() -> int:
    """What threadpoolctl itself reports for numpy's BLAS library."""
    return next(e["num_threads"] for e in threadpool_info() if e["filepath"] == blas_info().library)


@pytest.mark.parametrize("count", [1, 2, 3])
def test_set_threads_sets_graphnets_count_and_numpys_blas_to_one_thread(fresh_threads, count):
    assert gn.set_threads(count) == count
    assert gn.get_threads() == threads.planned_threads() == threads.threads_now() == count
    assert numpys_blas_threads() == 1  # graphnet cuts the GEMMs over its own threads
    A = np.ones((64, 64), np.float32)
    np.testing.assert_array_equal(A @ A, np.full((64, 64), 64, np.float32))


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True, "automatic"])
def test_set_threads_refuses_what_is_not_a_count(fresh_threads, bad):
    with pytest.raises(ValueError, match="thread count must be an integer >= 1 or 'auto'"):
        gn.set_threads(bad)


def test_an_explicit_count_stops_the_governor_and_auto_starts_it_again(fresh_threads):
    threads.apply_default_threads_once()
    started = contention.governor_status()
    gn.set_threads(1)
    assert contention.governor_status() is None or not contention.governor_status().active
    gn.set_threads("auto")
    status = contention.governor_status()
    if started is None:  # one core, a BLAS of one thread, or no /proc: no governor to start
        assert status is None
    else:
        assert status.active and status.ceiling == started.ceiling and status.threads == gn.get_threads()


@pytest.mark.parametrize("text, expected", [("", None), ("auto", None), (" 3 ", 3), ("1", 1)])
def test_env_values(text, expected):
    assert threads.threads_from_env({threads.ENV_VAR: text}) == expected


@pytest.mark.parametrize("text", ["0", "two", "-2", "1.5"])
def test_a_malformed_env_value_is_a_located_error(text):
    with pytest.raises(GraphnetError, match=rf"\$GRAPHNET_THREADS must be an integer >= 1 or 'auto', got '{text}'"):
        threads.threads_from_env({threads.ENV_VAR: text})


def test_the_first_compile_applies_the_env_count(fresh_threads, monkeypatch):
    monkeypatch.setenv(threads.ENV_VAR, "3")
    net = gn.compile(gn.sequential([{"op": "affine", "units": 2}], input_shape=[3], classes=2), backend="numpy")
    assert numpys_blas_threads() == 1 and gn.get_threads() == net.target.threads == 3


def test_an_explicit_choice_wins_over_the_default(fresh_threads, monkeypatch):
    monkeypatch.setattr(threads, "_load_average", lambda: 50.0)  # a very busy machine
    gn.set_threads(2)
    assert threads.apply_default_threads_once() == 2
    assert threads.threads_now() == 2 and numpys_blas_threads() == 1


@pytest.mark.parametrize("load, chosen", [(0.1, None), (1.2, None), (1.3, 1), (9.0, 1)])
def test_the_default_leaves_a_quiet_machine_alone_and_backs_off_on_a_busy_one(fresh_threads, monkeypatch,
                                                                           load, chosen):
    monkeypatch.setattr(threads, "_load_average", lambda: load)
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setattr(threads, "planned_threads", lambda: 2)
    assert threads.apply_default_threads_once() == chosen
    assert threads.threads_now() == (2 if chosen is None else chosen)
    assert numpys_blas_threads() == 1


@pytest.mark.parametrize("cores, load, expected", [(2, 0.0, 2), (2, 1.2, 2), (2, 1.3, 1), (2, 4.0, 1),
                                                   (8, 0.5, 8), (8, 3.5, 5), (8, 30.0, 1), (1, 0.0, 1)])
def test_auto_threads(cores, load, expected):
    assert threads.auto_threads(cores, load) == expected


def test_planned_threads_is_the_explicit_count_else_the_blas_default(fresh_threads):
    threads.apply_default_threads_once()
    default = threads.STATE.blas_default
    assert threads.planned_threads() == default
    threads._set_live(1)  # what the governor does on a busy machine
    assert threads.planned_threads() == default and threads.threads_now() == 1 == numpys_blas_threads()
    gn.set_threads(1)
    assert threads.planned_threads() == 1
    gn.set_threads("auto")
    assert threads.planned_threads() == default


@pytest.mark.parametrize("environ, expected", [
    ({}, 1),  # one BLAS thread per rank
    ({"GRAPHNET_THREADS": "2"}, 2),  # the user's choice
    ({"OPENBLAS_NUM_THREADS": "2"}, "blas"),  # the user sized the BLAS pool: the count it took stays
])
def test_an_mpi_rank_sets_its_threads_once_and_graphnet_knows_it(fresh_threads, environ, expected):
    """One call from the rank setup sets the count as set_threads does: plans are built for it,
    the governor does not move it, and the first compile's default does not replace it."""
    threads._blas_controllers()
    want = threads.STATE.blas_default if expected == "blas" else expected
    assert threads.set_rank_threads(environ) == want
    assert want == threads.planned_threads() == threads.threads_now() and numpys_blas_threads() == 1
    assert contention.governor_status() is None or not contention.governor_status().active
    assert threads.apply_default_threads_once() == want
    net = gn.compile(gn.sequential([{"op": "affine", "units": 2}], input_shape=[3], classes=2), backend="numpy")
    assert net.target.threads == want


def test_an_mpi_rank_keeps_a_count_chosen_on_the_command_line(fresh_threads):
    gn.set_threads(2)  # graphnet --threads 2 train ... --workers 2 passes --threads to every rank
    assert threads.set_rank_threads({}) == 2 == threads.planned_threads() and numpys_blas_threads() == 1


def test_an_mpi_rank_refuses_a_malformed_thread_count(fresh_threads):
    with pytest.raises(GraphnetError, match=r"\$GRAPHNET_THREADS must be an integer >= 1 or 'auto', got 'x'"):
        threads.set_rank_threads({"GRAPHNET_THREADS": "x"})


def test_the_test_session_runs_on_a_fixed_count(pinned_blas_threads):
    """tests/conftest.py pins the count for the session: no governor moves it, whatever the load."""
    assert gn.get_threads() == threads.planned_threads() == threads.threads_now() == pinned_blas_threads
    assert numpys_blas_threads() == 1
    assert contention.governor_status() is None or not contention.governor_status().active


@pytest.mark.parametrize("rule", ["sgd", "adam"])
@pytest.mark.parametrize("path", ZOO, ids=lambda path: path.stem)
def test_every_zoo_network_trains_to_the_same_bits_on_one_thread_and_on_two(fresh_threads, path, rule):
    """Every GEMM of a training step (affine and conv; SGD's update inside backward), a full and a
    partial batch: the same bits whether graphnet runs one thread or two."""
    spec = gn.load(path)
    batch = spec.train.batch_size if isinstance(spec, gn.RunSpec) else 128
    network = zoo_network(path)
    inputs, labels = random_batch(network, batch, seed=0, dtype=np.float32)

    def train(count: int) -> bytes:
        gn.set_threads(count)
        net = gn.compile(network, batch_size=batch, seed=0)
        assert net.target.threads == count
        optimizer = gn.Optimizer(net, rule, learning_rate=1e-3)
        for n in (batch, batch * 2 // 3):
            optimizer.step({k: v[:n] for k, v in inputs.items()}, {k: v[:n] for k, v in labels.items()})
        return net.store.values.tobytes() + net.store.state.tobytes()

    assert train(2) == train(1)
