"""graphnet.data.files: a path given as data that is not a regular file is said to be what it
is (a folder, a FIFO, a device, a dangling link), by `graphnet predict` and the loaders."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from graphnet import DataError
from graphnet.cli import main
from graphnet.data import load

from tests._support.data_files import saved_model


def make(kind: str, folder: Path) -> tuple[Path, str | None]:
    """A path of `kind` named like a data file, and what an error must say it is (None: missing)."""
    path = folder / "data.csv"
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path = Path("/dev/null")
    elif kind == "dangling link":
        path.symlink_to(folder / "gone.csv")
    return path, {"folder": "a folder", "fifo": "a FIFO (named pipe)", "device": "a character device",
                  "dangling link": "a symbolic link to a missing file"}.get(kind)


KINDS = ["folder", "fifo", "device", "dangling link", "missing"]


def file_message(path: Path, what: str | None, role: str = "file") -> str:
    if what is None:
        return f"{path}: no such {role}"
    return f"{path}: is a folder, not a {role}" if what == "a folder" else f"{path}: is {what}, not a regular {role}"


@pytest.mark.parametrize("kind", KINDS)
def test_predict_says_what_the_data_path_is(tmp_path, capsys, kind):
    saved_model(tmp_path / "model")
    path, what = make(kind, tmp_path)
    assert main(["predict", str(tmp_path / "model"), "--data", str(path), "--out", str(tmp_path / "p.csv")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"graphnet predict: {file_message(path, what)}", err


@pytest.mark.parametrize("kind", KINDS)
def test_a_test_file_says_what_it_is(tmp_path, kind):
    train = tmp_path / "train.csv"
    train.write_text("label,a\n0,1\n1,2\n0,3\n")
    path, what = make(kind, tmp_path)
    with pytest.raises(DataError) as info:
        load(train, test_file=path)
    assert str(info.value) == file_message(path, what, "test file")


@pytest.mark.parametrize("kind", ["fifo", "device", "dangling link"])
def test_a_data_path_that_is_not_a_file_or_folder_says_what_it_is(tmp_path, kind):
    path, what = make(kind, tmp_path)
    with pytest.raises(DataError) as info:
        load(path)
    assert str(info.value) == f"{path}: is {what}, not a data file or folder"
