"""The Fashion CNN (specs/fashion_cnn.json, float32): one SGD training step at batch 128 against
PyTorch eager (oneDNN), JAX jit and the im2col+GEMM floor (the step's GEMMs alone), and
inference at batch 1 / 32 / 256 against ONNX Runtime on the exported model (and PyTorch).

    python bench/cnn.py [--rounds 15] [--threads 2] [--results DIR]   # writes DIR/cnn.json

Every contender runs in its own process, samples interleaved round-robin (bench/procbench.py),
same weights (graphnet's initial ones). Before timing, the inference outputs are checked
against graphnet's (max relative difference 1e-4) and the first training step's loss of each
peer against graphnet's on the network without dropout. Peers that are not installed are
skipped with the reason. Run it with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset in that
command alone (env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/cnn.py): the
OpenBLAS kernel that ran is reported (threadpoolctl).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from procbench import SETTLE_SECONDS, Workers, add_timing_options, require, summarize  # noqa: E402
from report import add_results_option, write_report  # noqa: E402

SPEC = Path(__file__).resolve().parents[1] / "specs" / "fashion_cnn.json"
STEP_BATCH = 128
INFER_BATCHES = (1, 32, 256)
LEARNING_RATE = 0.01
SAMPLE_SECONDS = 0.3


def network(config: dict) -> Any:
    import graphnet as gn

    run = gn.load(config.get("spec", str(SPEC)))
    spec = run.network if isinstance(run, gn.RunSpec) else run
    if config.get("no_dropout"):
        doc = json.loads(spec.to_json())
        for node in doc["nodes"]:
            if node["op"] == "dropout":
                node["rate"] = 0.0
        spec = gn.parse_network(doc)
    return spec


def data(config: dict, spec: Any) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Inference batches by case, and one training batch (X, y), from the seed."""
    rng = np.random.default_rng(config.get("seed", 0))
    shape = spec.value(next(iter(spec.inputs))).shape
    batches = {f"b{n}": rng.standard_normal((n, *shape)).astype(np.float32) for n in config["batches"]}
    X = rng.standard_normal((config["step_batch"], *shape)).astype(np.float32)
    y = rng.integers(0, 10, config["step_batch"])
    return batches, X, y


def initial(spec: Any) -> dict[str, np.ndarray]:
    import graphnet as gn

    net = gn.compile(spec, batch_size=2, seed=0)
    return {name: net.params[name].copy() for name in net.params}


def _threads(config: dict) -> int:
    return config.get("threads") or 2


# ---- contenders --------------------------------------------------------------------------------


def _trainer(step: Callable[[], Any], infer: Callable[[np.ndarray], Callable[[], Any]], batches: dict[str, np.ndarray],
             first: float, to_numpy: Callable[[Any], np.ndarray], info: dict) -> dict:
    """A training contender's answer: the calls (the step, one inference per batch, the
    first loss) and the outputs to compare (the inferences as numpy, the first loss)."""
    calls: dict[str, Callable[[], Any]] = {"step": step}
    calls.update({case: infer(Xb) for case, Xb in batches.items()})
    outputs = {case: (lambda call=calls[case]: to_numpy(call())) for case in batches}
    calls["loss"] = outputs["loss"] = lambda: first
    return {"calls": calls, "outputs": outputs, "info": info}


def graphnet_contender(config: dict) -> dict:
    import graphnet as gn
    from graphnet.runtime.blas import blas_info

    gn.set_threads(_threads(config))
    spec = network(config)
    batches, X, y = data(config, spec)
    # compiled with seed 0, every network starts from the weights initial() gives the peers
    trainer = gn.compile(spec, batch_size=config["step_batch"], dtype="float32", seed=0)
    server = gn.compile(spec, batch_size=max(config["batches"]), dtype="float32", seed=0)
    opt = gn.Optimizer(trainer, "sgd", learning_rate=LEARNING_RATE)
    first = float(gn.compile(spec, batch_size=config["step_batch"], dtype="float32", seed=0).step(X, y))
    return _trainer(lambda: opt.step(X, y), lambda Xb: lambda: server.forward(Xb), batches, first, np.asarray,
                    {"blas": str(blas_info()), "threads": gn.get_threads()})


def torch_contender(config: dict) -> dict:
    torch = require("torch")
    from cnn_peers import torch_model

    torch.set_num_threads(_threads(config))
    spec = network(config)
    batches, X, y = data(config, spec)
    model = torch_model(spec, initial(spec))
    opt = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    loss_fn = torch.nn.functional.cross_entropy
    with torch.no_grad():
        first = float(loss_fn(torch_model(spec, initial(spec)).train()(Xt), yt))

    def step() -> float:
        model.train()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(Xt), yt)
        loss.backward()
        opt.step()
        return loss.item()

    server = torch_model(spec, initial(spec)).eval()

    def infer(Xb: np.ndarray) -> Callable[[], Any]:
        tensor = torch.from_numpy(Xb)

        def call() -> Any:
            with torch.inference_mode():
                return server(tensor)

        return call

    return _trainer(step, infer, batches, first, lambda out: out.numpy(),
                    {"torch": torch.__version__, "threads": torch.get_num_threads(),
                     "mkldnn": bool(torch.backends.mkldnn.is_available())})


def jax_contender(config: dict) -> dict:
    jax = require("jax")
    from cnn_peers import jax_loss, jax_model

    spec = network(config)
    batches, X, y = data(config, spec)
    params, state, forward = jax_model(spec, initial(spec))
    grad_fn = jax.value_and_grad(jax_loss(forward), has_aux=True)

    @jax.jit
    def step(params, state, X, y, key):  # noqa: ANN001, ANN202
        key, sub = jax.random.split(key)
        (loss, new_state), grads = grad_fn(params, state, X, y, sub)
        return jax.tree_util.tree_map(lambda p, g: p - LEARNING_RATE * g, params, grads), new_state, key, loss

    evaluate = jax.jit(lambda params, state, X: forward(params, state, X, None, False)[0])
    Xj, yj = jax.numpy.asarray(X), jax.numpy.asarray(y)
    held = {"params": params, "state": state, "key": jax.random.PRNGKey(0)}
    first = float(step(params, state, Xj, yj, held["key"])[3])

    def train() -> Any:
        held["params"], held["state"], held["key"], loss = step(held["params"], held["state"], Xj, yj, held["key"])
        return loss.block_until_ready()

    def infer(Xb: np.ndarray) -> Callable[[], Any]:
        arr = jax.numpy.asarray(Xb)
        return lambda: evaluate(params, state, arr).block_until_ready()

    return _trainer(train, infer, batches, first, np.asarray, {"jax": jax.__version__, "devices": str(jax.devices())})


def ort_contender(config: dict) -> dict:
    ort = require("onnxruntime")
    import graphnet as gn
    from graphnet.interop.onnx_export import export_onnx

    spec = network(config)
    batches, _, _ = data(config, spec)
    net = gn.compile(spec, batch_size=2, dtype="float32", seed=0)
    path = Path(tempfile.mkdtemp(prefix="graphnet-bench-")) / "cnn.onnx"
    export_onnx(net, path, preprocessing={})
    options = ort.SessionOptions()
    options.intra_op_num_threads = _threads(config)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    calls = {case: (lambda Xb=Xb: session.run(None, {name: Xb})[0]) for case, Xb in batches.items()}
    return {"calls": calls, "outputs": calls, "info": {"onnxruntime": ort.__version__}}


def floor_gemms(spec: Any, n: int, rng: np.random.Generator) -> list[tuple[str, str, np.ndarray, np.ndarray, np.ndarray]]:
    """The GEMMs of one training step at batch n on random float32 arrays of graphnet's shapes,
    as (node id, role, A, B, C) with C = A @ B: per conv the forward GEMM (patches @ W.T), the
    weight gradient (dZ.T @ patches) and, but for the first, the patches' gradient (dZ @ W); per
    affine layer the forward GEMM and its two backward GEMMs."""
    import graphnet as gn

    net = gn.compile(spec, batch_size=2, seed=0)
    work: list[tuple[str, str, np.ndarray, np.ndarray, np.ndarray]] = []

    def add(node: str, m: int, k: int, f: int, first: bool) -> None:
        a, w, z = (rng.standard_normal(s).astype(np.float32) for s in ((m, k), (f, k), (m, f)))
        work.append((node, "forward", a, w.T, np.empty((m, f), np.float32)))
        work.append((node, "weight gradient", z.T, a, np.empty((f, k), np.float32)))
        if not first:
            work.append((node, "input gradient", z, w, np.empty((m, k), np.float32)))

    for node in net.graph.nodes:
        if node.op == "conv2d":
            c, (f, oh, ow) = node.input_values[0].shape[0], node.value.shape
            kh, kw = net.params[f"{node.id}.W"].shape[2:]
            add(node.id, n * oh * ow, c * kh * kw, f, first=node.inputs[0] in net.graph.inputs)
        elif node.op == "affine":
            add(node.id, n, node.input_values[0].size, node.value.shape[0], first=node.inputs[0] in net.graph.inputs)
    return work


def gemm_floor_contender(config: dict) -> dict:
    """The training step's GEMMs alone (floor_gemms), into preallocated arrays."""
    from threadpoolctl import threadpool_limits

    work = [(a, b, c) for _, _, a, b, c in floor_gemms(network(config), config["step_batch"],
                                                        np.random.default_rng(0))]
    # after the network's compile, which puts numpy's BLAS on one thread: the floor is the
    # GEMMs on all the contenders' threads, as OpenBLAS runs them
    gemm_floor_contender.limits = threadpool_limits(_threads(config), user_api="blas")  # type: ignore[attr-defined]
    matmul = np.matmul

    def step() -> None:
        for a, b, c in work:
            matmul(a, b, out=c)

    from graphnet.runtime.blas import blas_info

    return {"calls": {"step": step}, "info": {"blas": str(blas_info()), "gemms": len(work),
                                              "gflop": round(2 * sum(a.shape[0] * a.shape[1] * b.shape[1]
                                                                     for a, b, _ in work) / 1e9, 3)}}


CONTENDERS: dict[str, Callable[[dict], dict]] = {
    "graphnet": graphnet_contender,
    "torch_eager": torch_contender,
    "jax_jit": jax_contender,
    "ort": ort_contender,
    "gemm_floor": gemm_floor_contender,
}


def check_inference(workers: Workers, case: str) -> dict[str, float]:
    """Max relative difference of each contender's output to graphnet's; AssertionError past 1e-4."""
    outputs = {name: np.asarray(v) for name, v in workers.outputs(case).items() if v is not None}
    expected = outputs["graphnet"]
    errors = {}
    for name, value in outputs.items():
        error = float(np.max(np.abs(value - expected)) / max(float(np.max(np.abs(expected))), 1e-30))
        if error > 1e-4:
            raise AssertionError(f"{name} disagrees with graphnet on {case}: max relative difference {error:.2e}")
        errors[name] = error
    return errors


def check_first_losses(module: str, contenders: list[str], config: dict) -> dict[str, float]:
    """The first training step's loss of every contender on the network without dropout (the same
    function of the same weights), within 1e-4 of graphnet's; AssertionError otherwise."""
    with Workers(module, contenders, {**config, "no_dropout": True, "batches": [1]}) as workers:
        losses = {name: float(v) for name, v in workers.outputs("loss").items() if v is not None}
    for name, loss in losses.items():
        if abs(loss - losses["graphnet"]) > 1e-4 * max(1.0, abs(losses["graphnet"])):
            raise AssertionError(f"{name}'s first loss {loss} differs from graphnet's {losses['graphnet']}")
    return losses


def run_benchmark(rounds: int, threads: int, contenders: list[str], batches: list[int],
                  seconds: float = SAMPLE_SECONDS, settle: float = SETTLE_SECONDS, module: str = "cnn",
                  spec: str | None = None, step_batch: int = STEP_BATCH) -> dict:
    config = {"batches": batches, "threads": threads, "seed": 0, "step_batch": step_batch,
              **({"spec": spec} if spec else {})}
    results: dict[str, Any] = {"network": str(spec or SPEC.name), "dtype": "float32", "threads": threads,
                               "rounds": rounds, "step_batch": step_batch,
                               "first_losses": check_first_losses(module, [c for c in contenders if c != "ort"
                                                                           and c != "gemm_floor"], config),
                               "cases": {}}
    with Workers(module, contenders, config) as workers:
        results["skipped"] = workers.skipped
        results["info"] = {name: w.info for name, w in workers.workers.items()}
        for case in ["step", *(f"b{n}" for n in batches)]:
            errors = check_inference(workers, case) if case != "step" else {}
            reps = workers.calibrate(case, seconds)
            samples = workers.sample_rounds(case, reps, rounds, settle)
            reference = "torch_eager" if case == "step" and "torch_eager" in reps else \
                "ort" if "ort" in reps else "graphnet"
            summary = summarize(samples, reference)
            for name, row in summary.items():
                row["ratio_to_graphnet"] = summarize(samples, "graphnet")[name]["ratio_to_graphnet"]
            results["cases"][case] = {"reference": reference, "summary": summary, "max_rel_difference": errors,
                                      "reps": reps}
    return results


def print_table(results: dict) -> None:
    for name, reason in results.get("skipped", {}).items():
        print(f"skipped {name}: {reason}")
    for name, info in results["info"].items():
        print(f"{name}: {info}")
    print(f"first training step's loss (no dropout): {results['first_losses']}")
    for case, entry in results["cases"].items():
        reference = entry["reference"]
        print(f"{case}:" if case != "step" else f"training step, batch {results['step_batch']}:")
        for name, row in entry["summary"].items():
            print(f"  {name:12s} {row['us'] / 1000:9.2f} ms   {row[f'ratio_to_{reference}']:5.2f}x {reference}"
                  f"   graphnet / it {1 / row['ratio_to_graphnet']:5.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_timing_options(parser, 15, SAMPLE_SECONDS, CONTENDERS)
    parser.add_argument("--batches", type=int, nargs="+", default=list(INFER_BATCHES))
    add_results_option(parser)
    args = parser.parse_args(argv)
    results = run_benchmark(args.rounds, args.threads, args.contenders, args.batches, seconds=args.seconds)
    print_table(results)
    write_report(args.results / "cnn.json", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
