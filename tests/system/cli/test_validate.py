"""`graphnet validate` as real processes: `python -m graphnet`, the `graphnet` console script, and a
reader that stops early (in process: tests/cli/test_validate.py)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import graphnet

from tests._support.commands import graphnet as run_graphnet
from tests._support.commands import one_error_line
from tests._support.paths import ROOT, SPECS
from tests._support.spec_files import bad_spec


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("GRAPHNET_DEBUG", None)
    return env


def test_python_dash_m_graphnet(tmp_path: Path):
    bad = bad_spec(tmp_path)
    good = ROOT / "specs" / "two_layer_net.json"
    result = subprocess.run([sys.executable, "-m", "graphnet", "validate", str(good), str(bad)],
                            capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=120)
    assert result.returncode == 1
    assert f"{good}: valid network 'two_layer_net'" in result.stdout
    assert "79,510 parameters" in result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and all(line.startswith(f"{bad}: ") for line in lines)
    assert "Traceback" not in result.stderr


def test_console_script():
    exe = shutil.which("graphnet")
    if exe is None:
        pytest.skip("the graphnet console script is not on PATH (pip install -e .)")
    result = subprocess.run([exe, "--version"], capture_output=True, text=True, env=_env(), timeout=120)
    assert result.returncode == 0
    assert result.stdout.strip() == f"graphnet {graphnet.__version__}"
    result = subprocess.run([exe, "validate", "-q", str(ROOT / "specs" / "spiral_mlp.json")],
                            capture_output=True, text=True, env=_env(), timeout=120)
    assert result.returncode == 0 and result.stdout.strip().endswith("spiral_mlp.json: valid")


def test_a_reader_that_stops_early_is_not_an_error(tmp_path):
    """`graphnet ... | head -1`: the closed pipe ends the command quietly, exit 0."""
    specs = " ".join(str(p) for p in sorted(SPECS.glob("*_mlp.json")))
    command = f"{sys.executable} -m graphnet validate {specs} | head -c 10"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_augment_on_a_flat_input_is_one_located_line_from_train_and_validate(tmp_path):
    document = json.loads((SPECS / "fashion_mlp.json").read_text())
    document["train"]["augment"] = {"flip": "horizontal", "shift": 2}
    path = tmp_path / "flat.json"
    path.write_text(json.dumps(document))
    for command in ("train", "validate"):
        done = run_graphnet(command, str(path), cwd=tmp_path)
        assert done.returncode == 1, done.stderr
        line = one_error_line(done.stderr)
        assert f"{path}: train.augment: augmentation flips and shifts images [C, H, W]; the input 'x'" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flat.json"]  # nothing trained, nothing written
