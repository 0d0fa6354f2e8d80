"""bench/busy.py: phases with and without the hog, every contender timed in each
(smoke test with tiny counts; timing is not tested)."""
from __future__ import annotations

import busy


def test_quiet_and_busy_phases_give_a_row_per_contender_and_case():
    contenders = ["graphnet_1thread", "ort_1thread", "torch_1thread"]
    results = busy.run_benchmark(rounds=1, phases=1, contenders=contenders, seconds=0.0005, batches=(2,), settle=0.0)
    ran = set(contenders) - set(results["skipped"])
    assert "graphnet_1thread" in ran
    assert set(results["cases"]["b2"]) == ran
    assert {name for name in results["cases"]["step"]} == ran - {"ort_1thread"}  # ORT does not train
    for rows in results["cases"].values():
        for row in rows.values():
            assert row["quiet_us"] > 0 and row["busy_us"] > 0


def test_the_hog_keeps_a_process_running_until_stopped():
    hog = busy.Hog()
    hog.start()
    process = hog.process
    assert process is not None and process.poll() is None
    hog.stop()
    assert process.poll() is not None and hog.process is None
