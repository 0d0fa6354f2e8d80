"""graphnet.system.interrupts: exit codes of a stop signal, handlers installed even when SIGINT was
ignored at start, and children that die with their parent (prctl on Linux, a watcher thread
elsewhere)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from graphnet.system.interrupts import (
    forget_stop,
    interrupted_exit_code,
    is_interrupted_exit,
    note_stop,
    stop_message,
    stop_noted,
    stop_signals_interrupt,
)

from tests._support.paths import ROOT
from tests._support.processes import HAVE_PROC, NEEDS_PROC, kill_all, still_running

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


def test_the_exit_code_is_128_plus_the_stop_signal():
    forget_stop()
    assert interrupted_exit_code() == 130 and stop_message("x") == "graphnet x: interrupted"
    note_stop(signal.SIGTERM)
    assert interrupted_exit_code() == 143 and stop_message("predict") == "graphnet predict: terminated (SIGTERM)"
    note_stop(signal.SIGINT)
    assert interrupted_exit_code() == 130
    note_stop(signal.SIGUSR1)  # what mpiexec forwards from graphnet's launcher: a Ctrl-C passed on
    assert interrupted_exit_code() == 130
    forget_stop()


def test_a_signal_a_library_swallowed_is_still_a_stop_not_an_internal_error(monkeypatch, capsys):
    """A library that catches the KeyboardInterrupt and fails its own cleanup (SQLAlchemy's commit
    raising AssertionError under optuna) raises something else: the command still stops with 143."""
    from graphnet import cli

    def command_hit_by_sigterm(args):  # noqa: ANN001, ANN202
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # the handler raises KeyboardInterrupt here
            time.sleep(5)
        except KeyboardInterrupt:
            raise AssertionError("a library's cleanup failed") from None

    monkeypatch.setitem(cli.COMMANDS, "schema", command_hit_by_sigterm)
    with stop_signals_interrupt():
        assert cli.main(["schema"]) == 143
    assert capsys.readouterr().err.strip() == "graphnet schema: terminated (SIGTERM)"
    assert stop_noted()
    forget_stop()
    assert not stop_noted()


@pytest.mark.parametrize("code,stopped", [(130, True), (143, True), (-signal.SIGINT, True), (-signal.SIGTERM, True),
                                          (0, False), (1, False), (-signal.SIGKILL, False), (None, False)])
def test_a_childs_exit_code_tells_whether_it_was_stopped(code, stopped):
    assert is_interrupted_exit(code) is stopped


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_stop_signals_interrupt_even_when_sigint_was_ignored(signum):
    """A job started with & from a script inherits SIGINT ignored: kill -INT must still stop it."""
    before = {s: signal.signal(s, signal.SIG_IGN if s == signal.SIGINT else signal.SIG_DFL)
              for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with pytest.raises(KeyboardInterrupt):
            with stop_signals_interrupt():
                signal.raise_signal(signum)
        assert interrupted_exit_code() == 128 + signum
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # put back as found
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
        forget_stop()


class SignalledWhileDeleted:
    """An object whose __del__ is running when a stop signal's handler runs (Python ignores an
    exception raised in __del__, as in a weakref callback: it prints it and goes on)."""

    def __init__(self, signum: int):
        self.signum = signum

    def __del__(self) -> None:
        signal.raise_signal(self.signum)  # the handler runs here, inside __del__


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_that_came_where_python_ignores_exceptions_is_not_lost(signum, capsys):
    """Seen in CI: a sweep worker's KeyboardInterrupt raised in importlib's weakref callback was
    printed ("Exception ignored in ...") and lost; the worker went on training."""
    forget_stop()
    try:
        with pytest.raises(KeyboardInterrupt):
            with stop_signals_interrupt():
                SignalledWhileDeleted(signum)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:  # the stop is raised again in the code that runs next
                    pass
        assert interrupted_exit_code() == 128 + signum
        assert "Exception ignored" not in capsys.readouterr().err
    finally:
        forget_stop()


# A parent that starts a child, which asks to die with it, prints the child's pid and waits
# to be killed. The child writes "stopped" to a file when its SIGTERM handler runs.
PARENT = textwrap.dedent("""
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2], sys.argv[3]])
    print(child.pid, flush=True)
    time.sleep(120)
