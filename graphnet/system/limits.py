"""The memory a network or a data file may claim, checked before anything is allocated.

`GRAPHNET_MAX_BYTES` sets the limit (bytes, or with a suffix: `512M`, `16G`);
the default is half of this machine's physical memory (8 GiB where that can't
be read). A spec whose parameters alone exceed it is refused by the validator
(assuming float32); `gn.compile` checks again with the real dtype, the batch
capacity and the activation buffers, and also takes `max_bytes=`. Data readers
check the size a file's header declares against it before reading the data
(`check_declared_size`).
"""
from __future__ import annotations

import os

from ..errors import DataError

ENV_VAR = "GRAPHNET_MAX_BYTES"
_SUFFIXES = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_bytes(text: str) -> int:
    """`"16G"` -> 17179869184; plain integers are bytes."""
    text = text.strip().lower().removesuffix("b").removesuffix("i")
    scale = _SUFFIXES.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in _SUFFIXES else text
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"{ENV_VAR}={text!r}: expected a number of bytes such as 512M or 16G") from None
    if not value > 0:
        raise ValueError(f"{ENV_VAR}={text!r}: must be positive")
    return int(value * scale)


def default_max_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def max_bytes() -> int:
    """The configured limit in bytes."""
    text = os.environ.get(ENV_VAR)
    return parse_bytes(text) if text else default_max_bytes()


def format_bytes(count: float) -> str:
    """A byte count for people: `1536` -> `"1.5 kB"` (binary multiples, one decimal)."""
    for unit, scale in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{int(count)} B"


def check_declared_size(nbytes: int, what: str, limit: int | None = None) -> None:
    """DataError "`what`: <size> of data declared, over the memory limit" when a file declares
    more data (`nbytes`, from its header) than the limit (default `max_bytes()`): checked
    before any of it is read, so a small file that declares a huge array is refused, not loaded."""
    limit = max_bytes() if limit is None else limit
    if nbytes > limit:
        raise DataError(f"{what}: {format_bytes(nbytes)} of data declared, over the memory limit of "
                        f"{format_bytes(limit)} (set {ENV_VAR} to raise it)")
