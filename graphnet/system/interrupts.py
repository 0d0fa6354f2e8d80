"""Stopping on signals: Ctrl-C (SIGINT) and SIGTERM, the exit code they give, and child
processes that die with their parent.

    with stop_signals_interrupt():       # SIGINT and SIGTERM raise KeyboardInterrupt here
        ...
    return interrupted_exit_code()       # 143 after SIGTERM, else 130 (128 + the signal)

The handlers are installed even when SIGINT was ignored at start (a job started with `&`
from a script inherits SIGINT ignored): `kill -INT` then stops it as Ctrl-C would, which
is what a user who sends it expects.

Processes graphnet starts must not outlive it, even when it is SIGKILLed:
`die_with_parent` asks Linux to send a signal when the parent dies (prctl
PR_SET_PDEATHSIG); where that is missing (macOS, BSD) a daemon thread polls the
parent's process id once a second and sends the signal itself.
"""
from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from .fileio import process_alive

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOP_AGAIN_AFTER = 0.05  # seconds: a stop Python ignored is delivered again this long after
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_stopped_by: list[int] = []  # the last stop signal this process received (at most one entry)


def note_stop(signum: int) -> None:
    """Remember that `signum` asked this process to stop (for its exit code)."""
    _stopped_by[:] = [signum]


def forget_stop() -> None:
    """Forget an earlier stop signal (a command run again in the same process starts clean)."""
    _stopped_by.clear()


def stop_noted() -> bool:
    """Whether a stop signal reached this process since the last `forget_stop` (a library that
    catches the KeyboardInterrupt and fails its own cleanup raises something else: still a stop)."""
    return bool(_stopped_by)


def stopped_by() -> int:
    """The stop signal this process received last; SIGINT when none was noted (a bare KeyboardInterrupt)."""
    return _stopped_by[0] if _stopped_by else signal.SIGINT


def interrupted_exit_code() -> int:
    """The exit code of a command stopped by a signal: 143 (128 + 15) after SIGTERM, else 130 (Ctrl-C)."""
    return 128 + signal.SIGTERM if stopped_by() == signal.SIGTERM else 128 + signal.SIGINT


def is_interrupted_exit(code: int | None) -> bool:
    """Whether a child's exit code (a Popen returncode: negative when a signal ended it) means it was stopped."""
    return code is not None and (code in (128 + signal.SIGINT, 128 + signal.SIGTERM)
                                 or -code in (signal.SIGINT, signal.SIGTERM))


def stop_message(command: str) -> str:
    """The one line a command prints when a signal stopped it."""
    return f"graphnet {command}: " + ("terminated (SIGTERM)" if stopped_by() == signal.SIGTERM else "interrupted")


def raise_interrupt(signum: int, frame: Any) -> None:
    """A signal handler: note `signum` and raise KeyboardInterrupt, as Ctrl-C does. Where
    Python ignores the exception (a `__del__` or weakref callback running when the signal
    came: it would print "Exception ignored in ..." and go on), the signal is delivered
    again, to be raised in the code that runs next."""
    note_stop(signum)
    if sys.unraisablehook is not _deliver_ignored_stop_again:
        _deliver_ignored_stop_again.previous = sys.unraisablehook  # type: ignore[attr-defined]
        sys.unraisablehook = _deliver_ignored_stop_again
    raise KeyboardInterrupt


def _deliver_ignored_stop_again(unraisable: Any) -> None:
    """sys.unraisablehook: a KeyboardInterrupt of a stop signal is signalled to the main
    thread again, shortly, from a timer thread (signalled at once, the handler would run
    and raise inside this hook); anything else goes to the previous hook."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt) and stop_noted():
        again = threading.Timer(STOP_AGAIN_AFTER, _thread.interrupt_main, args=(stopped_by(),))
        again.daemon = True
        again.start()
        return
    _deliver_ignored_stop_again.previous(unraisable)  # type: ignore[attr-defined]


@contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """For the block, SIGINT and SIGTERM raise KeyboardInterrupt (in the main thread; elsewhere
    nothing changes), even if SIGINT was ignored; the previous handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, raise_interrupt) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def parent_death_signal(parent_pid: int, signum: int = signal.SIGTERM) -> bool:
    """Linux: have the kernel send `signum` to this process when its parent `parent_pid` dies
    (prctl PR_SET_PDEATHSIG); if the parent is already gone, send it now. False where prctl
    is missing."""
    return _request_death_signal(_prctl(), parent_pid, signum)


def prepare_parent_death_signal(signum: int = signal.SIGTERM) -> Callable[[], None]:
    """A `preexec_fn` for subprocess.Popen: the child gets `signum` when this process dies
    (Linux: the request survives exec; elsewhere it does nothing). prctl is looked up here,
    before the fork, so the child only calls it."""
    parent, prctl = os.getpid(), _prctl()

    def in_the_child() -> None:
        _request_death_signal(prctl, parent, signum)

    return in_the_child


def _request_death_signal(prctl: Callable[..., int] | None, parent_pid: int, signum: int) -> bool:
    if prctl is None or prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        return False
    if os.getppid() != parent_pid:  # the parent died before the request was made
        os.kill(os.getpid(), signum)
    return True


def die_with_parent(parent_pid: int, signum: int = signal.SIGTERM, poll_seconds: float = 1.0) -> str:
    """Make sure this process gets `signum` when its parent `parent_pid` dies, however it dies
    (SIGKILL included): prctl on Linux, else a watcher thread. Which one: "prctl" or "watcher"."""
    if parent_death_signal(parent_pid, signum):
        return "prctl"
    watch_process(parent_pid, signum, poll_seconds, parent=True)
    return "watcher"


def watch_process(pid: int, signum: int = signal.SIGTERM, poll_seconds: float = 1.0,
                  parent: bool = False) -> threading.Thread:
    """A daemon thread that sends `signum` to this process once process `pid` is gone: this
    process's parent (`parent`: it is gone when this process has another parent) or any
    process of this machine (gone when it no longer exists, or is a zombie on Linux)."""
    def gone() -> bool:
        return os.getppid() != pid if parent else not process_alive(pid)

    def watch() -> None:
        while not gone():
            time.sleep(poll_seconds)
        os.kill(os.getpid(), signum)

    thread = threading.Thread(target=watch, name=f"graphnet-watch-{pid}", daemon=True)
    thread.start()
    return thread


def _prctl() -> Callable[..., int] | None:
    """libc's prctl on Linux, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl
