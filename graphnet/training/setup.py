"""Setting up a training run, the one route every way of training takes: one process
(`train`), each MPI rank (graphnet.training.parallel), each sweep trial (which calls
`train`).

    setup = set_up(run, out=..., data=..., resume=..., writer=True, ...)

resolves the run spec (a file, a resumed folder's run.json, overrides), reads what
the model starts from (a checkpoint to resume, an `init_from` source), loads the data
as the network's inputs, makes the network and optimizer, and attaches ONE model
record (graphnet.model.record) -- the preprocessing fitted on the training split or
kept from the model started from, and the class names -- before anything trains. The
run folder is created last, so a run refused for its data or labels leaves nothing
behind. Only a `writer` (the one process, or MPI rank 0) locks and writes the folder.
"""
from __future__ import annotations

import contextlib
import json
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..compiler.graph import build_graph, frozen_params
from ..data import IN_MEMORY
from ..errors import CheckpointError, SpecError
from ..model.checkpoint import spec_difference
from ..model.compiled import CompiledNetwork, compile
from ..model.record import ModelRecord
from ..model.restore import restore_training
from ..ops.tasks import class_count, task_of
from ..runs.folder import (
    clear_run_files,
    has_checkpoint,
    holds_untrained_run,
    interrupted_before_first_epoch,
    refuse_existing,
    remove_folder_if_empty,
    with_absolute_data,
    write_run_spec,
)
from ..runs.lock import run_lock
from ..runtime.optimizer import Optimizer
from ..spec import NetworkSpec, RunSpec, load, parse_run
from ..system.fileio import make_folder
from .class_weights import SETTING as CLASS_WEIGHT_SETTING
from .class_weights import class_weights, trained_weights, with_class_weight
from .dataset import check_split_labels, load_run_data
from .early_stopping import check_early_stopping
from .init_from import InitialModel, copy_initial_weights, read_initial_model, with_absolute_init_from
from .position import ResumePosition, SavedTraining, saved_training
from .tracking import check_trackers_installed

NO_LOSS = ('training needs a loss: the network has no "loss" node (add a loss node, e.g. '
           '{"id": "loss", "op": "softmax_cross_entropy", "inputs": [<scores>, <labels>]}, '
           'and name it: "loss": "loss")')


@dataclass
class Setup:
    """A run ready to train: its spec (overrides applied), run folder (None when this process
    writes none), data set (network inputs), network with its model record, optimizer and
    the saved state to continue from."""

    run: RunSpec
    out: Path | None
    dataset: dict[str, np.ndarray]
    net: CompiledNetwork
    optimizer: Optimizer
    saved: SavedTraining
    resumed: bool                   # from a checkpoint (not a fresh start, nor a restart of a run killed before one)
    unsaved_overrides: bool         # --epochs/--lr of a resume, saved to run.json once training under them worked
    good_checkpoint: Path | None    # the checkpoint a NonFiniteError may call "last good": the one resumed from


def check_something_trains(run: RunSpec) -> None:
    """SpecError when a name in train.freeze is no parameter, or when the frozen parameters
    (train.freeze and nodes with "trainable": false) are all the network has."""
    graph = build_graph(run.network)
    frozen = frozen_params(run.network, graph, run.train.freeze)
    if graph.params and len(frozen) == len(graph.params):
        place = "train.freeze" if run.train.freeze else "network.nodes"
        raise SpecError([(place, f"every parameter is frozen ({', '.join(sorted(frozen))}): nothing would train; "
                                 "leave at least one node trainable")])


