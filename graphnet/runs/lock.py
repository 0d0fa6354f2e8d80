"""One trainer per run folder: a lock file `.lock` in the folder holds the owner's process id.

    with run_lock(Path("runs/spiral"), note=print):
        ...  # train, write run.json, history.json, checkpoint/

The lock file is created with O_CREAT|O_EXCL and holds `<pid> <host>`. It is
removed when the block is left, by an exception or a signal turned into one
(Ctrl-C) too. A lock whose process is gone (a SIGKILL, a power cut) is stale
and is taken over, with a note; a live owner's lock makes `run_lock` raise
`RunFolderInUse`, naming the process and the lock file. A lock written on
another host can't be checked and is never taken over.

Only writers lock: reading a run folder (`graphnet eval`) needs no lock,
since every file in it is replaced atomically.
"""
from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from ..errors import RunFolderError
from ..system.fileio import process_alive

LOCK_FILE = ".lock"
_HELD: set[Path] = set()  # the lock files this process holds (another thread may ask again)


class RunFolderInUse(RunFolderError):
    """Another live process holds the run folder's lock."""


@contextmanager
def run_lock(folder: Path, note: Callable[[str], None] | None = None) -> Iterator[Path]:
    """Hold `folder`'s lock (the folder must exist) for the block; yields the lock file's path."""
    path = folder / LOCK_FILE
    if path.absolute() in _HELD:
        raise RunFolderInUse(f"{folder}: in use by process {os.getpid()} (lock file {path})")
    with folder_lock(folder):
        _acquire(path, note or (lambda text: None))
    _HELD.add(path.absolute())
    try:
        yield path
    finally:
        _HELD.discard(path.absolute())
        with folder_lock(folder):
            _release(path)


def _acquire(path: Path, note: Callable[[str], None]) -> None:
    for _ in range(3):
        try:
            _create(path)
            return
        except FileExistsError:
            pass
        owner = _read_owner(path)
        if owner is None:  # the lock vanished (its owner released it): try again
            continue
        pid, host = owner
        if host != host_name():
            raise RunFolderInUse(f"{path.parent}: in use by process {pid} on host {host} (lock file {path}; "
                                 "delete it if that process is gone)")
        # our own pid here is a reused one (a container restarted): this process holds no lock
        if pid != os.getpid() and process_alive(pid):
            raise RunFolderInUse(f"{path.parent}: in use by process {pid} (lock file {path})")
        note(f"{path.parent}: taking over the stale lock of process {pid}, which is gone")
        _remove(path)
    raise RunFolderInUse(f"{path.parent}: could not take the lock file {path}")


def _create(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, f"{os.getpid()} {host_name()}\n".encode("utf-8"))
    finally:
        os.close(fd)


def _read_owner(path: Path) -> tuple[int, str] | None:
    """(pid, host) of a lock file; None if it is gone. An unreadable or torn lock file
    (its writer killed between creating and filling it) reads as a dead process here."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    pid, _, host = text.strip().partition(" ")
    return (int(pid), host or host_name()) if pid.isdigit() else (0, host_name())


def _release(path: Path) -> None:
    owner = _read_owner(path)
    if owner is not None and owner == (os.getpid(), host_name()):
        _remove(path)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def host_name() -> str:
    """This machine's name, as lock files record it."""
    return socket.gethostname() or "localhost"


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive advisory lock (flock) on `folder` for the block, between processes: lock-file
    changes are serialized, so two trainers taking over the same stale lock can't both win (and
    two sweeps creating one SQLite study file can't collide). Not POSIX: no lock."""
    try:
        import fcntl
    except ImportError:  # not POSIX: O_EXCL alone
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock
