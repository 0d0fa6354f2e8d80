"""graphnet.data: IDX / npz / CSV / synthetic sources, splits, normalization, errors.

Small data files are written into tmp_path by the tests themselves; the real
Fashion-MNIST test uses Debian's dataset-fashion-mnist in /usr/share/datasets.
"""
from __future__ import annotations

import builtins
import contextlib
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphnet
from graphnet import DataError, data
from graphnet.data import KEYS, batches, list_datasets, load, read_idx
from graphnet.data.synthetic import ADULT_CLASSES, ADULT_COLUMNS, adult_like, write_table_csv

from tests._support.data_files import FILES, file_of, idx_bytes, make_idx, write

FASHION = Path("/usr/share/datasets/fashion-mnist")


# ----------------------------------------------------------------------------- helpers

def ids_npz(path: Path, n_train: int = 50, n_test: int = 10, **extra: np.ndarray | None) -> Path:
    """An npz whose feature 0 is the example's id, so splits can be traced; `extra` overrides arrays."""
    Xtr = np.c_[np.arange(n_train), np.arange(n_train) % 7].astype(np.float64)
    Xte = np.c_[1000 + np.arange(n_test), np.arange(n_test) % 5].astype(np.float64)
    arrays = {"X_train": Xtr, "y_train": np.arange(n_train) % 3, "X_test": Xte, "y_test": np.arange(n_test) % 3}
    arrays.update(extra)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})  # None drops a key
    return path


@contextlib.contextmanager
def raises_naming(file: Path | str, match: str | None = None) -> Iterator[pytest.ExceptionInfo[DataError]]:
    """pytest.raises(DataError, match=...) that also checks the message names `file`."""
    with pytest.raises(DataError, match=match) as info:
        yield info
    name = file.name if isinstance(file, Path) else file
    assert name in str(info.value), f"{name!r} not in {str(info.value)!r}"


@pytest.fixture(autouse=True)
def isolated_roots(tmp_path, monkeypatch):
    """No $GRAPHNET_DATA and no system folder unless a test sets one."""
    monkeypatch.delenv("GRAPHNET_DATA", raising=False)
    monkeypatch.setattr(data, "SYSTEM_DATA_DIR", tmp_path / "no-system-datasets")


# ----------------------------------------------------------------------------- IDX

@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_idx_folder_loads_scaled_and_flattened(tmp_path, gz):
    raw = make_idx(tmp_path / "d", gz=gz)
    d = load(tmp_path / "d", val_size=0)
    assert list(d) == list(KEYS)
    assert d["X_train"].shape == (20, 12) and d["X_train"].dtype == np.float32
    assert d["X_val"].shape == (0, 12) and d["y_val"].shape == (0,)
    assert d["X_test"].shape == (10, 12)
    np.testing.assert_array_equal(d["X_train"], raw["train_images"].reshape(20, 12).astype(np.float32) / 255)
    np.testing.assert_array_equal(d["y_train"], raw["train_labels"])
    np.testing.assert_array_equal(d["y_test"], raw["test_labels"])
    assert all(d[k].dtype == np.int64 for k in ("y_train", "y_val", "y_test"))
    assert all(d[k].flags.c_contiguous for k in KEYS)


def test_idx_natural_shape_and_float64(tmp_path):
    make_idx(tmp_path / "d", shape=(5, 6))
    d = load(str(tmp_path / "d"), flatten=False, dtype="float64", val_size=4)
    assert d["X_train"].shape == (16, 5, 6) and d["X_val"].shape == (4, 5, 6)
    assert d["X_test"].shape == (10, 5, 6) and d["X_train"].dtype == np.float64


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_read_idx_round_trips_every_type_code(tmp_path, dtype, gz):
    a = (np.arange(24).reshape(2, 3, 4) - (0 if np.dtype(dtype).kind == "u" else 7)).astype(dtype)
    out = read_idx(write(tmp_path / "a-idx3", idx_bytes(a), gz))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, a)


def test_kaggle_dotted_file_names_are_found(tmp_path):
    make_idx(tmp_path / "d")
    for p in (tmp_path / "d").iterdir():
        p.rename(p.with_name(p.name.replace("-idx", ".idx")))
    assert load(tmp_path / "d")["X_test"].shape == (10, 12)


def test_names_and_aliases_found_in_graphnet_data_then_system_dir(tmp_path, monkeypatch):
    env, system = tmp_path / "env", tmp_path / "system"
    make_idx(env / "fashion-mnist", n_train=30)
    make_idx(system / "fashion-mnist", n_train=40, gz=True)
    make_idx(system / "mnist", n_train=50)
    monkeypatch.setattr(data, "SYSTEM_DATA_DIR", system)
    monkeypatch.setenv("GRAPHNET_DATA", str(env))
    for alias in ("fashion-mnist", "fashion_mnist", "Fashion-MNIST"):
        d = load(alias, val_size=0)
        assert len(d["X_train"]) == 30, alias  # $GRAPHNET_DATA wins
    assert len(load("mnist", val_size=0)["X_train"]) == 50  # falls back to the system dir
    monkeypatch.delenv("GRAPHNET_DATA")
    assert len(load("fashion_mnist", val_size=0)["X_train"]) == 40
    assert list_datasets() == ["blobs", "fashion-mnist", "mnist", "spiral"]


def test_npz_and_csv_found_by_name(tmp_path, monkeypatch):
    ids_npz(tmp_path / "ids.npz")
    (tmp_path / "tab.csv").write_text("label,a\n0,1\n1,2\n0,3\n1,4\n0,5\n")
    monkeypatch.setenv("GRAPHNET_DATA", str(tmp_path))
    assert load("ids", val_size=0)["X_train"].shape == (50, 2)
    assert load("tab", val_size=0, test_size=1)["X_test"].shape == (1, 1)
    assert {"ids", "tab"} <= set(list_datasets())


# ----------------------------------------------------------------------------- real Fashion-MNIST

@pytest.fixture(scope="module")
def fashion():
    if not all((FASHION / f"{name}.gz").is_file() for name in FILES.values()):
        pytest.skip(f"Fashion-MNIST not installed in {FASHION} (Debian package dataset-fashion-mnist)")
    return load(FASHION)


def test_real_fashion_mnist(fashion):
    d = fashion
    assert d["X_train"].shape == (55000, 784) and d["X_val"].shape == (5000, 784)
    assert d["X_test"].shape == (10000, 784)
    assert d["y_train"].shape == (55000,) and d["y_val"].shape == (5000,) and d["y_test"].shape == (10000,)
    for k in ("X_train", "X_val", "X_test"):
        assert d[k].dtype == np.float32 and d[k].min() == 0.0 and d[k].max() == 1.0
    for k in ("y_train", "y_val", "y_test"):
        assert d[k].dtype == np.int64 and set(np.unique(d[k])) == set(range(10))
    np.testing.assert_array_equal(np.bincount(d["y_test"]), [1000] * 10)
    np.testing.assert_array_equal(np.bincount(np.r_[d["y_train"], d["y_val"]]), [6000] * 10)


def test_real_fashion_mnist_by_name_matches_folder(fashion, monkeypatch):
    monkeypatch.setattr(data, "SYSTEM_DATA_DIR", FASHION.parent)
    labels = read_idx(FASHION / "train-labels-idx1-ubyte.gz")
    assert labels.shape == (60000,) and labels[:5].tolist() == [9, 0, 0, 3, 0]
    d = load("fashion_mnist", val_size=0, flatten=False, normalize=None)
    assert d["X_train"].shape == (60000, 28, 28) and d["X_train"].max() == 255.0
    np.testing.assert_array_equal(d["y_train"], labels)


# ----------------------------------------------------------------------------- npz

def test_npz_with_all_six_keys_used_as_is(tmp_path):
    p = ids_npz(tmp_path / "six.npz", X_val=np.ones((4, 2)), y_val=np.array([0, 1, 2, 1]))
    d = load(p)
    assert list(d) == list(KEYS)
    assert d["X_train"].shape == (50, 2) and d["X_val"].shape == (4, 2) and d["X_test"].shape == (10, 2)
    np.testing.assert_array_equal(d["y_val"], [0, 1, 2, 1])
    with raises_naming(p, "val_size"):
        load(p, val_size=3)


def test_npz_without_val_splits_train_and_accepts_integral_float_labels(tmp_path):
    p = ids_npz(tmp_path / "four.npz", y_train=(np.arange(50) % 3).astype(np.float32))
    d = load(p, val_size=0.2)
    assert d["X_train"].shape == (40, 2) and d["X_val"].shape == (10, 2)
    assert d["y_train"].dtype == np.int64
    np.testing.assert_array_equal(d["y_train"], d["X_train"][:, 0].astype(int) % 3)  # labels follow rows


def test_npz_object_array_refused_without_unpickling(tmp_path):
    flag = "_graphnet_test_unpickled"

    class Payload:
        def __reduce__(self):
            return (exec, (f"import builtins; builtins.{flag} = True",))

    obj = np.empty(3, dtype=object)
    obj[:] = [Payload(), Payload(), Payload()]
    p = ids_npz(tmp_path / "evil.npz", y_test=obj)
    try:
        with raises_naming(p, "'y_test'.*object array.*without unpickling"):
            load(p)
        assert not hasattr(builtins, flag), "the object array was unpickled"
        # control: the payload really does run when unpickled, so the check above means something
        np.load(p, allow_pickle=True)["y_test"]
        assert getattr(builtins, flag, False)
    finally:
        if hasattr(builtins, flag):
            delattr(builtins, flag)


@pytest.mark.parametrize("arrays, match", [
    ({"y_test": None}, r"missing array\(s\) y_test; it has 'X_test', 'X_train', 'y_train'"),
    ({"y_val": np.zeros(2, int)}, "missing.*X_val"),
    ({"y_train": np.arange(49) % 3}, "50 examples but y_train has 49"),
    ({"y_train": np.eye(3)[np.arange(50) % 3]}, "1-D class indices.*one-hot"),
    ({"y_train": np.arange(50) * 0.5}, "whole numbers"),
    ({"y_test": -np.ones(10, int)}, "must be >= 0"),
    ({"X_test": np.zeros((10, 3))}, r"X_test: examples have shape \(3,\), but X_train has \(2,\)"),
    ({"X_train": np.array(["a"] * 50)[:, None]}, "numeric"),
])
def test_npz_content_errors(tmp_path, arrays, match):
    p = ids_npz(tmp_path / "bad.npz", **arrays)
    with raises_naming(p, match):
        load(p)


def test_npz_nan_in_features(tmp_path):
    X = np.zeros((50, 2))
    X[7, 1] = np.nan
    p = ids_npz(tmp_path / "nan.npz", X_train=X)
    with raises_naming(p, r"X_train\[7, 1\]: nan is not a finite number"):
        load(p)
    X[7, 1] = np.inf
    ids_npz(p, X_test=np.full((10, 2), -np.inf))
    with raises_naming(p, "X_test.*finite"):
        load(p)


@pytest.mark.parametrize("payload", [b"not a zip at all", b"PK\x03\x04 truncated zip"])
def test_npz_corrupt_file(tmp_path, payload):
    p = tmp_path / "corrupt.npz"
    p.write_bytes(payload)
    with raises_naming(p):
        load(p)


def test_npz_truncated_archive(tmp_path):
    p = ids_npz(tmp_path / "cut.npz", n_train=2000)
    p.write_bytes(p.read_bytes()[:3000])
    with raises_naming(p):
        load(p)


# ----------------------------------------------------------------------------- CSV

def test_csv_with_header_label_column_and_test_fraction(tmp_path):
    rows = "\n".join(f"{i},{i % 4},{2 * i}" for i in range(40))
    p = tmp_path / "t.csv"
    p.write_text("id,Target,double\n" + rows + "\n")
    d = load(p, test_size=0.25, val_size=6, seed=3)
    assert d["X_train"].shape == (24, 2) and d["X_val"].shape == (6, 2) and d["X_test"].shape == (10, 2)
    all_ids = np.sort(np.r_[d["X_train"][:, 0], d["X_val"][:, 0], d["X_test"][:, 0]])
    np.testing.assert_array_equal(all_ids, np.arange(40))
    for split in ("train", "val", "test"):
        X, y = d[f"X_{split}"], d[f"y_{split}"]
        np.testing.assert_array_equal(y, X[:, 0].astype(int) % 4)
        np.testing.assert_array_equal(X[:, 1], 2 * X[:, 0])


def test_csv_headerless_with_index_and_test_file(tmp_path):
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    train.write_text("".join(f"{i}.5;{i % 2}\n" for i in range(10)))
    test.write_text("".join(f"{i}.25;{i % 2}\n" for i in range(3)))
    d = load(train, label_column=-1, test_file=test, val_size=2)
    assert d["X_train"].shape == (8, 1) and d["X_test"].shape == (3, 1)
    np.testing.assert_array_equal(d["y_test"], [0, 1, 0])
    np.testing.assert_allclose(d["X_test"][:, 0], [0.25, 1.25, 2.25])


def test_csv_label_column_by_name_and_test_file_columns_must_match(tmp_path):
    train, test = tmp_path / "a.csv", tmp_path / "b.csv"
    train.write_text("x1,cls,x2\n1,0,2\n3,1,4\n5,0,6\n7,1,8\n")
    test.write_text("x1,cls,x3\n1,0,2\n")
    with raises_naming(train, "no label column named label/y/target.*'x1', 'cls', 'x2'"):
        load(train)
    with raises_naming(train, "no column named 'klass'"):
        load(train, label_column="klass")
    with raises_naming(test, "differ"):
        load(train, label_column="cls", test_file=test)
    test.write_text("x1,cls,x2\n9,1,10\n")
    d = load(train, label_column="cls", test_file=test, val_size=1)
    np.testing.assert_array_equal(d["X_test"], [[9, 10]])


@pytest.mark.parametrize("body, match", [
    ("label,a\n0,1\n1,inf\n", r"line 3, column 'a': 'inf' is not a finite number"),
    ("label,a\n0,1\n1,abc\n", r"line 3, column 'a': 'abc' is not a number, while other cells of the column are "
                              r"numbers \(such as '1'\): fix the cell, or declare the column categorical"),
    ("label,a\n0,1\n1\n", r"line 3 has 1 fields, expected 2"),
    ("label,a\n0,1\n1,2\n,3\n", r"label column 'label', line 4: the label is missing \(''\)"),
    ("label,a\n0,1\n?,2\n", r"label column 'label', line 3: the label is missing \('\?'\)"),
    ("label,a\n0,1\n1.5,2\n", r"whole numbers"),
    ("label,a\n", r"no data rows"),
    ("\n", r"empty"),
    ("label\n1\n", r"only one column"),
])
def test_csv_errors_name_the_file_and_line(tmp_path, body, match):
    p = tmp_path / "bad.csv"
    p.write_text(body)
    with raises_naming(p, match):
        load(p, test_size=0)


# ----------------------------------------------------------------------------- float targets (regression, binary)

def test_csv_float_target_column_for_a_shape_label(tmp_path):
    p = tmp_path / "reg.csv"
    p.write_text("a,target\n" + "".join(f"{i},{0.5 * i + 0.25}\n" for i in range(20)))
    with raises_naming(p, "whole numbers"):
        load(p)  # read as class labels without target_shape
    d = load(p, target_shape=[1], val_size=4, test_size=4, dtype="float32")
    for split, n in (("train", 12), ("val", 4), ("test", 4)):
        X, y = d[f"X_{split}"], d[f"y_{split}"]
        assert y.shape == (n, 1) and y.dtype == np.float32
        np.testing.assert_allclose(y[:, 0], 0.5 * X[:, 0] + 0.25)


def test_csv_test_file_targets_and_one_label_column_only(tmp_path):
    train, test = tmp_path / "a.csv", tmp_path / "b.csv"
    train.write_text("x,y\n" + "".join(f"{i},{i / 3}\n" for i in range(9)))
    test.write_text("x,y\n1,0.75\n")
    d = load(train, test_file=test, target_shape=(1,), val_size=0, dtype="float64")
    np.testing.assert_array_equal(d["y_test"], [[0.75]])
    with raises_naming(train, r"targets of shape \[2\].*one label column"):
        load(train, target_shape=[2])
    with raises_naming(train, "classes= applies to class labels"):
        load(train, target_shape=[1], classes=2)


@pytest.mark.parametrize("y_train", [np.linspace(0, 1, 50), np.linspace(0, 1, 50)[:, None],
                                     np.arange(50) % 2, (np.arange(50) % 2).astype(bool)],
                         ids=["column", "(N,1)", "int 0/1", "bool"])
def test_npz_targets_become_float_of_the_declared_shape(tmp_path, y_train):
    p = ids_npz(tmp_path / "t.npz", y_train=y_train, y_test=np.zeros(10))
    d = load(p, target_shape=[1], val_size=0, dtype="float32")
    assert d["y_train"].shape == (50, 1) and d["y_train"].dtype == np.float32
    np.testing.assert_allclose(d["y_train"][:, 0], np.asarray(y_train, np.float64).reshape(50))
    assert d["y_test"].shape == (10, 1)


def test_npz_wider_targets_are_reshaped_or_refused(tmp_path):
    p = ids_npz(tmp_path / "w.npz", y_train=np.ones((50, 4)), y_test=np.ones((10, 2, 2)))
    d = load(p, target_shape=[2, 2], val_size=0)
    assert d["y_train"].shape == (50, 2, 2) and d["y_test"].shape == (10, 2, 2)
    with raises_naming(p, r"y_train: targets have shape \(50, 4\), but the label declares shape \[3\]"
                          r" per example: expected \(50, 3\)"):
        load(p, target_shape=[3])


@pytest.mark.parametrize("y_train, match", [
    (np.r_[np.zeros(49), np.nan], r"y_train\[49\]: target nan is not a finite number"),
    (np.array(["a"] * 50), r"y_train: targets must be numbers"),
    (np.r_[np.zeros(49), 1e300], r"y_train\[49\]: target 1e\+300 does not fit in float32"),
])
def test_bad_targets_are_located(tmp_path, y_train, match):
    p = ids_npz(tmp_path / "bad.npz", y_train=y_train)
    with raises_naming(p, match):
        load(p, target_shape=[1])


def test_synthetic_and_idx_class_labels_as_float_targets(tmp_path):
    d = load("blobs", classes=2, target_shape=[1], val_size=0.1)
    plain = load("blobs", classes=2, val_size=0.1, stratify=False)  # float targets are not stratified
    for split in ("train", "val", "test"):
        assert d[f"y_{split}"].dtype == np.float32 and d[f"y_{split}"].shape == (len(plain[f"y_{split}"]), 1)
        np.testing.assert_array_equal(d[f"y_{split}"][:, 0], plain[f"y_{split}"])
    make_idx(tmp_path / "digits")
    assert load(tmp_path / "digits", target_shape=[1])["y_test"].shape == (10, 1)


def test_prepare_data_converts_an_in_memory_dict():
    rng = np.random.default_rng(0)
    raw = {"X_train": rng.standard_normal((8, 2, 2)), "y_train": rng.standard_normal(8),
           "X_test": rng.standard_normal((3, 2, 2)), "y_test": rng.standard_normal(3)}
    d = data.prepare_data(raw, target_shape=[1], dtype="float32", name="homework")
    assert list(d) == list(KEYS)
    assert d["X_train"].dtype == d["y_train"].dtype == np.float32 and d["y_train"].shape == (8, 1)
    assert d["X_val"].shape == (0, 2, 2) and d["y_val"].shape == (0, 1)
    classes = data.prepare_data({**raw, "y_train": np.arange(8) % 3, "y_test": np.array([0, 1, 2])})
    assert classes["y_train"].dtype == np.int64
    with pytest.raises(DataError, match=r"homework: y_train\[0\]: label -0.159\d*: class labels must be whole numbers"):
        data.prepare_data(raw, name="homework")
    with pytest.raises(DataError, match=r"homework: missing y_val"):
        data.prepare_data({**raw, "X_val": raw["X_test"]}, name="homework")
    with pytest.raises(DataError, match=r"homework: X_test: examples have shape \(4,\)"):
        data.prepare_data({**raw, "X_test": np.zeros((3, 4))}, target_shape=[1], name="homework")


# ----------------------------------------------------------------------------- synthetic

def test_spiral_is_the_cs231n_spiral():
    X, y = data.spiral(points=50, classes=4, noise=0.0)
    assert X.shape == (200, 2) and y.shape == (200,) and y.dtype == np.int64
    r = np.linspace(0, 1, 50)
    for j in range(4):
        t = np.linspace(j * 4, (j + 1) * 4, 50)
        np.testing.assert_allclose(X[y == j], np.c_[r * np.sin(t), r * np.cos(t)])
    assert np.abs(X).max() <= 1.0


