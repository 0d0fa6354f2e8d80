"""The epoch loop: shuffle, step, record, checkpoint; Ctrl-C or SIGTERM stops between steps.

A resumed loop follows the trajectory of an uninterrupted one: it restores the
shuffling generator at the saved epoch and continues from the saved iteration
with the saved partial loss sum (an augmented run's flips and shifts follow from
the seed, epoch and position: graphnet.training.augment). It first checks that
the checkpoint belongs to the run (graphnet.training.identity). Each epoch end appends the epoch's record
to the run folder's log, then writes the checkpoint: a cost that does not grow
with the epochs (graphnet.training.history); history.json is written when the
loop is left.
"""
from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..compiler.plan import min_batch
from ..errors import CheckpointError, NonFiniteError
from ..model.checkpoint import generator_state, restore_generator, save_checkpoint
from ..model.compiled import CompiledNetwork
from ..ops.tasks import evaluate, mean_loss, task_of
from ..runs.folder import read_run_id, write_history, write_run_id, write_run_spec
from ..runtime.optimizer import Optimizer
from ..spec import RunSpec
from ..system.interrupts import note_stop
from .augment import Augmenter
from .early_stopping import EarlyStopper
from .history import HistoryLog, read_history
from .identity import RunIdentity, check_same_run, identity_of, new_run_id
from .position import ResumePosition, SavedTraining, training_meta
from .records import (
    AnyEpochRecord,
    EpochRecord,
    RegressionEpochRecord,
    TrainResult,
    divergence_warning,
    epoch_line,
    epoch_record,
)
from .schedules import learning_rate_at
from .tracking import Trackers

TRAIN_ACCURACY_SAMPLES = 5000  # train accuracy is measured on a fixed subset of this size


