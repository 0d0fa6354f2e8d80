"""bench/cnn.py: every contender in its own process does the same work (smoke test on a tiny CNN;
timing is not tested): the same first loss, the same inference outputs, a summary per case."""
from __future__ import annotations

import json

import cnn as script

TINY = {
    "inputs": {"x": {"shape": [1, 6, 6]}}, "labels": {"y": {"classes": 10}},
    "nodes": [
        {"id": "c1", "op": "conv2d", "inputs": ["x"], "filters": 3, "kernel": 3, "padding": "same", "bias": False},
        {"id": "bn", "op": "batchnorm", "inputs": ["c1"]},
        {"id": "h", "op": "relu", "inputs": ["bn"]},
        {"id": "p", "op": "max_pool2d", "inputs": ["h"], "kernel": 2},
        {"id": "c2", "op": "conv2d", "inputs": ["p"], "filters": 4, "kernel": 2, "activation": "relu"},
        {"id": "drop", "op": "dropout", "inputs": ["c2"], "rate": 0.2},
        {"id": "fc", "op": "affine", "inputs": ["drop"], "units": 10},
        {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc", "y"]},
    ],
    "outputs": ["fc"], "loss": "loss",
}


def test_every_contender_does_the_same_work(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    results = script.run_benchmark(rounds=1, threads=1, contenders=list(script.CONTENDERS), batches=[1, 4],
                                   seconds=0.001, settle=0.0, spec=str(path), step_batch=8)
    ran = set(results["info"])
    assert ran | set(results["skipped"]) == set(script.CONTENDERS)
    assert {"graphnet", "gemm_floor"} <= ran
    assert all(reason.startswith("not installed") for reason in results["skipped"].values())
    assert set(results["first_losses"]) == ran - {"ort", "gemm_floor"}
    assert set(results["cases"]) == {"step", "b1", "b4"}
    assert set(results["cases"]["step"]["summary"]) == ran - {"ort"}
    assert set(results["cases"]["b4"]["summary"]) == ran - {"gemm_floor"}
    assert results["info"]["gemm_floor"]["gemms"] == 8  # conv1 (reads the input): forward, dW; conv2, fc: forward, dW, dX
