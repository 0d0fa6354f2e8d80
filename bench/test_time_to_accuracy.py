"""bench/time_to_accuracy.py: every contender trains in its own process on the same recipe
(smoke test on a tiny run; timing is not tested)."""
from __future__ import annotations

import json

import pytest
import time_to_accuracy as script

RUN = {
    "network": {
        "name": "tiny",
        "inputs": {"x": {"shape": [2]}},
        "labels": {"y": {"classes": 3}},
        "nodes": [
            {"id": "fc1", "op": "affine", "inputs": ["x"], "units": 16, "init": "he_normal", "activation": "relu"},
            {"id": "drop", "op": "dropout", "inputs": ["fc1"], "rate": 0.1},
            {"id": "fc2", "op": "affine", "inputs": ["drop"], "units": 16, "init": "he_normal"},
            {"id": "h2", "op": "relu", "inputs": ["fc2"]},
            {"id": "fc3", "op": "affine", "inputs": ["h2"], "units": 3},
            {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc3", "y"]},
        ],
        "outputs": ["fc3"],
        "loss": "loss",
    },
    "train": {"data": {"name": "spiral", "val_size": 0.1}, "optimizer": {"rule": "adam", "learning_rate": 0.01},
              "schedule": {"kind": "cosine"}, "epochs": 2, "batch_size": 32, "seed": 0},
}


def test_each_contender_trains_in_its_own_process(tmp_path, capsys):
    run_file = tmp_path / "run.json"
    run_file.write_text(json.dumps(RUN))
    assert script.main(["--run", str(run_file), "--results", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "time_to_accuracy.json").read_text())
    assert set(results["runs"]) | set(results["skipped"]) == set(script.CONTENDERS)
    assert "graphnet" in results["runs"]
    for reason in results["skipped"].values():
        assert reason.startswith("not installed")
    for records in results["runs"].values():
        assert [r["epoch"] for r in records] == [1, 2]
        assert all(r["seconds"] > 0 and 0.5 < r["test_accuracy"] <= 1 for r in records)  # chance is 1/3
    out = capsys.readouterr().out
    assert all(f"{name:12s} total training time" in out for name in results["runs"])


def test_a_network_the_mapping_does_not_cover_is_refused():
    run = script.gn.parse_run({**RUN, "network": {**RUN["network"], "l2": 1e-3}})
    with pytest.raises(SystemExit, match="l2 term is not mapped"):
        script.torch_model(run.network, {})


class FakeContenders:
    """Stands in for the child processes: records whose epoch ran when."""

    turns: list[tuple[str, int]] = []

    def __init__(self, names, run_path, epochs, initial_path):
        self.children = {name: 0 for name in names if name != "absent"}
        self.skipped = {"absent": "not installed (absent)"} if "absent" in names else {}
        FakeContenders.turns = []

    def epoch(self, name):
        self.children[name] += 1
        FakeContenders.turns.append((name, self.children[name]))
        return {"epoch": self.children[name]}

    def close(self):
        pass


def test_contenders_take_turns_epoch_by_epoch_in_a_rotated_order(monkeypatch):
    monkeypatch.setattr(script, "Contenders", FakeContenders)
    runs, skipped = script.train_taking_turns(["a", "absent", "b", "c"], "run.json", 3, None, settle=0)
    assert FakeContenders.turns == [("a", 1), ("b", 1), ("c", 1), ("b", 2), ("c", 2), ("a", 2),
                                    ("c", 3), ("a", 3), ("b", 3)]
    assert runs == {name: [{"epoch": 1}, {"epoch": 2}, {"epoch": 3}] for name in "abc"}
    assert skipped == {"absent": "not installed (absent)"}
