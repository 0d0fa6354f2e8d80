"""Writing a benchmark script's results: one JSON file, written atomically, in the folder
the user chose with --results (by default bench-results/ in the current folder, never the
tracked bench/results/ the README's tables come from unless asked for)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from graphnet.benchmarks.machine import blas_kernel
from graphnet.runtime.blas import blas_info
from graphnet.system.fileio import write_text_atomic

DEFAULT_RESULTS = Path("bench-results")
TRACKED_RESULTS = Path(__file__).parent / "results"


def add_results_option(parser: argparse.ArgumentParser) -> None:
    """--results DIR: the folder the script writes its results in."""
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, metavar="DIR",
                        help=f"folder to write the results in (default: {DEFAULT_RESULTS}/ in the current folder; "
                             "--results bench/results replaces the files the README's tables come from)")


def write_report(path: str | Path, data: Any) -> None:
    """`data` as indented JSON at `path` (folders made, file replaced atomically), and a line saying so."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")
    print(f"wrote {path}")


def print_machine() -> dict[str, str]:
    """Print numpy's BLAS and the kernel it runs (a warning when a variable forces narrower vectors
    than the CPU has, graphnet.benchmarks.machine); return both lines for the script's JSON."""
    lines = {"blas": str(blas_info()), "kernel": str(blas_kernel())}
    for line in lines.values():
        print(line, flush=True)
    return lines
