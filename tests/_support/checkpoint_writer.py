"""Child process for the crash-safety test: saves checkpoints in a tight loop until killed.

    python checkpoint_writer.py FOLDER

Every checkpoint i holds parameters and optimizer slots all equal to i and meta
{"counter": i}, so a torn or mixed checkpoint is detectable. On start it resumes
from FOLDER (exit 3 if what it finds is inconsistent), prints "ready <counter>"
after its first save, then one line per completed save: the counter.
"""
from __future__ import annotations

import sys

import numpy as np

import graphnet as gn
from graphnet.model.checkpoint import save_checkpoint
from graphnet.model.restore import restore

SPEC = {
    "name": "crash_mlp",
    "inputs": {"x": {"shape": [256]}},
    "labels": {"y": {"classes": 10}},
    "nodes": [
        {"id": "fc1", "op": "affine", "inputs": ["x"], "units": 512, "activation": "relu"},
        {"id": "fc2", "op": "affine", "inputs": ["fc1"], "units": 10},
        {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc2", "y"]},
    ],
    "outputs": ["fc2"],
    "loss": "loss",
}


def make_optimizer(net):
    return gn.Optimizer(net, "adam", learning_rate=1e-3)


def main(folder: str) -> int:
    try:
        net, meta, optimizer = restore(folder, batch_size=4, backend="numpy", make_optimizer=make_optimizer)
        counter = int(meta["counter"])
        if not (np.all(net.store.values == counter)
                and all(np.all(slot == counter) for slot in optimizer.slots.values())
                and optimizer.t == counter):
            print(f"inconsistent checkpoint {counter}", flush=True)
            return 3
        counter += 1
    except gn.CheckpointError:
        net = gn.compile(gn.parse_network(SPEC), batch_size=4, backend="numpy")
        optimizer = make_optimizer(net)
        counter = 0
    first = True
    while True:
        net.store.values[...] = counter
        for slot in optimizer.slots.values():
            slot[...] = counter
        optimizer.t = counter
        save_checkpoint(folder, net, optimizer, {"counter": counter})
        print(f"ready {counter}" if first else counter, flush=True)
        first = False
        counter += 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
