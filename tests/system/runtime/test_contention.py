"""graphnet.runtime.contention against a real busy process."""
from __future__ import annotations

import dataclasses
import os
import time

import numpy as np
import pytest

import graphnet as gn
from graphnet.runtime import contention, threads
from tests._support.processes import spinning_process


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="no /proc on this platform")
def test_a_busy_process_takes_a_thread_away(monkeypatch):
    """A real process spinning on one core: the governor, ticked by real forward passes, leaves
    that core to it. Asserts the decision, never a time."""
    monkeypatch.setattr(contention, "_governor", [])
    monkeypatch.setattr(threads, "STATE", dataclasses.replace(threads.STATE, explicit=None, settled=False,
                                                              settled_count=None))
    monkeypatch.delenv(threads.ENV_VAR, raising=False)
    cores = len(os.sched_getaffinity(0))
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=None):  # restores the BLAS threads on exit
        gn.set_threads("auto")
        status = contention.governor_status()
        if status is None or status.ceiling != cores:
            pytest.skip(f"no governor with one thread per core here ({cores} cores, status {status})")
        net = gn.compile(gn.sequential([{"op": "affine", "units": 256, "activation": "relu"},
                                        {"op": "affine", "units": 10}], input_shape=[784], classes=10),
                         batch_size=64)
        X = np.random.default_rng(0).standard_normal((64, 784)).astype(np.float32)
        with spinning_process(30):
            start = time.perf_counter()
            while time.perf_counter() < start + 1.0 or (contention.governor_status().threads >= cores
                                                        and time.perf_counter() < start + 20):
                net.forward(X)
                time.sleep(0.002)  # leave the spinner its core: we run about one of them
            status = contention.governor_status()
        assert status.others is not None and status.others >= 0.5
        assert status.threads <= cores - 1
