"""bench/inference_latency.py: the contenders compute the same thing and the script reports them
(smoke tests with tiny counts: `pytest bench --benchmark-disable`; timing is not tested)."""
from __future__ import annotations

import json

import inference_latency as script
import numpy as np
import pytest

from graphnet.benchmarks.machine import Peak


def test_every_contender_agrees_with_graphnet_and_gets_a_row(tmp_path):
    results = script.run_benchmark([1, 3], rounds=2, threads=1, contenders=list(script.CONTENDERS),
                                   seconds=0.0005, settle=0.0)
    ran = set(script.CONTENDERS) - set(results["skipped"])
    assert {"graphnet", "graphnet_gemm", "graphnet_general", "numpy_gemms"} <= ran
    for reason in results["skipped"].values():
        assert reason.startswith("not installed")
    for case in ("b1", "b3"):
        row = results["cases"][case]
        assert set(row["summary"]) == ran
        assert set(row["max_rel_difference"]) == ran - {"numpy_gemms"}  # no bias, no activation
        assert all(error <= 1e-4 for error in row["max_rel_difference"].values())
        if "ort" in ran:
            assert row["summary"]["ort"]["ratio_to_ort"] == 1.0
    assert results["info"]["graphnet"]["threads"] == 1 and results["info"]["graphnet"]["packed_max_rows"] >= 1
    assert results["info"]["graphnet_gemm"]["small_batch_rows"] == results["info"]["graphnet_gemm"]["packed_max_rows"] == 0


class FakeWorkers:
    def __init__(self, outputs):
        self._outputs = outputs

    def outputs(self, case):
        return self._outputs


def test_a_contender_that_disagrees_stops_the_benchmark():
    good = np.ones((2, 3))
    assert script.check_outputs(FakeWorkers({"graphnet": good, "ort": good * (1 + 1e-6)}), "b2")["ort"] < 1e-5
    with pytest.raises(AssertionError, match="ort disagrees with graphnet on b2"):
        script.check_outputs(FakeWorkers({"graphnet": good, "ort": good * 1.01}), "b2")


def test_the_script_writes_its_json_in_the_results_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(script, "measure_peak", lambda: Peak(64, 10.0, 2, 20.0))
    target = tmp_path / "mine" / "inference_latency.json"
    assert script.main(["--batches", "2", "--rounds", "1", "--threads", "1",
                        "--contenders", "graphnet", "numpy_gemms", "--results", str(tmp_path / "mine")]) == 0
    written = json.loads(target.read_text())
    assert list(written["cases"]) == ["b2"] and set(written["cases"]["b2"]["summary"]) == {"graphnet", "numpy_gemms"}
    row = written["cases"]["b2"]["summary"]["graphnet"]
    assert row["gflops"] == pytest.approx(2 * 2 * (784 * 512 + 512 * 256 + 256 * 10) / row["us"] / 1e3)
    assert row["peak_fraction"] == pytest.approx(row["gflops"] / 20.0)
    out = capsys.readouterr().out
    assert f"wrote {target}" in out and out.startswith("BLAS kernel: ") and "GFLOP/s" in out
