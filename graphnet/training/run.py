"""`train`: a run spec (or a run folder to resume) set up, trained by the epoch loop, and finished."""
from __future__ import annotations

import json
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..checkpoint import restore, spec_difference
from ..data import IN_MEMORY
from ..distributed import current_world
from ..errors import CheckpointError, SpecError
from ..fileio import make_folder
from ..network import CompiledNetwork, compile
from ..optimizer import Optimizer
from ..runfolder import (clear_run_files, interrupted_before_first_epoch, refuse_existing, with_absolute_data,
                         write_history, write_metrics, write_run_spec)
from ..runlock import run_lock
from ..spec import NetworkSpec, RunSpec, load, parse_run
from .dataset import attach_data_info, check_labels, load_run_data_with_info
from .init_from import load_initial_weights, with_absolute_init_from
from .loop import EpochLoop
from .plot import plot_learning_curve
from .position import ResumePosition, SavedTraining, saved_training
from .records import EpochRecord, RegressionEpochRecord, TrainResult, final_metrics

_NO_LOSS = ('training needs a loss: the network has no "loss" node (add a loss node, e.g. '
            '{"id": "loss", "op": "softmax_cross_entropy", "inputs": [<scores>, <labels>]}, '
            'and name it: "loss": "loss")')


@dataclass
class _Start:
    """The state training starts from: a fresh network or one restored from a checkpoint."""

    net: CompiledNetwork
    optimizer: Optimizer
    saved: SavedTraining
    resumed: bool  # from a checkpoint (not a fresh start, nor a restart of a run killed before one)


def train(run: RunSpec | str | Path, *, out: str | Path | None = None, data: str | Mapping[str, Any] | None = None,
          epochs: int | None = None, batch_size: int | None = None, learning_rate: float | None = None,
          resume: str | Path | None = None, progress: bool | None = None,
          log: Callable[[str], None] | None = print, backend: str | None = None,
          overwrite: bool = False,
          on_epoch: Callable[[EpochRecord | RegressionEpochRecord], None] | None = None) -> TrainResult:
    """Train a run spec (or a run file path); see graphnet.training for the run folder.

    out: the run folder to write; RunFolderError if it holds anything, unless `overwrite`
        (which removes the files graphnet writes there, and no others).
    data: a data set name or path replacing the run's, or in-memory data: a dict with X_train,
        y_train and optionally X_val, y_val, X_test, y_test (the homework's dict; X_*: (N, ...)
        raw features, y_*: labels). Without X_val the validation split is taken as for files.
        run.json then records the data as "<in-memory>": resuming needs `data=` again.
    resume: a run folder to continue (its run.json and checkpoint); `epochs` and
        `learning_rate` override its settings, saved to its run.json once training under
        them has succeeded. A run killed before its first checkpoint starts again.
    The run folder is locked while training: RunFolderError if another process trains in it.
    on_epoch: called with each finished epoch's record, once it is in the history and the
        checkpoint; an exception it raises stops training and propagates (the run folder
        keeps that checkpoint; the lock is released).
    Started by an MPI launcher on several ranks, each trains on a share of every batch
    (see graphnet.training.parallel).
    """
    world = current_world()
    if world.size > 1:
        from .parallel import train_parallel
        return train_parallel(world, run, out=out, data=data, epochs=epochs, batch_size=batch_size,
                              learning_rate=learning_rate, resume=resume, progress=progress, log=log,
                              backend=backend, overwrite=overwrite)
    with ExitStack() as hold:
        return _train(run, out=out, data=data, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                      resume=resume, progress=progress, log=log, backend=backend, overwrite=overwrite, hold=hold,
                      on_epoch=on_epoch)


def _train(run: RunSpec | str | Path, *, out: str | Path | None, data: str | Mapping[str, Any] | None,
           epochs: int | None,
           batch_size: int | None, learning_rate: float | None, resume: str | Path | None,
           progress: bool | None, log: Callable[[str], None] | None, backend: str | None,
           overwrite: bool, hold: ExitStack,
           on_epoch: Callable[[EpochRecord | RegressionEpochRecord], None] | None) -> TrainResult:
    say = log or (lambda text: None)
    arrays, data = (data, IN_MEMORY) if isinstance(data, Mapping) else (None, data)
    if resume is not None:
        out = Path(resume)
        run = _resumed_run(out, hold, say)
        _check_in_memory_resume(run, arrays, out)
    else:
        run = _run_spec_of(run)
    as_saved = run
    run = _with_overrides(run, epochs, batch_size, learning_rate, data)
    if resume is None:
        run = with_absolute_init_from(with_absolute_data(run))
    out = Path(out) if out is not None else None
    if resume is None and out is not None:
        refuse_existing(out, overwrite)  # at once, before the data is loaded; again under the lock below
    dataset, info = load_run_data_with_info(run, arrays)
    start = _start(run, out, resume is not None, backend, overwrite, hold, say)
    attach_data_info(start.net, info)
    check_labels(start.net, dataset, run.train.data_spec().name)
    loop = EpochLoop(run, start.net, start.optimizer, dataset, out, start.saved, say,
                     show_progress=progress,
                     # Overrides of a resume (--epochs, --lr) are saved to run.json only once training under
                     # them has succeeded: a rate that blows up must not be what the next plain resume uses.
                     unsaved_overrides=resume is not None and run is not as_saved,
                     # the checkpoint a NonFiniteError may call "last good": the one resumed from
                     good_checkpoint=out / "checkpoint" if resume is not None and out is not None else None,
                     on_epoch=on_epoch)
    if start.resumed:
        loop.announce_resume()
    return finish(loop.run(), dataset, loop.started, say)


