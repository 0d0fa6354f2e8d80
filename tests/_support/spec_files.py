"""Spec files with known problems, written into a test's folder."""
from __future__ import annotations

import json
from pathlib import Path


def bad_spec(folder: Path, name: str = "bad.json") -> Path:
    """A spec with three problems: an unknown field, a wrong output, a negative l2."""
    doc = {
        "inputs": {"x": {"shape": [4]}},
        "nodes": [{"id": "fc1", "op": "affine", "inputs": ["x"], "units": 3, "activaton": "relu"}],
        "outputs": ["fc1"],
        "l2": -1,
    }
    path = folder / name
    path.write_text(json.dumps(doc, indent=2))
    return path
