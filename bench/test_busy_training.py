"""bench/busy_training.py: a training loop with a hog in its middle third (smoke test on a short
run; times are not tested)."""
from __future__ import annotations

import busy_training as script
import pytest
from report import TRACKED_RESULTS


def test_each_contender_reports_its_thirds(tmp_path, capsys, monkeypatch):
    tracked = TRACKED_RESULTS / "busy_training.json"
    before = tracked.read_bytes() if tracked.exists() else None
    monkeypatch.chdir(tmp_path)  # by default the results go to bench-results/ here, not to the tracked file
    assert script.main(["--seconds", "1.5", "--size", "S", "--contenders", "graphnet", "graphnet_1thread"]) == 0
    assert (tracked.read_bytes() if tracked.exists() else None) == before
    import json

    results = json.loads((tmp_path / "bench-results" / "busy_training.json").read_text())
    for name in ("graphnet", "graphnet_1thread"):
        run = results["runs"][name]
        assert run["steps"] > 3 and run["before_us"] > 0
        assert set(run["threads"]) == set(script.THIRDS)
    assert set(results["runs"]["graphnet_1thread"]["threads"].values()) == {1}


def test_summarize_gives_medians_and_ratios_to_the_first_third():
    summary = script.summarize({"before": [1e-3, 3e-3, 2e-3], "during": [4e-3], "after": [2e-3, 2e-3]})
    assert summary["before_us"] == pytest.approx(2000)
    assert summary["during_vs_before"] == pytest.approx(2.0)
    assert summary["after_vs_before"] == pytest.approx(1.0)
    assert summary["steps"] == 6