class StopFlag:
    """Turns Ctrl-C (SIGINT) and SIGTERM (what schedulers send) into a flag checked between
    steps, so a step is never half done; a second one raises KeyboardInterrupt at once. Installed
    even if SIGINT was ignored at start (see graphnet.system.interrupts); the signal is noted for the
    exit code."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.stop = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopFlag":
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._handle) for signum in self.SIGNALS}
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        note_stop(signum)
        if self.stop:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.stop = True

    def __exit__(self, *exc: Any) -> None:
        for signum, previous in self._previous.items():
            if previous is not None:
                signal.signal(signum, previous)


def batches_per_epoch(examples: int, batch_size: int, min_batch: int = 1) -> int:
    """Batches of an epoch: ceil(examples / batch_size), less a last batch smaller than
    `min_batch` (with batchnorm, a last batch of one example is dropped, as PyTorch's
    drop_last would; a different example each epoch, as the order is reshuffled)."""
    count = math.ceil(examples / batch_size)
    last = examples - (count - 1) * batch_size
    return count - 1 if count > 1 and last < min(min_batch, batch_size) else count


class EpochLoop:
    """The epochs of one run, from a saved position to `run.train.epochs`.

    dataset: the seed's dict (X_train (N, ...), y_train (N, ...), X_val, ...); out: the run
    folder (None: no checkpoints or files); saved: the state to continue from (CheckpointError
    when it is a checkpoint of another run, or its history is lost).
    """

    def __init__(self, run: RunSpec, net: CompiledNetwork, optimizer: Optimizer, dataset: dict[str, np.ndarray],
                 out: Path | None, saved: SavedTraining, say: Callable[[str], None], *,
                 show_progress: bool | None, unsaved_overrides: bool, good_checkpoint: Path | None,
                 on_epoch: Callable[[EpochRecord | RegressionEpochRecord], None] | None = None) -> None:
        self.run_spec, self.settings = run, run.train
        self.net, self.optimizer, self.dataset, self.out, self.say = net, optimizer, dataset, out, say
        self.position = saved.position
        self.resumed_at = (saved.position.epoch, saved.position.iteration)
        self.unsaved_overrides = unsaved_overrides
        self.good_checkpoint = good_checkpoint
        self.on_epoch = on_epoch
        self.tracker: Trackers | None = None  # TensorBoard, MLflow (graphnet.training.tracking)
        self.show_progress = sys.stderr.isatty() if show_progress is None else show_progress
        self.identity: RunIdentity | None = None
        self.log: HistoryLog | None = None
        self.result = TrainResult(net, self._open_records(saved), out=out, warnings=saved.warnings)
        self.stopper = EarlyStopper(self.settings.early_stopping, self.result.history, saved.best) \
            if self.settings.early_stopping is not None else None
        self.first_step_loss: float | None = None
        X_train, y_train = dataset["X_train"], dataset["y_train"]
        self.data_rng = self._shuffling_generator(len(X_train))
        subset = np.random.default_rng([self.settings.seed, 2]).permutation(len(X_train))[:TRAIN_ACCURACY_SAMPLES]
        self.X_sub, self.y_sub = np.ascontiguousarray(X_train[subset]), y_train[subset]
        self.per_epoch = batches_per_epoch(len(X_train), self.settings.batch_size, min_batch(net.graph, "train")[0])
        self.X_batch = np.empty((self.settings.batch_size, *X_train.shape[1:]), X_train.dtype)
        self.y_batch = np.empty((self.settings.batch_size, *y_train.shape[1:]), y_train.dtype)
        augment = self.settings.augment
        self.augmenter = None if augment is None else Augmenter(
            augment, self.settings.seed, self.settings.batch_size, X_train.shape[1:], X_train.dtype, net.kernels)
        self.started = time.perf_counter() - saved.elapsed

    def _open_records(self, saved: SavedTraining) -> list[AnyEpochRecord]:
        """The history to continue. In a run folder: CheckpointError unless the saved state is
        this run's; then the run id file and the history log are made ready for its epochs."""
        if self.out is None:
            return list(saved.history or [])
        folder_id = read_run_id(self.out)
        saved_id = saved.identity.run_id if saved.identity is not None else None
        self.identity = identity_of(folder_id or saved_id or new_run_id(), self.settings, self.dataset["y_train"])
        weights = self.out / "checkpoint" / "weights.npz"
        if saved.identity is not None:
            check_same_run(saved.identity, self.identity, weights, self.out)
        history, end = ((saved.history, None) if saved.history is not None
                        else read_history(self.out, saved.history_records, weights))
        if folder_id is None:
            write_run_id(self.out, self.identity.run_id)  # type: ignore[arg-type]
        self.log = HistoryLog(self.out, history, end)
        return history

    def _shuffling_generator(self, examples: int) -> np.random.Generator:
        data_rng = np.random.default_rng([self.settings.seed, 1])
        if self.position.data_rng is None:
            # A checkpoint without the shuffling generator's state (written at an epoch end
            # by an older graphnet): replay the shuffles of the epochs already done.
            for _ in range(self.position.epoch):
                data_rng.permutation(examples)
        return data_rng

    def announce_resume(self) -> None:
        """Say where a resumed run continues (iterations are counted from 1, like epochs)."""
        if self.stopper is not None and self.stopper.should_stop and self.position.iteration == 0:
            self.say(f"{self.out} stopped early after epoch {self.position.epoch}: nothing to train "
                     f"({self.stopper.stop_line()})")
        elif self.position.epoch >= self.settings.epochs:
            self.say(f"{self.out} has finished its {self.settings.epochs} epochs: nothing to train "
                     "(raise --epochs to go on)")
        else:
            self.say(f"resuming {self.out} at epoch {self.position.epoch + 1}, "
                     f"iteration {self.position.iteration + 1} of {self.per_epoch}")

    def run(self) -> TrainResult:
        """Train the remaining epochs; the result is marked interrupted after a Ctrl-C or SIGTERM."""
        # Overflow in a step is reported by NonFiniteError (naming the step and node), not as
        # numpy RuntimeWarnings on stderr.
        with StopFlag() as flag, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            self._epochs(flag)
        return self.result

    def _epochs(self, flag: Any) -> None:
        """The remaining epochs, stopping when `flag.stop` is seen; history.json is written however
        they end (an error while writing it does not hide the one that ended them)."""
        try:
            for epoch in range(self.position.epoch, self.settings.epochs):
                if self._stops_early(epoch):
                    self.result.stopped_early = True
                    break
                if not self._epoch(epoch, flag):
                    self.result.interrupted = True
                    break
        except BaseException:
            with contextlib.suppress(OSError):
                self._write_history()
            raise
        self._write_history()
        self._serve_best()

    def _stops_early(self, epoch: int) -> bool:
        """Early stopping's verdict before `epoch` (0-based): True when the patience ran out
        (said in the log when the run stops now, not when a resume finds it stopped)."""
        if self.stopper is None or not self.stopper.should_stop or self.position.iteration != 0:
            return False
        if epoch > self.resumed_at[0]:
            self.say(self.stopper.stop_line())
        return True

    def _serve_best(self) -> None:
        """With early stopping, give the network the best epoch's state (the last stays in the checkpoint)."""
        if self.stopper is not None and self.stopper.best is not None:
            self.stopper.best.restore_into(self.net)
            self.result.served = self.stopper.meta()

    def _write_history(self) -> None:
        """history.json: the whole history, in a run folder (once per run: see graphnet.training.history)."""
        if self.log is not None:
            write_history(self.out, self.result.history)  # type: ignore[arg-type]

    def _epoch(self, epoch: int, flag: StopFlag) -> bool:
        """One epoch from the saved position; False when stopped (after saving a checkpoint)."""
        epoch_start = time.perf_counter()
        self._restore_shuffling(epoch)
        epoch_rng = generator_state(self.data_rng)
        order = self.data_rng.permutation(len(self.dataset["X_train"]))
        if self.augmenter is not None:
            self.augmenter.start_epoch(epoch, len(order))
        resuming = epoch == self.position.epoch
        first = self.position.iteration if resuming else 0
        loss_sum = self.position.loss_sum if resuming else 0.0
        bar = _progress(self.per_epoch, first, f"epoch {epoch + 1}/{self.settings.epochs}") \
            if self.show_progress else None
        stopped_at: int | None = None
        try:
            for iteration in range(first, self.per_epoch):
                if flag.stop:
                    self._checkpoint(ResumePosition(epoch, iteration, epoch_rng, loss_sum))
                    stopped_at = iteration
                    break
                loss_sum += self._step(epoch, iteration, order)
                if bar:
                    bar.update(1)
        finally:
            if bar:
                bar.close()
        if stopped_at is not None:
            self.say(f"interrupted at epoch {epoch + 1}, before iteration {stopped_at + 1} of {self.per_epoch}"
                     + (f"; checkpoint saved, resume with: graphnet train --resume {self.out}" if self.out else ""))
            return False
        self._end_epoch(epoch, loss_sum, epoch_start)
        return True

    def _restore_shuffling(self, epoch: int) -> None:
        """At the saved epoch, put the shuffling generator back where the checkpoint had it."""
        if self.position.data_rng is None or epoch != self.position.epoch:
            return
        try:
            restore_generator(self.data_rng, self.position.data_rng)
        except (TypeError, ValueError, KeyError) as error:
            raise CheckpointError(f"{self.out / 'checkpoint' / 'weights.npz'}: the saved data shuffling "  # type: ignore[operator]
                                  f"state is unusable: {error}") from None

    def _gather(self, index: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]:
        """The batch to train on: the training examples `index`, at positions [start, start + n)
        of the epoch's order, copied into the batch buffers and augmented when the run says so
        (graphnet.training.augment); X (n, ...), y (n, ...)."""
        n = len(index)  # `index` is in range (a permutation's); "raise" would copy through a temporary
        np.take(self.dataset["X_train"], index, axis=0, out=self.X_batch[:n], mode="clip")
        np.take(self.dataset["y_train"], index, axis=0, out=self.y_batch[:n], mode="clip")
        X = self.X_batch[:n] if self.augmenter is None else self.augmenter.apply(self.X_batch[:n], start)
        return X, self.y_batch[:n]

    def _schedule(self, epoch: int, iteration: int) -> None:
        """Set the optimizer's learning rate for this iteration from the run's schedule."""
        self.optimizer.learning_rate = learning_rate_at(
            self.settings.schedule, self.settings.optimizer.learning_rate, epoch + iteration / self.per_epoch,
            self.settings.epochs, self.per_epoch)

    def _step(self, epoch: int, iteration: int, order: np.ndarray) -> float:
        """One optimizer step on batch `iteration` of the epoch's `order`; its loss."""
        B = self.settings.batch_size
        X, y = self._gather(order[iteration * B:(iteration + 1) * B], iteration * B)
        self._schedule(epoch, iteration)
        try:
            loss = self.optimizer.step(X, y)
        except NonFiniteError as error:
            note = "" if self.out is None else checkpoint_note(self.good_checkpoint, self.out / "checkpoint")
            raise NonFiniteError(f"epoch {epoch + 1}, iteration {iteration + 1} of {self.per_epoch}: "
                                 f"{error}{note}") from None
        if self.first_step_loss is None and epoch == iteration == 0:
            self.first_step_loss = loss
        return loss

    def _end_epoch(self, epoch: int, loss_sum: float, epoch_start: float) -> None:
        """Record the epoch (in the history log first), warn if the loss diverges, checkpoint."""
        settings, dataset, net = self.settings, self.dataset, self.net
        record = epoch_record(
            task_of(net.graph),
            evaluate(net, self.X_sub, self.y_sub, settings.eval_batch_size),
            evaluate(net, dataset["X_val"], dataset["y_val"], settings.eval_batch_size),
            epoch=epoch + 1,
            train_loss=loss_sum / self.per_epoch,
            val_loss=mean_loss(net, dataset["X_val"], dataset["y_val"], settings.eval_batch_size),
            learning_rate=self.optimizer.learning_rate,
            seconds=time.perf_counter() - epoch_start,
        )
        history = self.result.history
        history.append(record)
        self.say(epoch_line(record, settings.epochs))
        if self.stopper is not None:
            self.stopper.update(record, net)
        warning = divergence_warning(history, self.first_step_loss, self.result.warnings, settings)
        if warning:
            self.result.warnings.append(warning)
            self.say(f"warning: {warning}")
        self.position = ResumePosition(epoch + 1, 0, None, 0.0)
        if self.log is not None:  # before the checkpoint that counts it: a crash between leaves a line to cut
            self.log.append(record)
        # The shuffling generator's state goes with the checkpoint: a resume at this
        # epoch boundary must draw the next epoch's order, not the first epoch's again.
        self._checkpoint(ResumePosition(epoch + 1, 0, generator_state(self.data_rng), 0.0))
        if self.out is not None:
            self.good_checkpoint = self.out / "checkpoint"
        if self.tracker is not None:
            self.tracker.epoch(record, net)
        if self.on_epoch is not None:
            self.on_epoch(record)

    def _checkpoint(self, position: ResumePosition) -> None:
        """Save the network, optimizer and `position` in the run folder (none without one)."""
        if self.out is None:
            return
        stopper = self.stopper
        meta = training_meta(position, len(self.result.history), time.perf_counter() - self.started,
                             self.result.warnings, self.identity, stopper.meta() if stopper is not None else None)
        save_checkpoint(self.out / "checkpoint", self.net, self.optimizer, meta,
                        best=stopper.best if stopper is not None else None)
        if self.unsaved_overrides and (position.epoch, position.iteration) != self.resumed_at:
            write_run_spec(self.out, self.run_spec)  # run.json describes the checkpoint
            self.unsaved_overrides = False


def checkpoint_note(good: Path | None, folder: Path) -> str:
    """The end of a NonFiniteError's message: the checkpoint to go back to, if this run has a good one."""
    if good is not None:
        return f"; the last good checkpoint is {good}"
    if (folder / "weights.npz").is_file():
        return f"; no checkpoint was written yet by this run ({folder} is left from an earlier run)"
    return "; no checkpoint was written yet"


def _progress(total: int, start: int, description: str):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=start, desc=description, leave=False, unit="step")
