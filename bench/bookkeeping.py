"""Run-folder bookkeeping: wall time and bytes written per epoch, against the epoch count.

    python bench/bookkeeping.py [--epochs 100 400 1600] [--json FILE]

A tiny network (4-16-3) on 64 in-memory examples, one step per epoch, so the
training itself is negligible and an epoch's wall time is mostly what a run
writes into its run folder at each epoch end (epoch records, checkpoint). Each
epoch count trains once with a run folder and once without one (no files),
each in the same process, one after the other. Reported per count:

- `epoch_ms`: the median wall time between two epoch ends over the last tenth
  of the epochs (the late epochs, where a cost growing with the history shows);
  `first_epochs_ms`: the same over the first tenth;
- `bookkeeping_ms`: (wall with a run folder - wall without) / epochs, the mean
  cost of the files per epoch, the final history.json, metrics and plot included;
- `written_bytes_per_epoch`: bytes the process wrote (Linux /proc/self/io
  `wchar`; None elsewhere) during the run with a folder, per epoch.

The cost of an epoch's records must not grow with the epoch count: epoch_ms at
1600 epochs should be that at 100.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # graphnet from this checkout when run as a script

from report import write_report  # noqa: E402

import graphnet as gn  # noqa: E402

EXAMPLES = 64


def tiny_run(epochs: int) -> gn.RunSpec:
    """4 features -> 16 relu -> 3 classes, SGD, the whole training split in one batch."""
    return gn.parse_run({
        "network": {
            "name": "bookkeeping_mlp",
            "inputs": {"x": {"shape": [4]}},
            "labels": {"y": {"classes": 3}},
            "nodes": [
                {"id": "fc1", "op": "affine", "inputs": ["x"], "units": 16, "activation": "relu"},
                {"id": "fc2", "op": "affine", "inputs": ["fc1"], "units": 3},
                {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc2", "y"]},
            ],
            "outputs": ["fc2"],
            "loss": "loss",
        },
        "train": {"data": "unused", "optimizer": {"rule": "sgd", "learning_rate": 0.05},
                  "epochs": epochs, "batch_size": EXAMPLES, "seed": 0, "backend": "numpy"},
    })


def tiny_data() -> dict[str, np.ndarray]:
    """EXAMPLES training rows (4 features, 3 classes) and 16 validation rows."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((EXAMPLES + 16, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)
    return {"X_train": X[:EXAMPLES], "y_train": y[:EXAMPLES], "X_val": X[EXAMPLES:], "y_val": y[EXAMPLES:]}


def written_bytes() -> int | None:
    """Bytes this process has written so far (write calls, files or not), or None off Linux."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("wchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def one_run(epochs: int, out: Path | None) -> tuple[float, list[float], int | None]:
    """Train `epochs` epochs (with the run folder `out`, or none): wall seconds, the times (s)
    between successive epoch ends, and the bytes written (None when unknown)."""
    ends: list[float] = []
    before = written_bytes()
    start = time.perf_counter()
    gn.train(tiny_run(epochs), out=out, data=tiny_data(), log=None, progress=False,
             on_epoch=lambda record: ends.append(time.perf_counter()))
    wall = time.perf_counter() - start
    after = written_bytes()
    return wall, list(np.diff(ends)), None if before is None or after is None else after - before


def measure(epoch_counts: list[int]) -> dict[str, Any]:
    """One row per epoch count (see the module docstring)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="graphnet-bookkeeping-") as folder:
        one_run(2, None)  # warm up: imports, plans
        for epochs in epoch_counts:
            bare, _, _ = one_run(epochs, None)
            wall, gaps, written = one_run(epochs, Path(folder) / f"run{epochs}")
            tenth = max(1, len(gaps) // 10)
            rows.append({
                "epochs": epochs,
                "wall_s": wall,
                "wall_without_run_folder_s": bare,
                "epoch_ms": 1e3 * statistics.median(gaps[-tenth:]) if gaps else None,
                "first_epochs_ms": 1e3 * statistics.median(gaps[:tenth]) if gaps else None,
                "bookkeeping_ms": 1e3 * (wall - bare) / epochs,
                "written_bytes_per_epoch": None if written is None else written / epochs,
            })
    return {"examples": EXAMPLES, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[100, 400, 1600])
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args(argv)
    result = measure(args.epochs)
    print(f"{'epochs':>7} {'wall s':>8} {'no folder s':>11} {'epoch ms':>9} {'first ms':>9} "
          f"{'records ms/epoch':>16} {'written/epoch':>14}")
    for row in result["rows"]:
        written = "n/a" if row["written_bytes_per_epoch"] is None else f"{row['written_bytes_per_epoch'] / 1024:.1f} KiB"
        print(f"{row['epochs']:>7} {row['wall_s']:>8.2f} {row['wall_without_run_folder_s']:>11.2f} "
              f"{row['epoch_ms']:>9.2f} {row['first_epochs_ms']:>9.2f} {row['bookkeeping_ms']:>16.2f} "
              f"{written:>14}")
    if args.json:
        write_report(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
