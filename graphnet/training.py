"""Training a run spec end to end: data, optimizer, schedule, metrics, run folder.

    result = gn.train("specs/fashion_mlp.json", out="runs/fashion")

A run folder holds `run.json` (the run spec as trained), `history.json`
(per-epoch metrics), `metrics.json` (final accuracies, loss, wall time),
`learning_curve.png` (with matplotlib) and `checkpoint/` (written at every
epoch end, and on Ctrl-C or SIGTERM). `resume=RUN` continues from the checkpoint and
reproduces the trajectory of an uninterrupted run: the data order, dropout
masks, optimizer state and schedule position are all restored.

A trainer holds its run folder's lock (graphnet.runlock) while it runs; a
fresh run refuses a folder that holds something unless `overwrite=True`
(see graphnet.runfolder).
"""
from __future__ import annotations

import json
import math
import signal
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import data as data_module
from .checkpoint import generator_state, restore, restore_generator, save_checkpoint, spec_difference
from .errors import CheckpointError, DataError, NonFiniteError, SpecError
from .fileio import write_bytes_atomic, write_text_atomic
from .network import CompiledNetwork, compile
from .optimizer import Optimizer
from .plan import min_batch
from .runfolder import (clear_run_files, interrupted_before_first_epoch, refuse_existing,
                        with_absolute_data)
from .runlock import run_lock
from .schedules import learning_rate_at
from .ops import Value
from .spec import DataSpec, NetworkSpec, RunSpec, load, parse_run
from .tasks import Task, evaluate, mean_loss, task_of

_NO_LOSS = ('training needs a loss: the network has no "loss" node (add a loss node, e.g. '
            '{"id": "loss", "op": "softmax_cross_entropy", "inputs": [<scores>, <labels>]}, '
            'and name it: "loss": "loss")')
TRAIN_ACCURACY_SAMPLES = 5000  # train accuracy is measured on a fixed subset of this size
DIVERGENCE_FACTOR = 100  # an epoch's loss this many times the starting loss: diverging


@dataclass
class EpochRecord:
    """One epoch of a classification or binary run (accuracy on a training subset and on val)."""

    epoch: int
    train_loss: float
    train_accuracy: float | None
    val_accuracy: float | None
    val_loss: float | None
    learning_rate: float
    seconds: float


@dataclass
class RegressionEpochRecord:
    """One epoch of a regression run (RMSE and R² on a training subset and on val)."""

    epoch: int
    train_loss: float
    train_rmse: float | None
    train_r2: float | None
    val_rmse: float | None
    val_r2: float | None
    val_loss: float | None
    learning_rate: float
    seconds: float


def _epoch_record(task: Task | None, train_metrics: dict[str, float | None], val_metrics: dict[str, float | None],
                  **common: Any) -> EpochRecord | RegressionEpochRecord:
    """The record that fits the task, from the `evaluate` metrics of the two splits."""
    if task == "regression":
        return RegressionEpochRecord(train_rmse=train_metrics["rmse"], train_r2=train_metrics["r2"],
                                     val_rmse=val_metrics["rmse"], val_r2=val_metrics["r2"], **common)
    return EpochRecord(train_accuracy=train_metrics["accuracy"], val_accuracy=val_metrics["accuracy"], **common)


def _record_from_dict(record: dict[str, Any]) -> EpochRecord | RegressionEpochRecord:
    return RegressionEpochRecord(**record) if "train_rmse" in record else EpochRecord(**record)


@dataclass
class TrainResult:
    """What a training run produced."""

    net: CompiledNetwork
    history: list[EpochRecord | RegressionEpochRecord] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    out: Path | None = None
    interrupted: bool = False
    warnings: list[str] = field(default_factory=list)


