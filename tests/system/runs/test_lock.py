"""The run-folder lock against real processes: a live owner, a stale lock, another host's, a released one."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from graphnet.errors import RunFolderError
from graphnet.runs.lock import LOCK_FILE, RunFolderInUse, run_lock

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX process ids")


@pytest.fixture
def live_pid():
    """The id of a live process other than this one."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield child.pid
    child.kill()
    child.wait()


@pytest.fixture
def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_live_owner_refuses_a_second_trainer(tmp_path, live_pid):
    (tmp_path / LOCK_FILE).write_text(f"{live_pid} {socket.gethostname()}\n")
    with pytest.raises(RunFolderInUse) as info:
        with run_lock(tmp_path):
            pass
    assert str(info.value) == f"{tmp_path}: in use by process {live_pid} (lock file {tmp_path / LOCK_FILE})"
    assert isinstance(info.value, RunFolderError)
    assert (tmp_path / LOCK_FILE).read_text().split()[0] == str(live_pid)  # the owner's lock is untouched


@pytest.mark.parametrize("content", ["{pid} {host}\n", "", "garbage"], ids=["dead owner", "empty", "torn"])
def test_a_stale_lock_is_taken_over_with_a_note(tmp_path, dead_pid, content):
    (tmp_path / LOCK_FILE).write_text(content.format(pid=dead_pid, host=socket.gethostname()))
    notes: list[str] = []
    with run_lock(tmp_path, note=notes.append) as path:
        assert path.read_text().split()[0] == str(os.getpid())
    assert len(notes) == 1 and "taking over the stale lock of process" in notes[0]
    assert not path.exists()


def test_a_lock_from_another_host_is_never_taken_over(tmp_path, dead_pid):
    (tmp_path / LOCK_FILE).write_text(f"{dead_pid} some-other-host\n")
    with pytest.raises(RunFolderInUse, match=f"in use by process {dead_pid} on host some-other-host"):
        with run_lock(tmp_path):
            pass
    assert (tmp_path / LOCK_FILE).exists()


def test_a_released_lock_of_another_process_is_not_removed(tmp_path, live_pid):
    """Leaving the block removes the lock file only if it is still this process's."""
    with run_lock(tmp_path) as path:
        path.write_text(f"{live_pid} {socket.gethostname()}\n")
    assert path.read_text().split()[0] == str(live_pid)
