"""Shared test helpers: small data files (IDX folders and files) written into a test's tmp_path."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
         np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}
FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
         "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


def idx_bytes(a: np.ndarray, *, code: int | None = None, ndim: int | None = None) -> bytes:
    """An IDX file's bytes: magic 00 00 <code> <ndim>, big-endian uint32 dims, big-endian data."""
    a = np.asarray(a)
    code = CODES[a.dtype] if code is None else code
    nd = a.ndim if ndim is None else ndim
    header = struct.pack(">HBB", 0, code, nd) + struct.pack(f">{a.ndim}I", *a.shape)
    return header + a.astype(a.dtype.newbyteorder(">")).tobytes()


def write(path: Path, payload: bytes, gz: bool) -> Path:
    if gz:
        path = path.with_name(path.name + ".gz")
        payload = gzip.compress(payload)
    path.write_bytes(payload)
    return path


def make_idx(folder: Path, *, gz: bool = False, n_train: int = 20, n_test: int = 10,
             shape: tuple[int, ...] = (4, 3), seed: int = 0, **override: bytes) -> dict[str, np.ndarray]:
    """Write a tiny MNIST-like IDX folder; `override` replaces a file's bytes by role."""
    rng = np.random.default_rng(seed)
    arrays = {"train_images": rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
              "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
              "test_images": rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
              "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8)}
    folder.mkdir(parents=True, exist_ok=True)
    for role, a in arrays.items():
        write(folder / FILES[role], override.get(role, idx_bytes(a)), gz)
    return arrays


def file_of(folder: Path, role: str) -> Path:
    return next(p for p in folder.iterdir() if p.name.startswith(FILES[role]))


def saved_model(folder: Path, features: int = 3, classes: int = 2, dtype: str = "float32"):
    """A small classifier of `features` raw features (no preprocessing), saved to `folder`."""
    import graphnet as gn

    spec = gn.parse_network({
        "inputs": {"x": {"shape": [features]}}, "labels": {"y": {"classes": classes}},
        "nodes": [{"id": "fc", "op": "affine", "inputs": ["x"], "units": classes},
                  {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc", "y"]}],
        "outputs": ["fc"], "loss": "loss"})
    net = gn.compile(spec, batch_size=8, dtype=dtype, seed=1)
    net.save(folder)
    return net
