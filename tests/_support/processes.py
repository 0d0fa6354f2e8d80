"""Test helpers for process trees: the children of a process (read from Linux's /proc), and
waiting for processes to end."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable, Iterator

from graphnet.system.fileio import process_alive

HAVE_PROC = Path("/proc/self/stat").is_file()
NEEDS_PROC = "reads the process tree from Linux's /proc"


def children(pid: int) -> list[int]:
    """The process ids whose parent is `pid` (Linux)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_bytes().rpartition(b")")[2].split()  # "pid (comm) state ppid ..."
        except OSError:  # ended meanwhile
            continue
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


def descendants(pid: int) -> list[int]:
    """Children, grandchildren, ... of `pid` (Linux)."""
    found, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            found.append(child)
            todo.append(child)
    return sorted(found)


def still_running(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait up to `timeout` seconds for `pids` to end; those still running then."""
    pids = list(pids)
    deadline = time.monotonic() + timeout
    while any(process_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [pid for pid in pids if process_alive(pid)]


def kill_all(pids: Iterable[int]) -> None:
    """SIGKILL whatever of `pids` still runs (a test's cleanup, for processes it started)."""
    for pid in pids:
        if process_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


SPIN = "import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n"


@contextlib.contextmanager
def spinning_process(seconds: float = 60.0) -> Iterator[subprocess.Popen]:
    """A process that keeps one core busy (a CPU hog) for the duration of the block (at most
    `seconds`), killed at its end."""
    spinner = subprocess.Popen([sys.executable, "-c", SPIN.format(seconds=seconds)])
    try:
        yield spinner
    finally:
        spinner.kill()
        spinner.wait()
