"""Test helpers for the sweep tests: a short spiral run, SWEEP.json documents, `graphnet sweep`
as a child process, the study a sweep folder holds."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests._support.commands import ENV
from tests._support.paths import ROOT

NEEDS_OPTUNA = "the [sweep] extra (optuna) is not installed: pip install 'graphnet[sweep]'"


def spiral_run(epochs: int = 20, units: int = 64) -> dict:
    """The zoo's spiral run, shortened: 20 epochs reach 90% validation accuracy at rates of 1e-2 and up."""
    run = json.loads((ROOT / "specs" / "spiral_mlp.json").read_text())
    run.pop("$schema")
    run["network"]["nodes"][0]["units"] = units
    run["train"]["epochs"] = epochs
    return run


def sweep_doc(**changes) -> dict:
    doc = {"run": spiral_run(),
           "space": {"train.optimizer.learning_rate": {"log_uniform": [2e-2, 1e-1]},
                     "network.nodes[0].units": {"choice": [32, 64, 128]}},
           "metric": "val_accuracy", "direction": "maximize", "seed": 3}
    doc.update(changes)
    return doc


def write(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc, indent=2))
    return path


@pytest.fixture
def optuna():
    return pytest.importorskip("optuna", reason=NEEDS_OPTUNA)


def sweep_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "graphnet", "sweep", *args]


def sweep_cli(*args: str, timeout: float = 240, **popen) -> subprocess.CompletedProcess:
    return subprocess.run(sweep_command(*args), capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=timeout,
                          **popen)


def start_sweep(*args: str, **popen) -> subprocess.Popen:
    """`graphnet sweep ARGS` in its own session (so that a test can signal its process group)."""
    return subprocess.Popen(sweep_command(*args), cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, **popen)


def study_of(optuna, out: Path, name: str = "sweep"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'study.db'}")


def wait_for(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
