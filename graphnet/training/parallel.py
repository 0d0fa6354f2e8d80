"""Data-parallel training: `train` on every rank of an MPI world (see graphnet.training.distributed).

Each global batch of `batch_size` examples (the same shuffled order on every rank,
from the run seed) is split as evenly as possible: rank r takes rows
[r*n//N ... ) of `rank_bounds`, the first n % N ranks one more. Each rank runs
forward and backward on its slice with materialized gradients (the `train` plan:
the fused SGD-in-backward path never writes the gradients there are to average),
weights them by its share of the batch (m_r / n), and one Allreduce (SUM) of the
flat gradient buffer gives every rank the mean over the whole batch, as one process
computes it; every rank then applies the same optimizer update. The reported loss
is that same weighted sum: the global batch mean.

Rank 0 alone takes the run folder's lock, writes run.json, checkpoints, history
and metrics, prints epoch lines and evaluates (on its own batchnorm running
statistics: batchnorm uses per-rank batch statistics, like DDP without
SyncBatchNorm). Augmentation (`train.augment`): each rank flips and shifts its rows
with the draws of their positions in the global batch (graphnet.training.augment), so
the ranks together train on the examples one process would. Dropout: rank r of a run with seed s draws its masks from
`default_rng([s, 3, r])` (a resume at epoch e, iteration i: `default_rng([s, 3,
r, e, i])`, except rank 0, whose generator state the checkpoint keeps).

Failures: setup (data, lock, checkpoint), each step (a non-finite loss on any
rank) and each epoch end are agreed points: a failure on any rank stops every
rank with that rank's message. Anything else that fails on one rank prints its
line and aborts the MPI job, so no rank waits forever.
"""
from __future__ import annotations

import math
import signal
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import NonFiniteError
from ..runtime.threads import set_rank_threads
from ..spec import RunSpec
from .distributed import RankFailed, World
from .loop import EpochLoop, StopFlag, checkpoint_note
from .position import ResumePosition
from .records import TrainResult
from .finish import track
from .tracking import open_trackers
from .setup import Setup, set_up

DROPOUT_STREAM = 3  # default_rng([seed, DROPOUT_STREAM, rank]): the per-rank dropout generator


