"""graphnet.benchmarks.machine_load with a real child process burning CPU."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from graphnet.benchmarks.machine_load import tree_ticks


HAVE_PROC = Path("/proc/self/stat").is_file()
# a child that burns 0.3 s of CPU (however busy the machine), says so, then waits for its stdin to close
BURN = ("import sys, time\n"
        "while time.process_time() < 0.3: pass\n"
        "print('burnt', flush=True); sys.stdin.read()\n")


@pytest.mark.skipif(not HAVE_PROC, reason="needs /proc")
def test_a_childs_cpu_time_counts_as_this_process_trees_alive_or_waited_for():
    start = tree_ticks(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", BURN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "burnt\n"
        alive = tree_ticks(os.getpid())
    finally:
        child.communicate("")
    reaped = tree_ticks(os.getpid())
    ticks = os.sysconf("SC_CLK_TCK")
    assert alive - start >= 0.25 * ticks  # the child's 0.3 s, while it runs ...
    assert reaped >= alive  # ... and once waited for (in this process's cutime)
