"""A table's columns as a model reads them (graphnet.data.columns): kinds declared or
inferred, the encoding fitted on the training split (categories, imputation values), the
encoded layout, unseen categories and missing cells, and the saved description; and
the CSV reader and `load` on tables."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphnet.data import load_with_info
from graphnet.data.columns import (
    ColumnEncoding,
    EncodeCounts,
    TableSettings,
    array_rows,
    column_kinds,
    fit_encoding,
)
from graphnet.errors import DataError

NAMES = ("age", "job", "size")


def table(*rows: tuple) -> np.ndarray:
    return np.array(rows, dtype=object)


def test_text_columns_are_inferred_categorical_and_numbers_stay_numbers():
    X = table((30, "cook", 1), (None, "pilot", 2), (50, None, 3))
    kinds = column_kinds(X, NAMES, (), ("", "?"), np.float32, array_rows("X"))
    assert kinds == ("number", "category", "number")
    assert column_kinds(X, NAMES, ("size",), ("",), np.float32, array_rows("X"))[2] == "category"


def test_a_column_mixing_numbers_and_text_names_the_cell_and_what_to_do():
    X = table((30, "cook"), ("3O", "pilot"), (50, "cook"))
    with pytest.raises(DataError, match=r"^X\[1\], column 'age': '3O' is not a number, while other cells of the column "
                                        r"are numbers \(such as '30'\): fix the cell, or declare the column "
                                        r"categorical \(train\.data\.options\.categorical\)"):
        column_kinds(X, NAMES[:2], (), ("",), np.float32, array_rows("X"))
    strict = table((30, "cook"), ("", "pilot"))
    with pytest.raises(DataError, match=r"X\[1\], column 'age': '' is empty, and \"\" is not a missing value here "
                                        r"\(train\.data\.options\.missing\)"):
        column_kinds(strict, NAMES[:2], (), ("?",), np.float32, array_rows("X"))
    with pytest.raises(DataError, match=r"categorical: 'jobs' is not a feature column \(columns: 'age', 'job'\)"):
        column_kinds(X, NAMES[:2], ("jobs",), ("",), np.float32, array_rows("X"), setting="categorical")


def test_a_number_not_finite_in_the_dtype_is_named():
    X = table((30, "cook"), (1e39, "pilot"))
    with pytest.raises(DataError, match=r"X\[1\], column 'age': '1e\+39' does not fit in float32"):
        column_kinds(X, NAMES[:2], (), ("",), np.float32, array_rows("X"))
    assert column_kinds(X, NAMES[:2], (), ("",), np.float64, array_rows("X")) == ("number", "category")


@pytest.mark.parametrize("impute, fill", [("median", 30.0), ("mean", 110 / 3), ("zero", 0.0)])
def test_the_encoding_is_fitted_on_the_training_split(impute, fill):
    train = table((20, "pilot", 1), (30, "cook", 2), (None, "cook", 3), (60, None, 4))
    encoding = fit_encoding(train, NAMES, ("number", "category", "number"), impute=impute, missing=("",))
    assert [c.fill for c in encoding.columns if c.kind == "number"] == pytest.approx([fill, 2.5 if impute != "zero"
                                                                                      else 0.0])
    assert encoding.columns[1].categories == ("cook", "pilot")  # sorted; a missing cell is no category
    assert encoding.width == 2 + 2 + 2
    assert encoding.feature_names() == ("age", "size", "job=cook", "job=pilot", "job=<missing>", "job=<unknown>")


def test_encoded_rows_light_one_slot_per_categorical_column_missing_and_unseen_included():
    encoding = fit_encoding(table((20, "pilot", 1), (40, "cook", 3)), NAMES, ("number", "category", "number"),
                            missing=("", "?"))
    counts = EncodeCounts()
    rows = table((50, " cook ", 5), (None, "?", np.nan), (70, "astronaut", 7), (80, None, 8))
    np.testing.assert_array_equal(encoding.encode(rows, counts=counts), [
        [50, 5, 1, 0, 0, 0],
        [30, 2, 0, 0, 1, 0],   # the medians; the missing slot
        [70, 7, 0, 0, 0, 1],   # a job training never saw: the unknown slot
        [80, 8, 0, 0, 1, 0],
    ])
    assert counts.missing == {"age": 1, "size": 1, "job": 2} and counts.unseen == {"job": 1}
    assert counts.describe() == ("missing cells imputed: 4 (job: 2, age: 1, size: 1); categories unseen in training, "
                                 "read as <unknown>: 1 (job: 1)")
    texts = np.array([["50", "cook", "5"], ["", "pilot", "x"]])
    with pytest.raises(DataError, match=r"^rows\[1\], column 'size': 'x' is not a number \(a numeric column; missing "
                                        r"cells are written '' or '\?'\)"):
        encoding.encode(texts, place=array_rows("rows"))


def test_the_description_round_trips_and_a_damaged_one_is_refused():
    encoding = fit_encoding(table((20, "pilot"), (40, "cook")), NAMES[:2], ("number", "category"), ("job",),
                            ("", "-"), "mean", named=False)
    again = ColumnEncoding.from_saved(encoding.description())
    assert again.description() == encoding.description() and again.columns[1].declared and not again.named
    for damage in ({"columns": []}, {"columns": [{"name": "a", "kind": "number", "fill": "x"}]},
                   {"columns": [{"name": "a", "kind": "category", "categories": ["b", "a"]}]}):
        with pytest.raises(ValueError):
            ColumnEncoding.from_saved({**encoding.description(), **damage})


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_csv_with_text_and_missing_cells_loads_as_an_encoded_table(tmp_path):
    data = write(tmp_path / "t.csv", "y,age,job\n0,30,cook\n1,,pilot\n0,50,?\n1,40,cook\n")
    d, info = load_with_info(data, test_size=0, val_size=0, normalize="standardize")
    assert info.encoding.names == ("age", "job") and info.feature_names is None and info.label_column == "y"
    assert info.counts.missing == {"age": 1, "job": 1}
    # age standardized (its missing cell imputed with the median, 40); the one-hot slots left as they are
    np.testing.assert_allclose(d["X_train"][:, 0], (np.array([30, 40, 50, 40]) - 40) / np.sqrt(50))
    np.testing.assert_array_equal(d["X_train"][:, 1:], [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0]])
    np.testing.assert_array_equal(info.shift[1:], 0)
    np.testing.assert_array_equal(info.scale[1:], 1)


def test_missing_markers_and_impute_are_settings(tmp_path):
    data = write(tmp_path / "t.csv", "y,age,job\n0,30,cook\n1,-,pilot\n0,50,?\n1,40,cook\n")
    d, info = load_with_info(data, test_size=0, val_size=0, missing=["-"], impute="zero")
    assert info.encoding.columns[0].fill == 0.0 and d["X_train"][1, 0] == 0.0
    assert info.encoding.columns[1].categories == ("?", "cook", "pilot")  # "?" is a category here
    with pytest.raises(DataError, match=r"t\.csv \(csv\): impute must be one of median, mean, zero, got 'mode'"):
        load_with_info(data, impute="mode")
    with pytest.raises(DataError, match=r"missing must be a list of strings"):
        load_with_info(data, missing="?")


def test_a_category_seen_only_in_the_test_file_goes_to_the_unknown_slot(tmp_path):
    train = write(tmp_path / "train.csv", "y,job\n0,cook\n1,pilot\n0,cook\n1,pilot\n")
    test = write(tmp_path / "test.csv", "y,job\n0,astronaut\n1,pilot\n")
    d, info = load_with_info(train, test_file=test, val_size=0)
    np.testing.assert_array_equal(d["X_test"], [[0, 0, 0, 1], [0, 1, 0, 0]])
    assert info.counts.unseen == {"job": 1}


def test_a_numeric_training_file_becomes_a_table_when_its_test_file_has_missing_cells(tmp_path):
    train = write(tmp_path / "train.csv", "y,a\n0,1\n1,2\n0,3\n1,4\n")
    test = write(tmp_path / "test.csv", "y,a\n0,\n1,2\n")
    d, info = load_with_info(train, test_file=test, val_size=0)
    assert info.encoding is not None
    np.testing.assert_array_equal(d["X_test"][:, 0], [2.5, 2])  # the training split's median


def test_a_test_file_with_text_in_a_number_column_is_named_by_its_line(tmp_path):
    train = write(tmp_path / "train.csv", "y,a,job\n0,1,cook\n1,2,pilot\n")
    test = write(tmp_path / "test.csv", "y,a,job\n0,1,cook\n1,two,pilot\n")
    with pytest.raises(DataError, match=r"test\.csv: line 3, column 'a': 'two' is not a number"):
        load_with_info(train, test_file=test)


def test_table_settings_of_an_encoding_read_its_columns_by_name():
    encoding = fit_encoding(table((20, "pilot"), (40, "cook")), NAMES[:2], ("number", "category"))
    settings = TableSettings.of(encoding)
    X, names = settings.select(np.array([["x", "cook", "20"]]), ("other", "job", "age"), "f.csv")
    assert names == ("age", "job") and X.tolist() == [["20", "cook"]]
    with pytest.raises(DataError, match=r"f\.csv: no column 'age' \(the model reads 'age', 'job'; the file has 'job'\)"):
        settings.select(np.array([["cook"]]), ("job",), "f.csv")