@pytest.mark.parametrize("name", ["spiral", "blobs"])
def test_synthetic_is_deterministic_by_seed(name):
    a, b, c = load(name, seed=1), load(name, seed=1), load(name, seed=2)
    assert list(a) == list(KEYS)
    for k in KEYS:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["X_train"], c["X_train"])
    assert len(a["X_train"]) + len(a["X_val"]) + len(a["X_test"]) == 300
    assert len(a["X_test"]) == 60 and len(a["X_val"]) == 24  # defaults: 20% test, then 10% val


def test_synthetic_options():
    d = load("spiral", points=30, classes=5, noise=0.1, test_size=0, val_size=0)
    assert d["X_train"].shape == (150, 2) and set(d["y_train"]) == set(range(5))
    d = load("blobs", points=10, classes=2, features=7, std=0.5, test_size=5)
    assert d["X_test"].shape == (5, 7)
    with raises_naming("spiral", "unknown option.*colors.*points, classes, noise"):
        load("spiral", colors=3)
    with raises_naming("blobs", "points must be an int >= 1"):
        load("blobs", points=0)



def test_adult_like_is_a_raw_table_with_a_one_to_four_label():
    X, income = adult_like(1000, seed=3)
    assert X.shape == (1000, 5) and X.dtype == object and set(income) == set(ADULT_CLASSES)
    assert np.mean(income == ">50K") == pytest.approx(0.2, abs=0.002)  # the top fifth of a score
    missing = [np.mean([v is None for v in X[:, j]]) for j in range(5)]
    assert 0.02 < missing[0] < 0.08 and 0.02 < missing[1] < 0.08 and missing[2:] == [0, 0, 0]  # age, workclass
    assert all(isinstance(v, str) for j in (1, 2, 3) for v in X[:, j] if v is not None)
    again, same = adult_like(1000, seed=3)
    assert X.tolist() == again.tolist() and same.tolist() == income.tolist()
    assert adult_like(1000, seed=4)[0].tolist() != X.tolist()
    with raises_naming("adult_like", "option n must be an int >= 1"):
        adult_like(0)


def test_write_table_csv_writes_what_graphnet_reads_back(tmp_path):
    X, income = adult_like(200, seed=1)
    X[0, 1] = "Self-emp, incorporated"  # a comma inside a cell: quoted
    path = write_table_csv(tmp_path / "adult.csv", X, income, ADULT_COLUMNS, label="income")
    lines = path.read_text().splitlines()
    assert lines[0] == "income," + ",".join(ADULT_COLUMNS) and len(lines) == 201
    assert '"Self-emp, incorporated"' in lines[1]
    first_missing_age = next(i for i in range(200) if X[i, 0] is None)
    assert lines[1 + first_missing_age].split(",")[1] == ""  # a number column's missing cell: empty
    first_missing_work = next(i for i in range(200) if X[i, 1] is None)
    assert lines[1 + first_missing_work].split(",")[2] == "?"  # a text column's: "?"
    _, info = data.load_with_info(path, label_column="income", test_size=0, val_size=0)
    kinds = {c.name: c.kind for c in info.encoding.columns}
    assert kinds == {"age": "number", "workclass": "category", "education": "category", "sex": "category",
                     "hours": "number"}
    assert "Self-emp, incorporated" in next(c for c in info.encoding.columns if c.name == "workclass").categories
    assert info.class_names == ADULT_CLASSES
    assert write_table_csv(tmp_path / "features.csv", X, None, ADULT_COLUMNS).read_text().startswith("age,")


# ----------------------------------------------------------------------------- splits

def test_val_split_is_seeded_disjoint_and_ordered(tmp_path):
    p = ids_npz(tmp_path / "ids.npz", n_train=100)
    a, b, c = load(p, val_size=30, seed=5), load(p, val_size=30, seed=5), load(p, val_size=30, seed=6)
    np.testing.assert_array_equal(a["X_val"], b["X_val"])
    assert not np.array_equal(a["X_val"], c["X_val"])
    tr, va = a["X_train"][:, 0], a["X_val"][:, 0]
    assert len(tr) == 70 and len(va) == 30
    np.testing.assert_array_equal(np.sort(np.r_[tr, va]), np.arange(100))
    assert np.all(np.diff(tr) > 0) and np.all(np.diff(va) > 0)  # original order kept
    np.testing.assert_array_equal(a["y_val"], va.astype(int) % 3)


@pytest.mark.parametrize("val_size, n_val", [(None, 10), (0, 0), (7, 7), (0.25, 25), (0.0, 0), (99, 99)])
def test_val_size_forms(tmp_path, val_size, n_val):
    p = ids_npz(tmp_path / "ids.npz", n_train=100)
    assert len(load(p, val_size=val_size)["X_val"]) == n_val


@pytest.mark.parametrize("val_size", [100, -1, 1.0, -0.1, "10", True])
def test_bad_val_size(tmp_path, val_size):
    p = ids_npz(tmp_path / "ids.npz", n_train=100)
    with pytest.raises(DataError, match="val_size"):
        load(p, val_size=val_size)


def test_default_val_size_is_capped_at_5000(tmp_path):
    n = 60000
    np.savez(tmp_path / "big.npz", X_train=np.zeros((n, 1), np.uint8), y_train=np.zeros(n, np.uint8),
             X_test=np.zeros((1, 1), np.uint8), y_test=np.zeros(1, np.uint8))
    d = load(tmp_path / "big.npz")
    assert len(d["X_train"]) == 55000 and len(d["X_val"]) == 5000


