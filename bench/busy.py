"""A busy machine: step and inference time with one core taken by another process.

    python bench/busy.py [--rounds 9] [--phases 2] [--results DIR]   # writes DIR/busy.json

A hog process (a single-threaded numpy loop, OPENBLAS_NUM_THREADS=1) takes one
core during the "busy" phases and is stopped during the "quiet" ones; the
phases alternate (quiet, busy, quiet, busy, ...). In every phase each
contender, in its own process, is timed round-robin as in
bench/inference_latency.py on: the M network's inference at batch 1, 32 and
256, and (graphnet and PyTorch) one plain-SGD training step of the M network
at batch 128. Reported per phase kind: median microseconds per call, and the
slowdown busy / quiet per contender and case.

Contenders: graphnet with its default thread count (graphnet.runtime.threads: chosen
from the load average when the worker starts, i.e. in a quiet phase);
graphnet_2threads and graphnet_1thread (gn.set_threads); ort and torch_eager
at 2 threads, ort_1thread and torch_1thread.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import inference_latency  # noqa: E402
from procbench import SETTLE_SECONDS, Workers, require  # noqa: E402
from report import add_results_option, print_machine, write_report  # noqa: E402

BATCHES = (1, 32, 256)
HOG_SOURCE = """
import numpy as np
a = np.random.default_rng(0).standard_normal(1 << 16)
while True:
    np.sin(a, out=a)
"""


def _with_step(inference: dict, step: Callable[[], Any] | None) -> dict:
    if step is not None:
        inference["calls"]["step"] = step
    return inference


def _graphnet_step() -> Callable[[], Any]:
    from graphnet.benchmarks.step import graphnet_step, make_problem

    return graphnet_step(make_problem("M"), backend="numba")


def _torch_step() -> Callable[[], Any]:
    from peers import torch_step

    from graphnet.benchmarks.step import make_problem

    return torch_step(make_problem("M"))


def graphnet_contender(config: dict) -> dict:
    return _with_step(inference_latency.graphnet_contender(config), _graphnet_step())


def graphnet_1thread_contender(config: dict) -> dict:
    return graphnet_contender({**config, "threads": 1})


def graphnet_2threads_contender(config: dict) -> dict:
    return graphnet_contender({**config, "threads": 2})


def ort_contender(config: dict) -> dict:
    return inference_latency.ort_contender(config)


def ort_1thread_contender(config: dict) -> dict:
    return ort_contender({**config, "threads": 1})


def torch_contender(config: dict) -> dict:
    torch = require("torch")
    built = inference_latency.torch_contender(config)
    step = _torch_step()
    torch.set_num_threads(config.get("threads") or 2)  # torch_step sets 2
    return _with_step(built, step)


def torch_1thread_contender(config: dict) -> dict:
    return torch_contender({**config, "threads": 1})


CONTENDERS: dict[str, Callable[[dict], dict]] = {
    "graphnet": graphnet_contender,
    "graphnet_1thread": graphnet_1thread_contender,
    "graphnet_2threads": graphnet_2threads_contender,
    "ort": ort_contender,
    "ort_1thread": ort_1thread_contender,
    "torch_eager": torch_contender,
    "torch_1thread": torch_1thread_contender,
}


class Hog:
    """A process that keeps one core busy while it runs."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        self.process = subprocess.Popen([sys.executable, "-c", HOG_SOURCE], env=env)
        time.sleep(0.5)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
        time.sleep(0.3)


def run_benchmark(rounds: int, phases: int, contenders: list[str], seconds: float = 0.004,
                  batches: tuple[int, ...] = BATCHES, settle: float = SETTLE_SECONDS) -> dict:
    config = {"batches": list(batches), "threads": None, "seed": 0}
    samples: dict[str, dict[str, list[dict[str, float]]]] = {"quiet": {}, "busy": {}}
    hog = Hog()
    with Workers("busy", contenders, config) as workers:
        cases = sorted({case for w in workers.workers.values() for case in w.cases})
        reps = {case: workers.calibrate(case, seconds) for case in cases}
        try:
            for phase in range(2 * phases):
                kind = "busy" if phase % 2 else "quiet"
                if kind == "busy":
                    hog.start()
                for case in cases:
                    samples[kind].setdefault(case, []).extend(workers.sample_rounds(case, reps[case], rounds, settle))
                hog.stop()
        finally:
            hog.stop()
        skipped, info = workers.skipped, {name: w.info for name, w in workers.workers.items()}
    return {"cpus": multiprocessing.cpu_count(), "rounds": rounds, "phases": phases, "skipped": skipped,
            "info": info, "cases": summarize_phases(samples)}


def summarize_phases(samples: dict[str, dict[str, list[dict[str, float]]]]) -> dict:
    """Per case and contender: median us quiet and busy, and busy / quiet."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for case, quiet in samples["quiet"].items():
        busy = samples["busy"][case]
        table[case] = {}
        for name in quiet[0]:
            q = 1e6 * statistics.median(s[name] for s in quiet)
            b = 1e6 * statistics.median(s[name] for s in busy)
            table[case][name] = {"quiet_us": q, "busy_us": b, "slowdown": b / q}
    return table


def print_table(results: dict) -> None:
    for name, reason in results["skipped"].items():
        print(f"skipped {name}: {reason}")
    for case, rows in results["cases"].items():
        print(f"{case}:{'':14s}{'quiet us':>12s}{'busy us':>12s}{'busy/quiet':>12s}")
        for name, row in rows.items():
            print(f"  {name:18s}{row['quiet_us']:12.1f}{row['busy_us']:12.1f}{row['slowdown']:12.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="rounds per case and phase")
    parser.add_argument("--phases", type=int, default=2, help="quiet/busy phase pairs")
    parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=list(CONTENDERS))
    add_results_option(parser)
    args = parser.parse_args(argv)
    machine = print_machine()
    results = {**run_benchmark(args.rounds, args.phases, args.contenders), "machine": machine}
    print_table(results)
    write_report(args.results / "busy.json", results)
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
