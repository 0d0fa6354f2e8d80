"""Where a training run stands, as saved in its checkpoint's meta and read back to resume.

The checkpoint meta holds (JSON, keys as written since the first graphnet):

    {"position": {"epoch": 2, "iteration": 3, "data_rng": {...} | null, "loss_sum": 1.25},
     "history": [<epoch record>, ...], "elapsed": 12.5, "warnings": ["..."]}
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
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
    """The training state in a checkpoint's meta: position, history, elapsed seconds, warnings."""

    position: ResumePosition
    history: list[AnyEpochRecord]
    elapsed: float
    warnings: list[str]


def training_meta(position: ResumePosition, history: list[AnyEpochRecord], elapsed: float,
                  warnings: list[str]) -> dict[str, Any]:
    """The meta a checkpoint carries for a resume (see the module docstring)."""
    return {"position": position.to_meta(),
            "history": [asdict(record) for record in history],
            "elapsed": elapsed,
            "warnings": warnings}


def saved_training(meta: dict[str, Any], source: Path) -> SavedTraining:
    """The training state saved in a checkpoint's meta; CheckpointError naming `source` if unusable."""
    try:
        position = ResumePosition.from_meta(meta.get("position"))
        history = [record_from_dict(record) for record in meta.get("history", [])]
        elapsed = float(meta.get("elapsed", 0.0))
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{source}: the training state in its meta is unusable: {error}") from None
    saved_warnings = meta.get("warnings")
    warnings = [w for w in saved_warnings if isinstance(w, str)] if isinstance(saved_warnings, list) else []
    return SavedTraining(position, history, elapsed, warnings)
