"""`graphnet` as a user runs it, in a child process, and what a one-line error looks like."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests._support.paths import ROOT

# What a child process runs with: this environment, and numba's cache where the tests keep it.
ENV = {**os.environ, "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(ROOT / ".numba_cache"))}


def graphnet(*args: str, timeout: float = 120, cwd: Path = ROOT,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`graphnet ARGS` in a child process (the installed entry point's code path), from `cwd`,
    with ENV and `env` on top of it."""
    return subprocess.run([sys.executable, "-m", "graphnet", *args], capture_output=True, text=True,
                          cwd=cwd, env={**ENV, **(env or {})}, timeout=timeout)


def error_lines(stderr: str) -> list[str]:
    """The lines of a command's stderr that are not blank."""
    return [line for line in stderr.splitlines() if line.strip()]


def one_error_line(stderr: str) -> str:
    """The one line a command wrote on stderr (no traceback, no warning)."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "Warning" not in stderr, stderr
    return lines[0]


@pytest.fixture(autouse=True)
def in_the_repository(monkeypatch):
    """Every test of a module that imports this runs in the checkout's root: its commands name
    zoo specs (specs/spiral_mlp.json) as a user in the checkout would."""
    monkeypatch.chdir(ROOT)
