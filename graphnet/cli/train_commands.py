"""`graphnet train` (here or on MPI ranks) and `graphnet eval`."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import SpecError
from ..ops.metrics import DECISION_THRESHOLD
from .registry import command


@command("train")
def _train(args: argparse.Namespace) -> int:
    from ..training import train
    from ..training.distributed import current_world, quiet_unless_root

    if args.file is None and args.mlflow and args.resume is None and Path(args.mlflow).is_file():
        args.file, args.mlflow = args.mlflow, ""  # `--mlflow RUN.json`: the run file, not a tracking URI
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
        if args.tensorboard is not None or args.mlflow is not None:
            raise SpecError("--tensorboard and --mlflow are set when a run starts: a resumed run logs where its "
                            "run.json says (train.tensorboard, train.mlflow)")
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
        if args.tensorboard is not None or args.mlflow is not None:
            if args.tensorboard is not None:
                from ..system.fileio import make_folder
                make_folder(args.tensorboard)  # before anything trains: a file, device or FIFO there is refused
            run = _with_trackers(run, str(Path(args.tensorboard).resolve()) if args.tensorboard else None,
                                 args.mlflow)
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


def _with_trackers(run: Any, tensorboard: str | None, mlflow: str | None) -> Any:
    """The run (a file path or RunSpec) with `--tensorboard DIR` and `--mlflow [URI]` set in its
    train settings (an empty URI: the default local store)."""
    import json

    from ..spec import RunSpec, load, parse_run

    loaded = load(run) if not isinstance(run, RunSpec) else run
    if not isinstance(loaded, RunSpec):
        return run  # train() explains what a run file is
    document = json.loads(loaded.model_dump_json(by_alias=True, exclude_none=True))
    if tensorboard is not None:
        previous = document["train"].get("tensorboard") or {}
        document["train"]["tensorboard"] = {**previous, "dir": tensorboard}
    if mlflow is not None:
        previous = document["train"].get("mlflow") or {}
        document["train"]["mlflow"] = {**previous, **({"tracking_uri": mlflow} if mlflow else {})}
    return parse_run(document, str(run) if not isinstance(run, RunSpec) else None)


def _launch_workers(args: argparse.Namespace) -> int:
    """`graphnet train ... --workers N`: the same command on N MPI ranks (see graphnet.training.distributed.launch)."""
    from datetime import datetime

    from ..training.distributed import launch

    if args.resume is None and args.file is not None and args.out is None:  # one default folder for all ranks
        args.out = str(Path("runs") / f"{Path(args.file).stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    arguments = ["train"] + ([args.file] if args.file is not None else [])
    for flag, value in (("--data", args.data), ("--epochs", args.epochs), ("--batch-size", args.batch_size),
                        ("--lr", args.lr), ("--label-column", args.label_column), ("--out", args.out),
                        ("--resume", args.resume), ("--backend", args.backend), ("--tensorboard", args.tensorboard)):
        if value is not None:
            arguments += [flag, str(value)]
    if args.mlflow is not None:
        arguments += [f"--mlflow={args.mlflow}"] if args.mlflow else ["--mlflow"]
    arguments += [flag for flag, on in (("--overwrite", args.overwrite), ("--no-progress", args.no_progress)) if on]
    return launch(args.workers, arguments)


@command("eval")
def _eval(args: argparse.Namespace) -> int:
    """Evaluate a run folder's checkpoint. It takes no lock: a trainer may be writing the
    folder, and every file in it is replaced atomically, so reading is safe."""
    from ..model.restore import load_checkpoint
    from ..ops.metrics import ClassReport, report_table
    from ..ops.tasks import class_count, class_labels, confusion_of, mean_loss, metrics_of, outputs_of
    from ..runs.folder import has_checkpoint, no_checkpoint_yet

    run_folder = Path(args.run)
    if (run_folder / "run.json").is_file() and not has_checkpoint(run_folder):
        raise no_checkpoint_yet(run_folder)
    net = load_checkpoint(run_folder, batch_size=args.batch_size, backend=args.backend)
    if not net.graph.labels:
        raise SpecError(f"{run_folder}: the network has no labels to evaluate against (an imported model?); "
                        "add labels and a loss to its network.json")
    X, y, where = _eval_data(args, net, run_folder)
    outputs, classes = outputs_of(net, X, args.batch_size), class_count(net.graph)
    metrics = metrics_of(outputs, y, classes)
    if outputs.task == "regression":
        loss = mean_loss(net, X, y, args.batch_size)
        print(f"{where}: loss {loss:.4g}  RMSE {metrics['rmse']:.4g}  MAE {metrics['mae']:.4g}  "
              f"R2 {metrics['r2']:.4f} on {len(y)} examples")
        return 0
    names = class_labels(net, classes)
    matrix = confusion_of(outputs, y, classes)
    counted = f"{y.size} targets of {len(y)} examples" if outputs.predicted.ndim != 1 else f"{len(y)} examples"
    print(f"{where}: accuracy {100 * metrics['accuracy']:.2f}% on {counted}")
    print(_confusion_table(matrix, names))
    print("")
    print(report_table(ClassReport.of(matrix), names, metrics))
    print("")
    print(_summary_line(metrics))
    if args.plot is not None:
        _write_plots(args, net, X, y, run_folder, where)
    return 0


def _summary_line(metrics: dict[str, Any]) -> str:
    """balanced accuracy, F1 macro/weighted, log loss, and for binary ROC AUC, PR AUC and the threshold."""
    def num(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    line = (f"balanced accuracy {num(metrics['balanced_accuracy'])}  F1 macro {num(metrics['f1_macro'])}  "
            f"F1 weighted {num(metrics['f1_weighted'])}  log loss {num(metrics['log_loss'])}")
    if "roc_auc" in metrics:
        line += (f"\nROC AUC {num(metrics['roc_auc'])}  PR AUC {num(metrics['pr_auc'])}  "
                 f"(predicted 1 where p(1) > {DECISION_THRESHOLD})")
    return line


def _write_plots(args: argparse.Namespace, net: Any, X: Any, y: Any, run_folder: Path, where: str) -> None:
    """`--plot [DIR]`: the confusion matrix (and binary ROC and PR curves) as PNGs in DIR
    (default: the run folder); SpecError naming the extra to install without matplotlib."""
    from ..errors import GraphnetError
    from ..system.fileio import make_folder
    from ..training.eval_plots import plot_split

    folder = Path(args.plot) if args.plot else (run_folder if run_folder.is_dir() else Path("."))
    make_folder(folder)  # a file, device or FIFO there: an OSError naming it
    written = plot_split(net, X, y, folder, where, args.batch_size)
    if isinstance(written, str):
        raise GraphnetError("--plot needs matplotlib, which is not installed: pip install 'graphnet[plot]'")
    for path in written or []:
        print(f"wrote {path}")


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
