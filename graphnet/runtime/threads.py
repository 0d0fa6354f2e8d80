"""The number of threads graphnet runs a plan's GEMMs on.

numpy's BLAS runs on one thread in a process that compiled a network: graphnet
cuts each large GEMM of a plan into blocks of rows or columns of its output,
each a one-thread BLAS call, and runs them on the calling thread and its helper
threads (graphnet.runtime.gemm_split, graphnet.runtime.helper_thread). The
numba kernels are serial (but the opt-in 2-thread split of the packed inference
kernel). The blocks are fixed by the plan's shapes and the thread count the
process is set up for, never by the load, so a seeded run gives the same bits
on a quiet machine and on a busy one; and a block of a one-thread GEMM gives the
bits of the whole call, so it gives them on 1 thread and on 2 as well:

    gn.set_threads(1)          # or GRAPHNET_THREADS=1 (read by the first gn.compile),
                               # or `graphnet --threads 1 COMMAND ...`
    gn.get_threads()           # -> 1

The default (GRAPHNET_THREADS unset or "auto", or `gn.set_threads("auto")`) is
one thread per core (or what OMP_NUM_THREADS / OPENBLAS_NUM_THREADS gave the
BLAS), and adapts how many run at a time: the first `gn.compile` of a process
starts with one per core that the 1-minute load average leaves free, and from
then on the governor of graphnet.runtime.contention follows the other
processes' CPU use as plans run, down to one thread (each GEMM one call, the
bits of its blocks) while they keep cores busy and back up when they stop. A thread that
waits for a core the others are spinning on stalls every GEMM. A count chosen
explicitly stays put.

The BLAS thread count goes through threadpoolctl, which finds the BLAS libraries
loaded in this process (OpenBLAS, MKL, BLIS) on every platform; it applies to
the whole process, as torch.set_num_threads does: numpy's own GEMMs in a process
that compiled a network run on one thread.
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
    """graphnet's record of its threads and of numpy's BLAS thread pool in this process. `STATE`
    is the one record; the functions of this module own it (nothing else writes it)."""

    libraries: list | None = None  # threadpoolctl's controllers of the loaded BLAS libraries, found once
    blas_default: int = 1  # numpy's BLAS thread count before graphnet changed it (once libraries is set)
    current: int | None = None  # the threads graphnet runs on now (set_threads, the default, the governor)
    explicit: int | None = None  # the count set_threads(n) chose (None: the adaptive default)
    settled: bool = False  # the process's count was decided (first compile, set_threads, set_rank_threads)
    settled_count: int | None = None  # what it was decided to (None: the default kept, governor on)


STATE = ThreadState()


def set_threads(count: int | str) -> int:
    """Run graphnet's GEMMs on `count` threads (numpy's BLAS on one, every BLAS library loaded),
    or "auto": the adaptive default (see above); returns get_threads(). ValueError for anything
    else than an integer >= 1 or "auto"."""
    if count == "auto":
        STATE.settled, STATE.settled_count, STATE.explicit = True, None, None
        _pin_blas()
        _set_live(planned_threads())  # all threads again; the governor takes away what others use
        _start_governor()
        return get_threads()
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"the thread count must be an integer >= 1 or 'auto', got {count!r}")
    from . import contention

    contention.stop()  # an explicit choice: the governor does not change it
    _pin_blas()
    _set_live(int(count))
    STATE.settled, STATE.settled_count, STATE.explicit = True, int(count), int(count)  # no default after it
    return get_threads()


def set_rank_threads(environ: Mapping[str, str] | None = None) -> int:
    """An MPI rank's threads, chosen once by the rank setup (graphnet.training.parallel),
    before its network is compiled: the count set_threads chose already (`graphnet --threads`);
    else $GRAPHNET_THREADS when it is a count; else, when the user sized the BLAS pool
    ($OMP_NUM_THREADS, $OPENBLAS_NUM_THREADS, $MKL_NUM_THREADS), the count the BLAS took from
    it; else one (N ranks on N cores, not N x cores threads: a thread that shares its core
    stalls every GEMM, bench/busy.py). Set as set_threads(n) sets it, so plans and the
    (stopped) governor see it. Returns the count."""
    environ = os.environ if environ is None else environ
    count = STATE.explicit if STATE.explicit is not None else threads_from_env(environ)
    if count is None:
        chosen = any(environ.get(name, "").strip() for name in BLAS_ENV_VARS)
        _blas_controllers()
        count = STATE.blas_default if chosen else 1  # the count the BLAS took from the variable
    set_threads(count)
    return count


def _blas_controllers() -> list:
    if STATE.libraries is None:
        from threadpoolctl import ThreadpoolController

        np.matmul(np.ones((2, 2)), np.ones((2, 2)))  # make sure numpy has loaded its BLAS
        libraries = ThreadpoolController().select(user_api="blas").lib_controllers
        STATE.blas_default = _library_threads(libraries)
        STATE.libraries = libraries
        if STATE.current is None:
            STATE.current = STATE.blas_default
    return STATE.libraries


def _library_threads(libraries: list) -> int:
    """The thread count the BLAS libraries report now (1 without a BLAS)."""
    return max([library.get_num_threads() or 1 for library in libraries], default=1)


def _pin_blas() -> None:
    """numpy's BLAS on one thread (graphnet's threads run the blocks of its GEMMs)."""
    for library in _blas_controllers():
        library.set_num_threads(1)


def _set_live(count: int) -> None:
    """How many of graphnet's threads run the blocks of a GEMM from now on (the governor's `apply`)."""
    STATE.current = count


def _start_governor() -> None:
    """Let the contention governor set how many threads run, up to the threads planned."""
    from . import contention

    ceiling = planned_threads()
    current = threads_now()
    if contention.start(ceiling, min(current, ceiling), _set_live) is None and current != ceiling:
        _set_live(ceiling)


def get_threads() -> int:
    """The threads graphnet's GEMMs are cut over in this process (planned_threads(); the
    governor may run fewer at a time). numpy's BLAS runs on one once a network was compiled."""
    return planned_threads()


