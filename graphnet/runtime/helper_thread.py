"""Helper threads for splitting one kernel call in parts, that never spin and never wait
for a thread that has not started.

    helper = helper_thread()               # the process's helper (its thread starts on first use)
    helper.run(kernel, first, second)      # kernel(*first) here, kernel(*second) on the helper
    run_parts(kernel, [first, second, third])   # the first here, the others on helpers 1 and 2

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

The helpers of a process are daemon threads started lazily (one for two parts, two
for three, ...); a forked child gets fresh ones on their first use. A caller on
another thread while a helper is in use runs that helper's part itself.
"""
from __future__ import annotations

import _thread
import ctypes
import ctypes.util
import os
import threading
from typing import Any, Callable, Sequence

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
        if not self.offer(kernel, second):  # another thread is using the helper
            kernel(*first)
            kernel(*second)
            return
        done = False
        try:
            kernel(*first)
            done = True
        finally:
            self.collect(run_unclaimed=done)

    def offer(self, kernel: Callable[..., Any], args: tuple) -> bool:
        """Hand kernel(*args) to the helper thread (started on first use) and return True; every
        True must be followed by one `collect` from this thread. False, handing nothing, while
        another thread is using this helper."""
        if not self._busy.acquire(False):
            return False
        try:
            if self.thread is None:
                self.start()
            cpu = _current_cpu()
            if cpu != self._caller_cpu:
                self._keep_off(cpu)
        except BaseException:
            self._busy.release()
            raise
        self._task = (kernel, args)
        self._claim.release()
        if self._wake.locked():  # else a wake-up is pending already
            self._wake.release()
        return True

    def collect(self, run_unclaimed: bool = True) -> None:
        """The end of an `offer`: the task taken back and run here (unless `run_unclaimed` is
        False) when the helper has not claimed it, else waited for; the helper's exception is
        raised here."""
        try:
            if not self._claim.acquire(False):
                self._wait_for_helper()
            elif run_unclaimed:
                self.caller_runs += 1
                kernel, args = self._task  # type: ignore[misc]
                kernel(*args)
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


_helper: list[HelperThread] = []  # the process's helper threads, the first one first


def helper_thread() -> HelperThread:
    """The process's (first) helper thread (created on the first call; its thread starts on first use)."""
    return helper_threads(1)[0]


def helper_threads(count: int) -> list[HelperThread]:
    """The process's first `count` helper threads (made as needed; each thread starts on first use)."""
    while len(_helper) < count:
        _helper.append(HelperThread())
    return _helper[:count]


def run_parts(kernel: Callable[..., Any], parts: Sequence[tuple]) -> None:
    """kernel(*part) for every part: the first on the calling thread while the others are offered
    to the helper threads, one each; a part no helper has claimed by the time the caller is
    done with its own is run by the caller (in order), so a late or busy helper costs nothing
    but the wake-up. Returns when every part is done; the first exception is raised here."""
    helpers = helper_threads(len(parts) - 1)
    offered = [helper.offer(kernel, part) for helper, part in zip(helpers, parts[1:])]
    error: BaseException | None = None
    try:
        kernel(*parts[0])
    except BaseException as exc:  # the offered parts are still collected
        error = exc
    for helper, part, armed in zip(helpers, parts[1:], offered):
        try:
            if armed:
                helper.collect(run_unclaimed=error is None)
            elif error is None:
                kernel(*part)
        except BaseException as exc:
            error = error or exc
    if error is not None:
        raise error


def helper_started() -> bool:
    """Whether this process's helper thread is running."""
    return bool(_helper) and _helper[0].thread is not None


def _replace_helper(old: HelperThread) -> None:
    for index, helper in enumerate(_helper):
        if helper is old:
            _helper[index] = HelperThread()


def _forget_helper_after_fork() -> None:
    _helper.clear()  # the child has no helper thread; its locks may be held
    _cpus.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_helper_after_fork)