class _StopFlag:
    """Turns Ctrl-C (SIGINT) and SIGTERM (what schedulers send) into a flag checked between
    steps, so a step is never half done."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.stop = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopFlag":
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._handle) for signum in self.SIGNALS}
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.stop:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.stop = True

    def __exit__(self, *exc: Any) -> None:
        for signum, previous in self._previous.items():
            if previous is not None:
                signal.signal(signum, previous)


def _with_overrides(run: RunSpec, epochs: int | None, batch_size: int | None, learning_rate: float | None,
                    data: str | None) -> RunSpec:
    if epochs is None and batch_size is None and learning_rate is None and data is None:
        return run
    # Re-validate through the parser so overrides get the same type and range checks as the
    # file (an override of True, "3" or 2.5 epochs is refused, as it would be in the file).
    document = json.loads(run.model_dump_json())
    train = document["train"]
    if epochs is not None:
        train["epochs"] = epochs
    if batch_size is not None:
        train["batch_size"] = batch_size
    if learning_rate is not None:
        train["optimizer"]["learning_rate"] = learning_rate
    if data is not None:
        train["data"] = {**json.loads(run.train.data_spec().model_dump_json()), "name": data}
    return parse_run(document)


def load_data(spec: DataSpec, seed: int, dtype: str, input_shape: tuple[int, ...],
              label: Value | None = None) -> dict[str, np.ndarray]:
    """The data set of a run, shaped for the network's input; y_* as `label` declares it:
    class indices (N,) for `classes`, `dtype` targets (N, *shape) for `shape`."""
    options: dict[str, Any] = dict(spec.options)
    if label is not None and label.kind == "float":
        options["target_shape"] = label.shape
    data = data_module.load(spec.name, val_size=spec.val_size, normalize=spec.normalize, seed=seed,
                            dtype=dtype, **options)
    size = int(np.prod(input_shape))
    for split in ("train", "val", "test"):
        X = data[f"X_{split}"]
        if X.shape[0] and int(np.prod(X.shape[1:])) != size:
            raise DataError(f"data set '{spec.name}': {split} examples have shape {X.shape[1:]}, "
                            f"the network's input has {size} values {input_shape}")
        data[f"X_{split}"] = np.ascontiguousarray(X.reshape((X.shape[0], *input_shape)), dtype=dtype)
        data[f"y_{split}"] = np.ascontiguousarray(data[f"y_{split}"])
    return data


def accuracy(net: CompiledNetwork, X: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> float | None:
    """Fraction of correct predictions (eval mode; see `net.predict`), or None for an empty split."""
    if len(X) == 0:
        return None
    return evaluate(net, X, y, batch_size)["accuracy"]


def label_of(network: NetworkSpec) -> Value | None:
    """The declared value of the network's (first) label, or None without labels."""
    return network.value(next(iter(network.labels))) if network.labels else None


def _check_labels(net: CompiledNetwork, data: dict[str, np.ndarray], name: str) -> None:
    label = next(iter(net.graph.labels.values()), None)
    if label is None:
        return
    binary = task_of(net.graph) == "binary"
    for split in ("train", "val", "test"):
        y = data[f"y_{split}"]
        if not len(y):
            continue
        if label.kind == "classes" and (y.min() < 0 or y.max() >= label.classes):
            raise DataError(f"data set '{name}': {split} labels span [{y.min()}, {y.max()}] but the network "
                            f"has {label.classes} classes")
        if binary and (y.min() < 0 or y.max() > 1):
            raise DataError(f"data set '{name}': {split} targets span [{y.min():g}, {y.max():g}] but "
                            f"sigmoid_binary_cross_entropy needs targets in [0, 1]")


def train(run: RunSpec | str | Path, *, out: str | Path | None = None, data: str | None = None,
          epochs: int | None = None, batch_size: int | None = None, learning_rate: float | None = None,
          resume: str | Path | None = None, progress: bool | None = None,
          log: Callable[[str], None] | None = print, backend: str | None = None,
          overwrite: bool = False,
          on_epoch: Callable[[EpochRecord | RegressionEpochRecord], None] | None = None) -> TrainResult:
    """Train a run spec (or a run file path); see the module docstring for the run folder.

    out: the run folder to write; RunFolderError if it holds anything, unless `overwrite`
        (which removes the files graphnet writes there, and no others).
    resume: a run folder to continue (its run.json and checkpoint); `epochs` and
        `learning_rate` override its settings, saved to its run.json once training under
        them has succeeded. A run killed before its first checkpoint starts again.
    The run folder is locked while training: RunFolderError if another process trains in it.
    on_epoch: called with each finished epoch's record, once it is in the history and the
        checkpoint; an exception it raises stops training and propagates (the run folder
        keeps that checkpoint; the lock is released).
    """
    with ExitStack() as hold:
        return _train(run, out=out, data=data, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                      resume=resume, progress=progress, log=log, backend=backend, overwrite=overwrite, hold=hold,
                      on_epoch=on_epoch)


