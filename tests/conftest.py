"""Session settings for the whole suite. The helpers live in the package tests._support
(`from tests._support.zoo import ...`), importable because pyproject's pytest settings put
the checkout's root on sys.path (`pythonpath`)."""
from __future__ import annotations

import os

import pytest
from hypothesis import settings
from threadpoolctl import threadpool_limits

import graphnet as gn

# Local runs draw fresh examples each time (that is how the property tests keep finding
# bugs); CI sets HYPOTHESIS_PROFILE=ci so that a green commit stays green on a re-run.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# graphnet runs on this many threads in the test process (numpy's BLAS on one, as in any
# process that compiled a network), whatever the machine's load. The bits do not depend on
# it (graphnet.runtime.gemm_split; tests/runtime/test_threads.py checks 1 against 2); one
# thread is the fastest on a busy machine and starts no helper thread. Tests of the thread
# setting itself set what they need (tests/runtime/test_threads.py, test_contention.py) and
# restore this afterwards. Child processes choose their own.
SESSION_BLAS_THREADS = 1


@pytest.fixture(scope="session", autouse=True)
def pinned_blas_threads():
    """graphnet on SESSION_BLAS_THREADS threads for the session; numpy's BLAS pool size and
    graphnet's setting as they were before, afterwards."""
    from graphnet.runtime.threads import STATE

    before = STATE.explicit if STATE.settled and STATE.explicit is not None else "auto"
    with threadpool_limits(limits=None):  # numpy's BLAS pool as it was, on the way out
        gn.set_threads(SESSION_BLAS_THREADS)
        yield SESSION_BLAS_THREADS
        gn.set_threads(before)
