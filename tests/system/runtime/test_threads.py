"""The BLAS thread count set by `graphnet --threads` and $GRAPHNET_THREADS, in child processes."""
from __future__ import annotations

from tests._support.commands import graphnet


def test_cli_threads_option_and_env(tmp_path):
    done = graphnet("--threads", "0", "schema")
    assert done.returncode == 2 and "--threads: must be at least 1, got 0" in done.stderr
    done = graphnet("schema", "-o", str(tmp_path / "s.json"), env={"GRAPHNET_THREADS": "many"})
    assert done.returncode == 1
    assert done.stderr.strip() == "graphnet schema: $GRAPHNET_THREADS must be an integer >= 1 or 'auto', got 'many'"
    done = graphnet("--threads", "1", "schema", "-o", str(tmp_path / "s.json"))
    assert done.returncode == 0, done.stderr
