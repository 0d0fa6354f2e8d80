"""A run folder's epoch history: an append-only log, written once per epoch.

An epoch's records must cost the same at epoch 10 and at epoch 10 000.
Rewriting history.json at every epoch end, and embedding the whole history in
every checkpoint's meta, made a run's I/O grow with the square of its epochs
(8.9 GB written over 4000 epochs). So each epoch end appends one line to
`history.jsonl` (JSON Lines: one epoch record, a JSON object, a line) and
fsyncs it, *before* the checkpoint is written; the checkpoint's meta keeps only
how many records it covers. `history.json`, the whole history as one JSON
array (what users and the README read), is written once, when the epoch loop is
left: at the end of the run, on an interrupt, or on an error.

On resume the first `count` lines of the log are the history. A line after
them (an epoch recorded just before a crash, whose checkpoint was never
written) and a torn last line (a crash in the middle of an append) are cut
before the next append. A log that lacks records the checkpoint counts is
replaced by history.json's first `count` records if it holds them, else the
resume is refused.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from ..errors import CheckpointError
from ..runs.folder import HISTORY_LOG
from ..system.fileio import append_bytes_synced, truncate_synced, write_bytes_atomic
from .records import AnyEpochRecord, record_from_dict


def _line(record: AnyEpochRecord) -> bytes:
    return (json.dumps(asdict(record)) + "\n").encode("utf-8")


def read_history(out: Path, count: int, source: Path) -> tuple[list[AnyEpochRecord], int | None]:
    """The first `count` epoch records of the run folder `out`, and the byte length of the
    log lines holding them (None when they came from history.json). CheckpointError, naming
    the log and `source` (the checkpoint that counts them), when neither file holds them."""
    log = out / HISTORY_LOG
    try:
        data = log.read_bytes()
    except FileNotFoundError:
        data = b""
    except OSError as error:
        raise CheckpointError(f"{log}: unreadable ({error})") from None
    records: list[AnyEpochRecord] = []
    end = 0
    while len(records) < count:
        newline = data.find(b"\n", end)
        if newline < 0:  # the log ends here, or with a torn line
            break
        try:
            records.append(record_from_dict(json.loads(data[end:newline])))
        except (ValueError, TypeError) as error:
            raise CheckpointError(f"{log}: line {len(records) + 1} is not an epoch record ({error})") from None
        end = newline + 1
    if len(records) == count:
        return records, end
    whole = _from_history_json(out, count)
    if whole is None:
        raise CheckpointError(f"{log}: holds {len(records)} complete epoch records, but {source} was saved after "
                              f"{count} (the log was cut or removed, and history.json does not hold them either)")
    return whole, None


def _from_history_json(out: Path, count: int) -> list[AnyEpochRecord] | None:
    """The first `count` records of history.json, or None when it does not hold them."""
    try:
        history = json.loads((out / "history.json").read_text(encoding="utf-8"))
        if not isinstance(history, list) or len(history) < count:
            return None
        return [record_from_dict(record) for record in history[:count]]
    except (OSError, ValueError, TypeError):
        return None


class HistoryLog:
    """The log of the run folder `out`, ready to take the records after `records`.

    end: the byte length of the log lines holding `records` (from `read_history`); the log is
    cut there. None: the log is written anew from `records` (a fresh run, a checkpoint that
    kept the history in its meta, records taken from history.json).
    """

    def __init__(self, out: Path, records: list[AnyEpochRecord], end: int | None) -> None:
        self.path = out / HISTORY_LOG
        if end is None or not self.path.is_file():
            write_bytes_atomic(self.path, b"".join(_line(record) for record in records))
        elif self.path.stat().st_size != end:
            truncate_synced(self.path, end)

    def append(self, record: AnyEpochRecord) -> None:
        """Add one record as a line and fsync it: the same cost at every epoch."""
        append_bytes_synced(self.path, _line(record))
