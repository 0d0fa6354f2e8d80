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

One helper per process, a daemon thread started lazily; a forked child gets a
fresh one on its first use. Callers on other threads while the helper is in use
run both halves themselves.
"""
from __future__ import annotations

import _thread
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


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_helper_after_fork)
