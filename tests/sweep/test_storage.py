"""graphnet.sweep.storage: the study's storage checked before Optuna touches it (in-memory
and foreign SQLite databases refused with one line). Created by one sweep at a time, with sweeps
started at once: tests/system/sweep/test_storage.py."""
from __future__ import annotations

import sqlite3

import pytest

from graphnet.cli import main

from tests._support.sweep_cases import sweep_doc, write
from tests._support.sweep_cases import optuna  # noqa: F401 (a fixture)


def tables(path) -> list[str]:
    with sqlite3.connect(path) as connection:
        return sorted(row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_database_is_refused_with_one_line(optuna, tmp_path, capsys, url):
    code = main(["sweep", str(write(tmp_path / "sweep.json", sweep_doc())), "--trials", "1",
                 "--out", str(tmp_path / "out"), "--storage", url])
    err = capsys.readouterr().err
    assert code == 1, err  # it was exit 3, "internal error: KeyError: 'Record does not exist.'"
    assert err.splitlines() == [f"graphnet sweep: storage {url}: an in-memory SQLite database can't hold a study "
                                "(worker processes and a rerun would not see it): name a file, e.g. "
                                "sqlite:///sweeps/study.db, or leave --storage out"]


def test_a_sqlite_database_of_something_else_is_refused_and_left_alone(optuna, tmp_path, capsys):
    database = tmp_path / "app.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE users (id INTEGER)")
        connection.execute("CREATE TABLE orders (id INTEGER)")
    code = main(["sweep", str(write(tmp_path / "sweep.json", sweep_doc())), "--trials", "1",
                 "--out", str(tmp_path / "out"), "--storage", f"sqlite:///{database}"])
    err = capsys.readouterr().err
    assert code == 1 and err.splitlines() == [
        f"graphnet sweep: storage sqlite:///{database}: the database holds other tables (orders, users), not only "
        "an Optuna study's: give a database of its own for the sweep"]
    assert tables(database) == ["orders", "users"]  # Optuna's tables were not added


def test_a_file_that_is_not_a_database_is_one_line(optuna, tmp_path, capsys):
    (tmp_path / "notes.db").write_text("not a database\n")
    code = main(["sweep", str(write(tmp_path / "sweep.json", sweep_doc())), "--trials", "1",
                 "--out", str(tmp_path / "out"), "--storage", f"sqlite:///{tmp_path / 'notes.db'}"])
    err = capsys.readouterr().err
    assert code == 1 and err.splitlines() == [f"graphnet sweep: storage sqlite:///{tmp_path / 'notes.db'}: "
                                              "file is not a database"]
