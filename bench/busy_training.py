"""A training loop that another process interrupts: the step time before, during and after.

    python bench/busy_training.py [--seconds 6] [--size M] [--results DIR]   # writes DIR/busy_training.json

Each contender trains (Adam steps of the step benchmark's S, M or L network)
in its own process, one after the other, for --seconds; a hog process (a
single-threaded numpy loop) keeps one core busy during the middle third. The
step times of each third are reported as medians, and the middle and last
thirds as multiples of the first: the slowdown while the hog runs, and whether
the speed comes back after it stops.

Contenders: graphnet with its default thread count (the contention governor:
graphnet.runtime.contention), graphnet_2threads and graphnet_1thread (gn.set_threads,
which turns the governor off), and torch_eager (torch.set_num_threads(2),
torch.optim.Adam) when PyTorch is installed.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).parent))
from busy import Hog  # noqa: E402
from report import add_results_option, print_machine, write_report  # noqa: E402

THIRDS = ("before", "during", "after")


Built = tuple[Callable[[], Any], Callable[[], int]]  # a step, and the thread count it runs on now


def graphnet_step(size: str, threads: int | None) -> Built:
    import graphnet as gn
    from graphnet.benchmarks.step import graphnet_step as build
    from graphnet.benchmarks.step import make_problem

    from graphnet.runtime.threads import threads_now

    if threads:
        gn.set_threads(threads)
    step = build(make_problem(size), backend="numba", rule="adam")
    return step, threads_now  # how many threads run at the moment (the governor's count)


def torch_step(size: str, threads: int | None) -> Built:
    import torch
    from peers import torch_step as build

    from graphnet.benchmarks.step import make_problem

    step = build(make_problem(size), rule="adam")
    torch.set_num_threads(threads or 2)
    return step, torch.get_num_threads


CONTENDERS: dict[str, tuple[Callable[[str, int | None], Built], int | None]] = {
    "graphnet": (graphnet_step, None),
    "graphnet_2threads": (graphnet_step, 2),
    "graphnet_1thread": (graphnet_step, 1),
    "torch_eager": (torch_step, None),
}


def child(name: str, size: str, seconds: float) -> dict:
    """Train contender `name` for `seconds`, a hog on one core during the middle third;
    the step times (s) and the thread count at the end of each third."""
    builder, threads = CONTENDERS[name]
    step, threads_now = builder(size, threads)
    ended_with: dict[str, int] = {}
    for _ in range(5):
        step()
    times: dict[str, list[float]] = {third: [] for third in THIRDS}
    hog = Hog()
    start = time.perf_counter()
    try:
        while (elapsed := time.perf_counter() - start) < seconds:
            third = THIRDS[min(2, int(3 * elapsed / seconds))]
            previous = THIRDS[THIRDS.index(third) - 1]
            if third != "before" and previous not in ended_with:  # a new third begins
                ended_with[previous] = threads_now()
                if third == "during":
                    hog.start()  # returns once the hog is running
                else:
                    hog.stop()
            began = time.perf_counter()
            step()
            times[third].append(time.perf_counter() - began)
    finally:
        hog.stop()
    ended_with["after"] = threads_now()
    return {"threads": ended_with, "times": times}


def summarize(times: dict[str, list[float]]) -> dict[str, float]:
    """Median step (us) per third, and the middle and last thirds over the first."""
    medians = {third: 1e6 * statistics.median(values) for third, values in times.items() if values}
    summary = {f"{third}_us": value for third, value in medians.items()}
    if "before" in medians:
        for third in ("during", "after"):
            if third in medians:
                summary[f"{third}_vs_before"] = medians[third] / medians["before"]
    summary["steps"] = sum(len(values) for values in times.values())
    return summary


def run_contender(name: str, size: str, seconds: float) -> dict | str:
    """One contender's summary, trained in its own process; or why it was skipped."""
    command = [sys.executable, __file__, "--child", name, "--size", size, "--seconds", str(seconds)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        if "No module named 'torch'" in done.stderr:
            return "not installed (torch)"
        raise SystemExit(f"{name} failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"threads": result["threads"], **summarize(result["times"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="training time per contender")
    parser.add_argument("--size", default="M", choices=("S", "M", "L"))
    parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=list(CONTENDERS))
    add_results_option(parser)
    parser.add_argument("--child", choices=list(CONTENDERS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.size, args.seconds)))
        return 0
    results: dict = {"size": args.size, "seconds": args.seconds, "runs": {}, "skipped": {},
                     "machine": print_machine()}
    for name in args.contenders:
        outcome = run_contender(name, args.size, args.seconds)
        if isinstance(outcome, str):
            results["skipped"][name] = outcome
            print(f"{name}: skipped, {outcome}")
            continue
        results["runs"][name] = outcome
        print(f"{name:18s} before {outcome['before_us']:9.1f} us  during x{outcome.get('during_vs_before', 0):6.2f}"
              f"  after x{outcome.get('after_vs_before', 0):5.2f}  threads {outcome['threads']}", flush=True)
        time.sleep(0.5)
    write_report(args.results / "busy_training.json", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
