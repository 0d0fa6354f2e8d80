"""Inference speed: graphnet's `net.forward` against ONNX Runtime (on graphnet's own ONNX
export) and PyTorch eager, on the M network 784-512-256-10 (ReLU, float32, the same
weights), at batch 1, 32 and 256: the README's inference table.

    python bench/inference.py                                  # 15 rounds
    python bench/inference.py --json bench/results/inference.json

Every contender runs in its own process (spawned); samples are interleaved
round-robin with a pause between them, and each figure is the median seconds per
call. Every contender gets the same thread count (--threads, default 2, the
machine's cores): OpenBLAS under graphnet (OPENBLAS_NUM_THREADS), ONNX
Runtime's intra-op pool, torch.set_num_threads. A contender that is
not installed is listed as skipped. Ratios are contender time / graphnet time.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

LAYERS = (784, 512, 256, 10)
BATCHES = (1, 32, 256)
THREADS = 2  # --threads: for every contender (the BLAS under graphnet and torch, ONNX Runtime's intra-op pool)
CONTENDERS = ("graphnet", "onnxruntime", "torch")


def m_network() -> dict[str, Any]:
    """The M network's spec: 784-512-256-10, ReLU between, scores out."""
    nodes, previous = [], "x"
    for i, units in enumerate(LAYERS[1:], 1):
        last = i == len(LAYERS) - 1
        nodes.append({"id": f"fc{i}", "op": "affine", "inputs": [previous], "units": units,
                      **({} if last else {"activation": "relu"})})
        previous = f"fc{i}"
    return {"name": "m_inference", "inputs": {"x": {"shape": [LAYERS[0]]}}, "nodes": nodes, "outputs": [previous]}


def graphnet_net(weights: Path, batch: int):
    import graphnet as gn

    net = gn.compile(m_network(), batch_size=batch, dtype="float32")
    with np.load(weights) as arrays:
        net.load_state_dict({name: arrays[name] for name in arrays.files})
    return net


def make_graphnet(weights: Path, batch: int) -> Callable[[np.ndarray], Any]:
    return graphnet_net(weights, batch).forward


def make_onnxruntime(weights: Path, batch: int) -> Callable[[np.ndarray], Any]:
    import onnxruntime  # ImportError: skipped

    path = weights.with_suffix(".onnx")
    if not path.exists():
        graphnet_net(weights, batch).to_onnx(path)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = _threads(), 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda X: session.run(None, {"x": X})


def make_torch(weights: Path, batch: int) -> Callable[[np.ndarray], Any]:
    import torch  # ImportError: skipped

    torch.set_num_threads(_threads())
    layers: list[Any] = []
    with np.load(weights) as arrays:
        for i in range(1, len(LAYERS)):
            linear = torch.nn.Linear(LAYERS[i - 1], LAYERS[i])
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(arrays[f"fc{i}.W"].T.copy()))
                linear.bias.copy_(torch.from_numpy(arrays[f"fc{i}.b"]))
            layers += [linear, torch.nn.ReLU()] if i < len(LAYERS) - 1 else [linear]
    model = torch.nn.Sequential(*layers).eval()

    def run(X: np.ndarray) -> Any:
        with torch.inference_mode():
            return model(torch.from_numpy(X)).numpy()
    return run


def _threads() -> int:
    import os

    return int(os.environ.get("OPENBLAS_NUM_THREADS", THREADS))


MAKERS = {"graphnet": make_graphnet, "onnxruntime": make_onnxruntime, "torch": make_torch}


def _worker(connection: Any, name: str, weights: str, batch: int, min_sample: float) -> None:
    """In its own process: build the contender, then answer "sample" with seconds per call."""
    try:
        run = MAKERS[name](Path(weights), batch)
    except ImportError as error:
        connection.send(("skipped", f"not installed ({error.name or error})"))
        return
    X = np.random.default_rng(1).standard_normal((batch, LAYERS[0])).astype(np.float32)
    for _ in range(5):
        run(X)
    connection.send(("ready", None))
    while connection.recv() == "sample":
        calls, start = 0, time.perf_counter()
        while True:
            run(X)
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_sample:
                break
        connection.send(elapsed / calls)


def write_weights(folder: Path, seed: int = 0) -> Path:
    """The M network's weights (He-normal, seeded) as an npz every contender loads."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for i in range(1, len(LAYERS)):
        arrays[f"fc{i}.W"] = (rng.standard_normal((LAYERS[i - 1], LAYERS[i])) * np.sqrt(2 / LAYERS[i - 1])
                              ).astype(np.float32)
        arrays[f"fc{i}.b"] = (0.01 * rng.standard_normal(LAYERS[i])).astype(np.float32)
    path = folder / "m.npz"
    np.savez(path, **arrays)
    return path


def time_batch(weights: Path, batch: int, names: list[str], rounds: int, min_sample: float,
               settle: float) -> tuple[dict[str, float], dict[str, str]]:
    """Median seconds per call of each contender at `batch`, one process each, sampled round-robin."""
    context = multiprocessing.get_context("spawn")
    workers, skipped = {}, {}
    for name in names:
        parent, child = context.Pipe()
        process = context.Process(target=_worker, args=(child, name, str(weights), batch, min_sample), daemon=True)
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
    return {name: statistics.median(values) for name, values in samples.items()}, skipped


def run_inference_bench(batches: tuple[int, ...] = BATCHES, names: tuple[str, ...] = CONTENDERS, rounds: int = 15,
                        min_sample: float = 0.02, settle: float = 0.2) -> list[dict[str, Any]]:
    """One row per (batch, contender): median seconds per call, examples per second, and
    the ratio to graphnet at that batch (None when graphnet or the contender did not run)."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        weights = write_weights(Path(folder))
        for batch in batches:
            medians, skipped = time_batch(weights, batch, list(names), rounds, min_sample, settle)
            base = medians.get("graphnet")
            for name in names:
                seconds = medians.get(name)
                rows.append({"batch": batch, "contender": name, "seconds": seconds,
                             "examples_per_second": None if seconds is None else batch / seconds,
                             "ratio_to_graphnet": None if seconds is None or base is None else seconds / base,
                             "skipped": skipped.get(name)})
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'batch':>5}  {'contender':<12} {'us/call':>10}  {'x graphnet':>10}"]
    for row in rows:
        if row["seconds"] is None:
            lines.append(f"{row['batch']:>5}  {row['contender']:<12} skipped: {row['skipped']}")
        else:
            lines.append(f"{row['batch']:>5}  {row['contender']:<12} {1e6 * row['seconds']:>10.1f}  "
                         f"{row['ratio_to_graphnet']:>10.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", nargs="+", type=int, default=list(BATCHES))
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--rounds", type=int, default=15, help="samples per contender (median)")
    parser.add_argument("--min-sample", type=float, default=0.02, help="seconds per sample, at least")
    parser.add_argument("--threads", type=int, default=THREADS,
                        help=f"threads of every contender (default {THREADS}: the machine's cores)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    import os

    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(args.threads)  # read by the BLAS of each spawned contender
    rows = run_inference_bench(tuple(args.batches), tuple(args.contenders), args.rounds, args.min_sample)
    print(format_table(rows))
    if args.json:
        from graphnet.fileio import write_text_atomic

        write_text_atomic(args.json, json.dumps(rows, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
