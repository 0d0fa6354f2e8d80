"""Regenerate cases.npz: random CNN specs (tests/cnn_cases.py, seeds 0..COUNT-1) with PyTorch's
float64 results, for tests/test_cnn_torch.py to check graphnet against where torch is absent (CI).

    pip install torch==2.13.0          # a test-only dependency, not installed by CI
    python tests/data/cnn_torch/make_fixtures.py

For case i the file holds `{i}/spec` (the network's JSON), `{i}/X`, `{i}/y`, `{i}/param/<name>`,
`{i}/state/<name>` (graphnet's names and layouts) and torch's `{i}/outputs` (eval mode),
`{i}/loss`, `{i}/grad/<name>` and `{i}/new_state/<name>` (after the train-mode pass).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # tests/: cnn_cases

from cnn_cases import SeededPick, build_cnn, case_arrays, torch_run  # noqa: E402

COUNT = 40


def main() -> None:
    arrays: dict[str, np.ndarray] = {}
    for i in range(COUNT):
        doc = build_cnn(SeededPick(i))
        params, state, X, y = case_arrays(doc, i)
        result = torch_run(doc, params, state, X, y)
        arrays[f"{i}/spec"] = np.array(json.dumps(doc))
        arrays[f"{i}/X"], arrays[f"{i}/y"] = X, y
        arrays[f"{i}/outputs"], arrays[f"{i}/loss"] = result["outputs"], np.array(result["loss"])
        for kind, table in (("param", params), ("state", state), ("grad", result["grads"]),
                            ("new_state", result["state"])):
            for name, value in table.items():
                arrays[f"{i}/{kind}/{name}"] = np.asarray(value, dtype=np.float64)
    np.savez_compressed(HERE / "cases.npz", **arrays)
    print(f"wrote {COUNT} cases to {HERE / 'cases.npz'}")


if __name__ == "__main__":
    main()
