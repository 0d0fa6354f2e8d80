"""What a path given as data is, said plainly when it is not a regular file."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import DataError

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def file_kind(path: Path) -> str | None:
    """None for a regular file (or a symlink to one); else what `path` is, in words:
    "a folder", "a FIFO (named pipe)", "a character device", ..., "a symbolic link to a
    missing file", or "missing"."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a symbolic link to a missing file" if os.path.islink(path) else "missing"
    except OSError as error:
        return f"unreadable ({error.strerror or error})"
    return next((kind for test, kind in _KINDS if test(mode)), None)


def regular_file(path: str | os.PathLike[str], what: str = "file") -> Path:
    """`path` as a Path when it is a regular file; DataError naming it and saying what it is
    otherwise ("no such file", "is a folder, not a file", "is a FIFO (named pipe), not a
    regular file")."""
    path = Path(path)
    kind = file_kind(path)
    if kind == "missing":
        raise DataError(f"{path}: no such {what}")
    if kind is not None and kind.startswith("unreadable"):
        raise DataError(f"{path}: {kind}")
    if kind is not None:
        raise DataError(f"{path}: is {kind}, not a regular {what}" if kind != "a folder"
                        else f"{path}: is a folder, not a {what}")
    return path
