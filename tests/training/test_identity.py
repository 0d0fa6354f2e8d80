"""A run's identity: what a checkpoint says about the run it belongs to, and the refusal,
naming each difference, of a checkpoint of another run."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import graphnet as gn
from graphnet.training import identity
from graphnet.training.identity import RunIdentity, check_same_run, identity_of, labels_crc32

from tests._support.paths import SPECS

CHECKPOINT, OUT = Path("run/checkpoint/weights.npz"), Path("run")
CURRENT = RunIdentity("aaaa", 5, 32, 216, "0000abcd")


def test_the_identity_round_trips_through_the_meta_and_old_metas_hold_the_seed():
    assert RunIdentity.from_meta({"run": CURRENT.to_meta(), "seed": 9}) == CURRENT
    assert RunIdentity.from_meta({"seed": 3}) == RunIdentity(None, 3, None, None, None)
    assert RunIdentity.from_meta({}) == RunIdentity(None, None, None, None, None)


@pytest.mark.parametrize("meta, problem", [({"run": [1]}, "'run' is [1]"), ({"run": {"id": 7}}, "run 'id' is 7"),
                                           ({"run": {"seed": True}}, "run 'seed' is True"),
                                           ({"seed": "zero"}, "run 'seed' is 'zero'"),
                                           ({"run": {"examples": 2.5}}, "run 'examples' is 2.5")])
def test_an_unusable_identity_is_a_value_error_naming_the_field(meta, problem):
    with pytest.raises(ValueError, match=re.escape(problem)):
        RunIdentity.from_meta(meta)


def test_the_same_run_passes_and_unrecorded_fields_are_not_compared():
    check_same_run(CURRENT, CURRENT, CHECKPOINT, OUT)
    check_same_run(RunIdentity(None, 5, None, None, None), CURRENT, CHECKPOINT, OUT)  # an older checkpoint


@pytest.mark.parametrize("saved, named", [
    (RunIdentity("bbbb", 5, 32, 216, "0000abcd"), "run id bbbb (run_id.txt: aaaa)"),
    (RunIdentity(None, 6, None, None, None), "seed 6 (run.json: 5)"),
    (RunIdentity("aaaa", 5, 64, 216, "0000abcd"), "batch size 64 (run.json: 32)"),
    (RunIdentity("aaaa", 5, 32, 215, "0000abcd"),
     "training data of 215 examples with labels CRC-32 0000abcd (the data now: 216 examples, CRC-32 0000abcd)"),
    (RunIdentity("aaaa", 5, 32, 216, "ffff0000"), "labels CRC-32 ffff0000"),
])
def test_each_difference_is_named(saved, named):
    with pytest.raises(gn.CheckpointError) as info:
        check_same_run(saved, CURRENT, CHECKPOINT, OUT)
    message = str(info.value)
    assert message.startswith(f"{CHECKPOINT}: not a checkpoint of the run in {OUT}: it has ") and named in message
    assert "\n" not in message


def test_labels_are_checksummed_in_chunks_as_one_block(monkeypatch):
    labels = np.random.default_rng(0).integers(0, 10, (1000, 2))
    whole = labels_crc32(labels)
    monkeypatch.setattr(identity, "_CHUNK_ROWS", 7)
    assert labels_crc32(labels) == whole
    assert labels_crc32(labels[:, ::-1]) != whole  # a strided view is read as its values
    assert labels_crc32(np.ascontiguousarray(labels[:, ::-1])) == labels_crc32(labels[:, ::-1])


def test_identity_of_takes_the_runs_settings():
    run = gn.load(SPECS / "spiral_mlp.json")
    found = identity_of("abcd", run.train, np.arange(5))
    assert (found.run_id, found.seed, found.batch_size, found.examples) == ("abcd", 0, 32, 5)
    assert len(identity.new_run_id()) == 16 and identity.new_run_id() != identity.new_run_id()
