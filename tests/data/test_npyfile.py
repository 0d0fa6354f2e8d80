"""graphnet.data.npyfile: .npy and .npz headers checked against their data and against the
memory limit before any data is read (training loaders and `graphnet predict`)."""
from __future__ import annotations

import io
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from graphnet import DataError
from graphnet.cli import main
from graphnet.data import load
from graphnet.system.limits import ENV_VAR

from tests._support.data_files import saved_model


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npz_with(path: Path, members: dict[str, bytes], compress: bool = False) -> Path:
    """An .npz whose members are the given raw .npy bytes (which may disagree with their headers)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as archive:
        for name, payload in members.items():
            archive.writestr(f"{name}.npy", payload)
    return path


def splits(X: bytes | None = None, n: int = 20) -> dict[str, bytes]:
    """The four arrays of a training .npz (n examples of 3 features, 2 classes), X_train replaceable."""
    return {"X_train": X if X is not None else npy_bytes(np.ones((n, 3))), "y_train": npy_bytes(np.arange(n) % 2),
            "X_test": npy_bytes(np.ones((4, 3))), "y_test": npy_bytes(np.arange(4) % 2)}


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    saved_model(folder, features=3, classes=2)
    return folder


@pytest.mark.parametrize("extra", [24, -24], ids=["more-data", "less-data"])
def test_a_npy_whose_header_and_data_disagree_is_refused(model, tmp_path, capsys, extra):
    data = npy_bytes(np.ones((4, 3)))
    path = tmp_path / "x.npy"
    path.write_bytes(data + bytes(extra) if extra > 0 else data[:extra])
    assert main(["predict", str(model), "--data", str(path), "--out", str(tmp_path / "p.csv")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"x.npy: the header declares shape (4, 3) of float64 (96 data bytes) but {96 + extra:,} data "
                        "bytes follow it: header and data disagree"), err


@pytest.mark.parametrize("extra", [24, -24], ids=["more-data", "less-data"])
def test_a_npz_member_whose_header_and_data_disagree_is_refused(model, tmp_path, capsys, extra):
    data = npy_bytes(np.ones((20, 3)))
    member = data + bytes(extra) if extra > 0 else data[:extra]
    path = npz_with(tmp_path / "train.npz", splits(member))
    with pytest.raises(DataError, match=r"train\.npz: array 'X_train': the header declares shape \(20, 3\) of "
                                        r"float64 \(480 data bytes\) but .* data bytes follow it"):
        load(path)
    npz_with(tmp_path / "new.npz", {"X": member})
    assert main(["predict", str(model), "--data", str(tmp_path / "new.npz"), "--out", str(tmp_path / "p.csv")]) == 1
    assert "new.npz: array 'X': the header declares shape (20, 3)" in capsys.readouterr().err


def test_a_small_npz_declaring_more_than_the_memory_limit_is_refused_before_reading(model, tmp_path, capsys,
                                                                                  monkeypatch):
    """1.9 MB of zeros compress to a few kB: the declared size is checked, not what the file weighs."""
    zeros = npy_bytes(np.zeros((80_000, 3)))  # 1.9 MB of data
    path = npz_with(tmp_path / "zeros.npz", splits(zeros, n=80_000), compress=True)
    assert path.stat().st_size < 20_000
    monkeypatch.setenv(ENV_VAR, "1M")
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"zeros\.npz: arrays 'X_train' \(80000, 3\) float64, .*: 2\.4 MB of data "
                                            r"declared, over the memory limit of 1\.0 MB"):
            load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < len(zeros) // 4, f"{peak} bytes allocated before the refusal"
    npz_with(tmp_path / "new.npz", {"X": zeros}, compress=True)
    assert main(["predict", str(model), "--data", str(tmp_path / "new.npz"), "--out", str(tmp_path / "p.csv")]) == 1
    assert "over the memory limit of 1.0 MB" in capsys.readouterr().err
    monkeypatch.setenv(ENV_VAR, "4M")
    assert load(path, val_size=0)["X_train"].shape == (80_000, 3)  # under the limit: read as before


def test_npz_members_are_read_as_numpy_reads_them(tmp_path):
    X = np.asfortranarray(np.arange(60, dtype=">f4").reshape(20, 3))  # big-endian, Fortran order
    path = npz_with(tmp_path / "odd.npz", splits(npy_bytes(X)), compress=True)
    np.testing.assert_array_equal(load(path, val_size=0, dtype="float64")["X_train"], X)


def test_a_npz_of_objects_is_refused_for_predict_without_unpickling(model, tmp_path, capsys):
    np.savez(tmp_path / "objects.npz", X=np.array([{"a": 1}, None], dtype=object))
    assert main(["predict", str(model), "--data", str(tmp_path / "objects.npz"), "--out", str(tmp_path / "p.csv")]) == 1
    assert "objects.npz: array 'X' is an object array (pickled Python objects)" in capsys.readouterr().err
