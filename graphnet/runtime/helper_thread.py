"""A second thread for splitting one kernel call in two, that never spins and never waits
for a thread that has not started.

    helper = helper_thread()               # the process's helper (its thread starts on first use)
    helper.run(kernel, first, second)      # kernel(*first) here, kernel(*second) on the helper

`run` hands `second` to the helper thread, runs `first` on the calling thread, and
then takes `second` back and runs it itself unless the helper has already claimed
it; only when the helper has claimed it does the caller block (in a lock, no spin)
until it is done. So a helper that is slow to wake (its core busy, the process
just back from idling) costs the caller nothing but the wake-up call: the worst
case is the serial time. `kernel` must release the GIL while it runs (a numba
`nogil` kernel): the helper needs the GIL only to claim the work and to enter
and leave the kernel.

On Linux the helper may run on any CPU of the process but the one the caller
ran on at its last call (set again when the caller moved): without it, a helper
woken after the process idled was often put on the caller's own CPU by the
scheduler and stayed there, the two halves taking turns (2x the serial time in
a steady loop on 2 vCPUs).

One helper per process, a daemon thread started lazily; a forked child gets a
fresh one on its first use. Callers on other threads while the helper is in use
run both halves themselves.
"""
from __future__ import annotations

import _thread
import ctypes
import ctypes.util
import os
import threading
from typing import Any, Callable

THREAD_NAME = "graphnet-helper"


class HelperThread:
    """One daemon thread that runs at most one claimed task at a time (see the module docstring).

    Between two runs the locks are in their rest state: `_wake` and `_claim` and `_done`
    held, `_busy` free. `run` arms the task by releasing `_claim` and wakes the thread
    through `_wake`; whoever acquires `_claim` first (the thread, or the caller once its
    own half is done) runs the task, which disarms it again."""

    def __init__(self) -> None:
        self._wake = _locked()  # a binary semaphore: released = "look for a task"
        self._claim = _locked()  # released = a task is armed and unclaimed
        self._done = _locked()  # released by the thread when it finished a task it claimed
        self._busy = _thread.allocate_lock()  # held by the caller of run, one at a time
        self._task: tuple[Callable[..., Any], tuple] | None = None
        self._error: BaseException | None = None
        self.thread: threading.Thread | None = None
        #: Counters: tasks the helper ran, tasks the caller took back.
        self.helper_runs = 0
        self.caller_runs = 0
        #: Test hook: called by the helper thread after it woke, before it claims.
        self.before_claim: Callable[[], None] | None = None
        self._caller_cpu = -1  # the CPU the helper was last kept off

    def start(self) -> None:
        """Start the thread (run does it on first use)."""
        if self.thread is None:
            self.thread = threading.Thread(target=self._serve, name=THREAD_NAME, daemon=True)
            self.thread.start()

    def run(self, kernel: Callable[..., Any], first: tuple, second: tuple) -> None:
        """kernel(*first) on this thread and kernel(*second) on the helper thread, or both
        here when the helper has not claimed `second` by the time `first` is done. Returns
        when both are done; an exception of either is raised here."""
        if not self._busy.acquire(False):  # another thread is using the helper
            kernel(*first)
            kernel(*second)
            return
        try:
            if self.thread is None:
                self.start()
            cpu = _current_cpu()
            if cpu != self._caller_cpu:
                self._keep_off(cpu)
            self._task = (kernel, second)
            self._claim.release()
            if self._wake.locked():  # else a wake-up is pending already
                self._wake.release()
            try:
                kernel(*first)
            finally:
                mine = self._claim.acquire(False)
                if not mine:
                    self._wait_for_helper()
            if mine:
                self.caller_runs += 1
                kernel(*second)
        finally:
            self._busy.release()

    def _keep_off(self, cpu: int) -> None:
        """Let the helper thread run on the process's CPUs but `cpu` (where it may)."""
        self._caller_cpu = cpu
        thread = self.thread
        if cpu < 0 or thread is None or thread.native_id is None or not hasattr(os, "sched_setaffinity"):
            return
        others = _process_cpus() - {cpu}
        try:
            os.sched_setaffinity(thread.native_id, others or _process_cpus())
        except OSError:  # not permitted, or the CPU set changed: leave it to the scheduler
            pass

    def _wait_for_helper(self) -> None:
        try:
            self._done.acquire()
        except BaseException:  # interrupted (KeyboardInterrupt): the locks' state is lost
            _replace_helper(self)
            raise
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _serve(self) -> None:
        wake, claim, done = self._wake, self._claim, self._done
        while True:
            wake.acquire()
            hook = self.before_claim
            if hook is not None:
                hook()
            if not claim.acquire(False):  # the caller took it back, or a stale wake-up
                continue
            kernel, args = self._task  # type: ignore[misc]
            try:
                kernel(*args)
            except BaseException as error:  # handed to the caller
                self._error = error
            self.helper_runs += 1
            done.release()


def _load_sched_getcpu() -> Callable[[], int] | None:
    try:
        function = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).sched_getcpu
    except (OSError, AttributeError, TypeError):  # not glibc/Linux
        return None
    function.restype, function.argtypes = ctypes.c_int, []
    return function


_sched_getcpu = _load_sched_getcpu()
_cpus: list[frozenset[int]] = []


def _current_cpu() -> int:
    """The CPU the calling thread runs on (-1: unknown on this platform)."""
    return _sched_getcpu() if _sched_getcpu is not None else -1


def _process_cpus() -> frozenset[int]:
    if not _cpus:
        _cpus.append(frozenset(os.sched_getaffinity(0)))
    return _cpus[0]


def _locked() -> Any:
    lock = _thread.allocate_lock()
    lock.acquire()
    return lock


_helper: list[HelperThread] = []


def helper_thread() -> HelperThread:
    """The process's helper thread (created on the first call; its thread starts on first use)."""
    if not _helper:
        _helper.append(HelperThread())
    return _helper[0]


def helper_started() -> bool:
    """Whether this process's helper thread is running."""
    return bool(_helper) and _helper[0].thread is not None


def _replace_helper(old: HelperThread) -> None:
    if _helper and _helper[0] is old:
        _helper[:] = [HelperThread()]


def _forget_helper_after_fork() -> None:
    _helper.clear()  # the child has no helper thread; its locks may be held
    _cpus.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_helper_after_fork)