def set_up(run: RunSpec | Mapping[str, Any] | str | Path | None, *, out: str | Path | None,
           data: str | Mapping[str, Any] | None, epochs: int | None, batch_size: int | None,
           learning_rate: float | None, resume: str | Path | None, backend: str | None, overwrite: bool,
           hold: ExitStack, say: Callable[[str], None], writer: bool = True) -> Setup:
    """Everything `train` needs before its first step (see the module docstring); locks held
    by `hold`. `writer`: this process locks and writes the run folder (else it only reads it)."""
    arrays, data = (data, IN_MEMORY) if isinstance(data, Mapping) else (None, data)
    if resume is not None:
        folder: Path | None = Path(resume)
        run = resumed_run(folder, hold if writer else None, say)  # type: ignore[arg-type]
        _check_in_memory_resume(run, arrays, folder)  # type: ignore[arg-type]
    else:
        run = run_spec_of(run)  # type: ignore[arg-type]
        folder = Path(out) if out is not None else None
    as_saved = run
    run = with_overrides(run, epochs, batch_size, learning_rate, data)
    check_trackers_installed(run)  # at once, before the data is loaded
    check_something_trains(run)  # before the data is loaded too
    if resume is None:
        run = with_absolute_init_from(with_absolute_data(run))
        if folder is not None and writer:
            refuse_existing(folder, overwrite)  # at once, before the data is loaded; again under the lock below
    settings = run.train
    optimizer_args = {k: v for k, v in settings.optimizer.model_dump().items() if k != "rule"}

    def make_optimizer(net: CompiledNetwork) -> Optimizer:
        return Optimizer(net, settings.optimizer.rule, clip_norm=settings.clip_norm, **optimizer_args)

    restart = resume is not None and interrupted_before_first_epoch(folder)  # type: ignore[arg-type]
    initial: InitialModel | None = None
    if resume is not None and not restart:
        net, meta, optimizer, best = restore_training(
            folder / "checkpoint", batch_size=settings.batch_size,  # type: ignore[operator]
            backend=backend or settings.backend, make_optimizer=make_optimizer, freeze=settings.freeze)
        weighted = with_class_weight(run.network, trained_weights(net.spec) if settings.class_weight else None)
        _check_same_network(weighted, net.spec, folder)  # type: ignore[arg-type]
        saved = saved_training(meta, folder / "checkpoint" / "weights.npz")  # type: ignore[operator]
        saved.best = best
        keep, origin = ModelRecord.of(net), f"the checkpoint of {folder}"
    else:
        if settings.init_from is not None:
            initial = read_initial_model(settings.init_from, run.network)
        keep, origin = (initial.record, f"init_from {settings.init_from}") if initial else (None, "")
    dataset, record, notes = load_run_data(run, arrays, keep=keep, source=origin)
    if initial is not None and initial.record.preprocessing is not None:
        say(f"init_from {settings.init_from}: training keeps its {record.describe()}")
    if resume is None or restart:
        weights = class_weights(settings.class_weight, run.network, dataset["y_train"], record.class_names)
        if weights is not None:
            notes.append(f"class weights ({CLASS_WEIGHT_SETTING} {json.dumps(settings.class_weight)}): "
                         + ", ".join(f"{name} {w:.4g}" for name, w in zip(_class_labels(record, weights), weights)))
        net = compile(with_class_weight(run.network, weights), batch_size=settings.batch_size, dtype=settings.dtype,
                      backend=backend or settings.backend, seed=settings.seed, freeze=settings.freeze)
        if initial is not None:
            copy_initial_weights(net, initial, say)
        optimizer = make_optimizer(net)
        saved = SavedTraining(ResumePosition(), [], 0.0, [])
    record.attach(net)
    check_split_labels(net, dataset, settings.data_spec().name)
    if settings.early_stopping is not None:
        check_early_stopping(settings.early_stopping, task_of(run.network), len(dataset["X_val"]),
                             classes=class_count(run.network))
    if restart:
        say(f"{folder} has no checkpoint yet (training was interrupted before the first epoch finished): "
            "starting again from epoch 1 with its run.json settings")
    elif resume is None and folder is not None and writer:
        _create_run_folder(folder, run, overwrite, hold, say)
    for note in notes:  # what the data and the loss are, before the epochs
        say(note)
    writes = folder if writer else None
    resumed = resume is not None and not restart
    return Setup(run, writes, dataset, net, optimizer, saved, resumed,
                 unsaved_overrides=writer and resume is not None and run is not as_saved,
                 good_checkpoint=folder / "checkpoint" if resume is not None and writes is not None else None)


def _class_labels(record: ModelRecord, weights: list[float]) -> list[str]:
    """How the log names the classes the weights are for: their names, else their indices."""
    names = record.class_names
    return list(names) if names is not None and len(names) == len(weights) else [str(c) for c in range(len(weights))]


