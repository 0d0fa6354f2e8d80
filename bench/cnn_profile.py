"""Where the Fashion CNN's time goes in graphnet: every step of the compiled plans timed alone
(the SGD training step at batch 128, inference at batch 1 / 32 / 256), and each convolution
step against its GEMMs alone (bench/cnn.py's floor_gemms, same shapes, same BLAS threads).

    python bench/cnn_profile.py [--rounds 60] [--threads 2] [--results DIR]   # writes DIR/cnn_profile.json

One process, one step after another in plan order, each call timed with perf_counter; the
median over rounds per step. The steps' sum is close to, not equal to, a whole step: the plan's
own bookkeeping between steps is not in it.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from cnn import INFER_BATCHES, LEARNING_RATE, SPEC, STEP_BATCH, floor_gemms, network  # noqa: E402
from report import add_results_option, write_report  # noqa: E402


def time_calls(calls: list[Callable[[], Any]], rounds: int) -> list[float]:
    """Median microseconds of each call, the calls made in order once per round."""
    samples: list[list[float]] = [[] for _ in calls]
    for _ in range(rounds):
        for call, times in zip(calls, samples):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
    return [1e6 * statistics.median(times) for times in samples]


def plan_profile(net: Any, kind: str, X: np.ndarray, y: np.ndarray | None, rounds: int) -> list[dict]:
    """One row per step of `net`'s plan of `kind` bound for len(X) examples: node, kernel, phase, us."""
    n = len(X)
    plan = net.plan(kind, n)
    inputs = {name: X for name in net.graph.inputs}
    labels = {name: y for name in net.graph.labels} if y is not None else None
    plan.run(inputs, labels, LEARNING_RATE if plan.kind.update == "sgd" else None)  # binds, sets the rate
    binding = plan.bind(n)  # the binding that run used, this batch in its slots
    if len(binding.steps) != len(plan.steps):
        raise SystemExit("the plan runs extra steps (debug poisoning?): profile without it")
    calls = [lambda fn=fn, args=args: fn(*args) for fn, args, _ in binding.steps]
    times = time_calls(calls, rounds)
    n_forward = plan.schedule.n_forward
    return [{"step": t, "node": step.node, "kernel": step.kernel, "us": us,
             "phase": "fwd" if t < n_forward else "bwd" if t < len(plan.schedule.steps) else "post"}
            for t, (step, us) in enumerate(zip(plan.steps, times))]


def conv_floors(spec: Any, n: int, rounds: int, forward_only: bool) -> dict[str, dict[str, float]]:
    """Per conv/affine node: median microseconds of its forward GEMM and of its backward GEMMs."""
    work = floor_gemms(spec, n, np.random.default_rng(0))
    if forward_only:
        work = [w for w in work if w[1] == "forward"]
    times = time_calls([lambda a=a, b=b, c=c: np.matmul(a, b, out=c) for _, _, a, b, c in work], rounds)
    floors: dict[str, dict[str, float]] = {}
    for (node, role, *_), us in zip(work, times):
        entry = floors.setdefault(node, {"forward": 0.0, "backward": 0.0})
        entry["forward" if role == "forward" else "backward"] += us
    return floors


def attach_floors(rows: list[dict], floors: dict[str, dict[str, float]]) -> None:
    for row in rows:
        floor = floors.get(row["node"], {}).get("forward" if row["phase"] == "fwd" else "backward")
        if floor and row["phase"] != "post":
            row["gemm_us"] = floor


def profile(rounds: int, threads: int, spec_path: str | None = None, step_batch: int = STEP_BATCH,
            batches: tuple[int, ...] = INFER_BATCHES) -> dict:
    from threadpoolctl import threadpool_limits

    import graphnet as gn
    from graphnet.runtime.blas import blas_info

    gn.set_threads(threads)  # graphnet's plans: numpy's BLAS on one thread, their GEMMs cut over `threads`

    def floors(batch: int, forward_only: bool) -> dict[str, dict[str, float]]:
        with threadpool_limits(threads, user_api="blas"):  # the floor GEMMs: plain numpy on `threads`
            return conv_floors(spec, batch, rounds, forward_only=forward_only)

    spec = network({"spec": spec_path} if spec_path else {})
    rng = np.random.default_rng(0)
    shape = spec.value(next(iter(spec.inputs))).shape
    results: dict[str, Any] = {"network": str(spec_path or SPEC.name), "dtype": "float32", "threads": threads, "rounds": rounds,
                               "blas": str(blas_info()), "cases": {}}
    trainer = gn.compile(spec, batch_size=step_batch, dtype="float32", seed=0)
    X = rng.standard_normal((step_batch, *shape)).astype(np.float32)
    y = rng.integers(0, 10, step_batch)
    rows = plan_profile(trainer, "train_sgd", X, y, rounds)
    attach_floors(rows, floors(step_batch, forward_only=False))
    step = gn.Optimizer(trainer, "sgd", learning_rate=LEARNING_RATE)
    [whole] = time_calls([lambda: step.step(X, y)], rounds)
    results["cases"]["step"] = {"batch": step_batch, "whole_us": whole, "steps": rows}
    server = gn.compile(spec, batch_size=max(batches), dtype="float32", seed=0)
    for n in batches:
        Xb = rng.standard_normal((n, *shape)).astype(np.float32)
        rows = plan_profile(server, "infer", Xb, None, rounds)
        attach_floors(rows, floors(n, forward_only=True))
        [whole] = time_calls([lambda Xb=Xb: server.forward(Xb)], rounds)
        results["cases"][f"b{n}"] = {"batch": n, "whole_us": whole, "steps": rows}
    return results


def print_profile(results: dict) -> None:
    print(f"blas: {results['blas']}, {results['threads']} thread(s), medians of {results['rounds']} rounds")
    for case, entry in results["cases"].items():
        rows, total = entry["steps"], sum(row["us"] for row in entry["steps"])
        print(f"\n{case} (batch {entry['batch']}): whole call {entry['whole_us'] / 1000:.2f} ms, "
              f"steps' sum {total / 1000:.2f} ms")
        for row in rows:
            gemm = f"   GEMMs alone {row['gemm_us'] / 1000:7.3f} ms ({row['gemm_us'] / row['us']:4.0%} of it)" \
                if "gemm_us" in row else ""
            print(f"  {row['phase']:4s} {row['node']:9s} {row['us'] / 1000:7.3f} ms {row['us'] / total:5.1%}"
                  f"  {row['kernel'][:60]:60s}{gemm}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    add_results_option(parser)
    args = parser.parse_args(argv)
    results = profile(args.rounds, args.threads)
    print_profile(results)
    write_report(args.results / "cnn_profile.json", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
