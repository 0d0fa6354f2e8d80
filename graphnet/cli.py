"""The `graphnet` command line: validate, schema, compile, train, eval, gradcheck, export, import, bench."""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import Callable, Sequence

from . import __version__
from .errors import GraphnetError, SpecError, SpecWarning

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def register(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = fn
        return fn

    return register


def _network_of(path: str):
    from .spec import RunSpec, load

    spec = load(path)
    return spec.network if isinstance(spec, RunSpec) else spec


@command("validate")
def _validate(args: argparse.Namespace) -> int:
    from .graph import build_graph, describe_graph

    failed = 0
    for path in _spec_files(args.files):
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", SpecWarning)
                network = _network_of(path)
            for warning in caught:
                print(f"{path}: warning: {warning.message}", file=sys.stderr)
        except SpecError as error:
            failed += 1
            for line in error.lines():
                print(line, file=sys.stderr)
            continue
        if not args.quiet:
            print(f"{path}: valid network '{network.name}'")
            print(describe_graph(build_graph(network)))
            print()
        else:
            print(f"{path}: valid")
    return 1 if failed else 0


@command("schema")
def _schema(args: argparse.Namespace) -> int:
    from .fileio import write_text_atomic
    from .spec import schema_text

    text = schema_text()
    if args.out in (None, "-"):
        sys.stdout.write(text)
    else:
        write_text_atomic(args.out, text)
        print(f"wrote {args.out}")
    return 0


@command("compile")
def _compile(args: argparse.Namespace) -> int:
    from .describe import graph_to_dot
    from .network import compile

    network = _network_of(args.file)
    net = compile(network, batch_size=args.batch, dtype=args.dtype, backend=args.backend, fuse=not args.no_fuse)
    if args.dot:
        from .compiler import fuse

        graph = fuse(net.graph)[0] if not args.no_fuse else net.graph
        sys.stdout.write(graph_to_dot(graph))
        return 0
    kind = {"train": "train", "sgd": "train_sgd", "infer": "infer", "eval": "eval_loss"}[args.mode]
    if kind != "infer" and net.graph.loss is None:
        kind = "infer"
    print(net.plan(kind).describe())
    return 0


def _is_json_schema(path: str) -> bool:
    """True for a JSON Schema document (specs/schema.json sits beside the zoo specs)."""
    import json

    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and "json-schema.org" in str(document.get("$schema", ""))


def _spec_files(paths: list[str]) -> list[str]:
    """The paths to check; with several (specs/*.json), the JSON Schema among them is skipped."""
    kept = []
    for path in paths:
        if len(paths) > 1 and _is_json_schema(path):
            print(f"{path}: skipped (a JSON Schema, not a network spec)")
        else:
            kept.append(path)
    return kept


@command("gradcheck")
def _gradcheck(args: argparse.Namespace) -> int:
    failed = 0
    for path in _spec_files(args.files):
        if len(args.files) > 1:
            print(f"{path}:")
        try:
            failed += _gradcheck_file(path, args)
        except SpecError as error:
            if len(args.files) == 1:
                raise
            failed += 1
            for line in error.lines():
                print(f"graphnet gradcheck: {line}", file=sys.stderr)
    return 1 if failed else 0


def _gradcheck_file(path: str, args: argparse.Namespace) -> int:
    import numpy as np

    from .gradcheck import check_gradients
    from .network import compile

    network = _network_of(path)
    if network.loss is None:
        raise SpecError([("loss", "gradcheck needs a network with a loss")], path)
    net = compile(network, batch_size=args.batch, dtype="float64", backend=args.backend, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    X = {name: rng.standard_normal((args.batch, *value.shape)) for name, value in net.graph.inputs.items()}
    y = {}
    for name, value in net.graph.labels.items():
        y[name] = (rng.integers(0, value.classes, args.batch) if value.kind == "classes"
                   else rng.uniform(0, 1, (args.batch, *value.shape)))
    with warnings.catch_warnings(record=True) as notes:
        warnings.simplefilter("always", UserWarning)
        results = check_gradients(net, X, y, entries=args.entries or None, h=args.h, atol=args.atol)
    for note in notes:
        print(f"warning: {note.message}")
    width = max(len(r.name) for r in results)
    print(f"{'parameter'.ljust(width)}  checked  rel. error  abs. error")
    vanishing = {r.name for r in results if r.passed(args.tolerance) and r.rel_error > args.tolerance}
    failed = [r for r in results if not r.passed(args.tolerance)]
    for r in results:
        flag = "  FAIL" if r in failed else "  (vanishing gradient: within atol)" if r.name in vanishing else ""
        print(f"{r.name.ljust(width)}  {r.checked:7d}  {r.rel_error:10.2e}  {r.abs_error:10.2e}{flag}")
    worst = max((r.rel_error for r in results if r.name not in vanishing), default=0.0)
    print(f"worst relative error {worst:.2e} (tolerance {args.tolerance:g}; atol {results[0].atol:.1e} for "
          f"vanishing gradients; float64, batch {args.batch})")
    return 1 if failed else 0


@command("train")
def _train(args: argparse.Namespace) -> int:
    from datetime import datetime

    from .training import train

    if args.resume:
        if args.data is not None or args.batch_size is not None:
            raise SpecError("--data and --batch-size cannot change when resuming (the data order is part of "
                            "the run); --epochs and --lr can")
        result = train(None, resume=args.resume, epochs=args.epochs, learning_rate=args.lr,  # type: ignore[arg-type]
                       backend=args.backend, progress=None if not args.no_progress else False)
    else:
        if args.file is None:
            raise SpecError("give a run file (graphnet train specs/fashion_mlp.json) or --resume RUN")
        out = args.out
        if out is None:
            stem = Path(args.file).stem
            out = str(Path("runs") / f"{stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
        result = train(args.file, out=out, data=args.data, epochs=args.epochs, batch_size=args.batch_size,
                       learning_rate=args.lr, backend=args.backend,
                       progress=None if not args.no_progress else False, overwrite=args.overwrite)
    if result.out is not None:
        print(f"run folder: {result.out}")
    return 130 if result.interrupted else 0


@command("eval")
def _eval(args: argparse.Namespace) -> int:
    """Evaluate a run folder's checkpoint. It takes no lock: a trainer may be writing the
    folder, and every file in it is replaced atomically, so reading is safe."""
    import numpy as np

    from .checkpoint import load_checkpoint
    from .runfolder import has_checkpoint, no_checkpoint_yet
    from .spec import parse_run
    from .tasks import binary_accuracy, evaluate, mean_loss, task_of
    from .training import load_data

    run_folder = Path(args.run)
    if (run_folder / "run.json").is_file() and not has_checkpoint(run_folder):
        raise no_checkpoint_yet(run_folder)
    net = load_checkpoint(run_folder, batch_size=args.batch_size, backend=args.backend)
    if not net.graph.labels:
        raise SpecError(f"{run_folder}: the network has no labels to evaluate against (an imported model?); "
                        "add labels and a loss to its network.json")
    if args.data is None and not (run_folder / "run.json").is_file():
        raise SpecError("no run.json here: name the data set with --data")
    if (run_folder / "run.json").is_file():
        run = parse_run((run_folder / "run.json").read_text(encoding="utf-8"), str(run_folder / "run.json"))
        data_spec, seed = run.train.data_spec(), run.train.seed
    else:
        from .spec import DataSpec

        data_spec, seed = DataSpec(name=args.data), 0
    if args.data is not None:
        data_spec = data_spec.model_copy(update={"name": args.data})
    input_shape = next(iter(net.graph.inputs.values())).shape
    label = next(iter(net.graph.labels.values()), None)
    data = load_data(data_spec, seed, net.dtype.name, input_shape, label)
    X, y = data[f"X_{args.split}"], data[f"y_{args.split}"]
    if len(X) == 0:
        raise SpecError(f"the {args.split} split of '{data_spec.name}' is empty")
    task = task_of(net.graph)
    where = f"{data_spec.name} {args.split}"
    if task == "regression":
        scores = evaluate(net, X, y, args.batch_size)
        loss = mean_loss(net, X, y, args.batch_size)
        print(f"{where}: loss {loss:.4g}  RMSE {scores['rmse']:.4g}  R2 {scores['r2']:.4f} on {len(y)} examples")
        return 0
    predicted = net.predict(X, batch_size=args.batch_size)
    if task == "binary":
        if predicted.ndim != 1:  # several 0/1 outputs per example: no single confusion matrix
            print(f"{where}: accuracy {100 * binary_accuracy(predicted, y):.2f}% over {y.size} targets "
                  f"of {len(y)} examples")
            return 0
        y, classes = (y.reshape(len(y)) > 0.5).astype(np.int64), 2
    else:
        classes = label.classes  # type: ignore[union-attr]
    matrix = np.zeros((classes, classes), np.int64)
    np.add.at(matrix, (y, predicted), 1)
    print(f"{where}: accuracy {100 * (predicted == y).mean():.2f}% on {len(y)} examples")
    print("confusion matrix (rows: true class, columns: predicted):")
    width = max(5, len(str(matrix.max())) + 1)
    print(" " * 6 + "".join(f"{c:>{width}}" for c in range(classes)))
    for c in range(classes):
        print(f"{c:>5} " + "".join(f"{v:>{width}}" for v in matrix[c]))
    return 0


@command("export")
def _export(args: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint
    from .interop import require_onnx
    from .interop.onnx_export import export_onnx

    require_onnx("graphnet export")
    net = load_checkpoint(args.run, batch_size=1)
    export_onnx(net, args.out, opset=args.opset)
    print(f"wrote {args.out} (ONNX opset {args.opset}; inputs: {', '.join(net.graph.inputs)}; "
          f"outputs: {', '.join(net.graph.outputs)})")
    return 0


@command("import")
def _import(args: argparse.Namespace) -> int:
    from .interop import require_onnx
    from .interop.onnx_import import import_onnx

    require_onnx("graphnet import")
    folder = import_onnx(args.model, args.out, dtype=args.dtype)
    print(f"wrote checkpoint {folder} (network.json + weights.npz)")
    return 0


@command("bench")
def _bench(args: argparse.Namespace) -> int:
    from .blas import blas_info
    from .kernel_bench import format_table, run_kernel_bench

    print(blas_info(args.dtype))
    rows = run_kernel_bench(quick=not args.full, dtype=args.dtype)
    print(format_table(rows))
    if not args.kernels_only:
        from .step_bench import format_step_table, run_step_bench

        step_rows = run_step_bench(quick=not args.full)
        print()
        print(format_step_table(step_rows))
        if args.json:
            import json

            from .fileio import write_text_atomic

            write_text_atomic(args.json, json.dumps(step_rows, indent=2) + "\n")
            print(f"\nwrote {args.json}")
    return 0


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (anything else is a usage error, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphnet",
        description="Declarative, compiled-graph neural networks for the CPU.",
    )
    parser.add_argument("--version", action="version", version=f"graphnet {__version__}")
    parser.add_argument("--threads", type=positive_int, metavar="N",
                        help="BLAS threads (default: $GRAPHNET_THREADS, else one per core the load leaves free)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("validate", help="check spec files; print nodes, shapes and parameter counts")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("-q", "--quiet", action="store_true", help="one line per valid file")

    p = sub.add_parser("schema", help="print or write the JSON Schema of spec files")
    p.add_argument("-o", "--out", metavar="PATH", help="write here (atomically) instead of stdout")

    p = sub.add_parser("compile", help="compile a spec and print its plan (or --dot: Graphviz)")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--batch", type=positive_int, default=128, help="plan capacity (default 128)")
    p.add_argument("--mode", choices=["train", "sgd", "infer", "eval"], default="train",
                   help="sgd: the train plan of a plain SGD step, weights updated inside backward")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--backend", choices=["numba", "numpy"], default=None)
    p.add_argument("--dot", action="store_true", help="print the (fused) graph in Graphviz DOT")
    p.add_argument("--no-fuse", action="store_true", help="the plan (or --dot: the graph) without fusion")

    p = sub.add_parser("gradcheck", help="check every parameter gradient against central differences")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--batch", type=positive_int, default=4)
    p.add_argument("--entries", type=int, default=32, help="entries per parameter (0: all)")
    p.add_argument("--h", type=float, default=1e-5, help="finite-difference step")
    p.add_argument("--tolerance", type=float, default=1e-6, help="relative tolerance")
    p.add_argument("--atol", type=float, default=None,
                   help="absolute tolerance, for gradients that vanish (default: scaled to rounding noise)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", choices=["numba", "numpy"], default=None)

    p = sub.add_parser("train", help="train a run file; writes a run folder")
    p.add_argument("file", metavar="FILE", nargs="?")
    p.add_argument("--data", help="data set name or path (overrides the run file)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--out", metavar="RUN", help="run folder (default runs/<name>-<time>); it must not exist "
                   "or be empty, unless --overwrite")
    existing = p.add_mutually_exclusive_group()
    existing.add_argument("--resume", metavar="RUN",
                          help="continue an interrupted run folder (with --epochs: extend it)")
    existing.add_argument("--overwrite", action="store_true",
                          help="replace the run in the --out folder: removes run.json, history.json, metrics.json, "
                               "learning_curve.png and checkpoint/ there; other files are kept")
    p.add_argument("--backend", choices=["numba", "numpy"], default=None)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("eval", help="accuracy and confusion matrix of a trained run (regression: loss, RMSE, R2)")
    p.add_argument("run", metavar="RUN", help="run folder (or checkpoint folder)")
    p.add_argument("--data", help="data set name or path (default: the run's)")
    p.add_argument("--split", choices=["test", "val", "train"], default="test")
    p.add_argument("--batch-size", type=positive_int, default=1000)
    p.add_argument("--backend", choices=["numba", "numpy"], default=None)

    p = sub.add_parser("export", help="write a trained network's inference graph as an ONNX model")
    p.add_argument("run", metavar="RUN", help="run folder (or checkpoint folder)")
    p.add_argument("out", metavar="OUT.onnx")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, 17 or later (default 17)")

    p = sub.add_parser("import", help="turn an ONNX model of an MLP into a checkpoint folder")
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument("out", metavar="OUT_DIR", help="a new (or empty) folder: network.json + weights.npz")
    p.add_argument("--dtype", choices=["float32", "float64"], default=None, help="default: the model's")

    p = sub.add_parser("bench", help="kernels vs their NumPy twins, training step vs the BLAS floor (quick subset)")
    p.add_argument("--full", action="store_true", help="all sizes, more repeats")
    p.add_argument("--kernels-only", action="store_true")
    p.add_argument("--json", metavar="PATH", help="also write the step table as JSON (bench/results/step.json)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")

    return parser


def _os_error_line(error: OSError) -> str:
    """`path: reason` for an error of the file system."""
    reason = error.strerror or str(error)
    if error.filename is None:
        return reason
    if error.filename2 is not None:
        return f"{error.filename} -> {error.filename2}: {reason}"
    return f"{error.filename}: {reason}"


def _warning_line(command: str) -> Callable[..., None]:
    """A showwarning that prints graphnet's own warnings as one line, others as Python does."""
    default = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], *rest: object, **kwargs: object) -> None:
        if issubclass(category, SpecWarning):
            print(f"graphnet {command}: warning: {message}", file=sys.stderr)
        else:
            default(message, category, *rest, **kwargs)  # type: ignore[arg-type]

    return show


def _set_threads(count: int | None) -> None:
    """--threads, else $GRAPHNET_THREADS (GraphnetError when it is malformed), else the BLAS default."""
    from .threads import set_threads, threads_from_env

    count = count or threads_from_env()
    if count is not None:
        set_threads(count)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_line(args.command)
            _set_threads(args.threads)
            return COMMANDS[args.command](args)
    except SpecError as error:
        for line in error.lines():
            print(f"graphnet {args.command}: {line}", file=sys.stderr)
        return 1
    except GraphnetError as error:
        print(f"graphnet {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"graphnet {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as error:  # disk full, read-only file system, a path under a regular file, ...
        print(f"graphnet {args.command}: {_os_error_line(error)}", file=sys.stderr)
        return 1
    except Exception as error:  # an internal error: one line, the traceback on request
        if os.environ.get("GRAPHNET_DEBUG"):
            raise
        print(f"graphnet {args.command}: internal error: {type(error).__name__}: {error} "
              "(set GRAPHNET_DEBUG=1 for the traceback)", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
