"""One training step (forward, softmax cross-entropy, backward, SGD update) of
an MLP, graphnet against the BLAS floor, in ONE interleaved run (the machine is
shared and noisy, so only ratios from the same run mean anything).

Contenders (same initial weights, same batch):
- `blas_floor`: only the step's GEMMs, into preallocated outputs: the floor.
- `graphnet_numba`, `graphnet_numpy`: Optimizer("sgd").step on the compiled plan
  (the weights' SGD update fused into their backward GEMMs).
- `graphnet_unfused`: the same with `fuse_update=False`: gradients written, then
  one SGD kernel over the flat buffers.

`RULE_CONTENDERS` (`run_rule_bench`, `python bench/step.py --rules`) times every
update rule twice, updated inside backward and by the separate pass, against the
same floor, reporting medians of per-round ratios.

`graphnet bench` runs these, to measure a user's own machine. The peers the
README compares against (tuned and student NumPy, PyTorch, JAX) live in the
repository's bench/ folder (`bench/peers.py`, `python bench/step.py`), which
passes its own contender table to the same timing functions.

Every contender but the floor exposes `step.weights()` ([W1, b1, W2, ...] after
its steps), so tests can check that all of them compute the same update: a
contender that skipped work would not be measured as faster.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterator

import numpy as np

from ..runtime.network import Network
from .machine import Peak, peak_columns, step_flops
from ..runtime.optimizer import Optimizer
from ..spec.builder import sequential

SIZES: dict[str, tuple[tuple[int, ...], int]] = {
    "S": ((784, 100, 10), 64),
    "M": ((784, 512, 256, 10), 128),
    "L": ((3072, 1024, 1024, 10), 256),
}
LEARNING_RATE = 1e-3


@dataclass
class Problem:
    dims: tuple[int, ...]
    batch: int
    weights: list[np.ndarray]  # W1, b1, W2, b2, ... float32
    X: np.ndarray
    y: np.ndarray


def make_problem(size: str, seed: int = 0) -> Problem:
    dims, batch = SIZES[size]
    rng = np.random.default_rng(seed)
    weights = []
    for fan_in, fan_out in zip(dims[:-1], dims[1:]):
        weights.append((rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(np.float32))
        weights.append(np.zeros(fan_out, np.float32))
    X = rng.standard_normal((batch, dims[0])).astype(np.float32)
    y = rng.integers(0, dims[-1], batch).astype(np.int64)
    return Problem(dims, batch, weights, X, y)


# ---- contenders: each returns a zero-argument step function ----------------------------------


def graphnet_step(problem: Problem, backend: str, fuse_update: bool = True, rule: str = "sgd",
                  clip_norm: float | None = None) -> Callable[[], Any]:
    net = _compile_problem(problem, backend)
    weights = _named_weights(problem)
    optimizer = Optimizer(net, rule, learning_rate=LEARNING_RATE, fuse_update=fuse_update, clip_norm=clip_norm)
    X, y = problem.X, problem.y
    sgd_step = optimizer.step

    def step() -> float:
        return sgd_step(X, y)

    step.weights = lambda: [net.params[name].copy() for name in weights]  # type: ignore[attr-defined]
    return step


def _named_weights(problem: Problem) -> dict[str, np.ndarray]:
    return {f"affine{i // 2 + 1}.{'W' if i % 2 == 0 else 'b'}": w for i, w in enumerate(problem.weights)}


def _compile_problem(problem: Problem, backend: str = "numba") -> Any:
    """The problem's MLP (ReLU hidden layers, softmax cross-entropy), compiled, with its weights."""
    layers = [{"op": "affine", "units": units, "activation": "relu"} for units in problem.dims[1:-1]]
    layers.append({"op": "affine", "units": problem.dims[-1]})
    spec = sequential(layers, input_shape=[problem.dims[0]], classes=problem.dims[-1], name="mlp")
    net = Network(spec, batch_size=problem.batch, dtype="float32", backend=backend)
    for name, value in _named_weights(problem).items():
        net.params[name] = value
    return net


