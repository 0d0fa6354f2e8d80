"""graphnet.sweep.storage: the study's storage checked before Optuna touches it (in-memory
and foreign SQLite databases refused with one line) and created by one sweep at a time."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from graphnet.cli import main

from tests._support.sweep_cases import ENV, ROOT, optuna, sweep_doc, write  # noqa: F401


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


# Opens the sweep's study as `run_sweep` does, once the file `go` appears.
OPENER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from graphnet.sweep.space import load_sweep
    from graphnet.sweep.storage import import_optuna, open_sweep_study
    optuna, sweep = import_optuna(), load_sweep(sys.argv[1])
    go = Path(sys.argv[3])
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.001)
    open_sweep_study(optuna, sweep, sys.argv[2], "sweep", Path(sys.argv[4]))
""")


def test_sweeps_started_at_once_on_a_new_sqlite_file_all_open_it(optuna, tmp_path):
    """Creating Optuna's tables in a new SQLite file is not atomic: without a lock, one of two
    sweeps started together failed with "table study_directions already exists"."""
    source = write(tmp_path / "sweep.json", sweep_doc())
    url, go = f"sqlite:///{tmp_path / 'study.db'}", tmp_path / "go"
    openers = [subprocess.Popen([sys.executable, "-c", OPENER, str(source), url, str(go), str(tmp_path / f"out{i}")],
                                cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i in range(4)]
    assert [opener.stdout.readline() for opener in openers] == ["ready\n"] * 4  # type: ignore[union-attr]
    go.touch()  # all at once
    errors = [opener.communicate(timeout=120)[1] for opener in openers]
    assert [opener.returncode for opener in openers] == [0, 0, 0, 0], errors
    assert len(optuna.load_study(study_name="sweep", storage=url).trials) == 0
