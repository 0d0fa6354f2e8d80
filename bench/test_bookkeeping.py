"""bench/bookkeeping.py: it trains with and without a run folder and reports per-epoch figures
(smoke test on tiny counts: `pytest bench --benchmark-disable`; times are not tested)."""
from __future__ import annotations

import json

import bookkeeping as script


def test_each_epoch_count_gets_a_row(tmp_path, capsys):
    target = tmp_path / "bookkeeping.json"
    assert script.main(["--epochs", "3", "10", "--json", str(target)]) == 0
    rows = json.loads(target.read_text())["rows"]
    assert [row["epochs"] for row in rows] == [3, 10]
    for row in rows:
        assert row["wall_s"] > 0 and row["wall_without_run_folder_s"] > 0
        assert row["epoch_ms"] > 0 and row["first_epochs_ms"] > 0
        assert row["written_bytes_per_epoch"] is None or row["written_bytes_per_epoch"] > 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:2] == ["epochs", "wall"] and f"wrote {target}" in out
