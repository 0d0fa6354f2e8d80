"""graphnet.data.idx: the header read first, the data streamed into one array of the declared
size, so a small gzip file declaring little (or much) is refused without loading what it hides."""
from __future__ import annotations

import gzip
import os
import struct
import tracemalloc

import numpy as np
import pytest

from graphnet import DataError
from graphnet.data import read_idx
from graphnet.system.limits import ENV_VAR

from tests._support.data_files import idx_bytes

ZEROS = 16 << 20  # 16 MB of zeros: about 16 kB gzip-compressed


def peak_of(read) -> tuple[BaseException | None, int]:
    """(the exception `read()` raised, or None; the peak bytes traced while it ran)."""
    tracemalloc.start()
    try:
        read()
        error = None
    except DataError as raised:
        error = raised
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return error, peak


def test_trailing_bytes_of_a_gzip_file_are_found_without_decompressing_them_all(tmp_path):
    path = tmp_path / "x-idx2-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(4, dtype=np.uint8).reshape(1, 4)) + bytes(ZEROS)))
    assert path.stat().st_size < ZEROS // 100
    error, peak = peak_of(lambda: read_idx(path))
    assert "x-idx2-ubyte.gz: has trailing bytes: header declares shape (1, 4) of uint8 (4 data bytes)" in str(error)
    assert peak < ZEROS // 16, f"{peak} bytes allocated to find trailing bytes"


def test_a_gzip_file_declaring_more_than_the_memory_limit_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "x-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(struct.pack(">HBB3I", 0, 0x08, 3, 1024, 128, 128) + bytes(ZEROS)))
    monkeypatch.setenv(ENV_VAR, "1M")
    error, peak = peak_of(lambda: read_idx(path))
    assert str(error).endswith("x-idx3-ubyte.gz: header shape (1024, 128, 128) of uint8: 16.0 MB of data declared, "
                               "over the memory limit of 1.0 MB (set GRAPHNET_MAX_BYTES to raise it)")
    assert peak < ZEROS // 16
    assert read_idx(path, limit=ZEROS).shape == (1024, 128, 128)  # a limit passed as a value


def test_a_plain_file_is_measured_before_its_declared_size_is_allocated(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(struct.pack(">HBB3I", 0, 0x08, 3, 60000, 4096, 4096) + bytes(100))  # declares 1 TB
    error, peak = peak_of(lambda: read_idx(path))
    assert "x-idx3-ubyte: truncated: header declares shape (60000, 4096, 4096) of uint8" in str(error)
    assert peak < 1 << 20


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.float32, np.float64])
def test_big_endian_data_is_swapped_in_place_into_a_native_writable_array(tmp_path, dtype):
    a = (np.arange(24).reshape(2, 3, 4) - 7).astype(dtype)
    path = tmp_path / "a-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(a)))
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative and out.flags.writeable
    np.testing.assert_array_equal(out, a)


def test_a_folder_or_fifo_is_said_to_be_one(tmp_path):
    (tmp_path / "d-idx1-ubyte").mkdir()
    with pytest.raises(DataError, match=r"d-idx1-ubyte: is a folder, not a file"):
        read_idx(tmp_path / "d-idx1-ubyte")
    fifo = tmp_path / "f-idx1-ubyte"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match=r"f-idx1-ubyte: is a FIFO \(named pipe\), not a regular file"):
        read_idx(fifo)  # not opened: opening a FIFO with no writer would block
