"""The number of threads graphnet's BLAS GEMMs run on.

The numba kernels are serial (but the opt-in 2-thread split of the packed
inference kernel, graphnet.helper_thread, which runs only while the BLAS has 2
threads or more); the GEMMs run in numpy's BLAS, whose thread pool defaults to
one thread per core. On a machine where other processes
keep cores busy, fewer BLAS threads than cores can be much faster (a BLAS
thread that waits for a core the others are spinning on stalls every GEMM):

    gn.set_threads(1)          # or GRAPHNET_THREADS=1 (read by the first gn.compile),
                               # or `graphnet --threads 1 COMMAND ...`
    gn.get_threads()           # -> 1, as threadpoolctl reports numpy's BLAS pool

The default (GRAPHNET_THREADS unset or "auto", or `gn.set_threads("auto")`) adapts:
the first `gn.compile` of a process starts with one BLAS thread per core that
the 1-minute load average leaves free (on a quiet machine, the BLAS's own
default), and from then on the governor of graphnet.contention follows the
other processes' CPU use as plans run, down to one thread while they keep
cores busy and back up when they stop. A count chosen explicitly stays put.

A fixed count is also what makes training repeat bit for bit across processes:
OpenBLAS may round a GEMM differently on 1 and 2 threads (measured here for a
784-long inner dimension), so a run the governor moved between counts follows
the same trajectory only to rounding.

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

_applied: list[int | None] = []  # the count set in this process ([None]: the BLAS default kept)
_blas_default: list[int] = []  # numpy's BLAS thread count before graphnet changed it
_controllers: list[list] = []  # threadpoolctl's controllers of the loaded BLAS libraries, found once
_current: list[int] = []  # the BLAS thread count graphnet found or last set (read by blas_threads_now)
_explicit: list[int] = []  # the count set_threads(n) chose (empty: the adaptive default)


def set_threads(count: int | str) -> int:
    """Run numpy's BLAS (every BLAS library loaded) on `count` threads, or "auto": the
    adaptive default (see above); returns the count threadpoolctl then reports for numpy's
    BLAS. ValueError for anything else than an integer >= 1 or "auto"."""
    if count == "auto":
        _applied[:] = [None]
        _explicit.clear()
        if _blas_controllers():
            _limit_blas(_blas_default[0])  # all threads again; the governor takes away what others use
        _start_governor()
        return get_threads()
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"the thread count must be an integer >= 1 or 'auto', got {count!r}")
    from . import contention

    contention.stop()  # an explicit choice: the governor does not change it
    _limit_blas(int(count))
    _applied[:] = [int(count)]  # the default is not applied after it
    _explicit[:] = [int(count)]
    return get_threads()


def _blas_controllers() -> list:
    if not _controllers:
        from threadpoolctl import ThreadpoolController

        np.matmul(np.ones((2, 2)), np.ones((2, 2)))  # make sure numpy has loaded its BLAS
        libraries = ThreadpoolController().select(user_api="blas").lib_controllers
        _blas_default.append(_library_threads(libraries))
        _controllers.append(libraries)
        _current[:] = [_blas_default[0]]
    return _controllers[0]


def _library_threads(libraries: list) -> int:
    """The thread count the BLAS libraries report now (1 without a BLAS)."""
    return max([library.get_num_threads() or 1 for library in libraries], default=1)


def _limit_blas(count: int) -> None:
    for library in _blas_controllers():
        library.set_num_threads(count)
    _current[:] = [count]


def _start_governor() -> None:
    """Let the contention governor set the BLAS threads, up to the BLAS's own default count."""
    from . import contention

    if not _blas_controllers():
        return
    ceiling = _blas_default[0]
    current = blas_threads_now()  # graphnet's record of the count (asking threadpoolctl costs ~2 ms)
    if contention.start(ceiling, min(current, ceiling), _limit_blas) is None and current != ceiling:
        _limit_blas(ceiling)


def get_threads() -> int:
    """The thread count of numpy's BLAS as threadpoolctl reports it (0 when it finds no BLAS)."""
    from .blas import blas_info

    return blas_info().num_threads


def planned_threads() -> int:
    """The BLAS threads this process is set up for, whatever the governor does for now: the
    count chosen explicitly (set_threads, $GRAPHNET_THREADS, --threads), else the BLAS's own
    default. Plans pick load-independent kernels by it, so that a network computes the same
    bits however busy the machine was when the plan was built."""
    if _explicit:
        return _explicit[0]
    if not _blas_default:
        _blas_controllers()
    return _blas_default[0] if _blas_default else 1


def blas_threads_now() -> int:
    """The BLAS thread count as graphnet last set it (set_threads, the default, the contention
    governor) or found it, without asking the library: cheap enough for every kernel call.
    A count set behind graphnet's back (threadpoolctl directly) is not seen."""
    if not _current:
        _current[:] = [_library_threads(_blas_controllers())]
    return _current[0]


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
    when it is a count (kept from then on); else (unset or "auto") fewer BLAS threads than
    cores when the load average says other processes keep cores busy, and the contention
    governor from then on. Returns the count set, or None (the BLAS default kept for now);
    GraphnetError when the variable is malformed."""
    if _applied:
        return _applied[0]
    count = threads_from_env()
    if count is not None:
        set_threads(count)
        return count
    load = _load_average()
    cores = available_cores()
    auto = cores if load is None else auto_threads(cores, load)
    if auto < cores and _blas_controllers():
        log.info("graphnet: load average %.2f on %d cores: BLAS on %d thread(s) "
                 "(set %s to choose)", load, cores, auto, ENV_VAR)
        _limit_blas(auto)
        _applied.append(auto)
    else:
        _applied.append(None)
    _start_governor()
    return _applied[0]