def _train(run: RunSpec | str | Path, *, out: str | Path | None, data: str | None, epochs: int | None,
           batch_size: int | None, learning_rate: float | None, resume: str | Path | None,
           progress: bool | None, log: Callable[[str], None] | None, backend: str | None,
           overwrite: bool, hold: ExitStack,
           on_epoch: Callable[[EpochRecord | RegressionEpochRecord], None] | None = None) -> TrainResult:
    say = log or (lambda text: None)
    if resume is not None:
        out = Path(resume)
        if (out / "run.json").is_file():
            hold.enter_context(run_lock(out, say))
        run = parse_run((out / "run.json").read_text(encoding="utf-8"), str(out / "run.json")) \
            if (out / "run.json").is_file() else _missing_run(out)
    else:
        source = str(run) if isinstance(run, (str, Path)) else None
        loaded = load(run) if isinstance(run, (str, Path)) else run
        if isinstance(loaded, NetworkSpec):
            needs_run = ("training needs a run spec with \"network\" and \"train\" "
                         "(see specs/fashion_mlp.json)")
            raise SpecError(f"{_NO_LOSS}; and {needs_run}" if loaded.loss is None else
                            f"this is a network spec; {needs_run}", source)
        if isinstance(loaded, RunSpec) and loaded.network.loss is None:
            raise SpecError(_NO_LOSS, source)
        if not isinstance(loaded, RunSpec):
            raise TypeError(f"train() takes a RunSpec or a run file path (or resume=RUN), "
                            f"got {type(run).__name__}")
        run = loaded
    as_saved = run
    run = _with_overrides(run, epochs, batch_size, learning_rate, data)
    if resume is None:
        run = with_absolute_data(run)
    settings = run.train
    out = Path(out) if out is not None else None
    if resume is None and out is not None:
        refuse_existing(out, overwrite)  # at once, before the data is loaded; again under the lock below

    if len(run.network.inputs) != 1:
        raise SpecError([("network.inputs", "training on a data set needs a network with exactly one input")])
    input_shape = run.network.value(next(iter(run.network.inputs))).shape
    dataset = load_data(settings.data_spec(), settings.seed, settings.dtype, input_shape, label_of(run.network))
    X_train, y_train = dataset["X_train"], dataset["y_train"]
    if len(X_train) == 0:
        raise DataError(f"data set '{settings.data_spec().name}' has no training examples")

    optimizer_args = {k: v for k, v in settings.optimizer.model_dump().items() if k != "rule"}
    base_lr = optimizer_args["learning_rate"]
    def make_optimizer(net: CompiledNetwork) -> Optimizer:
        return Optimizer(net, settings.optimizer.rule, clip_norm=settings.clip_norm, **optimizer_args)

    restart = resume is not None and interrupted_before_first_epoch(out)  # type: ignore[arg-type]
    warnings_so_far: list[str] = []
    if resume is not None and not restart:
        net, meta, optimizer = restore(out / "checkpoint", batch_size=settings.batch_size,  # type: ignore[operator]
                                       backend=backend or settings.backend, make_optimizer=make_optimizer)
        _check_same_network(run.network, net.spec, out)  # type: ignore[arg-type]
        position, history, elapsed = _resume_state(meta, out / "checkpoint" / "weights.npz")  # type: ignore[operator]
        saved_warnings = meta.get("warnings")
        warnings_so_far = [w for w in saved_warnings if isinstance(w, str)] if isinstance(saved_warnings, list) else []
    else:
        net = compile(run.network, batch_size=settings.batch_size, dtype=settings.dtype,
                      backend=backend or settings.backend, seed=settings.seed)
        optimizer = make_optimizer(net)
        position = {"epoch": 0, "iteration": 0, "data_rng": None, "loss_sum": 0.0}
        history, elapsed = [], 0.0
        if restart:
            say(f"{out} has no checkpoint yet (training was interrupted before the first epoch finished): "
                "starting again from epoch 1 with its run.json settings")
        elif out is not None:
            out.mkdir(parents=True, exist_ok=True)
            hold.enter_context(run_lock(out, say))
            if overwrite:
                clear_run_files(out)
            else:
                refuse_existing(out)
            write_text_atomic(out / "run.json", run.to_json() + "\n")
    # Overrides of a resume (--epochs, --lr) are saved to run.json only once training under
    # them has succeeded: a rate that blows up must not be what the next plain resume uses.
    unsaved_overrides = resume is not None and run is not as_saved
    resumed_at = (position["epoch"], position["iteration"])
    _check_labels(net, dataset, settings.data_spec().name)

    data_rng = np.random.default_rng([settings.seed, 1])
    if position["data_rng"] is None:
        # A checkpoint without the shuffling generator's state (written at an epoch end
        # by an older graphnet): replay the shuffles of the epochs already done.
        for _ in range(position["epoch"]):
            data_rng.permutation(len(X_train))
    subset = np.random.default_rng([settings.seed, 2]).permutation(len(X_train))[:TRAIN_ACCURACY_SAMPLES]
    X_sub, y_sub = np.ascontiguousarray(X_train[subset]), y_train[subset]
    N, B = len(X_train), settings.batch_size
    per_epoch = batches_per_epoch(N, B, min_batch(net.graph, "train")[0])
    if resume is not None and not restart:  # iterations are counted from 1 in messages, like epochs
        if position["epoch"] >= settings.epochs:
            say(f"{out} has finished its {settings.epochs} epochs: nothing to train (raise --epochs to go on)")
        else:
            say(f"resuming {out} at epoch {position['epoch'] + 1}, "
                f"iteration {position['iteration'] + 1} of {per_epoch}")
    X_batch = np.empty((B, *X_train.shape[1:]), X_train.dtype)
    y_batch = np.empty((B, *y_train.shape[1:]), y_train.dtype)
    result = TrainResult(net, history, out=out, warnings=warnings_so_far)
    first_step_loss: float | None = None
    show = sys.stderr.isatty() if progress is None else progress
    started = time.perf_counter() - elapsed
    # the checkpoint a NonFiniteError may call "last good": the one resumed from, then each epoch end's
    good_checkpoint = out / "checkpoint" if resume is not None and out is not None else None

    def checkpoint(epoch: int, iteration: int, epoch_rng: Any, loss_sum: float) -> None:
        nonlocal unsaved_overrides
        if out is None:
            return
        meta = {"position": {"epoch": epoch, "iteration": iteration, "data_rng": epoch_rng, "loss_sum": loss_sum},
                "history": [asdict(record) for record in history],
                "elapsed": time.perf_counter() - started,
                "warnings": result.warnings}
        save_checkpoint(out / "checkpoint", net, optimizer, meta)
        if unsaved_overrides and (epoch, iteration) != resumed_at:  # run.json describes the checkpoint
            write_text_atomic(out / "run.json", run.to_json() + "\n")
            unsaved_overrides = False

    # Overflow in a step is reported by NonFiniteError (naming the step and node), not as
    # numpy RuntimeWarnings on stderr.
    with _StopFlag() as flag, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for epoch in range(position["epoch"], settings.epochs):
            epoch_start = time.perf_counter()
            if position["data_rng"] is not None and epoch == position["epoch"]:
                try:
                    restore_generator(data_rng, position["data_rng"])
                except (TypeError, ValueError, KeyError) as error:
                    raise CheckpointError(f"{out / 'checkpoint' / 'weights.npz'}: the saved data shuffling "
                                          f"state is unusable: {error}") from None
            epoch_rng = generator_state(data_rng)
            order = data_rng.permutation(N)
            first = position["iteration"] if epoch == position["epoch"] else 0
            loss_sum = position.get("loss_sum", 0.0) if epoch == position["epoch"] else 0.0
            bar = _progress(per_epoch, first, f"epoch {epoch + 1}/{settings.epochs}") if show else None
            for iteration in range(first, per_epoch):
                if flag.stop:
                    checkpoint(epoch, iteration, epoch_rng, loss_sum)
                    result.interrupted = True
                    if bar:
                        bar.close()
                    say(f"interrupted at epoch {epoch + 1}, before iteration {iteration + 1} of {per_epoch}"
                        + (f"; checkpoint saved, resume with: graphnet train --resume {out}" if out else ""))
                    return _finish(result, dataset, started, say)
                index = order[iteration * B:(iteration + 1) * B]
                n = len(index)
                np.take(X_train, index, axis=0, out=X_batch[:n])
                np.take(y_train, index, axis=0, out=y_batch[:n])
                optimizer.learning_rate = learning_rate_at(
                    settings.schedule, base_lr, epoch + iteration / per_epoch, settings.epochs, per_epoch)
                try:
                    loss = optimizer.step(X_batch[:n], y_batch[:n])
                    loss_sum += loss
                    if first_step_loss is None and epoch == iteration == 0:
                        first_step_loss = loss
                except NonFiniteError as error:
                    if bar:
                        bar.close()
                    note = "" if out is None else _checkpoint_note(good_checkpoint, out / "checkpoint")
                    raise NonFiniteError(f"epoch {epoch + 1}, iteration {iteration + 1} of {per_epoch}: "
                                         f"{error}{note}") from None
                if bar:
                    bar.update(1)
            if bar:
                bar.close()
            record = _epoch_record(
                task_of(net.graph),
                evaluate(net, X_sub, y_sub, settings.eval_batch_size),
                evaluate(net, dataset["X_val"], dataset["y_val"], settings.eval_batch_size),
                epoch=epoch + 1,
                train_loss=loss_sum / per_epoch,
                val_loss=(net.evaluate_loss(dataset["X_val"][:settings.eval_batch_size],
                                            dataset["y_val"][:settings.eval_batch_size])
                          if len(dataset["X_val"]) else None),
                learning_rate=optimizer.learning_rate,
                seconds=time.perf_counter() - epoch_start,
            )
            history.append(record)
            say(_epoch_line(record, settings.epochs))
            warning = divergence_warning(history, first_step_loss, result.warnings)
            if warning:
                result.warnings.append(warning)
                say(f"warning: {warning}")
            position = {"epoch": epoch + 1, "iteration": 0, "data_rng": None, "loss_sum": 0.0}
            # The shuffling generator's state goes with the checkpoint: a resume at this
            # epoch boundary must draw the next epoch's order, not the first epoch's again.
            checkpoint(epoch + 1, 0, generator_state(data_rng), 0.0)
            good_checkpoint = out / "checkpoint" if out is not None else None
            if out is not None:
                write_text_atomic(out / "history.json", json.dumps([asdict(r) for r in history], indent=2) + "\n")
            if on_epoch is not None:
                on_epoch(record)
    return _finish(result, dataset, started, say)


