"""Atomic file writes: a reader sees the old file or the new one, never half of one.

A write goes through a hidden temporary file beside the target,
`.<name>.<pid>.<random>.tmp`, whose name carries the writer's process id: the
temporaries a killed writer left behind can be told from those of a writer
still at work (`remove_stale_temporaries`).
"""
from __future__ import annotations

import errno
import io
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, TextIO

import numpy as np


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp creates its file 0600; the renamed file should get the mode a plain open()
# would give it (0666 minus the umask), or keep the mode of the file it replaces.
_NEW_FILE_MODE = 0o666 & ~_umask()


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder, fsync, then rename.

    An OSError (disk full, read-only file system, ...) names `path`, the file being written,
    rather than the temporary file or nothing."""
    path = Path(path)
    try:
        _write_bytes_atomic(path, data)
    except OSError as error:
        raise _naming(error, path) from None


def _naming(error: OSError, path: Path) -> OSError:
    """`error` with `path` as its file name, unless it already names a file other than a temporary."""
    if error.filename is not None and not str(error.filename).endswith(".tmp"):
        return error
    if error.errno is None:
        return OSError(errno.EIO, str(error), str(path))
    return OSError(error.errno, error.strerror or os.strerror(error.errno), str(path))


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = _NEW_FILE_MODE
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_folder(path.parent)


@contextmanager
def open_text_atomic(path: str | Path) -> Iterator[TextIO]:
    """A text file to write in pieces (e.g. rows streamed out) that appears at `path` whole,
    on leaving the block without an exception (temporary file, fsync, rename); on an
    exception the temporary is removed and `path` is left as it was."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise _naming(error, path) from None
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, _NEW_FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(error, OSError):
            raise _naming(error, path) from None
        raise
    fsync_folder(path.parent)


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_npz_atomic(path: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write `arrays` (name -> array) to `path` as an uncompressed .npz archive, atomically
    (see `write_bytes_atomic`): the one npz writer of checkpoints and the Solver."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_bytes_atomic(path, buffer.getvalue())


def append_bytes_synced(path: str | Path, data: bytes) -> None:
    """Append `data` to `path` (created if missing) in one write, then fsync it: an append-only
    log's record is on disk when this returns. An OSError names `path`."""
    path = Path(path)
    try:
        with open(path, "ab") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        raise _naming(error, path) from None


def truncate_synced(path: str | Path, size: int) -> None:
    """Cut `path` to its first `size` bytes and fsync it (an append-only log's unwanted tail).
    An OSError names `path`."""
    path = Path(path)
    try:
        with open(path, "r+b") as handle:
            handle.truncate(size)
            os.fsync(handle.fileno())
    except OSError as error:
        raise _naming(error, path) from None


def process_alive(pid: int) -> bool:
    """True if a process with this id exists on this machine (it may belong to another user)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:  # no way to tell (e.g. no signals on this platform): assume it is alive
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A process that has exited but not been reaped (signal 0 still reaches it). Linux only:
    elsewhere, False."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # "pid (comm) state ...": comm may hold spaces and parentheses, so split at the last ')'
            return stat.read().rpartition(b")")[2].split()[:1] == [b"Z"]
    except OSError:
        return False


def writer_pid(temporary_name: str, target_name: str) -> int | None:
    """The writer's process id in a temporary's name `.<target>.<pid>.<random>.tmp`; None when
    the name has none (written by an older graphnet)."""
    middle = temporary_name.removeprefix(f".{target_name}.").removesuffix(".tmp")
    pid, dot, _ = middle.partition(".")
    return int(pid) if dot and pid.isdigit() else None


def remove_stale_temporaries(folder: str | Path, target_names: list[str]) -> list[Path]:
    """Delete the temporary files of `target_names` in `folder` whose writer has died (a kill
    mid-write leaves them); those of a live writer are kept. The deleted paths."""
    removed = []
    for name in target_names:
        for temporary in Path(folder).glob(f".{name}.*.tmp"):
            pid = writer_pid(temporary.name, name)
            if pid is not None and process_alive(pid):
                continue
            try:
                temporary.unlink()
            except OSError:
                continue
            removed.append(temporary)
    return removed


def fsync_folder(folder: str | Path) -> None:
    """Make a rename inside `folder` durable (a no-op where folders can't be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
