"""The run folder's history log: read back to a checkpoint's count, torn and extra lines cut,
history.json as the fallback, a damaged line refused naming it."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

import graphnet as gn
from graphnet.training import EpochRecord, RegressionEpochRecord
from graphnet.training.history import HistoryLog, read_history

SOURCE = Path("run/checkpoint/weights.npz")


def record(epoch: int) -> EpochRecord:
    return EpochRecord(epoch=epoch, train_loss=1.0 / epoch, train_accuracy=0.5, val_accuracy=None, val_loss=0.25,
                       learning_rate=0.01, seconds=0.125)


def lines_of(records) -> str:
    return "".join(json.dumps(asdict(r)) + "\n" for r in records)


def test_a_new_log_takes_one_line_an_epoch_and_reads_back_exactly(tmp_path):
    log = HistoryLog(tmp_path, [], None)
    regression = RegressionEpochRecord(epoch=3, train_loss=0.1, train_rmse=0.3, train_r2=0.9, val_rmse=None,
                                       val_r2=None, val_loss=None, learning_rate=1e-3, seconds=0.5)
    for item in (record(1), record(2), regression):
        log.append(item)
    assert (tmp_path / "history.jsonl").read_text() == lines_of([record(1), record(2), regression])
    records, end = read_history(tmp_path, 3, SOURCE)
    assert records == [record(1), record(2), regression]
    assert end == (tmp_path / "history.jsonl").stat().st_size


def test_lines_past_the_count_and_a_torn_line_are_cut_before_the_next_append(tmp_path):
    good = lines_of([record(1), record(2)])
    (tmp_path / "history.jsonl").write_text(good + lines_of([record(3)]) + '{"epoch": 4, "train_')
    records, end = read_history(tmp_path, 2, SOURCE)
    assert records == [record(1), record(2)] and end == len(good)
    HistoryLog(tmp_path, records, end).append(record(3))
    assert (tmp_path / "history.jsonl").read_text() == lines_of([record(1), record(2), record(3)])


def test_records_a_checkpoint_kept_in_its_meta_rewrite_the_log(tmp_path):
    (tmp_path / "history.jsonl").write_text("left by someone else\n")
    HistoryLog(tmp_path, [record(1)], None)
    assert (tmp_path / "history.jsonl").read_text() == lines_of([record(1)])


def test_history_json_stands_in_for_a_short_log(tmp_path):
    (tmp_path / "history.jsonl").write_text(lines_of([record(1)]))
    (tmp_path / "history.json").write_text(json.dumps([asdict(record(e)) for e in (1, 2, 3)]))
    assert read_history(tmp_path, 2, SOURCE) == ([record(1), record(2)], None)


@pytest.mark.parametrize("history_json", [None, "[]", "{not json", '{"epoch": 1}', '[{"epoch": 1}, 2]'])
def test_without_the_records_anywhere_the_resume_is_refused(tmp_path, history_json):
    (tmp_path / "history.jsonl").write_text(lines_of([record(1)]) + '{"epo')
    if history_json is not None:
        (tmp_path / "history.json").write_text(history_json)
    with pytest.raises(gn.CheckpointError) as info:
        read_history(tmp_path, 2, SOURCE)
    assert str(info.value) == (f"{tmp_path / 'history.jsonl'}: holds 1 complete epoch records, but {SOURCE} was "
                               "saved after 2 (the log was cut or removed, and history.json does not hold them "
                               "either)")


@pytest.mark.parametrize("line", ["{torn", "[1, 2]", '{"epoch": 2}', '{"epoch": 2, "nonsense": 1}', "\xff"])
def test_a_damaged_line_before_the_count_is_refused_naming_it(tmp_path, line):
    (tmp_path / "history.jsonl").write_bytes((lines_of([record(1)]) + line + "\n").encode("utf-8", "surrogateescape"))
    with pytest.raises(gn.CheckpointError, match=r"history.jsonl: line 2 is not an epoch record \("):
        read_history(tmp_path, 2, SOURCE)


def test_a_missing_log_is_an_empty_one(tmp_path):
    assert read_history(tmp_path, 0, SOURCE) == ([], 0)
    HistoryLog(tmp_path, [], 0).append(record(1))
    assert (tmp_path / "history.jsonl").read_text() == lines_of([record(1)])
