"""The number of threads graphnet's BLAS GEMMs run on.

The numba kernels are serial (but the opt-in 2-thread split of the packed
inference kernel, graphnet.runtime.helper_thread, which runs only while the BLAS has 2
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
default), and from then on the governor of graphnet.runtime.contention follows the
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
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..errors import GraphnetError

ENV_VAR = "GRAPHNET_THREADS"
# What a user sets to size the BLAS's own pool: an MPI rank keeps the count they give it.
BLAS_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
log = logging.getLogger("graphnet")


@dataclass
class ThreadState:
    """graphnet's record of numpy's BLAS thread pool in this process. `STATE` is the one
    record; the functions of this module own it (nothing else writes it)."""

    libraries: list | None = None  # threadpoolctl's controllers of the loaded BLAS libraries, found once
    blas_default: int = 1  # numpy's BLAS thread count before graphnet changed it (once libraries is set)
    current: int | None = None  # the count graphnet found or last set (read by blas_threads_now)
    explicit: int | None = None  # the count set_threads(n) chose (None: the adaptive default)
    settled: bool = False  # the process's count was decided (first compile, set_threads, set_rank_threads)
    settled_count: int | None = None  # what it was decided to (None: the BLAS default kept, governor on)


STATE = ThreadState()


def set_threads(count: int | str) -> int:
    """Run numpy's BLAS (every BLAS library loaded) on `count` threads, or "auto": the
    adaptive default (see above); returns the count threadpoolctl then reports for numpy's
    BLAS. ValueError for anything else than an integer >= 1 or "auto"."""
    if count == "auto":
        STATE.settled, STATE.settled_count, STATE.explicit = True, None, None
        if _blas_controllers():
            _limit_blas(STATE.blas_default)  # all threads again; the governor takes away what others use
        _start_governor()
        return get_threads()
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"the thread count must be an integer >= 1 or 'auto', got {count!r}")
    from . import contention

    contention.stop()  # an explicit choice: the governor does not change it
    _limit_blas(int(count))
    STATE.settled, STATE.settled_count, STATE.explicit = True, int(count), int(count)  # no default after it
    return get_threads()


def set_rank_threads(environ: Mapping[str, str] | None = None) -> int:
    """An MPI rank's BLAS threads, chosen once by the rank setup (graphnet.training.parallel),
    before its network is compiled: the count set_threads chose already (`graphnet --threads`);
    else $GRAPHNET_THREADS when it is a count; else, when the user sized the BLAS pool
    ($OMP_NUM_THREADS, $OPENBLAS_NUM_THREADS, $MKL_NUM_THREADS), the count the BLAS took from
    it; else one (N ranks on N cores, not N x cores threads: a BLAS thread that shares its core
    stalls every GEMM, bench/busy.py). Set as set_threads(n) sets it, so plans and the
    (stopped) governor see it. Returns the count."""
    environ = os.environ if environ is None else environ
    count = STATE.explicit if STATE.explicit is not None else threads_from_env(environ)
    if count is None:
        chosen = any(environ.get(name, "").strip() for name in BLAS_ENV_VARS)
        count = _library_threads(_blas_controllers()) if chosen else 1
    set_threads(count)
    return count


def _blas_controllers() -> list:
    if STATE.libraries is None:
        from threadpoolctl import ThreadpoolController

        np.matmul(np.ones((2, 2)), np.ones((2, 2)))  # make sure numpy has loaded its BLAS
        libraries = ThreadpoolController().select(user_api="blas").lib_controllers
        STATE.blas_default = _library_threads(libraries)
        STATE.libraries = libraries
        STATE.current = STATE.blas_default
    return STATE.libraries


def _library_threads(libraries: list) -> int:
    """The thread count the BLAS libraries report now (1 without a BLAS)."""
    return max([library.get_num_threads() or 1 for library in libraries], default=1)


def _limit_blas(count: int) -> None:
    for library in _blas_controllers():
        library.set_num_threads(count)
    STATE.current = count


def _start_governor() -> None:
    """Let the contention governor set the BLAS threads, up to the BLAS's own default count."""
    from . import contention

    if not _blas_controllers():
        return
    ceiling = STATE.blas_default
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
    if STATE.explicit is not None:
        return STATE.explicit
    _blas_controllers()
    return STATE.blas_default


def blas_threads_now() -> int:
    """The BLAS thread count as graphnet last set it (set_threads, the default, the contention
    governor) or found it, without asking the library: cheap enough for every kernel call.
    A count set behind graphnet's back (threadpoolctl directly) is not seen."""
    current = STATE.current
    if current is None:
        current = STATE.current = _library_threads(_blas_controllers())
    return current


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
    if STATE.settled:
        return STATE.settled_count
    count = threads_from_env()
    if count is not None:
        set_threads(count)
        return count
    load = _load_average()
    cores = available_cores()
    auto = cores if load is None else auto_threads(cores, load)
    STATE.settled, STATE.settled_count = True, None
    if auto < cores and _blas_controllers():
        log.info("graphnet: load average %.2f on %d cores: BLAS on %d thread(s) "
                 "(set %s to choose)", load, cores, auto, ENV_VAR)
        _limit_blas(auto)
        STATE.settled_count = auto
    _start_governor()
    return STATE.settled_count
