"""`train`: a run spec (or a run folder to resume) set up, trained by the epoch loop, and finished."""
from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable, Mapping

from ..spec import RunSpec
from .distributed import current_world
from .finish import track
from .loop import EpochLoop
from .records import EpochRecord, RegressionEpochRecord, TrainResult
from .setup import set_up
from .tracking import open_trackers


def train(run: RunSpec | Mapping[str, Any] | str | Path | None, *, out: str | Path | None = None,
          data: str | Mapping[str, Any] | None = None,
          epochs: int | None = None, batch_size: int | None = None, learning_rate: float | None = None,
          resume: str | Path | None = None, progress: bool | None = None,
          log: Callable[[str], None] | None = print, backend: str | None = None,
          overwrite: bool = False,
          on_epoch: Callable[[EpochRecord | RegressionEpochRecord], None] | None = None) -> TrainResult:
    """Train a run spec (a RunSpec, a run document as a dict, or a run file path); see
    graphnet.training for the run folder.

    out: the run folder to write; RunFolderError if it holds anything, unless `overwrite`
        (which removes the files graphnet writes there, and no others) or all it holds is a run
        that never trained (which this one replaces). If training fails before its first
        checkpoint, what it wrote there is removed (and the folder, if it made it).
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
    say = log or (lambda text: None)
    with ExitStack() as hold:
        setup = set_up(run, out=out, data=data, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                       resume=resume, backend=backend, overwrite=overwrite, hold=hold, say=say)
        loop = EpochLoop(setup.run, setup.net, setup.optimizer, setup.dataset, setup.out, setup.saved, say,
                         show_progress=progress, unsaved_overrides=setup.unsaved_overrides,
                         good_checkpoint=setup.good_checkpoint, on_epoch=on_epoch)
        if setup.resumed:
            loop.announce_resume()
        return track(loop, open_trackers(setup.run, setup.out, loop.position.epoch + 1, setup.resumed, say), say)

