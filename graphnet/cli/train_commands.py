"""`graphnet train` (here or on MPI ranks) and `graphnet eval`."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import SpecError
from .registry import command


@command("train")
def _train(args: argparse.Namespace) -> int:
    from ..distributed import current_world, quiet_unless_root
    from ..training import train

    if args.workers is not None and args.workers > 1:
        return _launch_workers(args)
    with quiet_unless_root(current_world()):
        return _train_here(args, train)


def _train_here(args: argparse.Namespace, train: Callable[..., Any]) -> int:
    from datetime import datetime

    from ..distributed import current_world
    from ..interrupts import interrupted_exit_code

    if args.resume:
        if args.data is not None or args.batch_size is not None or args.label_column is not None:
            raise SpecError("--data, --label-column and --batch-size cannot change when resuming (the data "
                            "order is part of the run); --epochs and --lr can")
        if args.out is not None and Path(args.out).resolve() != Path(args.resume).resolve():
            raise SpecError(f"--out {args.out} differs from --resume {args.resume}: a resumed run stays in "
                            "its own folder (copy the folder first to continue it elsewhere)")
        result = train(None, resume=args.resume, epochs=args.epochs, learning_rate=args.lr,  # type: ignore[arg-type]
                       backend=args.backend, progress=None if not args.no_progress else False)
    else:
        if args.file is None:
            raise SpecError("give a run file (graphnet train specs/fashion_mlp.json) or --resume RUN")
        out = args.out
        if out is None:
            stem = Path(args.file).stem
            out = str(Path("runs") / f"{stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
        run = _with_label_column(args.file, args.label_column) if args.label_column else args.file
        result = train(run, out=out, data=args.data, epochs=args.epochs, batch_size=args.batch_size,
                       learning_rate=args.lr, backend=args.backend,
                       progress=None if not args.no_progress else False, overwrite=args.overwrite)
    if result.out is not None and current_world().is_root:
        print(f"run folder: {result.out}")
    return interrupted_exit_code() if result.interrupted else 0


def _with_label_column(path: str, column: str):
    """The run file at `path` with its data's CSV label column set to `column`."""
    import json

    from ..spec import RunSpec, load, parse_run

    run = load(path)
    if not isinstance(run, RunSpec):
        return path  # train() explains what a run file is
    document = json.loads(run.model_dump_json(by_alias=True))
    data = json.loads(run.train.data_spec().model_dump_json())
    data["options"] = {**data.get("options", {}), "label_column": column}
    document["train"]["data"] = data
    return parse_run(document, path)


def _launch_workers(args: argparse.Namespace) -> int:
    """`graphnet train ... --workers N`: the same command on N MPI ranks (see graphnet.distributed.launch)."""
    from datetime import datetime

    from ..distributed import launch

    if args.resume is None and args.file is not None and args.out is None:  # one default folder for all ranks
        args.out = str(Path("runs") / f"{Path(args.file).stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    arguments = ["train"] + ([args.file] if args.file is not None else [])
    for flag, value in (("--data", args.data), ("--epochs", args.epochs), ("--batch-size", args.batch_size),
                        ("--lr", args.lr), ("--label-column", args.label_column), ("--out", args.out),
                        ("--resume", args.resume), ("--backend", args.backend)):
        if value is not None:
            arguments += [flag, str(value)]
    arguments += [flag for flag, on in (("--overwrite", args.overwrite), ("--no-progress", args.no_progress)) if on]
    return launch(args.workers, arguments)


@command("eval")
def _eval(args: argparse.Namespace) -> int:
    """Evaluate a run folder's checkpoint. It takes no lock: a trainer may be writing the
    folder, and every file in it is replaced atomically, so reading is safe."""
    import numpy as np

    from ..checkpoint import load_checkpoint
    from ..data import IN_MEMORY
    from ..runfolder import has_checkpoint, no_checkpoint_yet
    from ..spec import parse_run
    from ..tasks import binary_accuracy, evaluate, mean_loss, output_task, predictions, task_of
    from ..training.dataset import load_data_with_info

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
        from ..spec import DataSpec

        data_spec, seed = DataSpec(name=args.data), 0
    if args.data is not None:
        data_spec = data_spec.model_copy(update={"name": args.data})
    elif data_spec.name == IN_MEMORY:
        raise SpecError(f"{run_folder} was trained on in-memory data: name a data file with --data")
    input_shape = next(iter(net.graph.inputs.values())).shape
    label = next(iter(net.graph.labels.values()), None)
    # a model that carries its preprocessing gets raw features (its own fit applies, not a new one)
    data, _ = load_data_with_info(data_spec, seed, net.dtype.name, input_shape, label,
                                  normalize="none" if net.preprocessing is not None else None,
                                  class_names=net.class_names)
    X, y = data[f"X_{args.split}"], data[f"y_{args.split}"]
    if len(X) == 0:
        raise SpecError(f"the {args.split} split of '{data_spec.name}' is empty")
    X = net.prepare(X)
    task = task_of(net.graph)
    where = f"{data_spec.name} {args.split}"
    if task == "regression":
        scores = evaluate(net, X, y, args.batch_size)
        loss = mean_loss(net, X, y, args.batch_size)
        print(f"{where}: loss {loss:.4g}  RMSE {scores['rmse']:.4g}  R2 {scores['r2']:.4f} on {len(y)} examples")
        return 0
    first = net.graph.outputs[0]
    predicted = predictions(net.forward(X, output=first, batch_size=args.batch_size), output_task(net.graph, first))
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
    print(_confusion_table(matrix, net.class_names))
    return 0


def _confusion_table(matrix, class_names: Sequence[str] | None) -> str:
    """The confusion matrix (rows: true class, columns: predicted) as text, headed by the
    class names when known, else the class indices."""
    names = [str(c) for c in (class_names or range(len(matrix)))]
    row_width = max(5, *(len(n) for n in names))
    width = max(5, len(str(matrix.max())) + 1, *(len(n) + 1 for n in names))
    lines = ["confusion matrix (rows: true class, columns: predicted):",
             " " * (row_width + 1) + "".join(f"{n:>{width}}" for n in names)]
    lines += [f"{names[c]:>{row_width}} " + "".join(f"{v:>{width}}" for v in matrix[c]) for c in range(len(matrix))]
    return "\n".join(lines)