def blas_floor_step(problem: Problem) -> Callable[[], Any]:
    """Only the GEMMs of a step, into preallocated outputs."""
    Ws = [w for w in problem.weights[0::2]]
    X, N = problem.X, problem.batch
    hs = [X] + [np.zeros((N, W.shape[1]), np.float32) for W in Ws]
    dhs = [np.zeros((N, W.shape[0]), np.float32) for W in Ws]
    douts = [np.full((N, W.shape[1]), 1e-3, np.float32) for W in Ws]
    dWs = [np.zeros_like(W) for W in Ws]
    matmul = np.matmul

    def step() -> None:
        for i, W in enumerate(Ws):
            matmul(hs[i], W, out=hs[i + 1])
        for i in reversed(range(len(Ws))):
            matmul(hs[i].T, douts[i], out=dWs[i])
            if i > 0:
                matmul(douts[i], Ws[i].T, out=dhs[i])

    return step


def update_only_step(problem: Problem, rule: str = "adam") -> Callable[[], Any]:
    """Only `rule`'s update kernel over the flat buffers of the problem's network (gradients
    written once beforehand): what a stateful rule adds to a step at the least, the same
    work in a separate pass or inside backward."""

    net = _compile_problem(problem)
    optimizer = Optimizer(net, rule, learning_rate=LEARNING_RATE, fuse_update=False)
    net.step(problem.X, problem.y)
    apply = optimizer.apply

    def update() -> None:
        apply()

    update.weights = lambda: [net.params[name].copy() for name in _named_weights(problem)]  # type: ignore[attr-defined]
    update.grads = lambda: [net.grads[name].copy() for name in _named_weights(problem)]  # type: ignore[attr-defined]
    return update


Contender = Callable[[Problem], Callable[[], Any]]  # builds a zero-argument step; module-level, so it pickles

CONTENDERS: dict[str, Contender] = {
    "blas_floor": blas_floor_step,
    "graphnet_numba": partial(graphnet_step, backend="numba"),
    "graphnet_unfused": partial(graphnet_step, backend="numba", fuse_update=False),
    "graphnet_numpy": partial(graphnet_step, backend="numpy"),
}


#: The update rules the rule benchmark times (`run_rule_bench`).
STEP_RULES = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw")
#: A clip norm no gradient of these problems reaches: the norm is computed, nothing is scaled.
UNREACHED_CLIP_NORM = 1e30


def rule_contenders() -> dict[str, Contender]:
    """The floor, then per rule: `<rule>` (updated inside backward: sgd in its GEMMs, the
    others right after each backward step) and `<rule>_separate` (gradients, then one
    update pass over the flat buffers); `adam_clip`: adam with clipping (norm first, so
    the separate pass); `adam_update_only`: the Adam kernel alone, no GEMM."""
    table: dict[str, Contender] = {"blas_floor": blas_floor_step}
    for rule in STEP_RULES:
        table[rule] = partial(graphnet_step, backend="numba", rule=rule)
        table[f"{rule}_separate"] = partial(graphnet_step, backend="numba", rule=rule, fuse_update=False)
    table["adam_clip"] = partial(graphnet_step, backend="numba", rule="adam", clip_norm=UNREACHED_CLIP_NORM)
    table["adam_update_only"] = update_only_step
    return table


RULE_CONTENDERS: dict[str, Contender] = rule_contenders()


def build_contenders(problem: Problem, names: list[str] | None = None,
                     contenders: dict[str, Contender] | None = None) -> tuple[dict[str, Callable], dict[str, str]]:
    """Step functions by name, and the reason for each contender that could not be built.
    `contenders` defaults to graphnet's own (`CONTENDERS`)."""
    table = CONTENDERS if contenders is None else contenders
    steps, skipped = {}, {}
    for name in names or list(table):
        try:
            steps[name] = table[name](problem)
        except ImportError as error:
            skipped[name] = f"not installed ({error.name or error})"
    return steps, skipped


