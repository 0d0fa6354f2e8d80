"""Smoke test of bench/inference.py: every contender runs (or is skipped) and ratios come out."""
from __future__ import annotations

import json

import numpy as np

import inference  # bench/, on sys.path via conftest.py


def test_inference_bench_runs_each_contender_in_its_own_process(tmp_path, capsys):
    out = tmp_path / "inference.json"
    assert inference.main(["--batches", "1", "4", "--rounds", "1", "--min-sample", "0.001", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [(r["batch"], r["contender"]) for r in rows] == [(b, c) for b in (1, 4) for c in inference.CONTENDERS]
    for row in rows:
        assert (row["seconds"] is None) == (row["skipped"] is not None)
        if row["contender"] == "graphnet":
            assert row["ratio_to_graphnet"] == 1.0
    assert "x graphnet" in capsys.readouterr().out


def test_the_contenders_compute_the_same_scores(tmp_path):
    weights = inference.write_weights(tmp_path)
    X = np.random.default_rng(2).standard_normal((3, 784)).astype(np.float32)
    expected = inference.make_graphnet(weights, 3)(X)
    got = np.asarray(inference.make_onnxruntime(weights, 3)(X)[0])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
