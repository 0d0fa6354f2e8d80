"""Inference latency of the M network (784-512-256-10, float32): graphnet against
ONNX Runtime, PyTorch eager and numpy's GEMMs alone, same weights, each in its
own process, interleaved.

    python bench/inference_latency.py [--batches 1 32 256] [--rounds 21] [--threads 2] [--seconds 0.05]
                                      [--results DIR]   # writes DIR/inference_latency.json

Contenders (missing libraries are skipped with the reason):
- graphnet: `net.forward(X)` as shipped (the hot path; graphnet.ops.affine picks the
  kernels: on a BLAS set up for 2+ threads, the GEMM for every layer);
- graphnet_threads: as graphnet, with gn.set_config(packed_parallel=True) (the packed
  kernel split over the caller and graphnet's helper thread up to packed_max_rows rows);
- graphnet_gemm: the hot path with the small-batch and packed kernels off (BLAS at every size);
- graphnet_general: the path before the hot path existed (checks, plan
  lookup and binding on every call) with BLAS at every size;
- ort: ONNX Runtime on `gn.export_onnx(net, ...)`, intra_op_num_threads = --threads,
  sequential execution;
- torch_eager: torch.inference_mode, torch.set_num_threads(--threads);
- numpy_gemms: only the three `np.matmul(..., out=)` calls (no bias, no activation).

Each contender's `us` is the median over rounds of its time per call. A sample
lasts about 50 ms (--seconds): with 4 ms samples the threaded contenders' medians
moved by up to 2x from run to run on a shared 2-vCPU machine; 50 ms samples are
steadier, though two runs still differed by up to ~30% there. Its
`ratio_to_ort` the median over rounds of (its time / ORT's time in the same
round). Before timing, every contender's output on the same batch is checked
against graphnet's (numpy_gemms excepted).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from procbench import SETTLE_SECONDS, Workers, add_timing_options, require, summarize  # noqa: E402
from report import add_results_option, write_report  # noqa: E402

from graphnet.benchmarks.machine import Peak, blas_kernel, forward_flops, measure_peak, peak_columns  # noqa: E402

DIMS = (784, 512, 256, 10)
DEFAULT_BATCHES = (1, 32, 256)
REFERENCE = "ort"
#: The length of one timing sample (see the docstring).
SAMPLE_SECONDS = 0.05


def problem(config: dict) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    """The weights [W1, b1, W2, b2, ...] (He init, small random biases) and one batch per case."""
    rng = np.random.default_rng(config.get("seed", 0))
    dims = config.get("dims", DIMS)
    weights = []
    for fan_in, fan_out in zip(dims[:-1], dims[1:]):
        weights.append((rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(np.float32))
        weights.append((0.1 * rng.standard_normal(fan_out)).astype(np.float32))
    batches = {f"b{n}": rng.standard_normal((n, dims[0])).astype(np.float32) for n in config["batches"]}
    return weights, batches


def graphnet_net(config: dict, weights: list[np.ndarray]) -> Any:
    import graphnet as gn

    dims = config.get("dims", DIMS)
    layers = [{"op": "affine", "units": units, "activation": "relu"} for units in dims[1:-1]]
    layers.append({"op": "affine", "units": dims[-1]})
    spec = gn.sequential(layers, input_shape=[dims[0]], classes=dims[-1], name="mlp")
    net = gn.compile(spec, batch_size=max(config["batches"]), dtype="float32")
    for i, value in enumerate(weights):
        net.params[f"affine{i // 2 + 1}.{'W' if i % 2 == 0 else 'b'}"] = value
    return net


def _graphnet(config: dict, general: bool, small_batch: bool, threaded: bool = False) -> dict:
    import graphnet as gn

    if config.get("threads"):
        gn.set_threads(config["threads"])
    if not small_batch:
        gn.set_config(small_batch_rows=0, packed_max_rows=0)
    settings = gn.set_config(packed_parallel=threaded)
    weights, batches = problem(config)
    net = graphnet_net(config, weights)
    forward = net._forward_general if general else net.forward
    calls = {case: _bound(forward, X) for case, X in batches.items()}
    from graphnet.runtime.blas import blas_info

    return {"calls": calls, "outputs": calls,
            "info": {"blas": str(blas_info()), "threads": gn.get_threads(),
                     "small_batch_rows": settings.small_batch_rows,
                     "packed_max_rows": settings.packed_max_rows, "packed_parallel": threaded}}


def _bound(fn: Callable[[Any], Any], X: Any) -> Callable[[], Any]:
    return lambda: fn(X)


def graphnet_contender(config: dict) -> dict:
    return _graphnet(config, general=False, small_batch=True)


def graphnet_threads_contender(config: dict) -> dict:
    return _graphnet(config, general=False, small_batch=True, threaded=True)


def graphnet_gemm_contender(config: dict) -> dict:
    return _graphnet(config, general=False, small_batch=False)


def graphnet_general_contender(config: dict) -> dict:
    return _graphnet(config, general=True, small_batch=False)


def ort_contender(config: dict) -> dict:
    ort = require("onnxruntime")
    weights, batches = problem(config)
    net = graphnet_net(config, weights)
    path = Path(tempfile.mkdtemp(prefix="graphnet-bench-")) / "m.onnx"
    from graphnet.interop.onnx_export import export_onnx

    export_onnx(net, path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = config.get("threads") or 2
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    run = session.run
    calls = {case: (lambda X=X: run(None, {name: X})[0]) for case, X in batches.items()}
    return {"calls": calls, "outputs": calls,
            "info": {"onnxruntime": ort.__version__, "intra_op_num_threads": options.intra_op_num_threads}}


def torch_contender(config: dict) -> dict:
    torch = require("torch")
    torch.set_num_threads(config.get("threads") or 2)
    weights, batches = problem(config)
    modules: list[Any] = []
    for i in range(0, len(weights), 2):
        W, b = weights[i], weights[i + 1]
        linear = torch.nn.Linear(*W.shape)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W.T.copy()))
            linear.bias.copy_(torch.from_numpy(b))
        modules.append(linear)
        if i + 2 < len(weights):
            modules.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*modules).eval()

    def bound(X: np.ndarray) -> Callable[[], Any]:
        Xt = torch.from_numpy(X)

        def call() -> Any:
            with torch.inference_mode():
                return model(Xt)

        return call

    calls = {case: bound(X) for case, X in batches.items()}
    outputs = {case: (lambda call=call: call().numpy()) for case, call in calls.items()}
    return {"calls": calls, "outputs": outputs,
            "info": {"torch": torch.__version__, "threads": torch.get_num_threads()}}


def numpy_gemms_contender(config: dict) -> dict:
    if config.get("threads"):
        from threadpoolctl import threadpool_limits

        numpy_gemms_contender.limits = threadpool_limits(config["threads"], user_api="blas")  # type: ignore[attr-defined]
    weights, batches = problem(config)
    Ws = weights[0::2]

    def bound(X: np.ndarray) -> Callable[[], Any]:
        hs = [X] + [np.empty((len(X), W.shape[1]), np.float32) for W in Ws]
        matmul = np.matmul

        def call() -> None:
            for i, W in enumerate(Ws):
                matmul(hs[i], W, out=hs[i + 1])

        return call

    return {"calls": {case: bound(X) for case, X in batches.items()}}


CONTENDERS: dict[str, Callable[[dict], dict]] = {
    "graphnet": graphnet_contender,
    "graphnet_threads": graphnet_threads_contender,
    "graphnet_gemm": graphnet_gemm_contender,
    "graphnet_general": graphnet_general_contender,
    "ort": ort_contender,
    "torch_eager": torch_contender,
    "numpy_gemms": numpy_gemms_contender,
}


def check_outputs(workers: Workers, case: str) -> dict[str, float]:
    """Max relative difference of each contender's output to graphnet's; AssertionError past 1e-4."""
    outputs = workers.outputs(case)
    reference = outputs.get("graphnet")
    expected = np.asarray(reference if reference is not None else next(v for v in outputs.values() if v is not None))
    errors = {}
    for name, value in outputs.items():
        if value is None:
            continue
        error = float(np.max(np.abs(np.asarray(value) - expected)) / max(np.max(np.abs(expected)), 1e-30))
        if error > 1e-4:
            raise AssertionError(f"{name} disagrees with graphnet on {case}: max relative difference {error:.2e}")
        errors[name] = error
    return errors


def run_benchmark(batches: list[int], rounds: int, threads: int | None, contenders: list[str],
                  seconds: float = SAMPLE_SECONDS, settle: float = SETTLE_SECONDS, peak: Peak | None = None) -> dict:
    """Every contender in its own process, round-robin; one summary per batch size, each row with
    the GFLOP/s of the forward pass's GEMM work and its fraction of `peak` (when given)."""
    config = {"batches": batches, "threads": threads, "seed": 0}
    results: dict[str, Any] = {"network": list(DIMS), "dtype": "float32", "threads": threads,
                               "rounds": rounds, "cases": {}, "kernel": str(blas_kernel()),
                               "peak": None if peak is None else vars(peak)}
    with Workers("inference_latency", contenders, config) as workers:
        results["skipped"] = workers.skipped
        results["info"] = {name: w.info for name, w in workers.workers.items()}
        for n in batches:
            case = f"b{n}"
            errors = check_outputs(workers, case)
            reps = workers.calibrate(case, seconds)
            samples = workers.sample_rounds(case, reps, rounds, settle)
            summary = {name: peak_columns(row, forward_flops(DIMS, n), peak)
                       for name, row in summarize(samples, REFERENCE).items()}
            results["cases"][case] = {"batch": n, "summary": summary,
                                      "max_rel_difference": errors, "reps": reps}
    return results


def print_table(results: dict) -> None:
    print(results["kernel"])
    if results["peak"]:
        print(Peak(**results["peak"]))
    for name, reason in results["skipped"].items():
        print(f"skipped {name}: {reason}")
    for name, info in results["info"].items():
        if info:
            print(f"{name}: {info}")
    for case in results["cases"].values():
        print(f"batch {case['batch']}:")
        for name, row in case["summary"].items():
            ratio = row.get(f"ratio_to_{REFERENCE}")
            share = f" = {row['peak_fraction']:6.1%} of peak" if row.get("peak_fraction") else ""
            print(f"  {name:18s} {row['us']:10.1f} us" + (f"   {ratio:5.2f}x {REFERENCE}" if ratio else "")
                  + f"   {row['gflops']:7.1f} GFLOP/s{share}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=list(DEFAULT_BATCHES))
    add_timing_options(parser, 21, SAMPLE_SECONDS, CONTENDERS)
    add_results_option(parser)
    args = parser.parse_args(argv)
    results = run_benchmark(args.batches, args.rounds, args.threads, args.contenders, seconds=args.seconds,
                            peak=measure_peak())
    print_table(results)
    write_report(args.results / "inference_latency.json", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
