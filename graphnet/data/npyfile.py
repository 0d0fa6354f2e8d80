"""NumPy files (.npy, .npz) read without trusting them: nothing unpickled, and each array's
header (shape, dtype) checked against the size of its data and against the memory limit
(graphnet.system.limits) before any of the data is read."""
from __future__ import annotations

import math
import os
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO, Iterable, NamedTuple

import numpy as np

from ..errors import DataError, quoted, quoted_list, shorten
from ..system.limits import check_declared_size, format_bytes

NPY_MAGIC = b"\x93NUMPY"
_READ_HEADER = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


class NpyHeader(NamedTuple):
    """What an .npy header declares, and where its data starts."""

    shape: tuple[int, ...]
    fortran: bool
    dtype: np.dtype
    offset: int

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    def describe(self) -> str:
        return f"shape {self.shape} of {self.dtype.name} ({self.nbytes:,} data bytes)"


def read_header(handle: BinaryIO, what: str, size: int) -> NpyHeader:
    """The header of the .npy array at the start of `handle` whose whole size is `size` bytes;
    DataError naming `what` when it is not one, holds Python objects, or declares a data size
    other than what follows it."""
    try:
        version = np.lib.format.read_magic(handle)
        if version not in _READ_HEADER:
            raise DataError(f"{what}: .npy format version {version[0]}.{version[1]} is not supported (1.0, 2.0)")
        shape, fortran, dtype = _READ_HEADER[version](handle)
    except (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error) as error:
        raise DataError(f"{what}: not a readable .npy array ({shorten(str(error))})") from None
    if dtype.hasobject:
        raise DataError(f"{what} is an object array (pickled Python objects); refused without unpickling -- "
                        f"store numeric arrays")
    header = NpyHeader(tuple(shape), fortran, dtype, handle.tell())
    if size - header.offset != header.nbytes:
        raise DataError(f"{what}: the header declares {header.describe()} but {size - header.offset:,} data bytes "
                        f"follow it: header and data disagree")
    return header


def map_npy(path: Path) -> np.ndarray:
    """A .npy file memory-mapped read-only, after `read_header`'s checks."""
    try:
        with open(path, "rb") as handle:
            header = read_header(handle, str(path), os.fstat(handle.fileno()).st_size)
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror or error}") from None
    if header.nbytes == 0:
        return np.empty(header.shape, header.dtype)
    return np.memmap(path, dtype=header.dtype, mode="r", offset=header.offset, shape=header.shape,
                     order="F" if header.fortran else "C")


def read_npz(path: Path, keys: Iterable[str], *, required: Iterable[str] = (), expected: str = "",
             limit: int | None = None) -> dict[str, np.ndarray]:
    """The arrays `keys` that an .npz archive holds (all of `required` must be there), read
    without unpickling once every header has been checked and their data sizes together
    are within the memory limit (`limit`, default graphnet.system.limits). `expected` says what
    the archive should hold, for the message about a single .npy file."""
    try:
        with open(path, "rb") as handle:
            if handle.read(len(NPY_MAGIC)) == NPY_MAGIC:
                raise DataError(f"{path}: is a single .npy array, expected an .npz archive{expected}")
            handle.seek(0)
            try:
                archive = zipfile.ZipFile(handle)
            except (zipfile.BadZipFile, EOFError, ValueError) as error:
                raise DataError(f"{path}: not a readable .npz file ({shorten(str(error))})") from None
            with archive:
                return _read_members(path, archive, list(keys), list(required), limit)
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror or error}") from None


def _read_members(path: Path, archive: zipfile.ZipFile, keys: list[str], required: list[str],
                  limit: int | None) -> dict[str, np.ndarray]:
    members = {info.filename.removesuffix(".npy"): info for info in archive.infolist() if not info.is_dir()}
    missing = [key for key in required if key not in members]
    if missing:
        raise DataError(f"{path}: missing array(s) {', '.join(missing)}; it has "
                        f"{quoted_list(sorted(members)) or 'none'}")
    headers = {}
    for key in (k for k in keys if k in members):
        with _open_member(path, archive, members[key], key) as member:
            headers[key] = read_header(member, f"{path}: array {quoted(key)}", members[key].file_size)
    arrays = ", ".join(f"{quoted(key)} {h.shape} {h.dtype.name}" for key, h in headers.items())
    check_declared_size(sum(h.nbytes for h in headers.values()), f"{path}: arrays {arrays}", limit)
    return {key: _read_data(path, archive, members[key], key, header) for key, header in headers.items()}


def _open_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str) -> BinaryIO:
    try:
        return archive.open(info)  # type: ignore[return-value]
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, ValueError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: array {quoted(key)} is corrupt ({shorten(str(error))})") from None


def _read_data(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, header: NpyHeader) -> np.ndarray:
    """The data `header` declares, read into one array of exactly its size."""
    data = np.empty(header.nbytes, np.uint8)
    try:
        with _open_member(path, archive, info, key) as member:
            member.read(header.offset)
            view, got = memoryview(data), 0
            while got < header.nbytes:
                count = member.readinto(view[got:])  # type: ignore[attr-defined]
                if not count:
                    raise DataError(f"{path}: array {quoted(key)} is truncated: {got:,} of "
                                    f"{format_bytes(header.nbytes)} data bytes")
                got += count
            member.read(1)  # the end of the member: zipfile checks its CRC here
    except (zipfile.BadZipFile, EOFError, zlib.error) as error:
        raise DataError(f"{path}: array {quoted(key)} is corrupt ({shorten(str(error))})") from None
    return data.view(header.dtype).reshape(header.shape, order="F" if header.fortran else "C")
