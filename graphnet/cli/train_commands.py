"""`graphnet train` (here or on MPI ranks) and `graphnet eval`."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import SpecError
from .registry import command


@command("train")
def _train(args: argparse.Namespace) -> int:
    from ..training import train
    from ..training.distributed import current_world, quiet_unless_root

    if args.resume is not None and args.file is not None:
        raise SpecError(f"the run file {args.file} and --resume {args.resume} cannot go together: a resumed "
                        "run continues with its own run.json (give one or the other)")
    if args.workers is not None and args.workers > 1:
        return _launch_workers(args)
    with quiet_unless_root(current_world()):
        return _train_here(args, train)


def _train_here(args: argparse.Namespace, train: Callable[..., Any]) -> int:
    from datetime import datetime

    from ..system.console import line_printer
    from ..system.interrupts import interrupted_exit_code
    from ..training.distributed import current_world

    say = line_printer("graphnet train")  # a closed stdout (`| head -2`) does not stop training

    if args.resume:
        if args.data is not None or args.batch_size is not None or args.label_column is not None:
            raise SpecError("--data, --label-column and --batch-size cannot change when resuming (the data "
                            "order is part of the run); --epochs and --lr can")
        if args.out is not None and Path(args.out).resolve() != Path(args.resume).resolve():
            raise SpecError(f"--out {args.out} differs from --resume {args.resume}: a resumed run stays in "
                            "its own folder (copy the folder first to continue it elsewhere)")
        result = train(None, resume=args.resume, epochs=args.epochs, learning_rate=args.lr,  # type: ignore[arg-type]
                       backend=args.backend, progress=None if not args.no_progress else False, log=say)
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
                       progress=None if not args.no_progress else False, overwrite=args.overwrite, log=say)
    if result.out is not None and current_world().is_root:
        say(f"run folder: {result.out}")
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
    """`graphnet train ... --workers N`: the same command on N MPI ranks (see graphnet.training.distributed.launch)."""
    from datetime import datetime

    from ..training.distributed import launch

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

    from ..model.restore import load_checkpoint
    from ..ops.tasks import binary_accuracy, evaluate, mean_loss, output_task, predictions, task_of
    from ..runs.folder import has_checkpoint, no_checkpoint_yet

    run_folder = Path(args.run)
    if (run_folder / "run.json").is_file() and not has_checkpoint(run_folder):
        raise no_checkpoint_yet(run_folder)
    net = load_checkpoint(run_folder, batch_size=args.batch_size, backend=args.backend)
    if not net.graph.labels:
        raise SpecError(f"{run_folder}: the network has no labels to evaluate against (an imported model?); "
                        "add labels and a loss to its network.json")
    X, y, where = _eval_data(args, net, run_folder)
    task = task_of(net.graph)
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
        classes = next(iter(net.graph.labels.values())).classes
    matrix = np.zeros((classes, classes), np.int64)
    np.add.at(matrix, (y, predicted), 1)
    print(f"{where}: accuracy {100 * (predicted == y).mean():.2f}% on {len(y)} examples")
    print(_confusion_table(matrix, net.class_names))
    return 0


def _eval_data(args: argparse.Namespace, net: Any, run_folder: Path) -> tuple[Any, Any, str]:
    """(network inputs X, labels y as the network trains on them, what they are) for
    `graphnet eval`: every row of a CSV file given with --data (columns by name, the model's
    column encoding and preprocessing), else the --split split (default test) of the run's
    data set or of the data set named by --data. Targets of a model that scaled them for
    training are scaled as it did."""
    X, y, where = _raw_eval_data(args, net, run_folder)
    if net.target_scaling is not None:
        y = net.target_scaling.scale(y)
    return X, y, where


def _raw_eval_data(args: argparse.Namespace, net: Any, run_folder: Path) -> tuple[Any, Any, str]:
    """`_eval_data` with the targets in their own units."""
    from ..data import IN_MEMORY
    from ..model.prediction import CSV_SUFFIXES, read_labelled_csv
    from ..ops.tasks import task_of
    from ..spec import DataSpec, parse_run
    from ..training.dataset import load_data_with_info

    if args.data is not None and Path(args.data).suffix.lower() in CSV_SUFFIXES:
        if args.split is not None:
            raise SpecError(f"--split {args.split}: a CSV file given with --data is scored whole (every labelled "
                            "row); --split picks a split of a data set")
        X, y = read_labelled_csv(net, args.data, args.label_column)
        return _network_inputs(net, X), y, args.data
    if args.label_column is not None:
        raise SpecError("--label-column applies to a CSV file given with --data")
    split = args.split or "test"
    if (run_folder / "run.json").is_file():
        run = parse_run((run_folder / "run.json").read_text(encoding="utf-8"), str(run_folder / "run.json"))
        data_spec, seed = run.train.data_spec(), run.train.seed
    elif args.data is None:
        raise SpecError("no run.json here: name the data with --data")
    else:
        data_spec, seed = DataSpec(name=args.data), 0
    if args.data is not None and args.data != data_spec.name:  # another data set: none of the run's file options
        data_spec = DataSpec(name=args.data, val_size=data_spec.val_size)
    elif data_spec.name == IN_MEMORY:
        raise SpecError(f"{run_folder} was trained on in-memory data: name a data file with --data")
    input_shape = next(iter(net.graph.inputs.values())).shape
    label = next(iter(net.graph.labels.values()), None)
    # a model that carries its preprocessing gets raw features (its own fit applies, not a new one), a table
    # read by its own column encoding, and its targets as they are (it scales them itself)
    data, _ = load_data_with_info(data_spec, seed, net.dtype.name, input_shape, label,
                                  normalize="none" if net.preprocessing is not None else None,
                                  class_names=net.class_names, task=task_of(net.graph), encoding=net.encoding,
                                  raw_targets=net.target_scaling is not None)
    X, y = data[f"X_{split}"], data[f"y_{split}"]
    if len(X) == 0:
        raise SpecError(f"the {split} split of '{data_spec.name}' is empty")
    return net.prepare(X, encoded=True), y, f"{data_spec.name} {split}"


def _network_inputs(net: Any, X: Any) -> Any:
    """Raw features (N, D) as the network's input: the model's preprocessing, else reshaped."""
    if net.preprocessing is not None:
        return net.prepare(X)
    shape = next(iter(net.graph.inputs.values())).shape
    return X.reshape(len(X), *shape).astype(net.dtype)


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
