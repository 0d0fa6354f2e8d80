"""IDX files (the MNIST / Fashion-MNIST format), gzip-compressed or plain."""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import DataError, shorten
from ..system.limits import check_declared_size
from ._checks import check_class_labels, check_count, check_example_shape, check_features
from .files import regular_file

__all__ = ["read_idx", "load_idx", "find_idx_file", "IDX_FILES", "IDX_CLASSES"]

IDX_CLASSES = 10             # MNIST and Fashion-MNIST; pass classes= for others (EMNIST)
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IDX_FILES = {"train_images": ("train-images-idx3-ubyte", 3), "train_labels": ("train-labels-idx1-ubyte", 1),
             "test_images": ("t10k-images-idx3-ubyte", 3), "test_labels": ("t10k-labels-idx1-ubyte", 1)}


def _open(path: Path) -> tuple[BinaryIO, int | None]:
    """The file's bytes as a stream, decompressed on the fly when it is gzip data, and the
    size of a plain file (None for gzip data, whose size is known only once read)."""
    try:
        handle = open(regular_file(path), "rb")
        gz = handle.read(2) == b"\x1f\x8b"
        handle.seek(0)
        size = os.fstat(handle.fileno()).st_size
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from e
    if gz:
        return gzip.GzipFile(fileobj=handle, mode="rb"), None  # type: ignore[return-value]
    if path.suffix == ".gz":
        handle.close()
        raise DataError(f"{path}: named .gz but is not gzip data")
    return handle, size


def _read_exactly(stream: BinaryIO, out: memoryview) -> int:
    """Fill `out` from `stream`; returns the number of bytes read (less at the end of the data)."""
    got = 0
    while got < len(out):
        count = stream.readinto(out[got:])  # type: ignore[attr-defined]
        if not count:
            break
        got += count
    return got


def read_idx(path: str | os.PathLike[str], *, ndim: int | None = None, limit: int | None = None) -> np.ndarray:
    """Read one IDX file (gzip-compressed or not) into an array of its declared shape.

    The magic number is two zero bytes, a type code (0x08 uint8, 0x09 int8,
    0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64) and the number of
    dimensions; then one big-endian uint32 per dimension, then the data. The
    data size must match the header exactly. `ndim`, if given, is required.
    The header is read first: a declared size over the memory limit (`limit`,
    default graphnet.system.limits) is refused before any data is read, and the data
    is streamed into one array of exactly that size (trailing bytes are found
    by reading one more byte, not the rest). Returns a native-endian array.
    """
    path = Path(path)
    stream, size = _open(path)
    try:
        with stream:
            return _read_stream(path, stream, size, ndim, limit)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: corrupt or truncated gzip data ({shorten(str(e))})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None


def _read_stream(path: Path, stream: BinaryIO, size: int | None, ndim: int | None, limit: int | None) -> np.ndarray:
    """`read_idx` on an open stream (`size`: the plain file's, compared before reading)."""
    head = stream.read(4)
    if len(head) < 4:
        raise DataError(f"{path}: not an IDX file: {len(head)} bytes, shorter than the 4-byte magic number")
    zero, code, nd = struct.unpack(">HBB", head)
    if zero != 0 or code not in _IDX_DTYPES or nd == 0:
        codes = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise DataError(f"{path}: bad IDX magic number 0x{head.hex().upper()}: expected 0x0000, "
                        f"a type code ({codes}) and a dimension count >= 1")
    if ndim is not None and nd != ndim:
        raise DataError(f"{path}: header declares {nd} dimension(s), expected {ndim}")
    raw_dims = stream.read(4 * nd)
    if len(raw_dims) < 4 * nd:
        raise DataError(f"{path}: truncated IDX header: {nd} dimensions need {4 + 4 * nd} bytes, "
                        f"file has {4 + len(raw_dims)}")
    dims = struct.unpack(f">{nd}I", raw_dims)
    if 0 in dims:
        raise DataError(f"{path}: header declares an empty dimension: {dims}")
    dtype = np.dtype(_IDX_DTYPES[code])
    need = math.prod(dims) * dtype.itemsize
    declared = f"header declares shape {dims} of {dtype.name} ({need} data bytes)"
    start = 4 + 4 * nd
    if size is not None and size - start != need:
        what = "truncated" if size - start < need else "has trailing bytes"
        raise DataError(f"{path}: {what}: {declared}, file has {size - start}")
    check_declared_size(need, f"{path}: header shape {dims} of {dtype.name}", limit)
    data = np.empty(need, np.uint8)
    have = _read_exactly(stream, memoryview(data))
    if have < need:
        raise DataError(f"{path}: truncated: {declared}, file has {have}")
    if stream.read(1):
        raise DataError(f"{path}: has trailing bytes: {declared}, and more data follows them")
    array = data.view(dtype).reshape(dims)
    if dtype.byteorder == ">" and dtype.itemsize > 1:
        array.byteswap(inplace=True)
        array = array.view(dtype.newbyteorder("="))
    return array


def map_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """An IDX file as `read_idx` reads it, but memory-mapped (read-only, not loaded) when the
    file is plain (not .gz) and its data is native-endian or single bytes."""
    path = Path(path)
    if path.suffix == ".gz":
        return read_idx(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
            if len(head) < 4:
                return read_idx(path)
            zero, code, nd = struct.unpack(">HBB", head)
            dims = struct.unpack(f">{nd}I", handle.read(4 * nd)) if zero == 0 and code in _IDX_DTYPES else None
        size = path.stat().st_size
    except (OSError, struct.error):
        return read_idx(path)  # it says what is wrong
    if dims is None or 0 in dims:
        return read_idx(path)
    dtype = np.dtype(_IDX_DTYPES[code])
    start = 4 + 4 * nd
    if dtype.itemsize > 1 or size - start != math.prod(dims) * dtype.itemsize:
        return read_idx(path)
    return np.memmap(path, dtype=dtype, mode="r", offset=start, shape=dims)


def find_idx_file(folder: Path, stem: str) -> Path | None:
    """`folder/stem`, plain or .gz (also Kaggle's `train-images.idx3-ubyte` spelling), or None."""
    dotted = stem.replace("-idx", ".idx")  # Kaggle's spelling: train-images.idx3-ubyte
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def load_idx(folder: Path, classes: int | None, dtype: Any = np.float32) -> tuple[np.ndarray, ...]:
    """The four MNIST-named files of `folder` as raw (X_train (N, H, W), y_train (N,),
    X_test (M, H, W), y_test (M,)); images finite as `dtype`, labels int64 in
    0..classes-1 (default 10)."""
    paths = {role: find_idx_file(folder, stem) for role, (stem, _) in IDX_FILES.items()}
    missing = [IDX_FILES[role][0] for role, p in paths.items() if p is None]
    if missing:
        raise DataError(f"{folder}: missing IDX file(s) {', '.join(missing)} (looked for each with and without .gz)")
    classes = IDX_CLASSES if classes is None else classes
    out = []
    for split in ("train", "test"):
        xp, yp = paths[f"{split}_images"], paths[f"{split}_labels"]
        X = check_features(read_idx(xp, ndim=3), str(xp), "images", dtype)
        y = check_class_labels(read_idx(yp, ndim=1), f"{yp}: labels", classes)
        check_count(len(X), len(y), str(xp), str(yp))
        out += [X, y]
    check_example_shape(out[0], out[2], str(paths["train_images"]), str(paths["test_images"]))
    return tuple(out)
