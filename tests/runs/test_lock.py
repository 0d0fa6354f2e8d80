"""The run-folder lock in this process: one trainer per folder, released on the way out. Against other
processes (live, stale, another host's): tests/system/runs/test_lock.py."""
from __future__ import annotations

import os
import socket

import pytest

from graphnet.runs.lock import LOCK_FILE, RunFolderInUse, run_lock

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX process ids")


def test_the_lock_file_holds_the_pid_and_is_removed_on_exit(tmp_path):
    with run_lock(tmp_path) as path:
        assert path == tmp_path / LOCK_FILE
        assert path.read_text().split() == [str(os.getpid()), socket.gethostname()]
    assert not path.exists()


def test_the_lock_is_released_on_an_exception(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with run_lock(tmp_path):
            raise KeyboardInterrupt
    assert not (tmp_path / LOCK_FILE).exists()
    with run_lock(tmp_path):  # and can be taken again
        pass


def test_the_same_process_cannot_hold_a_folder_twice(tmp_path):
    with run_lock(tmp_path):
        with pytest.raises(RunFolderInUse, match=f"in use by process {os.getpid()}"):
            with run_lock(tmp_path):
                pass
        assert (tmp_path / LOCK_FILE).exists()  # the refused attempt did not release the first
    assert not (tmp_path / LOCK_FILE).exists()
