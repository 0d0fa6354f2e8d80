"""Output files: every file graphnet writes goes through `open_output`.

What a path names decides how it is written (`output_target`):

- a regular file, or nothing yet: replaced atomically -- a reader sees the old
  file or the new one, never half of one;
- a character or block device, or a FIFO (`--out /dev/null`, a named pipe):
  written in place, as a shell's `>` would; it is never replaced by a file;
- `-`: standard output;
- a symlink is followed to its target, which these same rules then apply to (a
  dangling one gets its target created); the link itself is never replaced;
- a folder or a socket: refused, with an OSError naming the path.

An atomic write goes through a hidden temporary file beside the target,
`.<name>.<pid>.<random>.tmp`, whose name carries the writer's process id: the
temporaries a killed writer left behind can be told from those of a writer
still at work (`remove_stale_temporaries`); each atomic write first removes
those dead writers left for its target.
"""
from __future__ import annotations

import errno
import glob
import io
import os
import re
import stat
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator, Literal, Mapping

import numpy as np

STDOUT = "-"  # the output path that means standard output


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp creates its file 0600; the renamed file should get the mode a plain open()
# would give it (0666 minus the umask), or keep the mode of the file it replaces.
_NEW_FILE_MODE = 0o666 & ~_umask()


@dataclass(frozen=True)
class OutputTarget:
    """How a write to `given` goes: "stdout" (the path `-`), "stream" (a device or FIFO,
    written in place) or "replace" (a regular file or none, replaced atomically); `path`
    is the file written: `given`, or the target of the symlink `given`."""

    given: Path
    path: Path
    how: Literal["stdout", "stream", "replace"]


def output_target(path: str | Path) -> OutputTarget:
    """Where and how a write to `path` goes (see the module docstring). IsADirectoryError for
    a folder, OSError for a socket or a symlink loop, each naming `path`."""
    given = Path(path)
    if str(path) == STDOUT:
        return OutputTarget(given, given, "stdout")
    target = Path(os.path.realpath(given)) if given.is_symlink() else given
    try:
        mode = os.stat(target).st_mode
    except (FileNotFoundError, NotADirectoryError):  # nothing there yet (a missing folder is made on writing)
        return OutputTarget(given, target, "replace")
    except OSError as error:  # a symlink loop, a folder we may not search
        raise _naming(error, given) from None
    if stat.S_ISREG(mode):
        return OutputTarget(given, target, "replace")
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
        return OutputTarget(given, target, "stream")
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(given))
    raise OSError(errno.EINVAL, "is not a regular file, a device or a FIFO: not written", str(given))


@contextmanager
def open_output(path: str | Path, text: bool = False) -> Iterator[IO]:
    """A handle (bytes, or UTF-8 text with `text`) to write `path` in pieces, written as
    `output_target(path)` says: a regular or missing file appears whole on leaving the block
    without an exception (and is left as it was on an exception); a device or FIFO is written
    as the block writes; `-` is standard output. An OSError names `path`."""
    target = output_target(path)
    if target.how == "stdout":
        sys.stdout.flush()  # what was printed before comes first
        handle = sys.stdout if text else sys.stdout.buffer
        yield handle
        handle.flush()
        return
    opener = _in_place if target.how == "stream" else _replacing
    try:
        with opener(target.path, "w" if text else "wb") as handle:
            yield handle
    except OSError as error:
        raise _naming(error, target.given) from None


@contextmanager
def _in_place(path: Path, mode: str) -> Iterator[IO]:
    """A device or FIFO opened for writing as it is: no O_CREAT, no O_TRUNC, never a new file
    (a FIFO blocks here until a reader opens it, as with a shell's `>`)."""
    with _fdopen(os.open(path, os.O_WRONLY), mode) as handle:
        yield handle


def _fdopen(fd: int, mode: str) -> IO:
    """A file object on `fd`: bytes for a "b" mode, else UTF-8 text written as given (no newline translation)."""
    return os.fdopen(fd, mode) if "b" in mode else os.fdopen(fd, mode, encoding="utf-8", newline="")


@contextmanager
def _replacing(path: Path, mode: str) -> Iterator[IO]:
    """A temporary file beside `path`, renamed onto it after fsync on leaving the block
    without an exception; removed on an exception."""
    make_folder(path.parent)
    remove_stale_temporaries(path.parent, [path.name])
    try:
        file_mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        file_mode = _NEW_FILE_MODE
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, file_mode)
        with _fdopen(fd, mode) as handle:
            yield handle
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


def _naming(error: OSError, path: Path) -> OSError:
    """`error` with `path` as its file name, unless it already names a file other than a temporary."""
    if error.filename is not None and not str(error.filename).endswith(".tmp"):
        return error
    if error.errno is None:
        return OSError(errno.EIO, str(error), str(path))
    return OSError(error.errno, error.strerror or os.strerror(error.errno), str(path))


def make_folder(path: str | Path) -> Path:
    """Create the folder `path` and its parents where missing; a symlink to a folder is used as
    it is and a dangling one gets its target made. NotADirectoryError naming `path` when
    something else is there (a file, a device, a FIFO). Returns `path`."""
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        target.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NotADirectoryError(errno.ENOTDIR, "exists and is not a folder", str(path)) from None
    return path


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` through `open_output`: a regular or missing file is replaced
    atomically (temporary file in the same folder, fsync, rename); a device, FIFO or `-` is
    written directly. An OSError (disk full, read-only file system, ...) names `path`, the
    file being written, rather than the temporary file or nothing."""
    with open_output(path) as handle:
        handle.write(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    """`text` as UTF-8 through `write_bytes_atomic`."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_npz_atomic(path: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write `arrays` (name -> array) to `path` as an uncompressed .npz archive, through
    `write_bytes_atomic`: the one npz writer of checkpoints and the Solver."""
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


# `.<target>.<pid>.<random>.tmp`, the random part as tempfile makes it (8 of [a-z0-9_])
_TEMPORARY = re.compile(r"\.(?P<target>.+)\.(?P<pid>\d+)\.[a-z0-9_]{8}\.tmp")


def remove_stale_temporaries(folder: str | Path, target_names: list[str] | None = None) -> list[Path]:
    """Delete the temporary files in `folder` whose writer has died (a kill mid-write leaves
    them): those of `target_names`, including temporaries without a process id (an older
    graphnet's); without `target_names`, every graphnet temporary whose name carries the id
    of a dead process. Those of a live writer are kept. The deleted paths."""
    if target_names is None:
        candidates = [(temporary, _TEMPORARY.fullmatch(temporary.name)) for temporary in Path(folder).glob(".*.tmp")]
        found = [(temporary, int(match["pid"])) for temporary, match in candidates if match]
    else:
        found = [(temporary, writer_pid(temporary.name, name))
                 for name in target_names for temporary in Path(folder).glob(f".{glob.escape(name)}.*.tmp")]
    removed = []
    for temporary, pid in found:
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