def time_interleaved(steps: dict[str, Callable[[], Any]], rounds: int = 21, min_sample: float = 0.02,
                     warmup: int = 5) -> dict[str, float]:
    """Median seconds per call of each step, sampled round-robin in this process."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    calls = {name: _calibrate(step, min_sample) for name, step in steps.items()}
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            samples[name].append(_sample(step, calls[name]))
    return {name: statistics.median(values) for name, values in samples.items()}


def _calibrate(step: Callable[[], Any], min_sample: float) -> int:
    count = 1
    while _sample(step, count) * count < min_sample:
        count *= 2
    return count


def _sample(step: Callable[[], Any], count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        step()
    return (time.perf_counter() - start) / count


def _worker(connection: Any, size: str, name: str, contender: Contender, min_sample: float) -> None:
    """A contender in its own process: builds its step, then times samples on request."""
    try:
        steps, skipped = build_contenders(make_problem(size), [name], {name: contender})
        if name in skipped:
            connection.send(("skipped", skipped[name]))
            return
        step = steps[name]
        for _ in range(5):
            step()
        count = _calibrate(step, min_sample)
        connection.send(("ready", count))
        while connection.recv() == "sample":
            connection.send(_sample(step, count))
    except Exception as error:  # reported to the parent, which lists it as skipped
        connection.send(("skipped", f"{type(error).__name__}: {error}"))
    finally:
        connection.close()


def time_isolated(size: str, names: list[str], rounds: int = 21, min_sample: float = 0.02,
                  settle: float = 0.3, contenders: dict[str, Contender] | None = None
                  ) -> tuple[dict[str, float], dict[str, str]]:
    """Median seconds per step of each contender, each in its own process, sampled
    round-robin with a pause between samples (see `sample_isolated`)."""
    samples, skipped = sample_isolated(size, names, rounds, min_sample, settle, contenders)
    return {name: statistics.median(values) for name, values in samples.items()}, skipped


def sample_isolated(size: str, names: list[str], rounds: int = 21, min_sample: float = 0.02,
                    settle: float = 0.3, contenders: dict[str, Contender] | None = None
                    ) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Seconds per step of each contender in every round (rounds in order), each contender
    in its own process, sampled round-robin with a pause between samples.

    One process per contender keeps their thread pools (OpenBLAS's, torch's OpenMP,
    XLA's) from spinning against each other on a small machine; the pause lets a
    pool that just worked go idle (OpenBLAS threads spin ~0.1 s after a call).
    """
    import multiprocessing

    table = CONTENDERS if contenders is None else contenders
    context = multiprocessing.get_context("spawn")
    workers, skipped = {}, {}
    for name in names:
        parent, child = context.Pipe()
        process = context.Process(target=_worker, args=(child, size, name, table[name], min_sample), daemon=True)
        process.start()
        kind, value = parent.recv()
        if kind == "skipped":
            skipped[name] = value
            process.join()
        else:
            workers[name] = (parent, process)
    samples: dict[str, list[float]] = {name: [] for name in workers}
    try:
        for _ in range(rounds):
            for name, (connection, _) in workers.items():
                time.sleep(settle)
                connection.send("sample")
                samples[name].append(connection.recv())
    finally:
        for connection, process in workers.values():
            connection.send("stop")
            process.join(timeout=10)
    return samples, skipped


def _per_size(measure: Callable[..., tuple[Any, dict[str, str]]], quick: bool, sizes: list[str] | None,
              table: dict[str, Contender]) -> Iterator[tuple[str, Any, dict[str, str]]]:
    """(size, what `measure` (time_isolated or sample_isolated) gives, skipped contenders) per
    size: S and M in quick mode (7 rounds), every size in full mode (31 rounds, longer samples)."""
    for size in sizes or (["S", "M"] if quick else list(SIZES)):
        measured, skipped = measure(size, list(table), rounds=7 if quick else 31,
                                    min_sample=0.01 if quick else 0.05, settle=0.3, contenders=table)
        yield size, measured, skipped