def _resumed_run(out: Path, hold: ExitStack, say: Callable[[str], None]) -> RunSpec:
    """The run spec of the run folder `out`, read under its lock."""
    if not (out / "run.json").is_file():
        raise SpecError([("", f"no run.json in {out}: not a run folder written by graphnet train")], str(out))
    hold.enter_context(run_lock(out, say))
    return parse_run((out / "run.json").read_text(encoding="utf-8"), str(out / "run.json"))


def _check_in_memory_resume(run: RunSpec, arrays: Mapping[str, Any] | None, out: Path) -> None:
    """SpecError when a run trained on in-memory data is resumed without `data=`."""
    if arrays is None and run.train.data_spec().name == IN_MEMORY:
        raise SpecError(f"{out} was trained on in-memory data (run.json: \"data\": \"{IN_MEMORY}\"): "
                        f"resume it from Python with the same arrays, gn.train(None, resume=..., data=...)")


def _run_spec_of(run: RunSpec | str | Path) -> RunSpec:
    """`run`, or the run spec in the file it names; SpecError for a network spec or a run without a loss."""
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
    return loaded


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


def _start(run: RunSpec, out: Path | None, resume: bool, backend: str | None, overwrite: bool,
           hold: ExitStack, say: Callable[[str], None]) -> _Start:
    """The network, optimizer and saved training state to start from: restored from the
    checkpoint of a resumed run, else compiled fresh (a new run folder is locked, cleared
    or refused, and gets its run.json)."""
    settings = run.train
    optimizer_args = {k: v for k, v in settings.optimizer.model_dump().items() if k != "rule"}

    def make_optimizer(net: CompiledNetwork) -> Optimizer:
        return Optimizer(net, settings.optimizer.rule, clip_norm=settings.clip_norm, **optimizer_args)

    restart = resume and interrupted_before_first_epoch(out)  # type: ignore[arg-type]
    if resume and not restart:
        net, meta, optimizer = restore(out / "checkpoint", batch_size=settings.batch_size,  # type: ignore[operator]
                                       backend=backend or settings.backend, make_optimizer=make_optimizer)
        _check_same_network(run.network, net.spec, out)  # type: ignore[arg-type]
        return _Start(net, optimizer, saved_training(meta, out / "checkpoint" / "weights.npz"), True)  # type: ignore[operator]
    net = compile(run.network, batch_size=settings.batch_size, dtype=settings.dtype,
                  backend=backend or settings.backend, seed=settings.seed)
    if settings.init_from is not None:
        load_initial_weights(net, settings.init_from, say)
    if restart:
        say(f"{out} has no checkpoint yet (training was interrupted before the first epoch finished): "
            "starting again from epoch 1 with its run.json settings")
    elif out is not None:
        make_folder(out)
        hold.enter_context(run_lock(out, say))
        if overwrite:
            clear_run_files(out)
        else:
            refuse_existing(out)
        write_run_spec(out, run)
    return _Start(net, make_optimizer(net), SavedTraining(ResumePosition(), [], 0.0, []), False)


def _check_same_network(network: NetworkSpec, trained: NetworkSpec, out: Path) -> None:
    """CheckpointError when run.json's network is not the one the checkpoint's weights were trained with."""
    difference = spec_difference(network, trained)
    if difference:
        raise CheckpointError(
            f"{out / 'run.json'}: its network differs from the checkpoint's ({out / 'checkpoint' / 'network.json'}) "
            f"at {difference}; the weights were trained with the checkpoint's network, so resuming would not "
            f"train the network run.json describes: undo the edit to resume, or train the edited run file "
            f"as a new run")


def finish(result: TrainResult, dataset: dict[str, np.ndarray], started: float,
           say: Callable[[str], None]) -> TrainResult:
    """`result` with its final metrics; the run folder's history, metrics and learning curve
    written; the test score said (unless interrupted)."""
    wall = time.perf_counter() - started
    metrics = result.metrics = final_metrics(result, dataset, wall)
    if result.out is not None:
        write_history(result.out, result.history)
        write_metrics(result.out, metrics)
        note = plot_learning_curve(result.history, result.out / "learning_curve.png")
        if note:
            say(note)
    if not result.interrupted and metrics.get("test_accuracy") is not None:
        say(f"test accuracy {100 * metrics['test_accuracy']:.2f}%  ({wall:.1f} s)")
    elif not result.interrupted and metrics.get("test_rmse") is not None:
        say(f"test RMSE {metrics['test_rmse']:.4g}  R2 {metrics['test_r2']:.4f}  ({wall:.1f} s)")
    return result
