"""bench/cnn_profile.py: one row per plan step, each conv step beside its GEMMs (smoke test on a
tiny CNN; timing is not tested)."""
from __future__ import annotations

import json

import cnn_profile as script
from test_cnn import TINY


def test_every_step_is_profiled_and_the_convs_get_their_gemms(tmp_path):
    import graphnet as gn

    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    results = script.profile(rounds=2, threads=1, spec_path=str(path), step_batch=8, batches=(1, 4))
    assert set(results["cases"]) == {"step", "b1", "b4"}
    net = gn.compile(gn.load(str(path)), batch_size=8)
    for case, kind in (("step", "train_sgd"), ("b4", "infer")):
        rows = results["cases"][case]["steps"]
        assert [(row["node"], row["kernel"]) for row in rows] == [(s.node, s.kernel) for s in net.plan(kind).steps]
        assert all(row["us"] > 0 for row in rows)
    step = results["cases"]["step"]["steps"]
    with_gemms = {(row["node"], row["phase"]) for row in step if "gemm_us" in row}
    # c1 reads the input: no input gradient, but its weight gradient is a GEMM in backward too
    assert with_gemms == {(node, phase) for node in ("c1", "c2", "fc") for phase in ("fwd", "bwd")}
    assert {row["node"] for row in results["cases"]["b1"]["steps"] if "gemm_us" in row} == {"c1", "c2", "fc"}