def size_flops(size: str) -> int:
    """The GEMM FLOPs of one training step of the network of `size` (S, M, L)."""
    dims, batch = SIZES[size]
    return step_flops(dims, batch)


def run_step_bench(quick: bool = True, sizes: list[str] | None = None,
                   contenders: dict[str, Contender] | None = None, peak: Peak | None = None) -> list[dict[str, Any]]:
    """Rows of (size, contender, median us, ratio to the BLAS floor, GFLOP/s of the step's GEMM
    work, and its fraction of `peak` when given): one run per size, every contender in its own
    process, samples interleaved. `contenders` (graphnet's own by default) must include "blas_floor"."""
    rows = []
    for size, medians, skipped in _per_size(time_isolated, quick, sizes,
                                            CONTENDERS if contenders is None else contenders):
        floor = medians["blas_floor"]
        for name, seconds in medians.items():
            rows.append(peak_columns({"size": size, "contender": name, "us": seconds * 1e6, "ratio": seconds / floor},
                                     size_flops(size), peak))
        for name, reason in skipped.items():
            rows.append({"size": size, "contender": name, "us": None, "ratio": None, "skipped": reason})
    return rows


def run_rule_bench(quick: bool = True, sizes: list[str] | None = None,
                   contenders: dict[str, Contender] | None = None, peak: Peak | None = None) -> list[dict[str, Any]]:
    """Rows per (size, contender) of `RULE_CONTENDERS`: median us per step, `ratio` = the
    median over rounds of (step / BLAS floor in the same round), `vs_adam` = ratio /
    adam's ratio (in-backward adam; the target for the other stateful rules is within 3%),
    GFLOP/s of the step's GEMM work and its fraction of `peak`."""
    rows = []
    for size, samples, skipped in _per_size(sample_isolated, quick, sizes,
                                            RULE_CONTENDERS if contenders is None else contenders):
        floor = samples["blas_floor"]
        ratios = {name: statistics.median(s / f for s, f in zip(values, floor)) for name, values in samples.items()}
        adam = ratios.get("adam")
        for name, values in samples.items():
            rows.append(peak_columns({"size": size, "contender": name, "us": statistics.median(values) * 1e6,
                                      "ratio": ratios[name], "vs_adam": ratios[name] / adam if adam else None},
                                     size_flops(size), peak))
        for name, reason in skipped.items():
            rows.append({"size": size, "contender": name, "us": None, "ratio": None, "vs_adam": None,
                         "skipped": reason})
    return rows


def format_step_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a text table: step time, ratio to the BLAS floor, GFLOP/s of the step's GEMM
    work and its share of the machine's peak (where the rows have them)."""
    lines = [f"{'size':<5} {'contender':<18} {'step (us)':>12} {'x BLAS floor':>13} {'GFLOP/s':>8} {'of peak':>8}"]
    for row in rows:
        if row["us"] is None:
            lines.append(f"{row['size']:<5} {row['contender']:<18} {'skipped: ' + row['skipped']}")
        else:
            rate = f"{row['gflops']:>8.1f}" if row.get("gflops") else f"{'':>8}"
            share = f"{row['peak_fraction']:>8.1%}" if row.get("peak_fraction") else f"{'':>8}"
            vs_adam = f" {row['vs_adam']:>8.3f} x adam" if row.get("vs_adam") else ""
            lines.append(f"{row['size']:<5} {row['contender']:<18} {row['us']:>12.1f} {row['ratio']:>13.3f}"
                         f" {rate} {share}{vs_adam}")
    return "\n".join(lines)
