"""Writing a benchmark script's results: one JSON file, written atomically."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from graphnet.fileio import write_text_atomic


def write_report(path: str | Path, data: Any) -> None:
    """`data` as indented JSON at `path` (folders made, file replaced atomically), and a line saying so."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")
    print(f"wrote {path}")
