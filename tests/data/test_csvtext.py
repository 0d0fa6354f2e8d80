"""graphnet.data.csvtext: one CSV dialect for the header and the rows (training and predict),
numbers as a CSV writes them, and every problem named by file, line and column."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphnet import DataError
from graphnet.cli import main
from graphnet.data import load, load_with_info
from graphnet.data.csvtext import FIELD_LIMIT, is_number

from tests._support.data_files import saved_model


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A saved model of 3 raw features without preprocessing: predict reads every non-label column."""
    folder = tmp_path_factory.mktemp("model")
    saved_model(folder, features=3, classes=2)
    return folder


def predict_error(model: Path, data: Path, capsys) -> str:
    """The one stderr line of a `graphnet predict` that must fail with exit 1 (a user error)."""
    assert main(["predict", str(model), "--data", str(data), "--out", str(data.parent / "out.csv")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def labelled(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("cell, number", [("1", True), ("-2.5", True), ("+.5", True), ("1.", True), ("1e-3", True),
                                          ("1E+39", True), (" 7 ", True), ("inf", True), ("-Infinity", True),
                                          ("NaN", True), ("1_0", False), ("1__0", False), ("\u0661\u0662", False),
                                          ("0x10", False), ("1e", False), ("", False), ("  ", False),
                                          ("1,5", False), ("red", False)])
def test_a_csv_number_is_what_a_csv_writer_writes(cell, number):
    assert is_number(cell) is number


@pytest.mark.parametrize("cell", ["1_0", "1__0", "\u0661\u0662"])  # Python's float() reads 10, 10 and 12
def test_python_only_number_syntax_is_refused_by_training_and_predict(tmp_path, model, capsys, cell):
    for labels in (["0", "1", "0", "1"], ["no", "yes", "no", "yes"]):  # the numeric path and the text-label path
        rows = [f"{label},{cell if i == 1 else 1},2,3" for i, label in enumerate(labels)]
        data = labelled(tmp_path / "t.csv", "label,f0,f1,f2", rows)
        with pytest.raises(DataError, match=rf"t\.csv: line 3, column 'f0': '{cell}' is not a number"):
            load(data, test_size=0)
    data = labelled(tmp_path / "new.csv", "f0,f1,f2", ["1,2,3", f"4,{cell},6"])
    assert predict_error(model, data, capsys).endswith(f"new.csv: line 3, column 'f1': '{cell}' is not a number")


def test_a_quoted_header_cell_holding_the_delimiter_is_one_column_as_in_the_rows(tmp_path, model, capsys):
    data = labelled(tmp_path / "q.csv", 'label,"size, cm",f1,"a ""b"""',
                    ['0,1,2,"3"', '1,"4",5,6', "0,7,8,9", "1,1,2,3"])
    d, info = load_with_info(data, test_size=0, val_size=0)
    assert info.feature_names == ("size, cm", "f1", 'a "b"')
    np.testing.assert_array_equal(d["X_train"][:2], [[1, 2, 3], [4, 5, 6]])
    tsv = labelled(tmp_path / "q.tsv", 'label\t"a,b"\tc', ["0\t1\t2", "1\t3\t4", "0\t5\t6"])  # a comma, quoted
    assert load_with_info(tsv, test_size=0, val_size=0)[1].feature_names == ("a,b", "c")
    new = labelled(tmp_path / "new.csv", '"x, y",f1,f2', ["1,2,3", '4,"5",6'])
    assert main(["predict", str(model), "--data", str(new), "--out", str(tmp_path / "p.csv")]) == 0
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 3


def test_a_column_name_given_twice_is_refused_naming_both_columns(tmp_path, model, capsys):
    data = labelled(tmp_path / "dup.csv", "label,f0,f1,f0", ["0,1,2,3", "1,4,5,6", "0,1,1,1"])
    with pytest.raises(DataError, match=r"dup\.csv: line 1: the column name 'f0' appears twice \(columns 2 and 4\)"):
        load(data, test_size=0)
    new = labelled(tmp_path / "new.csv", "f0,f1,f2,f1", ["1,2,3,4"])
    assert predict_error(model, new, capsys).endswith("new.csv: line 1: the column name 'f1' appears twice "
                                                      "(columns 2 and 4); column names must be unique")


def test_a_cell_longer_than_the_csv_module_reads_is_a_located_error_not_an_internal_one(tmp_path, model, capsys):
    long = "1" * (FIELD_LIMIT + 1)
    new = labelled(tmp_path / "new.csv", "f0,f1,f2", ["1,2,3", f"4,{long},6"])
    assert predict_error(model, new, capsys).endswith(f"new.csv: line 3: a cell is longer than {FIELD_LIMIT:,} "
                                                      "characters")
    data = labelled(tmp_path / "t.csv", "label,f0,f1", ["0,1,2", f"1,{long},3", "0,1,1"])
    with pytest.raises(DataError, match=rf"t\.csv: line 3: a cell is longer than {FIELD_LIMIT:,} characters"):
        load(data, test_size=0)


def test_a_text_feature_column_is_categorical_and_a_column_mixing_numbers_and_text_is_named(tmp_path, model, capsys):
    data = labelled(tmp_path / "cars.csv", "label,weight,color", ["0,1.5,blue", "1,2.5,red", "0,1,blue"])
    d, info = load_with_info(data, test_size=0, val_size=0)
    assert info.encoding.feature_names() == ("weight", "color=blue", "color=red", "color=<missing>", "color=<unknown>")
    np.testing.assert_array_equal(d["X_train"], [[1.5, 1, 0, 0, 0], [2.5, 0, 1, 0, 0], [1, 1, 0, 0, 0]])
    mixed = labelled(tmp_path / "mixed.csv", "label,weight,color", ["0,1.5,2", "1,2.5,red", "0,1,3"])
    with pytest.raises(DataError, match=r"mixed\.csv: line 3, column 'color': 'red' is not a number, while other "
                                        r"cells of the column are numbers \(such as '2'\): fix the cell, or declare "
                                        r"the column categorical \(train\.data\.options\.categorical\)"):
        load(mixed, test_size=0)
    assert load(mixed, test_size=0, val_size=0, categorical=["color"])["X_train"].shape == (3, 1 + 3 + 2)
    new = labelled(tmp_path / "new.csv", "f0,f1,f2", ["1,,3"])  # a model trained on numbers only
    assert predict_error(model, new, capsys).endswith("new.csv: line 2, column 'f1': '' is empty: a missing value, "
                                                      "which this model cannot fill (its training data had none, so "
                                                      "it has no values to impute)")


def test_a_hash_is_data_not_a_comment_in_training_as_in_predict(tmp_path):
    data = labelled(tmp_path / "keys.csv", "key,a", ["C#,1", "F#,2", "C#,3", "F#,4"])
    d, info = load_with_info(data, label_column="key", test_size=0, val_size=0)
    assert info.class_names == ("C#", "F#")
    np.testing.assert_array_equal(d["y_train"], [0, 1, 0, 1])


def test_lines_are_counted_in_the_file_blank_lines_included(tmp_path):
    data = tmp_path / "gaps.csv"
    data.write_text("label,a\n0,1\n\n\n1,2\n0,x\n")
    with pytest.raises(DataError, match=r"gaps\.csv: line 6, column 'a': 'x' is not a number"):
        load(data, test_size=0)
