"""graphnet.runtime.helper_thread in processes of its own: thread counts, exec and fork."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests._support.extras import needs_numba


# ---- in a process of its own: thread counts, exec and fork -----------------------------------

FORWARD = textwrap.dedent("""
    import os, sys, threading
    import numpy as np
    import graphnet as gn
    from graphnet.runtime.helper_thread import THREAD_NAME, helper_started, helper_thread

    gn.set_config(packed_parallel=True, packed_parallel_work=0, helper_lag_work=0)
    spec = gn.sequential([{"op": "affine", "units": 64, "activation": "relu"}, {"op": "affine", "units": 8}],
                         input_shape=[48], classes=8, name="mlp")
    net = gn.compile(spec, batch_size=32, dtype="float32", backend="numba", seed=1)
    X = np.random.default_rng(0).standard_normal((32, 48)).astype(np.float32)

    def expected():
        h = np.maximum(X @ net.params["affine1.W"] + net.params["affine1.b"], 0)
        return h @ net.params["affine2.W"] + net.params["affine2.b"]

    def forward_ok():
        return np.allclose(net.forward(X), expected(), rtol=1e-4, atol=1e-5)

    ok = forward_ok()
    print("threads", gn.get_threads(), "helper", helper_started(),
          "named", any(t.name == THREAD_NAME for t in threading.enumerate()), "ok", ok)
    if sys.argv[1:] == ["fork"]:
        pid = os.fork()
        if pid == 0:
            alive = forward_ok() and forward_ok() and helper_thread().thread.is_alive()
            os._exit(0 if alive else 3)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status), "parent ok", forward_ok())
""")


def run_forward(threads: str, *args: str) -> str:
    env = {**os.environ, "GRAPHNET_THREADS": threads}
    result = subprocess.run([sys.executable, "-c", FORWARD, *args], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
@needs_numba
def test_one_blas_thread_starts_no_helper_thread():
    assert run_forward("1").split() == ["threads", "1", "helper", "False", "named", "False", "ok", "True"]
    assert run_forward("2").split() == ["threads", "2", "helper", "True", "named", "True", "ok", "True"]


@needs_numba
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_gets_a_helper_of_its_own():
    lines = run_forward("2", "fork").splitlines()
    assert lines[0].endswith("helper True named True ok True")
    assert lines[1] == "child 0 parent ok True"
