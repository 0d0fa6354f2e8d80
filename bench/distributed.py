"""Data-parallel training over MPI: step time and samples/s for 1 and 2 ranks, and allreduce
time against gradient bytes; the numbers behind docs/scaling.md.

    python bench/distributed.py                    # quick: size S, allreduce up to 4 MB
    python bench/distributed.py --full          # writes bench-results/distributed.json (--results DIR)
    python bench/distributed.py --scaling-table bench/results/distributed.json   # docs/scaling.md's table

Configurations, each in its own process(es), on the MLPs S/M/L of graphnet.benchmarks.step at
their batch and at 4x it (the batch is the global batch):
- `1 process, 1 thread` and `1 process, 2 threads`: gn.Optimizer("sgd").step, the fused
  single-process step that `graphnet train` runs;
- `2 ranks, 1 thread each`: what `graphnet train --workers 2` runs per step: net.step on
  half the batch, one Allreduce of the flat gradient buffer, the SGD update.
The allreduce is also timed alone (in place, float32, SUM), from 4 KB to ~100 MB.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # graphnet from this checkout when run as a script

from report import add_results_option, print_machine, write_report  # noqa: E402

from graphnet.benchmarks.step import LEARNING_RATE, SIZES, make_problem  # noqa: E402

BATCH_FACTORS = (1, 4)
ALLREDUCE_BYTES_FULL = [4 << 10, 64 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20, 100 << 20]
ALLREDUCE_BYTES_QUICK = [4 << 10, 64 << 10, 1 << 20, 4 << 20]
BANDWIDTHS_GBIT = (10, 25, 100)
LATENCY_SECONDS = 20e-6  # one message over a datacenter TCP network (RDMA: ~2 us)


# ---- measuring, inside one process or one rank --------------------------------------------

def _median_seconds(step: Callable[[], Any], world: Any, rounds: int, min_sample: float) -> float:
    """Median seconds per call of `step` over `rounds` samples of a calibrated number of calls
    (the same number on every rank: a step may be a collective)."""
    barrier = world.comm.Barrier if world.size > 1 else (lambda: None)
    step()
    start = time.perf_counter()
    step()
    elapsed = time.perf_counter() - start
    count = max(1, int(min_sample / max(elapsed, 1e-7)))
    if world.size > 1:
        count = int(_max_over_ranks(world, count))
    samples = []
    for _ in range(rounds):
        barrier()
        start = time.perf_counter()
        for _ in range(count):
            step()
        samples.append((time.perf_counter() - start) / count)
    return statistics.median(samples)


def _network(size: str, batch: int, capacity: int):
    """A compiled MLP of `size` (float32, numba) with the step_bench weights, and the global batch (X, y)."""
    import graphnet as gn

    problem = make_problem(size)
    dims = problem.dims
    layers = [{"op": "affine", "units": units, "activation": "relu"} for units in dims[1:-1]]
    layers.append({"op": "affine", "units": dims[-1]})
    spec = gn.sequential(layers, input_shape=[dims[0]], classes=dims[-1], name="mlp")
    net = gn.compile(spec, batch_size=capacity, dtype="float32")
    rng = np.random.default_rng(1)
    X = rng.standard_normal((batch, dims[0])).astype(np.float32)
    y = rng.integers(0, dims[-1], batch).astype(np.int64)
    return net, X, y


def measure(sizes: list[str], allreduce_bytes: list[int], rounds: int, min_sample: float) -> dict[str, Any]:
    """This process's (or, under MPI, this rank's) step rows and allreduce rows."""
    import graphnet as gn
    from graphnet.training.distributed import current_world
    from graphnet.training.parallel import rank_bounds

    world = current_world()
    rows = []
    for size in sizes:
        for factor in BATCH_FACTORS:
            batch = SIZES[size][1] * factor
            start, stop = rank_bounds(batch, world.rank, world.size)
            net, X, y = _network(size, batch, stop - start)
            if world.size == 1:
                optimizer = gn.Optimizer(net, "sgd", learning_rate=LEARNING_RATE)
                step = lambda: optimizer.step(X, y)  # noqa: E731
                allreduce_seconds = 0.0
            else:
                optimizer = gn.Optimizer(net, "sgd", learning_rate=LEARNING_RATE, fuse_update=False)
                Xl, yl, share = X[start:stop], y[start:stop], (stop - start) / batch
                grads = net.store.grads

                def step() -> None:
                    net.step(Xl, yl)
                    net.kernels.scale_inplace(grads, share)
                    world.sum_into(grads)
                    optimizer.apply()
                allreduce_seconds = _median_seconds(lambda: world.sum_into(grads), world, rounds, min_sample)
            seconds = _median_seconds(step, world, rounds, min_sample)
            if world.size > 1:  # a step is as slow as the slowest rank
                seconds = _max_over_ranks(world, seconds)
            rows.append({"size": size, "batch": batch, "params": net.num_params,
                         "gradient_bytes": int(net.store.grads.nbytes), "step_ms": 1e3 * seconds,
                         "samples_per_s": batch / seconds, "allreduce_ms": 1e3 * allreduce_seconds})
    reduces = []
    if world.size > 1:
        for nbytes in allreduce_bytes:
            buffer = np.ones(nbytes // 4, np.float32)
            seconds = _median_seconds(lambda: world.sum_into(buffer), world, max(5, rounds // 2), min_sample)
            reduces.append({"bytes": nbytes, "ms": 1e3 * seconds, "GB_per_s": nbytes / seconds / 1e9})
    return {"steps": rows, "allreduce": reduces}


def _max_over_ranks(world: Any, value: float) -> float:
    """The largest `value` of all ranks (through a buffer: nothing is pickled)."""
    from mpi4py import MPI
    buffer = np.array([value], np.float64)
    world.comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.MAX)
    return float(buffer[0])


# ---- the driver: one process per configuration ---------------------------------------------------

def run_configuration(name: str, ranks: int, threads: int, worker_args: list[str]) -> dict[str, Any] | str:
    """The worker's measurements for `ranks` processes of `threads` BLAS threads; a string when it can't run."""
    from graphnet.training.distributed import find_mpiexec, launch_environment

    environment = {**launch_environment(), **{v: str(threads) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                                         "MKL_NUM_THREADS", "GRAPHNET_THREADS")}}
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", *worker_args]
    if ranks > 1:
        mpiexec = find_mpiexec()
        try:
            import mpi4py  # noqa: F401
        except ImportError:
            mpiexec = None
        if mpiexec is None:
            return "skipped: needs graphnet[mpi] (mpi4py and mpiexec)"
        command = [mpiexec, "-n", str(ranks), *command]
    else:
        environment = {k: v for k, v in environment.items() if not k.startswith("OMPI_ALLOW")}
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        return f"failed ({done.returncode}): {done.stderr.strip()[-500:]}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for row in result["steps"]:
        row["configuration"] = name
    return result


def run_bench(full: bool) -> dict[str, Any]:
    sizes = list(SIZES) if full else ["S"]
    reduce_bytes = ALLREDUCE_BYTES_FULL if full else ALLREDUCE_BYTES_QUICK
    worker_args = ["--sizes", *sizes, "--bytes", *map(str, reduce_bytes),
                   "--rounds", str(15 if full else 3), "--min-sample", str(0.05 if full else 0.01)]
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared with other jobs: figures are noisy",
        "steps": [], "allreduce": [], "skipped": {}}
    for name, ranks, threads in (("1 process, 1 thread", 1, 1), ("1 process, 2 threads", 1, 2),
                                 ("2 ranks, 1 thread each", 2, 1)):
        result = run_configuration(name, ranks, threads, worker_args)
        if isinstance(result, str):
            report["skipped"][name] = result
            continue
        report["steps"] += result["steps"]
        report["allreduce"] += result["allreduce"]
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [report["machine"], "", "| size | batch | configuration | step ms | samples/s | allreduce ms |",
             "|---|---:|---|---:|---:|---:|"]
    for row in sorted(report["steps"], key=lambda r: (list(SIZES).index(r["size"]), r["batch"])):
        reduce = f"{row['allreduce_ms']:.3f}" if row["allreduce_ms"] else ""
        lines.append(f"| {row['size']} | {row['batch']} | {row['configuration']} | {row['step_ms']:.3f} | "
                     f"{row['samples_per_s']:,.0f} | {reduce} |")
    lines += ["", "| gradient bytes | allreduce ms (2 ranks, one machine) | GB/s |", "|---:|---:|---:|"]
    for row in report["allreduce"]:
        lines.append(f"| {row['bytes']:,} | {row['ms']:.3f} | {row['GB_per_s']:.2f} |")
    for name, why in report["skipped"].items():
        lines.append(f"{name}: {why}")
    return "\n".join(lines)


# ---- the scaling model (docs/scaling.md) ------------------------------------------------------

def ring_allreduce_seconds(nbytes: float, ranks: int, gbit_per_s: float, latency: float = LATENCY_SECONDS) -> float:
    """Ring allreduce: 2(N-1)/N x bytes / bandwidth, plus 2(N-1) message latencies."""
    if ranks == 1:
        return 0.0
    return 2 * (ranks - 1) / ranks * nbytes / (gbit_per_s * 1e9 / 8) + 2 * (ranks - 1) * latency


def modeled_speedup(seconds_per_example: float, batch: int, nbytes: float, ranks: int, gbit_per_s: float) -> float:
    """One machine's step time over N machines': compute split N ways plus the allreduce (not overlapped)."""
    one = seconds_per_example * batch
    return one / (one / ranks + ring_allreduce_seconds(nbytes, ranks, gbit_per_s))


def break_even_batch(seconds_per_example: float, nbytes: float, ranks: int, gbit_per_s: float,
                     efficiency: float | None = None) -> float:
    """The global batch from which N machines beat one (efficiency None), or reach
    `efficiency` x N times its speed: B > T / (t (1 - 1/N)), resp. B >= N T / (t (1/e - 1))."""
    allreduce = ring_allreduce_seconds(nbytes, ranks, gbit_per_s)
    if efficiency is None:
        return allreduce / (seconds_per_example * (1 - 1 / ranks))
    return ranks * allreduce / (seconds_per_example * (1 / efficiency - 1))


def _per_example(report: dict[str, Any]) -> dict[str, tuple[float, int]]:
    """size -> (measured 1-thread seconds per example at its largest measured batch, gradient bytes)."""
    best: dict[str, tuple[float, int, int]] = {}
    for row in report["steps"]:
        if row["configuration"] == "1 process, 1 thread":
            if row["size"] not in best or row["batch"] > best[row["size"]][1]:
                best[row["size"]] = (row["step_ms"] / 1e3 / row["batch"], row["batch"], row["gradient_bytes"])
    return {size: (seconds, nbytes) for size, (seconds, _, nbytes) in best.items()}


def break_even_table(report: dict[str, Any], ranks: tuple[int, ...] = (2, 4, 8)) -> str:
    """Markdown: per model and network, the global batch from which N machines pay off (> 1x)
    and from which they reach 80% of N x."""
    lines = ["| model | network | " + " | ".join(f"N={n}: >1x / 80%" for n in ranks) + " |",
             "|---|---|" + "---:|" * len(ranks)]
    for size, (seconds, nbytes) in _per_example(report).items():
        for gbit in BANDWIDTHS_GBIT:
            cells = [f"{break_even_batch(seconds, nbytes, n, gbit):,.0f} / "
                     f"{break_even_batch(seconds, nbytes, n, gbit, 0.8):,.0f}" for n in ranks]
            lines.append(f"| {size} | {gbit} Gb/s | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scaling_table(report: dict[str, Any], ranks: tuple[int, ...] = (2, 4, 8),
                  batches: tuple[int, ...] = (64, 256, 1024, 4096)) -> str:
    """Markdown: modeled speedup of N machines per model, batch and network, from the measured
    single-thread compute per example (the largest measured batch of each size)."""
    per_example = _per_example(report)
    header = "| model (gradient MB, compute us/example) | batch | " + " | ".join(
        f"{g} Gb/s N={n}" for g in BANDWIDTHS_GBIT for n in ranks) + " |"
    lines = [header, "|---|---:|" + "---:|" * (len(BANDWIDTHS_GBIT) * len(ranks))]
    for size, (seconds, nbytes) in per_example.items():
        for batch in batches:
            cells = [f"{modeled_speedup(seconds, batch, nbytes, n, g):.2f}" for g in BANDWIDTHS_GBIT for n in ranks]
            lines.append(f"| {size} ({nbytes / 1e6:.2f} MB, {1e6 * seconds:.1f} us) | {batch} | "
                         + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="sizes S, M, L; allreduce up to 100 MB; more rounds")
    add_results_option(parser)
    parser.add_argument("--scaling-table", metavar="JSON", help="print the scaling model's table from a report")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", nargs="+", default=["S"], help=argparse.SUPPRESS)
    parser.add_argument("--bytes", nargs="+", type=int, default=[], help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3, help=argparse.SUPPRESS)
    parser.add_argument("--min-sample", type=float, default=0.01, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        result = measure(args.sizes, args.bytes, args.rounds, args.min_sample)
        from graphnet.training.distributed import current_world
        if current_world().is_root:
            print(json.dumps(result))
        return 0
    if args.scaling_table:
        report = json.loads(Path(args.scaling_table).read_text())
        print(scaling_table(report) + "\n\n" + break_even_table(report))
        return 0
    machine = print_machine()
    report = {**run_bench(args.full), "blas": machine}
    print(format_report(report))
    write_report(args.results / "distributed.json", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