def planned_threads() -> int:
    """The threads this process is set up for, whatever the governor does for now: the count
    chosen explicitly (set_threads, $GRAPHNET_THREADS, --threads), else numpy's BLAS's own
    default (one per core, or what OMP_NUM_THREADS / OPENBLAS_NUM_THREADS said). Plans cut
    their GEMMs by it, so that a network computes the same bits however busy the machine was."""
    if STATE.explicit is not None:
        return STATE.explicit
    _blas_controllers()
    return STATE.blas_default


def threads_now() -> int:
    """How many of graphnet's threads run now, as set_threads, the default or the contention
    governor last set it: cheap enough for every kernel call."""
    current = STATE.current
    if current is None:
        _blas_controllers()
        current = STATE.current = STATE.blas_default if STATE.explicit is None else STATE.explicit
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
    """graphnet's threads for `cores` CPUs with a 1-minute load average of `load`: one per
    core that other work leaves free (at least one). A thread that has to share
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
    """The first time it is called in a process (`gn.compile` calls it): numpy's BLAS on one
    thread, and $GRAPHNET_THREADS when it is a count (kept from then on); else (unset or "auto")
    fewer threads at a time than cores when the load average says other processes keep cores
    busy, and the contention governor from then on. Returns the count set, or None (every
    thread for now); GraphnetError when the variable is malformed."""
    if STATE.settled:
        return STATE.settled_count
    count = threads_from_env()
    if count is not None:
        set_threads(count)
        return count
    _pin_blas()
    load = _load_average()
    cores = min(available_cores(), planned_threads())
    auto = cores if load is None else auto_threads(cores, load)
    STATE.settled, STATE.settled_count = True, None
    if auto < cores:
        log.info("graphnet: load average %.2f on %d cores: %d thread(s) at a time "
                 "(set %s to choose)", load, cores, auto, ENV_VAR)
        _set_live(auto)
        STATE.settled_count = auto
    _start_governor()
    return STATE.settled_count
