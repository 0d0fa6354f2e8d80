"""graphnet predict killed mid-write: the next one removes the temporary it left."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from graphnet.cli import main

from tests._support.task_data import new_raw_csv, trained_flowers


@pytest.fixture(scope="module")
def flowers(tmp_path_factory) -> Path:
    """A run folder trained via the CLI on a CSV with text labels and standardized features."""
    return trained_flowers(tmp_path_factory.mktemp("flowers"))


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_the_temporary_of_a_killed_predict_is_removed_by_the_next_one(flowers, tmp_path, capsys):
    big = tmp_path / "big.npy"
    np.save(big, np.random.default_rng(0).standard_normal((400_000, 4)))
    folder = tmp_path / "predictions"
    folder.mkdir()
    process = subprocess.Popen([sys.executable, "-m", "graphnet", "predict", str(flowers), "--data", str(big),
                                "--batch-size", "7", "--out", str(folder / "killed.csv")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(folder.glob(".killed.csv.*.tmp")) and time.monotonic() < deadline:
            assert process.poll() is None, "predict ended before it was killed"
            time.sleep(0.01)
    finally:
        process.kill()
        process.wait()
    [temporary] = list(folder.glob(".killed.csv.*.tmp"))  # a SIGKILL leaves it behind
    data, _, _ = new_raw_csv(tmp_path / "new.csv", n=5)
    assert main(["predict", str(flowers), "--data", str(data), "--out", str(folder / "next.csv")]) == 0
    assert not temporary.exists() and not (folder / "killed.csv").exists()
    assert sorted(p.name for p in folder.iterdir()) == ["next.csv"]