def divergence_warning(history: list[EpochRecord | RegressionEpochRecord], first_step_loss: float | None,
                       given: list[str]) -> str | None:
    """A warning when the last epoch's loss is over DIVERGENCE_FACTOR times the starting loss
    (the first step's, else the first epoch's); None otherwise, or if one was given already."""
    if any(text.startswith("the training loss diverged") for text in given):
        return None
    start = first_step_loss if first_step_loss is not None else history[0].train_loss
    last = history[-1]
    if not (start > 0 and last.train_loss > DIVERGENCE_FACTOR * start):
        return None
    return (f"the training loss diverged: epoch {last.epoch} loss {last.train_loss:.3g} is over "
            f"{DIVERGENCE_FACTOR}x its starting value {start:.3g}; try a lower learning rate "
            f"(it was {last.learning_rate:.3g})")


def _resume_state(meta: dict[str, Any], source: Path) -> tuple[dict[str, Any], list[EpochRecord | RegressionEpochRecord], float]:
    """The training position, history and elapsed time saved in a checkpoint's meta."""
    position = meta.get("position")
    try:
        if not isinstance(position, dict):
            raise ValueError(f"'position' is {position!r}")
        for key in ("epoch", "iteration"):
            value = position.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"position '{key}' is {value!r}")
        if position.get("data_rng") is not None and not isinstance(position["data_rng"], dict):
            raise ValueError(f"position 'data_rng' is {position['data_rng']!r}")
        position = {"data_rng": None, **position, "loss_sum": float(position.get("loss_sum", 0.0))}
        history = [_record_from_dict(record) for record in meta.get("history", [])]
        elapsed = float(meta.get("elapsed", 0.0))
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{source}: the training state in its meta is unusable: {error}") from None
    return position, history, elapsed