""")
CHILD = textwrap.dedent("""
    import os, signal, sys, time
    from pathlib import Path
    from graphnet.system import interrupts

    def stopped(signum, frame):
        Path(sys.argv[2]).write_text("stopped")
        sys.exit(0)

    signal.signal(signal.SIGTERM, stopped)
    parent = os.getppid()
    if sys.argv[1] == "watcher":
        interrupts.watch_process(parent, poll_seconds=0.05, parent=True)
        how = "watcher"
    else:
        how = interrupts.die_with_parent(parent)
    Path(sys.argv[2] + ".how").write_text(how)
    time.sleep(120)
""")


@pytest.mark.skipif(not HAVE_PROC, reason=NEEDS_PROC)
@pytest.mark.parametrize("method", ["default", "watcher"])
def test_a_child_dies_with_its_sigkilled_parent(tmp_path, method):
    marker = tmp_path / "child"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD, method, str(marker)], stdout=subprocess.PIPE,
                              text=True, cwd=ROOT)
    child = int(parent.stdout.readline())  # type: ignore[union-attr]
    how = Path(f"{marker}.how")
    try:
        deadline = time.monotonic() + 60
        while not how.is_file() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert how.read_text() == ("prctl" if method == "default" and sys.platform.startswith("linux") else "watcher")
        parent.kill()
        parent.wait()
        assert still_running([child], timeout=30) == [], "the child outlived its parent"
    finally:
        kill_all([child])
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    assert marker.read_text() == "stopped"  # by SIGTERM, through its handler: it could clean up


@pytest.mark.skipif(not HAVE_PROC, reason=NEEDS_PROC)
def test_a_watcher_of_another_process_stops_this_one_when_it_ends(tmp_path):
    marker = tmp_path / "stopped"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    script = textwrap.dedent(f"""
        import signal, sys, time
        from pathlib import Path
        from graphnet.system import interrupts
        signal.signal(signal.SIGTERM, lambda *a: (Path({str(marker)!r}).write_text("stopped"), sys.exit(0)))
        interrupts.watch_process({other.pid}, poll_seconds=0.05)
        print("watching", flush=True)
        time.sleep(120)
    """)
    watcher = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert watcher.stdout.readline().strip() == "watching"  # type: ignore[union-attr]
        other.kill()  # left a zombie until reaped: the watcher must see it as gone
        assert watcher.wait(timeout=30) == 0
    finally:
        for process in (other, watcher):
            if process.poll() is None:
                process.kill()
            process.wait()
    assert marker.read_text() == "stopped"


# `graphnet ARGS`, with a SIGTERM arriving while predictions are written (the moment a
# scheduler's stop may come); a signal the test would otherwise have to time.
TERMINATED_WHILE_WRITING = textwrap.dedent("""
    import signal, sys
    import graphnet.model.prediction as prediction
    from graphnet.cli import main

    real = prediction.write_predictions

    def write_predictions(*args, **kwargs):
        signal.raise_signal(signal.SIGTERM)
        return real(*args, **kwargs)

    prediction.write_predictions = write_predictions
    sys.exit(main(sys.argv[1:]))
""")


def test_sigterm_stops_any_command_with_143_and_leaves_no_temporary(tmp_path):
    """Not only train and sweep: predict (every command) exits 128 + 15, cleaning up after itself."""
    import numpy as np

    import graphnet as gn

    run = gn.load(str(ROOT / "specs" / "spiral_mlp.json"))
    gn.train(run, out=tmp_path / "run", epochs=1, log=None, progress=False)
    np.savez(tmp_path / "x.npz", X=np.zeros((5, 2), np.float32))
    out = tmp_path / "predictions" / "p.csv"
    out.parent.mkdir()
    done = subprocess.run([sys.executable, "-c", TERMINATED_WHILE_WRITING, "predict", str(tmp_path / "run"),
                           "--data", str(tmp_path / "x.npz"), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 143, done.stderr  # it was killed by the signal: no cleanup, no message
    assert done.stderr == "graphnet predict: terminated (SIGTERM)\n"
    assert list(out.parent.iterdir()) == []  # neither the output nor its temporary file
