"""Where a training run stands, as saved in its checkpoint's meta and read back to resume.

The checkpoint meta holds (JSON):

    {"position": {"epoch": 2, "iteration": 3, "data_rng": {...} | null, "loss_sum": 1.25},
     "history_records": 2, "elapsed": 12.5, "warnings": ["..."], "run": {...}}

Its size does not grow with the epochs: the epoch records are in the run folder's
log (graphnet.training.history), of which the meta counts those that belong to
the checkpoint; "run" is the run's identity (graphnet.training.identity).
Checkpoints written before held the whole history instead ("history": [<epoch
record>, ...]) and no "run"; they still resume.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from ..model.snapshot import Snapshot
from .identity import RunIdentity
from .records import AnyEpochRecord, record_from_dict


@dataclass
class ResumePosition:
    """The next step to take: `iteration` (0-based) of `epoch` (0-based, = epochs done).

    data_rng: the shuffling generator's state at the start of that epoch (None in a
    checkpoint written at an epoch end by an older graphnet: the shuffles are replayed).
    loss_sum: the sum of that epoch's step losses so far.
    """

    epoch: int = 0
    iteration: int = 0
    data_rng: dict[str, Any] | None = None
    loss_sum: float = 0.0

    def to_meta(self) -> dict[str, Any]:
        """The meta's "position" object."""
        return asdict(self)

    @classmethod
    def from_meta(cls, position: Any) -> "ResumePosition":
        """The position in a meta's "position" object; ValueError naming the unusable field."""
        if not isinstance(position, dict):
            raise ValueError(f"'position' is {position!r}")
        for key in ("epoch", "iteration"):
            value = position.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"position '{key}' is {value!r}")
        data_rng = position.get("data_rng")
        if data_rng is not None and not isinstance(data_rng, dict):
            raise ValueError(f"position 'data_rng' is {data_rng!r}")
        return cls(position["epoch"], position["iteration"], data_rng, float(position.get("loss_sum", 0.0)))


@dataclass
class SavedTraining:
    """The training state to start from: position, history, elapsed seconds, warnings.

    history: the epoch records, or None when they are in the run folder's log
    (`history_records` of them); identity: the run a checkpoint belongs to (None: a fresh start).
    """

    position: ResumePosition
    history: list[AnyEpochRecord] | None
    elapsed: float
    warnings: list[str]
    history_records: int = 0
    identity: RunIdentity | None = None
    best: Snapshot | None = None  # the best epoch's state, kept by early stopping


def training_meta(position: ResumePosition, history_records: int, elapsed: float, warnings: list[str],
                  identity: RunIdentity | None, served: dict[str, Any] | None = None) -> dict[str, Any]:
    """The meta a checkpoint carries for a resume (see the module docstring), and which state it
    serves (`served`: early stopping's best epoch)."""
    meta: dict[str, Any] = {"position": position.to_meta(), "history_records": history_records,
                            "elapsed": elapsed, "warnings": warnings, **({"early_stopping": served} if served else {})}
    if identity is not None:
        meta["run"] = identity.to_meta()
    return meta


def saved_training(meta: dict[str, Any], source: Path) -> SavedTraining:
    """The training state saved in a checkpoint's meta; CheckpointError naming `source` if unusable."""
    try:
        position = ResumePosition.from_meta(meta.get("position"))
        history = [record_from_dict(record) for record in meta["history"]] if "history" in meta else None
        count = len(history) if history is not None else meta.get("history_records", 0)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"'history_records' is {count!r}")
        elapsed = float(meta.get("elapsed", 0.0))
        identity = RunIdentity.from_meta(meta)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{source}: the training state in its meta is unusable: {error}") from None
    saved_warnings = meta.get("warnings")
    warnings = [w for w in saved_warnings if isinstance(w, str)] if isinstance(saved_warnings, list) else []
    return SavedTraining(position, history, elapsed, warnings, count, identity)