def _checkpoint_note(good: Path | None, folder: Path) -> str:
    """The end of a NonFiniteError's message: the checkpoint to go back to, if this run has a good one."""
    if good is not None:
        return f"; the last good checkpoint is {good}"
    if (folder / "weights.npz").is_file():
        return f"; no checkpoint was written yet by this run ({folder} is left from an earlier run)"
    return "; no checkpoint was written yet"


def _check_same_network(network: NetworkSpec, trained: NetworkSpec, out: Path) -> None:
    """CheckpointError when run.json's network is not the one the checkpoint's weights were trained with."""
    difference = spec_difference(network, trained)
    if difference:
        raise CheckpointError(
            f"{out / 'run.json'}: its network differs from the checkpoint's ({out / 'checkpoint' / 'network.json'}) "
            f"at {difference}; the weights were trained with the checkpoint's network, so resuming would not "
            f"train the network run.json describes: undo the edit to resume, or train the edited run file "
            f"as a new run")


def _missing_run(out: Path) -> RunSpec:
    raise SpecError([("", f"no run.json in {out}: not a run folder written by graphnet train")], str(out))


def batches_per_epoch(examples: int, batch_size: int, min_batch: int = 1) -> int:
    """Batches of an epoch: ceil(examples / batch_size), less a last batch smaller than
    `min_batch` (with batchnorm, a last batch of one example is dropped, as PyTorch's
    drop_last would; a different example each epoch, as the order is reshuffled)."""
    count = math.ceil(examples / batch_size)
    last = examples - (count - 1) * batch_size
    return count - 1 if count > 1 and last < min(min_batch, batch_size) else count


