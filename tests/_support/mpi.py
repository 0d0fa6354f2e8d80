"""Test helper for commands that start mpiexec directly (not through graphnet's launcher,
which retries on its own): run again when Open MPI failed to set itself up before any rank ran."""
from __future__ import annotations

import subprocess
from typing import Any

from graphnet.training.distributed import FAILED_BEFORE_ANY_RANK, LAUNCH_ATTEMPTS


def run_mpiexec(command: list[str], **options: Any) -> subprocess.CompletedProcess:
    """subprocess.run(command, capture_output=True, text=True, **options), run again (at most
    LAUNCH_ATTEMPTS times in all) while mpiexec says it failed before starting any rank."""
    for _ in range(LAUNCH_ATTEMPTS):
        done = subprocess.run(command, capture_output=True, text=True, **options)
        said = " ".join(done.stderr.split())
        if done.returncode == 0 or not FAILED_BEFORE_ANY_RANK.search(said):
            break
    return done
