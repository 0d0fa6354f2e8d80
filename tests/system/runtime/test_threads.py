"""graphnet's thread count set by `graphnet --threads` and $GRAPHNET_THREADS, in child processes;
a seeded run gives the same bits on any thread count and under any load."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from tests._support.commands import graphnet
from tests._support.processes import spinning_process


def test_cli_threads_option_and_env(tmp_path):
    done = graphnet("--threads", "0", "schema")
    assert done.returncode == 2 and "--threads: must be at least 1, got 0" in done.stderr
    done = graphnet("schema", "-o", str(tmp_path / "s.json"), env={"GRAPHNET_THREADS": "many"})
    assert done.returncode == 1
    assert done.stderr.strip() == "graphnet schema: $GRAPHNET_THREADS must be an integer >= 1 or 'auto', got 'many'"
    done = graphnet("--threads", "1", "schema", "-o", str(tmp_path / "s.json"))
    assert done.returncode == 0, done.stderr


# ---- a seeded run gives the same bits on any thread count and under any load -----------------

REPRODUCED_RUN = {
    "network": {"name": "repro", "inputs": {"x": {"shape": [784]}}, "labels": {"y": {"classes": 10}},
                "nodes": [{"id": "fc1", "op": "affine", "inputs": ["x"], "units": 512, "init": "he_normal",
                           "activation": "relu"},
                          {"id": "drop", "op": "dropout", "inputs": ["fc1"], "rate": 0.2},
                          {"id": "fc2", "op": "affine", "inputs": ["drop"], "units": 256, "activation": "relu"},
                          {"id": "fc3", "op": "affine", "inputs": ["fc2"], "units": 10},
                          {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc3", "y"]}],
                "outputs": ["fc3"], "loss": "loss"},
    "train": {"data": {"name": "blobs", "val_size": 0.2,
                       "options": {"points": 400, "classes": 10, "features": 784, "std": 60.0}},
              "optimizer": {"rule": "adam", "learning_rate": 1e-3}, "epochs": 4, "batch_size": 128, "seed": 0}}


def trained(folder: Path, *options: str) -> tuple[dict[str, bytes], list[dict]]:
    """`graphnet [OPTIONS] train` of REPRODUCED_RUN (GEMMs of 784-wide layers, dropout, Adam, a
    partial last batch; about a second of steps, so that a governor has time to act), with the
    default thread count unless OPTIONS choose one: every array of its checkpoint and its
    history.jsonl, wall-clock times and the run's id left out."""
    folder.mkdir(exist_ok=True)
    run = folder / "run.json"
    run.write_text(json.dumps(REPRODUCED_RUN))
    done = graphnet(*options, "train", str(run), "--out", str(folder / "run"), "--no-progress",
                    env={"GRAPHNET_THREADS": "auto"}, timeout=300)
    assert done.returncode == 0, done.stderr
    with np.load(folder / "run" / "checkpoint" / "weights.npz") as weights:
        arrays = {key: weights[key].tobytes() for key in weights.files if key != "meta"}
        meta = json.loads(bytes(weights["meta"]))
    arrays["meta"] = json.dumps({k: v for k, v in meta.items() if k not in ("elapsed", "run")}).encode()
    history = [{k: v for k, v in json.loads(line).items() if k != "seconds"}
               for line in (folder / "run" / "history.jsonl").read_text().splitlines()]
    assert len(history) == 4
    return arrays, history


CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@pytest.fixture(scope="module")
def quiet_run(tmp_path_factory) -> tuple[dict[str, bytes], list[dict]]:
    """The run as the default runs it on a quiet machine, whatever the machine is doing now:
    one thread per core, none taken away."""
    return trained(tmp_path_factory.mktemp("quiet"), "--threads", str(CORES))


@pytest.mark.slow  # `graphnet train` processes, ~4 s each
def test_a_seeded_run_gives_the_same_bits_on_one_thread_and_on_every_core(tmp_path, quiet_run):
    assert trained(tmp_path / "one", "--threads", "1") == quiet_run


@pytest.mark.slow  # `graphnet train` processes, ~4 s each
def test_a_seeded_run_under_a_cpu_hog_gives_the_bits_of_a_quiet_run(tmp_path, quiet_run):
    """The default thread count, the governor adapting to the load: a process spinning on a core
    all through the run changes nothing in what it computes."""
    with spinning_process():
        busy = trained(tmp_path / "busy")
    assert busy == quiet_run
