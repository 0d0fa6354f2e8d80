"""Which run a checkpoint belongs to, so that a resume continues this run and no other.

A run folder gets a random run id when its training starts, written to
`run_id.txt` beside run.json and, with the settings that fix the trajectory,
into every checkpoint's meta:

    "run": {"id": "9f2c...", "seed": 5, "batch_size": 32,
            "examples": 216, "labels_crc32": "1b9d04c7"}

(examples: the training split's size; labels_crc32: a CRC-32 of its labels in
their order, which a feature preprocessing does not change). A resume compares
the checkpoint's with this run's (run_id.txt, run.json's seed and batch size,
the training data loaded now) and refuses a checkpoint that differs, naming
each difference: continuing it would follow another run's trajectory (a
`weights.npz` copied from another run of the same spec) and replace this run's
history with the other's. What a checkpoint lacks is not compared: one written
before run ids holds only its seed; a folder without run_id.txt adopts the
checkpoint's id.
"""
from __future__ import annotations

import secrets
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CheckpointError
from ..spec import TrainSpec

_CHUNK_ROWS = 1 << 16  # labels are checksummed this many rows at a time (no copy of the whole array)


def new_run_id() -> str:
    """A random run id: 16 hex digits."""
    return secrets.token_hex(8)


def labels_crc32(labels: np.ndarray) -> str:
    """CRC-32 (8 hex digits) of the bytes of `labels` (N, ...), row after row."""
    crc = 0
    for start in range(0, len(labels), _CHUNK_ROWS):
        crc = zlib.crc32(np.ascontiguousarray(labels[start:start + _CHUNK_ROWS]), crc)
    return f"{crc:08x}"


@dataclass(frozen=True)
class RunIdentity:
    """What a checkpoint says about its run; None: not recorded (an older checkpoint)."""

    run_id: str | None
    seed: int | None
    batch_size: int | None
    examples: int | None
    labels_crc32: str | None

    def to_meta(self) -> dict[str, Any]:
        """The meta's "run" object."""
        return {"id": self.run_id, "seed": self.seed, "batch_size": self.batch_size,
                "examples": self.examples, "labels_crc32": self.labels_crc32}

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> "RunIdentity":
        """The identity in a checkpoint's meta (its "run" object; the seed of an older one is
        the meta's own "seed"); ValueError naming a field of the wrong type."""
        run = meta.get("run", {})
        if not isinstance(run, dict):
            raise ValueError(f"'run' is {run!r}")
        found = {"id": run.get("id"), "seed": run.get("seed", meta.get("seed")), "batch_size": run.get("batch_size"),
                 "examples": run.get("examples"), "labels_crc32": run.get("labels_crc32")}
        for key, kind in (("id", str), ("seed", int), ("batch_size", int), ("examples", int), ("labels_crc32", str)):
            if found[key] is not None and (isinstance(found[key], bool) or not isinstance(found[key], kind)):
                raise ValueError(f"run '{key}' is {found[key]!r}")
        return cls(found["id"], found["seed"], found["batch_size"], found["examples"], found["labels_crc32"])


def identity_of(run_id: str, settings: TrainSpec, y_train: np.ndarray) -> RunIdentity:
    """The identity of a run with these settings training on labels `y_train` (N, ...)."""
    return RunIdentity(run_id, settings.seed, settings.batch_size, len(y_train), labels_crc32(y_train))


def check_same_run(saved: RunIdentity, current: RunIdentity, checkpoint: Path, out: Path) -> None:
    """CheckpointError naming every difference between the identity saved in `checkpoint`
    and the run in the folder `out` (fields the checkpoint lacks are not compared)."""
    differences = []
    if saved.run_id is not None and saved.run_id != current.run_id:
        differences.append(f"run id {saved.run_id} (run_id.txt: {current.run_id})")
    if saved.seed is not None and saved.seed != current.seed:
        differences.append(f"seed {saved.seed} (run.json: {current.seed})")
    if saved.batch_size is not None and saved.batch_size != current.batch_size:
        differences.append(f"batch size {saved.batch_size} (run.json: {current.batch_size})")
    if (saved.examples, saved.labels_crc32) != (None, None) and \
            (saved.examples, saved.labels_crc32) != (current.examples, current.labels_crc32):
        differences.append(f"training data of {saved.examples} examples with labels CRC-32 {saved.labels_crc32} "
                           f"(the data now: {current.examples} examples, CRC-32 {current.labels_crc32})")
    if differences:
        raise CheckpointError(
            f"{checkpoint}: not a checkpoint of the run in {out}: it has {'; '.join(differences)}; resuming "
            f"would continue another run's trajectory and replace this run's history: resume the run folder "
            f"it comes from (or restore this run's data and settings), or train this run anew")
