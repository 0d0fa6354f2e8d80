"""graphnet.sweep.storage: sweeps started at once, as processes, on one new SQLite file."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests._support.sweep_cases import ENV, ROOT, sweep_doc, write
from tests._support.sweep_cases import optuna  # noqa: F401 (a fixture)

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


@pytest.mark.slow
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
