"""The number of threads graphnet's BLAS GEMMs run on.

The numba kernels are serial; the GEMMs run in numpy's BLAS, whose thread
pool defaults to one thread per core. On a machine where other processes
keep cores busy, fewer BLAS threads than cores can be much faster (a BLAS
thread that waits for a core the others are spinning on stalls every GEMM):

    gn.set_threads(1)          # or GRAPHNET_THREADS=1 (read by the first gn.compile),
                               # or `graphnet --threads 1 COMMAND ...`
    gn.get_threads()           # -> 1, as threadpoolctl reports numpy's BLAS pool

The default (GRAPHNET_THREADS unset or "auto"), applied by the first
`gn.compile` of a process: one BLAS thread per core that the 1-minute load
average leaves free, at least one; on a quiet machine the BLAS's own default
is left alone.

The setting goes through threadpoolctl, which finds the BLAS libraries loaded
in this process (OpenBLAS, MKL, BLIS) on every platform; it applies to the
whole process, as torch.set_num_threads does.
"""
from __future__ import annotations

import logging
import math
import os
from typing import Mapping

import numpy as np

from .errors import GraphnetError

ENV_VAR = "GRAPHNET_THREADS"
log = logging.getLogger("graphnet")

_limits: list[object] = []  # the threadpool_limits objects in force (kept so they are not collected)
_applied: list[int | None] = []  # the count set in this process ([None]: the BLAS default kept)


def set_threads(count: int) -> int:
    """Run numpy's BLAS (every BLAS library loaded) on `count` threads; returns the count
    threadpoolctl then reports for numpy's BLAS. ValueError for count < 1."""
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"the thread count must be an integer >= 1, got {count!r}")
    from threadpoolctl import threadpool_limits

    np.matmul(np.ones((2, 2)), np.ones((2, 2)))  # make sure numpy has loaded its BLAS
    _limits[:] = [threadpool_limits(limits=int(count), user_api="blas")]
    _applied[:] = [int(count)]  # an explicit choice: the default is not applied after it
    return get_threads()


def get_threads() -> int:
    """The thread count of numpy's BLAS as threadpoolctl reports it (0 when it finds no BLAS)."""
    from .blas import blas_info

    return blas_info().num_threads


def threads_from_env(environ: Mapping[str, str] | None = None) -> int | None:
    """$GRAPHNET_THREADS as a count; None when unset, empty or "auto". GraphnetError naming
    the variable when it is anything else than an integer >= 1."""
    text = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
    if text in ("", "auto"):
        return None
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise GraphnetError(f"${ENV_VAR} must be an integer >= 1 or 'auto', got '{text}'")
    return count


def available_cores() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def auto_threads(cores: int, load: float) -> int:
    """BLAS threads for `cores` CPUs with a 1-minute load average of `load`: one per
    core that other work leaves free (at least one). A BLAS thread that has to share
    its core stalls every GEMM it takes part in (bench/busy.py measured 2-thread
    OpenBLAS 20-50x slower with one of two cores busy, 1 thread not slower at all)."""
    busy = max(0, math.floor(load - 0.25))
    return max(1, min(cores, cores - busy))


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # not available on this platform
        return None


def apply_default_threads_once() -> int | None:
    """The first time it is called in a process (`gn.compile` calls it): $GRAPHNET_THREADS
    when it is a count, else (unset or "auto") fewer BLAS threads than cores when the load
    average says other processes keep cores busy, else nothing. Returns the count set, or
    None; GraphnetError when the variable is malformed."""
    if _applied:
        return _applied[0]
    count = threads_from_env()
    if count is None:
        load = _load_average()
        cores = available_cores()
        auto = cores if load is None else auto_threads(cores, load)
        count = auto if auto < cores else None
        if count is not None:
            log.info("graphnet: load average %.2f on %d cores: BLAS on %d thread(s) "
                     "(set %s to choose)", load, cores, count, ENV_VAR)
    if count is None:
        _applied.append(None)
    else:
        set_threads(count)
    return count
