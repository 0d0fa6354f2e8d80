"""Training a run spec end to end: data, optimizer, schedule, metrics, run folder.

    result = gn.train("specs/fashion_mlp.json", out="runs/fashion")

A run folder holds `run.json` (the run spec as trained), `run_id.txt` (the
run's id), `history.jsonl` (one epoch record a line, appended at each epoch
end), `history.json` (the per-epoch metrics, written when training stops),
`metrics.json` (final accuracies, loss, wall time), `learning_curve.png` (with
matplotlib) and `checkpoint/` (written at every epoch end, and on Ctrl-C or
SIGTERM); what an epoch end writes does not grow with the epochs. `resume=RUN`
continues from the checkpoint, once it is known to be this run's, and
reproduces the trajectory of an uninterrupted run: the data order, dropout
masks, optimizer state and schedule position are all restored.

A trainer holds its run folder's lock (graphnet.runs.lock) while it runs; a
fresh run refuses a folder that holds something unless `overwrite=True`
(see graphnet.runs.folder).

Modules: `run` (train: set up, then finish), `loop` (the epoch loop), `position`
(the resume position saved in a checkpoint), `history` (the append-only history
log), `identity` (which run a checkpoint belongs to), `records` (epoch records
and final metrics), `dataset` (the run's data), `plot` (the learning curve),
`parallel` (the same on several MPI ranks: graphnet train --workers N); the
run-folder files are named and written by graphnet.runs.folder.
"""
from __future__ import annotations

from .dataset import label_of, load_data, network_accuracy
from .loop import TRAIN_ACCURACY_SAMPLES, EpochLoop, batches_per_epoch
from .plot import plot_learning_curve
from .position import ResumePosition
from .records import DIVERGENCE_FACTOR, EpochRecord, RegressionEpochRecord, TrainResult, divergence_warning
from .run import train

__all__ = [
    "DIVERGENCE_FACTOR", "TRAIN_ACCURACY_SAMPLES", "EpochLoop", "EpochRecord", "RegressionEpochRecord",
    "ResumePosition", "TrainResult", "network_accuracy", "batches_per_epoch", "divergence_warning", "label_of",
    "load_data", "plot_learning_curve", "train",
]
