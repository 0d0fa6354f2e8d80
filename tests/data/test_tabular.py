"""graphnet.data.tabular: CSV labels located by the file's line number and quoted as written,
label columns suggested, and messages that quote a file cut to a readable length."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from graphnet import DataError
from graphnet.cli import main
from graphnet.data import load, load_with_info
from graphnet.errors import QUOTE_LIMIT

from tests._support.data_files import saved_model


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("label, classes, problem", [
    ("2.50", None, "'2.50': class labels must be whole numbers"),
    ("-3", None, "'-3': labels must be >= 0"),
    ("1e30", None, "'1e30': too large for a class index"),
    ("5", 3, "'5': out of range 0..2 (3 classes)"),
])
def test_a_bad_class_label_is_named_by_its_line_and_as_written(tmp_path, label, classes, problem):
    data = write(tmp_path / "t.csv", f"y,a\n0,1\n\n1,2\n{label},3\n0,4\n")  # line 3 is blank
    with pytest.raises(DataError) as info:
        load(data, classes=classes, test_size=0)
    assert f"t.csv: label column 'y', line 5: label {problem}" in str(info.value)


@pytest.mark.parametrize("label", ["", "NA", "nan", "?"])
def test_a_missing_label_is_named_by_its_line(tmp_path, label):
    for target_shape in (None, [1]):  # class labels, regression targets
        data = write(tmp_path / "t.csv", f"y,a\n0,1\n\n1,2\n{label},3\n0,4\n")  # line 3 is blank
        with pytest.raises(DataError) as info:
            load(data, test_size=0, target_shape=target_shape)
        assert f"t.csv: label column 'y', line 5: the label is missing ('{label}')" in str(info.value)


def test_a_nan_label_is_no_class_when_nan_is_not_a_missing_marker(tmp_path):
    data = write(tmp_path / "t.csv", "y,a\n0,1\n1,2\nnan,3\n")
    with pytest.raises(DataError, match=r"t\.csv: label column 'y', line 4: label 'nan': class labels must be whole"):
        load(data, test_size=0, missing=[])


def test_a_target_that_does_not_fit_the_dtype_is_named_by_its_line(tmp_path):
    data = write(tmp_path / "r.csv", "a,target\n1,0.5\n2,1e39\n")
    with pytest.raises(DataError, match=r"r\.csv: label column 'target', line 3: target '1e39' does not fit in "
                                        r"float32"):
        load(data, target_shape=[1], test_size=0)
    assert load(data, target_shape=[1], test_size=0, val_size=0, dtype="float64")["y_train"][1, 0] == 1e39


def test_labels_mixing_numbers_and_names_are_refused(tmp_path):
    data = write(tmp_path / "m.csv", "y,a\n0,1\n1,2\ncat,3\n")
    with pytest.raises(DataError, match=r"m\.csv: label column 'y', line 4: label 'cat' is not a number: the other "
                                        r"labels are numbers"):
        load(data, test_size=0)


def test_a_headerless_label_column_is_named_by_its_field(tmp_path):
    data = write(tmp_path / "h.csv", "1,0\n2,1\n3,0.5\n")
    with pytest.raises(DataError, match=r"h\.csv: label field 2, line 3: label '0.5'"):
        load(data, label_column=1, test_size=0)


def test_an_unknown_label_column_gets_a_did_you_mean(tmp_path):
    data = write(tmp_path / "iris.csv", "species,a\nx,1\ny,2\n")
    with pytest.raises(DataError, match=r"iris\.csv: no column named 'specie' \(columns: 'species', 'a'\); "
                                        r"did you mean 'species'\?$"):
        load(data, label_column="specie")


def test_a_run_on_a_file_names_the_line_of_a_label_out_of_the_network_classes(tmp_path, capsys):
    """The reader gets the network's class count, so it names the line ('span [0, 5]' named no line)."""
    data = write(tmp_path / "lab.csv", "label,a,b\n" + "0,1,2\n1,2,3\n" * 5 + "5,1,1\n")
    run = {"network": {"inputs": {"x": {"shape": [2]}}, "labels": {"y": {"classes": 2}},
                       "nodes": [{"id": "fc", "op": "affine", "inputs": ["x"], "units": 2},
                                 {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc", "y"]}],
                       "outputs": ["fc"], "loss": "loss"},
           "train": {"data": {"name": str(data)}, "epochs": 1}}
    (tmp_path / "run.json").write_text(json.dumps(run))
    assert main(["train", str(tmp_path / "run.json"), "--out", str(tmp_path / "out"), "--no-progress"]) == 1
    assert capsys.readouterr().err.strip().endswith("lab.csv: label column 'label', line 12: label '5': "
                                                    "out of range 0..1 (2 classes)")


def test_a_huge_header_is_cut_in_every_message_that_quotes_it(tmp_path, capsys):
    """A header of 30000 columns (and one 100 kB name): messages stay short and say how many there were."""
    names = [f"column{i}" for i in range(30_000)] + ["n" * 100_000]
    header = ",".join(names)
    data = write(tmp_path / "wide.csv", header + "\n" + ",".join(["1"] * len(names)) + "\n")
    with pytest.raises(DataError) as info:
        load(data)  # no label column
    assert len(str(info.value)) < 40 * QUOTE_LIMIT and "(30,001 in all)" in str(info.value)
    model = tmp_path / "model"
    net = saved_model(model, features=2)
    from graphnet.data.preprocessing import Preprocessing
    net.preprocessing = Preprocessing("x", (2,), feature_names=("f0", "f1"))
    net.save(model)
    assert main(["predict", str(model), "--data", str(data), "--out", str(tmp_path / "p.csv")]) == 1
    err = capsys.readouterr().err
    assert "no column 'f0'" in err and "(30,001 in all)" in err and len(err) < 40 * QUOTE_LIMIT


def test_text_labels_keep_quotes_inside_them(tmp_path):
    data = write(tmp_path / "q.csv", 'y,a\n"a ""b""",1\nc,2\n "d" ,3\n')
    assert load_with_info(data, test_size=0, val_size=0)[1].class_names == ('a "b"', "c", "d")
    np.testing.assert_array_equal(load(data, test_size=0, val_size=0)["y_train"], [0, 1, 2])
