"""graphnet.data.features: one check of raw features, finite once converted to the model's dtype,
used by every reader (CSV, .npz, .npy, IDX; training and predict) and by net.predict."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphnet import DataError
from graphnet.cli import main
from graphnet.data import load
from graphnet.data.features import check_finite, first_nonfinite, number_text

from tests._support.data_files import idx_bytes, saved_model

ROW, COLUMN = 5, 1  # where each table case puts its bad value (0-based), in 8 examples of 3 features
BAD = {  # the value as a CSV writes it -> what is wrong with it in float32
    "nan": "is not a finite number", "inf": "is not a finite number", "-inf": "is not a finite number",
    "1e39": "does not fit in float32", "-1e39": "does not fit in float32", "1e308": "does not fit in float32",
}


def features_with(value: str) -> np.ndarray:
    X = np.arange(24, dtype=np.float64).reshape(8, 3)
    X[ROW, COLUMN] = float(value)
    return X


def write_source(kind: str, folder: Path, value: str) -> tuple[Path, str]:
    """A training source holding `value` at (ROW, COLUMN): its path and how an error must name the place."""
    X, y = features_with(value), np.arange(8) % 2
    if kind == "csv":
        rows = [",".join([str(label)] + [value if (i, j) == (ROW, COLUMN) else repr(v) for j, v in enumerate(x)])
                for i, (x, label) in enumerate(zip(X.tolist(), y))]
        path = folder / "train.csv"
        path.write_text("label,f0,f1,f2\n" + "\n".join(rows) + "\n")
        return path, f"line {ROW + 2}, column 'f1': '{value}' "
    if kind == "npz":
        path = folder / "train.npz"
        np.savez(path, X_train=X, y_train=y, X_test=X[:2], y_test=y[:2])
        return path, f"X_train[{ROW}, {COLUMN}]: {number_text(float(value))} "
    path = folder / "idx"  # images of 1 x 3 float64 pixels
    path.mkdir()
    for prefix, images, labels in (("train", X, y), ("t10k", X[:2], y[:2])):
        (path / f"{prefix}-images-idx3-ubyte").write_bytes(idx_bytes(images.reshape(-1, 1, 3)))
        (path / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_bytes(labels.astype(np.uint8)))
    return path, f"images[{ROW}, 0, {COLUMN}]: {number_text(float(value))} "


def write_examples(kind: str, folder: Path, value: str) -> tuple[Path, str]:
    """A `graphnet predict` input holding `value` at (ROW, COLUMN), and the place an error must name."""
    X = features_with(value)
    if kind == "csv":
        lines = [",".join(value if (i, j) == (ROW, COLUMN) else repr(v) for j, v in enumerate(x))
                 for i, x in enumerate(X.tolist())]
        path = folder / "new.csv"
        path.write_text("f0,f1,f2\n" + "\n".join(lines) + "\n")
        return path, f"line {ROW + 2}, column 'f1': '{value}' "
    place = f"[{ROW}, {COLUMN}]: {number_text(float(value))} "
    if kind == "npy":
        np.save(folder / "new.npy", X)
        return folder / "new.npy", "X" + place
    if kind == "npz":
        np.savez(folder / "new.npz", X=X)
        return folder / "new.npz", "X" + place
    (folder / "new-idx2-ubyte").write_bytes(idx_bytes(X))
    return folder / "new-idx2-ubyte", "images" + place


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    saved_model(folder, features=3, classes=2)
    return folder


@pytest.mark.parametrize("value", list(BAD))
@pytest.mark.parametrize("kind", ["csv", "npz", "idx"])
def test_every_training_reader_refuses_a_value_not_finite_in_the_dtype(tmp_path, kind, value):
    path, place = write_source(kind, tmp_path, value)
    with pytest.raises(DataError) as info:  # a CSV's nan is a missing value, unless "missing" leaves it out
        load(path, dtype="float32", **({"test_size": 0, "missing": ["", "?"]} if kind == "csv" else {}))
    message = str(info.value)
    assert path.name in message and f"{place}{BAD[value]}" in message, message


@pytest.mark.parametrize("value", list(BAD))
@pytest.mark.parametrize("kind", ["csv", "npy", "npz", "idx"])
def test_every_predict_reader_refuses_a_value_not_finite_in_the_dtype(model, tmp_path, capsys, kind, value):
    path, place = write_examples(kind, tmp_path, value)
    assert main(["predict", str(model), "--data", str(path), "--out", str(tmp_path / "out.csv")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and path.name in err and f"{place}{BAD[value]}" in err, err
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("value", list(BAD))
@pytest.mark.parametrize("method", ["predict", "predict_proba"])
def test_net_predict_refuses_what_the_cli_refuses(model, method, value):
    import graphnet as gn

    net = gn.load_checkpoint(model)
    with pytest.raises(DataError, match=rf"^{method}: X\[{ROW}, {COLUMN}\]: .* {BAD[value]}"):
        getattr(net, method)(features_with(value))
    with pytest.raises(DataError, match=rf"X\['x'\]\[{ROW}, {COLUMN}\]"):
        getattr(net, method)({"x": features_with(value)})
    assert getattr(net, method)(features_with("0")).shape[0] == 8  # the same rows, finite, are served


def test_float64_models_and_readers_take_what_fits_in_float64(tmp_path):
    path, _ = write_source("npz", tmp_path, "1e39")
    assert load(path, dtype="float64", val_size=0)["X_train"][ROW, COLUMN] == 1e39
    csv, _ = write_source("csv", tmp_path, "1e308")
    assert load(csv, dtype="float64", val_size=0, test_size=0)["X_train"].max() == 1e308
    net = saved_model(tmp_path / "model64", dtype="float64")
    assert net.predict(features_with("1e39")).shape == (8,)
    with pytest.raises(DataError, match="nan is not a finite number"):
        net.predict(features_with("nan"))


def test_first_nonfinite_finds_the_first_value_in_c_order_across_chunks(monkeypatch):
    import graphnet.data.features as features

    monkeypatch.setattr(features, "CHUNK_VALUES", 10)  # 10 values at a time: several chunks of rows
    X = np.zeros((40, 3, 2))
    assert first_nonfinite(X, np.float32) is None
    X[17, 2, 1], X[31, 0, 0] = 1e39, np.nan
    assert first_nonfinite(X, np.float32) == (17, 2, 1)
    assert first_nonfinite(X, np.float64) == (31, 0, 0)
    assert first_nonfinite(X[:, ::-1], np.float64) == (31, 2, 0)  # a strided view
    assert first_nonfinite(np.full((3, 2), 2**62, np.int64), np.float32) is None
    assert first_nonfinite(np.full((3, 2), 70000.0, np.float32), np.float16) == (0, 0)


def test_check_finite_names_the_row_of_the_whole_array_for_a_chunk():
    chunk = np.zeros((4, 2))
    chunk[2, 1] = -np.inf
    with pytest.raises(DataError, match=r"^f.npy: X\[4098, 1\]: -inf is not a finite number"):
        check_finite(chunk, np.float32, "f.npy", first_row=4096)


@pytest.mark.parametrize("value, text", [(np.float64(2.5), "2.5"), (np.float32(0.7), "0.7"),
                                         (np.int64(7), "7"), (np.nan, "nan"), (1e39, "1e+39"), (True, "True")])
def test_number_text_is_the_value_not_its_numpy_repr(value, text):
    assert number_text(value) == text