@given(n=st.integers(1, 300), frac=st.floats(0.0, 0.99), seed=st.integers(0, 2**32))
@settings(max_examples=40, deadline=None)
def test_split_property_partitions_train(n, frac, seed):
    d = load("blobs", points=n, classes=1, features=1, test_size=0, val_size=frac, seed=seed)
    assert len(d["X_train"]) + len(d["X_val"]) == n and len(d["X_train"]) >= 1
    assert len(d["X_val"]) == min(round(frac * n), n - 1)


# ----------------------------------------------------------------------------- normalization

def test_standardize_uses_train_statistics_only(tmp_path):
    rng = np.random.default_rng(0)
    Xtr = rng.normal(5.0, 3.0, (200, 4))
    Xtr[:, 3] = 7.0  # a constant feature: std taken as 1
    p = ids_npz(tmp_path / "s.npz", X_train=Xtr, y_train=np.zeros(200, int),
                X_test=rng.normal(-50.0, 10.0, (10, 4)))
    raw = load(p, normalize=None, val_size=40, dtype="float64")
    d = load(p, normalize="standardize", val_size=40, dtype="float64")
    mean, std = raw["X_train"].mean(0), raw["X_train"].std(0)
    std[std == 0] = 1
    for k in ("X_train", "X_val", "X_test"):
        np.testing.assert_allclose(d[k], (raw[k] - mean) / std, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(d["X_train"][:, :3].mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(d["X_train"][:, :3].std(0), 1, rtol=1e-12)
    assert np.all(d["X_train"][:, 3] == 0)
    assert d["X_test"].mean() < -5  # test data far from train stays far: not re-centred on itself


def test_standardize_float32_image_shape(tmp_path):
    make_idx(tmp_path / "d", n_train=100)
    d = load(tmp_path / "d", normalize="standardize", flatten=False)
    assert d["X_train"].shape == (90, 4, 3) and d["X_train"].dtype == np.float32
    np.testing.assert_allclose(d["X_train"].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(d["X_train"].std(0), 1, atol=1e-5)


def test_scale(tmp_path):
    raw = make_idx(tmp_path / "d")
    for normalize in ("scale", "auto"):
        assert load(tmp_path / "d", normalize=normalize, val_size=0)["X_train"].max() == raw["train_images"].max() / 255
    for normalize in (None, "none"):
        np.testing.assert_array_equal(load(tmp_path / "d", normalize=normalize, val_size=0)["X_train"],
                                      raw["train_images"].reshape(20, -1))
    p = ids_npz(tmp_path / "f.npz")  # float features: "scale" is min-max by the training split
    d = load(p, normalize="scale", val_size=0)
    assert d["X_train"].min() == 0 and d["X_train"].max() == 1
    assert d["X_test"].max() > 1  # test ids 1000+ lie beyond the training range
    assert load(p, val_size=0)["X_train"].max() == 49  # auto: floats are left alone


def test_scale_fits_each_feature_its_own_range():
    """Features on very different scales each map to [0, 1] on the training split: one
    range over all of them would squash every feature but the widest."""
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (50, 3)) * np.array([1.0, 1000.0, 0.01]) + np.array([0.0, -500.0, 7.0])
    X[:, 0] = 3.0  # a constant feature: shifted to 0, not divided by a zero range
    d, info = load_with_info_arrays({"X_train": X, "y_train": np.zeros(50, np.int64)}, "scale")
    np.testing.assert_allclose(d["X_train"][:, 1:].min(axis=0), 0, atol=1e-7)
    np.testing.assert_allclose(d["X_train"][:, 1:].max(axis=0), 1, atol=1e-6)
    assert (d["X_train"][:, 0] == 0).all()
    assert info.shift.shape == info.scale.shape == (3,) and info.scale[0] == 1


def load_with_info_arrays(arrays: dict, normalize: str):
    from graphnet.data import from_arrays

    return from_arrays(arrays, normalize=normalize, val_size=0, dtype="float64")


@pytest.mark.parametrize("kwargs, match", [
    ({"normalize": "zscore"}, "normalize"),
    ({"dtype": "int32"}, "floating"),
    ({"dtype": "nonsense"}, "dtype"),
    ({"seed": -1}, "seed"),
    ({"label_column": "y"}, "label_column does not apply"),
    ({"test_size": 0.1}, "test_size does not apply"),
    ({"points": 3}, "option.*points does not apply"),
])
def test_bad_arguments(tmp_path, kwargs, match):
    p = ids_npz(tmp_path / "ids.npz")
    with pytest.raises(DataError, match=match):
        load(p, **kwargs)


# ----------------------------------------------------------------------------- IDX corruption

def test_truncated_gz(tmp_path):
    make_idx(tmp_path / "d", gz=True, n_train=200)
    f = file_of(tmp_path / "d", "train_images")
    f.write_bytes(f.read_bytes()[:-40])
    with raises_naming(f, "corrupt or truncated gzip"):
        load(tmp_path / "d")


def test_not_gzip_but_named_gz(tmp_path):
    make_idx(tmp_path / "d", gz=True)
    f = file_of(tmp_path / "d", "test_labels")
    f.write_bytes(b"hello, world")
    with raises_naming(f, "not gzip"):
        load(tmp_path / "d")


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_truncated_data_and_trailing_bytes(tmp_path, gz):
    good = idx_bytes(np.zeros((20, 4, 3), np.uint8))
    make_idx(tmp_path / "d", gz=gz, train_images=good[:-1])
    with raises_naming(file_of(tmp_path / "d", "train_images"), r"truncated.*\(20, 4, 3\).*240 data bytes.*239"):
        load(tmp_path / "d")
    make_idx(tmp_path / "e", gz=gz, train_images=good + b"\0")
    with raises_naming(file_of(tmp_path / "e", "train_images"), "trailing bytes"):
        load(tmp_path / "e")
    make_idx(tmp_path / "f", gz=gz, train_images=good[:10])
    with raises_naming(file_of(tmp_path / "f", "train_images"), "truncated IDX header"):
        load(tmp_path / "f")


@pytest.mark.parametrize("magic", [b"\x12\x34\x08\x03", b"\x00\x00\x07\x03", b"\x00\x00\x08\x00", b"\x00\x00"])
def test_wrong_magic(tmp_path, magic):
    good = idx_bytes(np.zeros((20, 4, 3), np.uint8))
    make_idx(tmp_path / "d", train_images=magic + good[4:] if len(magic) == 4 else magic)
    with raises_naming(file_of(tmp_path / "d", "train_images"), "magic|shorter"):
        load(tmp_path / "d")


def test_wrong_dims(tmp_path):
    make_idx(tmp_path / "d", test_labels=idx_bytes(np.zeros((10, 1), np.uint8)))
    with raises_naming(file_of(tmp_path / "d", "test_labels"), r"declares 2 dimension\(s\), expected 1"):
        load(tmp_path / "d")
    make_idx(tmp_path / "e", train_images=idx_bytes(np.zeros((20, 12), np.uint8)))
    with raises_naming(file_of(tmp_path / "e", "train_images"), r"declares 2 dimension\(s\), expected 3"):
        load(tmp_path / "e")
    make_idx(tmp_path / "f", test_images=idx_bytes(np.zeros((10, 3, 4), np.uint8)))
    with raises_naming(file_of(tmp_path / "f", "test_images"), r"\(3, 4\).*train-images.*\(4, 3\)"):
        load(tmp_path / "f")
    make_idx(tmp_path / "g", test_images=idx_bytes(np.zeros((10, 0, 4), np.uint8)))
    with raises_naming(file_of(tmp_path / "g", "test_images"), "empty dimension"):
        load(tmp_path / "g")


def test_label_image_count_mismatch(tmp_path):
    make_idx(tmp_path / "d", train_labels=idx_bytes(np.zeros(19, np.uint8)))
    with raises_naming(file_of(tmp_path / "d", "train_images"), "20 examples but .*train-labels.* has 19 labels"):
        load(tmp_path / "d")


def test_labels_out_of_range(tmp_path):
    make_idx(tmp_path / "d", test_labels=idx_bytes(np.array([0] * 9 + [10], np.uint8)))
    with raises_naming(file_of(tmp_path / "d", "test_labels"), r"labels\[9\]: label 10: out of range 0..9"):
        load(tmp_path / "d")
    assert load(tmp_path / "d", classes=11)["y_test"].max() == 10  # e.g. EMNIST: say how many classes


def test_nan_in_float_idx_features(tmp_path):
    X = np.zeros((20, 4, 3), np.float32)
    X[3, 2, 1] = np.nan
    make_idx(tmp_path / "d", train_images=idx_bytes(X))
    with raises_naming(file_of(tmp_path / "d", "train_images"), r"images\[3, 2, 1\]: nan is not a finite number"):
        load(tmp_path / "d")


def test_missing_idx_file(tmp_path):
    make_idx(tmp_path / "d")
    file_of(tmp_path / "d", "test_labels").unlink()
    with raises_naming(tmp_path / "d", "missing IDX file.*t10k-labels-idx1-ubyte"):
        load(tmp_path / "d")


def test_missing_paths_and_unknown_names(tmp_path, monkeypatch):
    with raises_naming(tmp_path / "nowhere", "no such file"):
        load(tmp_path / "nowhere")
    (tmp_path / "x.parquet").write_bytes(b"")
    with raises_naming("x.parquet", "unsupported"):
        load(tmp_path / "x.parquet")
    monkeypatch.setenv("GRAPHNET_DATA", str(tmp_path / "env"))
    with pytest.raises(DataError) as e:
        load("mnist")
    msg = str(e.value)
    assert "'mnist' not found" in msg and str(tmp_path / "env" / "mnist") in msg
    assert str(tmp_path / "no-system-datasets" / "mnist") in msg
    with pytest.raises(DataError, match="unknown dataset 'fasion-mnist'. Did you mean 'fashion-mnist'"):
        load("fasion-mnist")
    with pytest.raises(DataError, match="Did you mean 'spiral'"):
        load("spirale")


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError) and issubclass(DataError, graphnet.GraphnetError)


# ----------------------------------------------------------------------------- batches

def test_batches_cover_an_epoch_without_replacement():
    X, y = np.arange(23)[:, None] * 10, np.arange(23)
    got = list(batches(X, y, 5, rng=np.random.default_rng(0)))
    assert [len(b) for b, _ in got] == [5, 5, 5, 5, 3]
    seen = np.concatenate([yb for _, yb in got])
    assert sorted(seen) == list(range(23)) and not np.array_equal(seen, np.arange(23))
    for xb, yb in got:
        np.testing.assert_array_equal(xb[:, 0], yb * 10)
    again = np.concatenate([yb for _, yb in batches(X, y, 5, rng=0)])
    np.testing.assert_array_equal(again, np.concatenate([yb for _, yb in batches(X, y, 5, rng=0)]))


def test_batches_in_order_are_views():
    X, y = np.arange(10.0)[:, None], np.arange(10)
    got = list(batches(X, y, 4, shuffle=False))
    assert [yb.tolist() for _, yb in got] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert all(np.shares_memory(xb, X) for xb, _ in got)


def test_batches_errors_are_raised_at_call_time():
    with pytest.raises(DataError, match="batch_size"):
        batches(np.zeros((3, 1)), np.zeros(3), 0)
    with pytest.raises(DataError, match="3 examples but y has 2"):
        batches(np.zeros((3, 1)), np.zeros(2), 1)


@given(n=st.integers(0, 200), b=st.integers(1, 64), seed=st.integers(0, 100))
@settings(max_examples=50, deadline=None)
def test_batches_property(n, b, seed):
    y = np.arange(n)
    sizes, seen = [], []
    for xb, yb in batches(y[:, None], y, b, rng=seed):
        sizes.append(len(yb))
        seen.extend(yb.tolist())
    assert sorted(seen) == list(range(n))
    assert all(s == b for s in sizes[:-1]) and (not sizes or 1 <= sizes[-1] <= b)


def test_a_missing_known_dataset_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHNET_DATA", str(tmp_path / "env"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as e:
        load("fashion-mnist")
    msg = str(e.value)
    assert "apt-get install -y dataset-fashion-mnist" in msg
    assert "$GRAPHNET_DATA/fashion-mnist/" in msg
    for base, _ in data.IDX_FILES.values():
        assert base in msg
    with pytest.raises(DataError) as e:
        load("mnist")
    assert "apt-get" not in str(e.value) and "train-images-idx3-ubyte" in str(e.value)


# ---- CSV text labels: class names ---------------------------------------------------------------


def write_text_labels(path: Path, rows: list[tuple[str, float, float]]) -> Path:
    path.write_text("kind,a,b\n" + "".join(f"{k},{a},{b}\n" for k, a, b in rows))
    return path


TEXT_ROWS = [("dog", 1.0, 2.0), ("cat", 3.0, 4.0), ("emu", 5.0, 6.0), ("cat", 7.0, 8.0), ("dog", 9.0, 1.0)] * 4


def test_csv_text_labels_become_sorted_class_indices_and_class_names(tmp_path):
    csv = write_text_labels(tmp_path / "pets.csv", TEXT_ROWS)
    d, info = data.load_with_info(csv, label_column="kind", test_size=0, val_size=0, dtype="float64")
    assert info.class_names == ("cat", "dog", "emu")
    assert info.feature_names == ("a", "b") and info.label_column == "kind"
    np.testing.assert_array_equal(d["y_train"], [1, 0, 2, 0, 1] * 4)
    np.testing.assert_array_equal(d["X_train"][:2], [[1.0, 2.0], [3.0, 4.0]])


def test_csv_text_labels_of_a_test_file_use_the_training_names(tmp_path):
    train = write_text_labels(tmp_path / "train.csv", TEXT_ROWS)
    test = write_text_labels(tmp_path / "test.csv", [("emu", 0.0, 0.0), ("cat", 1.0, 1.0)])
    d, info = data.load_with_info(train, label_column="kind", test_file=test)
    np.testing.assert_array_equal(d["y_test"], [2, 0])
    unknown = write_text_labels(tmp_path / "unknown.csv", [("cat", 0.0, 0.0), ("yak", 1.0, 1.0)])
    with pytest.raises(DataError, match=r"unknown\.csv: label column 'kind', line 3: label 'yak' is not a class"):
        load(train, label_column="kind", test_file=unknown)


def test_csv_text_labels_against_numbers_and_class_counts_are_clear_errors(tmp_path):
    train = write_text_labels(tmp_path / "train.csv", TEXT_ROWS)
    numeric = write_text_labels(tmp_path / "numeric.csv", [("0", 0.0, 0.0), ("1", 1.0, 1.0)] * 5)
    with pytest.raises(DataError, match=r"train\.csv: labels are text but .*numeric\.csv's are numbers"):
        load(numeric, label_column="kind", test_file=train)
    with pytest.raises(DataError, match=r"3 class names \('cat', 'dog', 'emu'\) but 4 classes"):
        load(train, label_column="kind", classes=4)
    with pytest.raises(DataError, match=r"line 2: label 'dog' is not a number"):
        load(train, label_column="kind", target_shape=(1,))


def test_csv_class_names_given_map_the_labels(tmp_path):
    csv = write_text_labels(tmp_path / "pets.csv", TEXT_ROWS)
    d = load(csv, label_column="kind", class_names=["emu", "dog", "cat"], test_size=0, val_size=0)
    np.testing.assert_array_equal(d["y_train"][:5], [1, 2, 0, 2, 1])


def test_csv_text_labels_with_a_bad_feature_name_its_line_and_field(tmp_path):
    csv = write_text_labels(tmp_path / "pets.csv", TEXT_ROWS[:3] + [("cat", "x1", 2.0)])  # type: ignore[list-item]
    with pytest.raises(DataError, match=r"pets\.csv: line 5, column 'a': 'x1' is not a number, while other cells"):
        load(csv, label_column="kind")
