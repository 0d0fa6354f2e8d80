"""The kernel backend asked for, in child processes: an unknown one in the environment, and numba missing."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests._support.paths import ROOT


# `graphnet ARGS` in a process where `import numba` fails, as on a machine without numba
WITHOUT_NUMBA = ("import sys; sys.modules['numba'] = None; from graphnet.cli import main; "
                 "sys.exit(main(sys.argv[1:]))")


def graphnet_without_numba(*args: str, backend: str | None = None) -> subprocess.CompletedProcess:
    """`graphnet ARGS` without numba, with GRAPHNET_BACKEND=`backend` (None: unset)."""
    environment = {key: value for key, value in os.environ.items() if key != "GRAPHNET_BACKEND"}
    environment.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".numba_cache"))
    if backend is not None:
        environment["GRAPHNET_BACKEND"] = backend
    return subprocess.run([sys.executable, "-c", WITHOUT_NUMBA, *args], capture_output=True, text=True, cwd=ROOT,
                          env=environment, timeout=120)


def test_an_unknown_backend_in_the_environment_is_a_user_error_of_the_cli(tmp_path):
    done = subprocess.run([sys.executable, "-m", "graphnet", "compile", "specs/spiral_mlp.json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "GRAPHNET_BACKEND": "cuda"})
    assert done.returncode == 1
    assert done.stderr == ("graphnet compile: GRAPHNET_BACKEND='cuda': unknown kernel backend; choose one of "
                           "numba, numpy\n")


@pytest.mark.slow
@pytest.mark.parametrize("command", ["train", "gradcheck"])
def test_without_numba_the_cli_says_what_to_use_instead(command, tmp_path):
    def args(out: str) -> list[str]:
        extra = ["--epochs", "1", "--no-progress", "--out", str(tmp_path / out)] if command == "train" else []
        return [command, "specs/spiral_mlp.json", *extra]

    done = graphnet_without_numba(*args("run"))
    assert done.returncode == 1, done.stderr
    assert done.stderr == (f"graphnet {command}: the numba backend needs numba, which is not installed: "
                           "pip install numba, or use the numpy backend (--backend numpy, or "
                           "GRAPHNET_BACKEND=numpy for any command)\n")
    # and either way out it names works
    for flag, backend in ((["--backend", "numpy"], None), ([], "numpy")):
        done = graphnet_without_numba(*args(f"run-{backend}"), *flag, backend=backend)
        assert done.returncode == 0, done.stderr


def test_without_numba_python_callers_are_told_the_keyword(tmp_path):
    code = ("import sys; sys.modules['numba'] = None\n"
            "import graphnet as gn\n"
            "try:\n"
            "    gn.compile('specs/spiral_mlp.json')\n"
            "except ImportError as error:\n"  # an ImportError still, for code that catches that
            "    print(type(error).__name__, isinstance(error, gn.GraphnetError), error)\n"
            "print(gn.compile('specs/spiral_mlp.json', backend='numpy').backend)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "GRAPHNET_BACKEND"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "NumbaMissingError True the numba backend needs numba, which is not installed: pip install numba, or use the "
        "numpy backend (backend='numpy', or GRAPHNET_BACKEND=numpy)", "numpy"]


def test_bench_without_numba_says_it_needs_numba():
    done = graphnet_without_numba("bench")
    assert done.returncode == 1
    assert done.stderr == ("graphnet bench: it times the numba kernels against their NumPy twins and needs numba, "
                           "which is not installed (pip install numba)\n")
