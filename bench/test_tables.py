"""bench/tables.py on a tiny table (smoke test; the figures are not tested): graphnet and
scikit-learn's two models are scored on graphnet's own split, and the script notices when
the rows it takes for that split are not graphnet's."""
from __future__ import annotations

import json

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", reason="bench/tables.py compares with scikit-learn (pip install scikit-learn)")
if tuple(int(part) for part in sklearn.__version__.split(".")[:2]) < (1, 7):
    pytest.skip("bench/tables.py needs scikit-learn >= 1.7 (HistGradientBoosting's X_val)", allow_module_level=True)

import tables as script  # noqa: E402


@pytest.mark.slow  # ~8 s on the busy 2-core machine: three models trained end to end
def test_three_models_scored_on_graphnets_split(tmp_path, capsys):
    assert script.main(["--rows", "800", "--epochs", "3", "--results", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "tables.json").read_text())
    assert results["rows"] == 800 and results["positive"] == ">50K" and results["positive_share"] == 0.2
    assert results["split"] == {"train": 576, "val": 64, "test": 160}  # 20% test, then 10% validation
    assert results["graphnet_log"][0].startswith("data: table columns: 2 numeric columns")
    assert set(results["models"]) == set(script.MODELS)
    for row in results["models"].values():
        assert all(0.0 <= row[key] <= 1.0 for key in ("accuracy", "balanced_accuracy", "f1", "roc_auc"))
        assert row["seconds"] > 0
    assert results["models"]["graphnet"]["epochs"] <= 3 and results["models"]["mlp"]["epochs"] <= 3
    out = capsys.readouterr().out
    assert "| graphnet MLP |" in out and "| HistGradientBoosting |" in out and "| scikit-learn MLP |" in out


def test_rows_that_are_not_graphnets_test_split_are_refused(monkeypatch):
    split = script.graphnet_split

    def shifted(*args, **kwargs):
        rows = split(*args, **kwargs)
        return {**rows, "test": np.sort(np.r_[rows["test"][5:], rows["train"][:5]])}  # 5 rows swapped

    monkeypatch.setattr(script, "graphnet_split", shifted)
    with pytest.raises(AssertionError, match="the splits differ"):
        script.run_benchmark(rows=400, epochs=2)