def _create_run_folder(out: Path, run: RunSpec, overwrite: bool, hold: ExitStack, say: Callable[[str], None]) -> None:
    """Create and lock the new run folder `out` (cleared with `overwrite` or when all it holds
    is a run that never trained, else refused if it holds anything) and write its run.json.
    If training fails before its first checkpoint, `hold` removes what the run wrote (and the
    folder, if it was made here), so that a run that never trained does not block its rerun."""
    created = not out.exists()
    make_folder(out)
    if created:
        hold.callback(remove_folder_if_empty, out)  # runs after the lock is released
    hold.enter_context(run_lock(out, say))
    if overwrite:
        clear_run_files(out)
    elif holds_untrained_run(out):
        say(f"{out}: replacing the run it holds, which never trained (no checkpoint)")
        clear_run_files(out)
    else:
        refuse_existing(out)
    write_run_spec(out, run)
    hold.push(_forget_if_untrained(out))  # runs under the lock


def _forget_if_untrained(out: Path) -> Callable[..., bool]:
    """An exit callback: when training fails before the run's first checkpoint, remove the
    files it wrote in `out`."""
    def on_exit(exc_type: Any, exc: Any, traceback: Any) -> bool:
        if exc_type is not None and not has_checkpoint(out):
            with contextlib.suppress(OSError):  # the error that ended training is the one to report
                clear_run_files(out)
        return False
    return on_exit


def resumed_run(out: Path, hold: ExitStack | None, say: Callable[[str], None]) -> RunSpec:
    """The run spec of the run folder `out`, read under its lock (taken into `hold`; None:
    read without it, as MPI ranks do while rank 0 holds it -- run.json is replaced atomically)."""
    if not (out / "run.json").is_file():
        raise SpecError([("", f"no run.json in {out}: not a run folder written by graphnet train")], str(out))
    if hold is not None:
        hold.enter_context(run_lock(out, say))
    return parse_run((out / "run.json").read_text(encoding="utf-8"), str(out / "run.json"))


def _check_in_memory_resume(run: RunSpec, arrays: Mapping[str, Any] | None, out: Path) -> None:
    """SpecError when a run trained on in-memory data is resumed without `data=`."""
    if arrays is None and run.train.data_spec().name == IN_MEMORY:
        raise SpecError(f"{out} was trained on in-memory data (run.json: \"data\": \"{IN_MEMORY}\"): "
                        f"resume it from Python with the same arrays, gn.train(None, resume=..., data=...)")


def run_spec_of(run: RunSpec | Mapping[str, Any] | str | Path) -> RunSpec:
    """`run`, the run document (a dict, parsed as a run file is) or the run spec in the file it
    names; SpecError for a network spec or a run without a loss."""
    source = str(run) if isinstance(run, (str, Path)) else None
    if isinstance(run, Mapping):
        loaded: Any = load(dict(run))
    else:
        loaded = load(run) if isinstance(run, (str, Path)) else run
    if isinstance(loaded, NetworkSpec):
        needs_run = ("training needs a run spec with \"network\" and \"train\" "
                     "(see specs/fashion_mlp.json)")
        raise SpecError(f"{NO_LOSS}; and {needs_run}" if loaded.loss is None else
                        f"this is a network spec; {needs_run}", source)
    if isinstance(loaded, RunSpec) and loaded.network.loss is None:
        raise SpecError(NO_LOSS, source)
    if not isinstance(loaded, RunSpec):
        raise TypeError(f"train() takes a RunSpec, a run document (dict) or a run file path (or resume=RUN), "
                        f"got {type(run).__name__}")
    return loaded


def with_overrides(run: RunSpec, epochs: int | None, batch_size: int | None, learning_rate: float | None,
                   data: str | None) -> RunSpec:
    """`run` with the given settings replaced, checked as the run file's are."""
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


def _check_same_network(network: NetworkSpec, trained: NetworkSpec, out: Path) -> None:
    """CheckpointError when run.json's network is not the one the checkpoint's weights were trained with."""
    difference = spec_difference(network, trained)
    if difference:
        raise CheckpointError(
            f"{out / 'run.json'}: its network differs from the checkpoint's ({out / 'checkpoint' / 'network.json'}) "
            f"at {difference}; the weights were trained with the checkpoint's network, so resuming would not "
            f"train the network run.json describes: undo the edit to resume, or train the edited run file "
            f"as a new run")