def rank_bounds(examples: int, rank: int, size: int) -> tuple[int, int]:
    """Rows [start, stop) of a batch of `examples` that `rank` of `size` computes: an even split,
    the first `examples % size` ranks taking one row more."""
    base, extra = divmod(examples, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def rank_dropout_generator(seed: int | None, rank: int, epoch: int = 0, iteration: int = 0) -> np.random.Generator:
    """Rank `rank`'s dropout generator at the start of a run (or at a resumed epoch and iteration)."""
    key = [seed or 0, DROPOUT_STREAM, rank] + ([epoch, iteration] if (epoch, iteration) != (0, 0) else [])
    return np.random.default_rng(key)


class _AgreedStop:
    """The stop flag `EpochLoop._epoch` reads: what all ranks agreed on in the last step."""

    def __init__(self) -> None:
        self.stop = False


class _StopSignals(StopFlag):
    """Ctrl-C, SIGTERM and SIGUSR1 (what mpiexec forwards) as a flag checked between steps."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)


class DataParallelLoop(EpochLoop):
    """The epoch loop of one rank: its slice of each global batch, gradients averaged over the ranks."""

    def __init__(self, world: World, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.world = world
        self.stats = np.zeros(3, np.float64)  # weighted loss, non-finite ranks, stop requests
        self.agreed = _AgreedStop()
        self.local_signals: StopFlag | None = None
        self.resumed = False  # from a checkpoint (set by _set_up)
        self.setup: Setup | None = None

    def run(self) -> TrainResult:
        """Train the remaining epochs on every rank; interrupted as agreed by all ranks."""
        with _StopSignals() as flag, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            self.local_signals = flag
            self._epochs(self.agreed)
        return self.result

    def _step(self, epoch: int, iteration: int, order: np.ndarray) -> float:
        try:
            return self._parallel_step(epoch, iteration, order)
        except (NonFiniteError, RankFailed):
            raise
        except Exception as error:  # not an agreed point: the other ranks would wait for this one
            self.world.abort(error)
            raise

    def _parallel_step(self, epoch: int, iteration: int, order: np.ndarray) -> float:
        """This rank's share of batch `iteration`, gradients summed over the ranks, one update; the batch loss."""
        B = self.settings.batch_size
        index = order[iteration * B:(iteration + 1) * B]
        start, stop = rank_bounds(len(index), self.world.rank, self.world.size)
        share = (stop - start) / len(index)
        X, y = self._gather(index[start:stop], iteration * B + start)
        m = len(X)
        self._schedule(epoch, iteration)
        grads = self.net.store.grads
        if m:
            loss = self.net.step(X, y)
            self.net.kernels.scale_inplace(grads, share)
        else:  # a last batch smaller than the number of ranks
            loss = 0.0
            grads[...] = 0
        finite = math.isfinite(loss)
        self.stats[:] = (loss * share if finite else 0.0, 0.0 if finite else 1.0,
                         1.0 if self._stop_requested() else 0.0)
        self.world.sum_into(self.stats)
        self.agreed.stop = bool(self.stats[2] > 0)
        if self.stats[1] > 0:
            self._raise_nonfinite(loss, X, y, epoch, iteration)
        self.world.sum_into(grads)
        self.optimizer.apply()
        loss = float(self.stats[0])
        if self.first_step_loss is None and epoch == iteration == 0:
            self.first_step_loss = loss
        return loss

    def _stop_requested(self) -> bool:
        return self.world.stop_requested or bool(self.local_signals and self.local_signals.stop)

    def _raise_nonfinite(self, loss: float, X: np.ndarray, y: np.ndarray, epoch: int, iteration: int) -> None:
        """NonFiniteError on every rank, with the message of the lowest rank whose loss is not finite
        (X, y: this rank's batch)."""
        mine = None
        if not math.isfinite(loss):
            node = self.net.first_nonfinite(X, y)
            where = f"; first non-finite value at node {node}" if node else ""
            mine = NonFiniteError(f"loss is {loss} at step {self.optimizer.t + 1}{where}")
        rank, message, _ = self.world.first_failure(mine)  # type: ignore[misc]
        who = f"rank {rank}: " if self.world.size > 1 else ""
        note = "" if self.out is None else checkpoint_note(self.good_checkpoint, self.out / "checkpoint")
        raise NonFiniteError(f"epoch {epoch + 1}, iteration {iteration + 1} of {self.per_epoch}: "
                             f"{who}{message}{note}")

    def _stops_early(self, epoch: int) -> bool:
        """Rank 0's early stopping verdict (it alone evaluates), heard by every rank."""
        if self.stopper is None:
            return False
        verdict = np.array([1.0 if self.world.is_root and super()._stops_early(epoch) else 0.0])
        self.world.broadcast_into(verdict)
        return bool(verdict[0])

    def _end_epoch(self, epoch: int, loss_sum: float, epoch_start: float) -> None:
        """Rank 0 records, evaluates and checkpoints; every rank hears if that failed."""
        def end() -> None:
            if self.world.is_root:
                super(DataParallelLoop, self)._end_epoch(epoch, loss_sum, epoch_start)
            else:
                self.position = ResumePosition(epoch + 1, 0, None, 0.0)
        self.world.agree(end)


def train_parallel(world: World, run: RunSpec | str | Path | None, *, out: str | Path | None = None,
                   data: str | None = None, epochs: int | None = None, batch_size: int | None = None,
                   learning_rate: float | None = None, resume: str | Path | None = None,
                   progress: bool | None = None, log: Callable[[str], None] | None = print,
                   backend: str | None = None, overwrite: bool = False) -> TrainResult:
    """`graphnet.training.train` on rank `world.rank` of an MPI world (see the module docstring);
    the result on rank 0 carries the history and metrics, the others' only the network."""
    world.watch_stop_signal()
    world.watch_launcher()
    say = (log or (lambda text: None)) if world.is_root else (lambda text: None)
    with ExitStack() as hold:

        def set_up_rank() -> DataParallelLoop:  # an agreed point: a failure on any rank stops every rank
            set_rank_threads()  # one thread per rank, unless the user chose (graphnet.runtime.threads)
            setup = set_up(run, out=out, data=data, epochs=epochs, batch_size=batch_size,
                           learning_rate=learning_rate, resume=resume, backend=backend, overwrite=overwrite,
                           hold=hold, say=say, writer=world.is_root)
            loop = DataParallelLoop(world, setup.run, setup.net, setup.optimizer, setup.dataset, setup.out,
                                    setup.saved, say, show_progress=progress if world.is_root else False,
                                    unsaved_overrides=setup.unsaved_overrides,
                                    good_checkpoint=setup.good_checkpoint)
            loop.resumed = setup.resumed
            loop.setup = setup
            return loop

        loop = world.agree(set_up_rank)
        _same_start_everywhere(world, loop, resume is not None)
        if world.is_root and loop.resumed:
            loop.announce_resume()
        setup = loop.setup
        trackers = world.agree(lambda: open_trackers(setup.run, setup.out, loop.position.epoch + 1, setup.resumed,
                                                     say) if world.is_root else None)
        if not world.is_root:
            return world.agree(loop.run)
        return track(loop, trackers, say, run=lambda: world.agree(loop.run))


def _same_start_everywhere(world: World, loop: DataParallelLoop, resume: bool) -> None:
    """Every rank starts from rank 0's parameters and optimizer state; each draws its own dropout masks."""
    world.broadcast_into(loop.net.store.values)
    loop.net.store.touch()
    for buffer in loop.optimizer.slots.values():
        world.broadcast_into(buffer)
    if world.size > 1 and not (world.is_root and resume and loop.resumed):
        position = loop.position
        fresh = rank_dropout_generator(loop.settings.seed, world.rank, position.epoch, position.iteration)
        loop.net.dropout_rng.bit_generator.state = fresh.bit_generator.state
