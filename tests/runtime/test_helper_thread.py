"""graphnet.runtime.helper_thread: a kernel call split between the caller and a helper thread, the
caller taking the second half back when the helper is late; and the packed affine step
that uses it (graphnet.ops.affine)."""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from graphnet.kernels import get_backend

from graphnet.runtime.helper_thread import THREAD_NAME, HelperThread, helper_thread

from tests._support.extras import needs_numba


def packed_case(n: int, d: int, h: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    WT = (rng.standard_normal((h, d)) / np.sqrt(d)).astype(np.float32)
    return X, WT, rng.standard_normal(h).astype(np.float32)


def split_call(helper: HelperThread, X, WT, b, act, Y, mid):  # noqa: ANN001, ANN201
    columns = get_backend("numba").affine_packed_forward_columns
    h = WT.shape[0]
    helper.run(columns, (X, WT, b, act, 0.1, Y, 0, mid), (X, WT, b, act, 0.1, Y, mid, h))


@needs_numba
@pytest.mark.parametrize("n, d, h, mid", [(32, 784, 512, 256), (5, 13, 37, 20), (256, 64, 10, 8), (3, 9, 8, 4)])
def test_split_kernel_computes_what_the_serial_kernel_does(n, d, h, mid):
    X, WT, b = packed_case(n, d, h)
    for act in range(5):
        serial, split = np.full((n, h), np.nan, np.float32), np.full((n, h), np.nan, np.float32)
        get_backend("numba").affine_packed_forward(X, WT, b, act, 0.1, serial)
        for _ in range(3):  # the helper or the caller may run the second half: same result
            split_call(helper_thread(), X, WT, b, act, split, mid)
            assert split.tobytes() == serial.tobytes()  # the same kernel, the same sums


@needs_numba
def test_the_columns_kernel_leaves_the_other_columns_alone():
    X, WT, b = packed_case(4, 6, 12)
    Y = np.full((4, 12), 7.0, np.float32)
    get_backend("numba").affine_packed_forward_columns(X, WT, b, 0, 0.0, Y, 4, 8)
    np.testing.assert_allclose(Y[:, 4:8], X @ WT[4:8].T + b[4:8], rtol=1e-5, atol=1e-6)
    assert (Y[:, :4] == 7.0).all() and (Y[:, 8:] == 7.0).all()
    with pytest.raises(ValueError, match="lo a multiple of 4"):
        get_backend("numba").affine_packed_forward_columns(X, WT, b, 0, 0.0, Y, 2, 8)


@needs_numba
def test_a_late_helper_leaves_both_halves_to_the_caller():
    helper = HelperThread()
    woken, may_claim = threading.Event(), threading.Event()

    def late() -> None:  # the helper woke but does not get to claim before the caller is done
        woken.set()
        may_claim.wait(10)

    helper.before_claim = late
    X, WT, b = packed_case(16, 40, 24)
    serial, split = np.empty((16, 24), np.float32), np.full((16, 24), np.nan, np.float32)
    get_backend("numba").affine_packed_forward(X, WT, b, 1, 0.0, serial)
    split_call(helper, X, WT, b, 1, split, 12)
    assert (helper.caller_runs, helper.helper_runs) == (1, 0)
    assert split.tobytes() == serial.tobytes()
    assert woken.wait(10)
    helper.before_claim = None
    may_claim.set()  # its claim now fails: the task was taken back
    split[:] = np.nan
    split_call(helper, X, WT, b, 1, split, 12)  # and the helper still serves the next calls
    assert split.tobytes() == serial.tobytes()
    assert helper.caller_runs + helper.helper_runs == 2


def test_the_caller_waits_for_a_half_the_helper_claimed():
    helper, claimed, order = HelperThread(), threading.Event(), []

    def work(part: str) -> None:
        if part == "first":
            assert claimed.wait(10)  # the helper has its half before the caller is done
        else:
            claimed.set()
            threading.Event().wait(0.05)
        order.append(part)

    helper.run(work, ("first",), ("second",))
    assert sorted(order) == ["first", "second"] and (helper.caller_runs, helper.helper_runs) == (0, 1)


def test_an_error_in_the_helper_reaches_the_caller():
    helper, claimed = HelperThread(), threading.Event()

    def work(part: str) -> None:
        if part == "first":
            assert claimed.wait(10)
        else:
            claimed.set()
            raise ValueError("bad half")

    with pytest.raises(ValueError, match="bad half"):
        helper.run(work, ("first",), ("second",))
    done = []
    helper.run(lambda part: done.append(part), ("a",), ("b",))  # still usable
    assert sorted(done) == ["a", "b"]


def test_the_helper_is_a_daemon_started_on_first_use():
    helper = HelperThread()
    assert helper.thread is None
    helper.run(lambda part: None, ("a",), ("b",))
    assert helper.thread.daemon and helper.thread.name == THREAD_NAME and helper.thread.is_alive()


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs Linux and 2 CPUs")
def test_the_helper_is_kept_off_the_callers_cpu():
    """A caller held on one CPU (os.sched_setaffinity(0) sets the calling thread's): the helper
    runs on every other CPU of the process, and follows the caller to another CPU."""
    cpus = os.sched_getaffinity(0)
    helper = HelperThread()
    helper.run(lambda part: None, ("a",), ("b",))
    try:
        for cpu in sorted(cpus)[:2]:
            os.sched_setaffinity(0, {cpu})
            helper.run(lambda part: None, ("a",), ("b",))
            assert os.sched_getaffinity(helper.thread.native_id) == cpus - {cpu}
    finally:
        os.sched_setaffinity(0, cpus)
