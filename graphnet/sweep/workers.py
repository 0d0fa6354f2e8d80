"""Worker processes of a sweep: started with the 'spawn' method, stopped cleanly on Ctrl-C.

Ctrl-C in a terminal reaches the whole process group, so each worker sees it and stops
its trial at a step boundary (gn.train saves a checkpoint); the parent waits for them,
then interrupts those still running, and kills only those that hang. SIGTERM (what
schedulers send, to the parent alone) is passed on to the workers at once. Workers
die with the parent even when it is SIGKILLed (see `worker_main` in runner).
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from typing import Any, Callable

from ..system.interrupts import is_interrupted_exit, stopped_by


def quotas(remaining: int, jobs: int) -> list[int]:
    """`remaining` trials shared among at most `jobs` workers, as evenly as possible (none idle)."""
    workers = max(0, min(jobs, remaining))
    return [remaining // workers + (i < remaining % workers) for i in range(workers)]


def run_workers(target: Callable[[Any], None], plans: list[Any], log: Callable[[str], None]) -> bool:
    """Run `target(plan)` for each plan in its own 'spawn' process and wait for them all; True if
    interrupted (Ctrl-C or SIGTERM here, or a worker that exited with 130 or 143)."""
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=target, args=(plan,), name=f"graphnet-sweep-{i}")
                 for i, plan in enumerate(plans)]
    interrupted = False
    try:
        _start(processes)
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        interrupted = True
        _stop_workers(processes)
    for i, process in enumerate(processes):
        if is_interrupted_exit(process.exitcode):
            interrupted = True
        elif process.exitcode not in (0, None) and not interrupted:
            log(f"worker {i} stopped with exit code {process.exitcode}; the other workers went on")
    return interrupted


def _start(processes: list[Any]) -> None:
    """Start the worker processes with Ctrl-C ignored: a signal ignored at exec stays ignored
    in the child until `worker_main` takes it over."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main_thread() else None
    try:
        for process in processes:
            process.start()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _stop_workers(processes: list[Any], patience: float = 30.0) -> None:
    """After Ctrl-C: give the workers (which saw it too, from the terminal) time to save their
    trial's checkpoint; interrupt those still running, once a second; kill those that hang.
    After SIGTERM (sent to this process alone): pass it on to the workers at once."""
    signum = stopped_by()
    if signum == signal.SIGTERM:
        _send(processes, signum)
    deadline = time.monotonic() + 2
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    deadline = time.monotonic() + patience
    while any(process.is_alive() for process in processes) and time.monotonic() < deadline:
        _send(processes, signum)
        for process in processes:
            process.join(1.0 / len(processes))
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join()


def _send(processes: list[Any], signum: int) -> None:
    """Send `signum` to those of `processes` still running."""
    for process in processes:
        if process.is_alive() and process.pid is not None:
            try:
                os.kill(process.pid, signum)
            except ProcessLookupError:
                pass