def _epoch_line(record: EpochRecord | RegressionEpochRecord, epochs: int) -> str:
    def pct(value: float | None) -> str:
        return "  n/a" if value is None else f"{100 * value:5.1f}%"

    def num(value: float | None, form: str) -> str:
        return "n/a" if value is None else format(value, form)

    if isinstance(record, RegressionEpochRecord):
        scores = (f"train RMSE {num(record.train_rmse, '.4g')}  val RMSE {num(record.val_rmse, '.4g')}  "
                  f"val R2 {num(record.val_r2, '.4f')}")
    else:
        scores = f"train {pct(record.train_accuracy)}  val {pct(record.val_accuracy)}"
    return (f"epoch {record.epoch:>3}/{epochs}  loss {record.train_loss:.4f}  {scores}  "
            f"lr {record.learning_rate:.2e}  {record.seconds:.1f} s")


def _progress(total: int, start: int, description: str):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=start, desc=description, leave=False, unit="step")


def _finish(result: TrainResult, dataset: dict[str, np.ndarray], started: float, say: Callable[[str], None]) -> TrainResult:
    net, history = result.net, result.history
    wall = time.perf_counter() - started
    metrics = {**_split_metrics(net, dataset, history),
               "test_loss": mean_loss(net, dataset["X_test"], dataset["y_test"]),
               "final_loss": history[-1].train_loss if history else None,
               "epochs": len(history),
               "wall_time_seconds": wall,
               "interrupted": result.interrupted,
               "warnings": result.warnings}
    result.metrics = metrics
    if result.out is not None:
        write_text_atomic(result.out / "history.json", json.dumps([asdict(r) for r in history], indent=2) + "\n")
        write_text_atomic(result.out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        note = plot_learning_curve(history, result.out / "learning_curve.png")
        if note:
            say(note)
    if not result.interrupted and metrics.get("test_accuracy") is not None:
        say(f"test accuracy {100 * metrics['test_accuracy']:.2f}%  ({wall:.1f} s)")
    elif not result.interrupted and metrics.get("test_rmse") is not None:
        say(f"test RMSE {metrics['test_rmse']:.4g}  R2 {metrics['test_r2']:.4f}  ({wall:.1f} s)")
    return result


def _split_metrics(net: CompiledNetwork, dataset: dict[str, np.ndarray],
                   history: list[Any]) -> dict[str, float | None]:
    """test_* and val_* metrics of the task (accuracy, or rmse and r2), and train_* from the last epoch."""
    result: dict[str, float | None] = {}
    for split in ("test", "val"):
        for name, value in evaluate(net, dataset[f"X_{split}"], dataset[f"y_{split}"]).items():
            result[f"{split}_{name}"] = value
    names = [name[len("test_"):] for name in result if name.startswith("test_")]
    for name in names:
        result[f"train_{name}"] = getattr(history[-1], f"train_{name}") if history else None
    return result


def plot_learning_curve(history: list[EpochRecord | RegressionEpochRecord], path: Path) -> str | None:
    """Loss and accuracy per epoch, as the homework's learning-curve figure; a note if matplotlib is absent."""
    if not history:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "learning_curve.png skipped: matplotlib is not installed (pip install 'graphnet[plot]')"
    import io

    epochs = [r.epoch for r in history]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7, 7), sharex=True)
    top.plot(epochs, [r.train_loss for r in history], "o-", label="train loss")
    if any(r.val_loss is not None for r in history):
        top.plot(epochs, [r.val_loss for r in history], "o-", label="val loss")
    top.set_ylabel("loss")
    top.legend()
    metric = "rmse" if isinstance(history[0], RegressionEpochRecord) else "accuracy"
    for label in ("train", "val"):
        values = [getattr(r, f"{label}_{metric}") for r in history]
        if any(v is not None for v in values):
            bottom.plot(epochs, values, "o-", label=label)
    bottom.set_xlabel("epoch")
    bottom.set_ylabel("RMSE" if metric == "rmse" else "accuracy")
    bottom.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    write_bytes_atomic(path, buffer.getvalue())
    return None
