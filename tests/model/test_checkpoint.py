"""Checkpoints: exact round trips (parameters, state, optimizer, generators) and refusal,
with a CheckpointError naming the file and the problem, of anything tampered with."""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import graphnet as gn
from graphnet.model.checkpoint import (
    ARRAYS_FILE,
    SPEC_FILE,
    meta_array,
    meta_from_array,
    read_checkpoint,
    save_checkpoint,
)
from graphnet.model.restore import load_checkpoint, restore

BN_DROPOUT = {
    "name": "bn_dropout",
    "inputs": {"x": {"shape": [2]}},
    "labels": {"y": {"classes": 3}},
    "nodes": [
        {"id": "fc1", "op": "affine", "inputs": ["x"], "units": 16},
        {"id": "bn1", "op": "batchnorm", "inputs": ["fc1"]},
        {"id": "h", "op": "relu", "inputs": ["bn1"]},
        {"id": "drop", "op": "dropout", "inputs": ["h"], "rate": 0.3},
        {"id": "fc2", "op": "affine", "inputs": ["drop"], "units": 3},
        {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc2", "y"]},
    ],
    "outputs": ["fc2"],
    "loss": "loss",
    "l2": 1e-3,
}
HYPER = {"sgd": {"learning_rate": 0.1}, "momentum": {"learning_rate": 0.05}, "nesterov": {"learning_rate": 0.05},
         "rmsprop": {"learning_rate": 1e-2}, "adam": {"learning_rate": 1e-2}, "adamw": {"learning_rate": 1e-2}}


def batches(count: int, n: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((n, 2)).astype(np.float32), rng.integers(0, 3, n)) for _ in range(count)]


def trained(rule: str = "adam", dtype: str = "float32", steps: int = 5, spec=None):
    spec = spec if spec is not None else gn.parse_network(BN_DROPOUT)
    net = gn.compile(spec, batch_size=8, dtype=dtype, seed=3)
    opt = gn.Optimizer(net, rule, **HYPER[rule])
    for X, y in batches(steps):
        opt.step(X.astype(dtype), y)
    return net, opt


def make_optimizer(rule):
    return lambda net: gn.Optimizer(net, rule, **HYPER[rule])


@pytest.fixture
def checkpoint(tmp_path):
    net, opt = trained()
    folder = tmp_path / "ckpt"
    save_checkpoint(folder, net, opt, {"note": "hi"})
    return folder


# ---- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", sorted(HYPER))
def test_round_trip_then_training_continues_identically(tmp_path, rule):
    net, opt = trained(rule)
    save_checkpoint(tmp_path / "c", net, opt, {"position": {"epoch": 2}})
    net2, meta, opt2 = restore(tmp_path / "c", batch_size=8, make_optimizer=make_optimizer(rule))
    assert meta["position"] == {"epoch": 2}
    for name in net.params:
        assert np.array_equal(net.params[name], net2.params[name]), name
        assert net2.params[name].dtype == net.params[name].dtype
    for name in net.state:
        assert np.array_equal(net.state[name], net2.state[name]), name
    assert opt2.t == opt.t == 5
    assert opt2.hyperparameters == opt.hyperparameters
    assert set(opt2.slots) == set(opt.slots)
    for slot in opt.slots:
        assert np.array_equal(opt.slots[slot], opt2.slots[slot]), slot
    assert net2.dropout_rng.bit_generator.state == net.dropout_rng.bit_generator.state
    # The same future: losses (with dropout masks) and parameters stay bit-identical.
    for X, y in batches(4, seed=9):
        assert opt.step(X, y) == opt2.step(X, y)
    assert np.array_equal(net.store.values, net2.store.values)
    assert np.array_equal(net.store.state, net2.store.state)


def test_float64_round_trip_keeps_the_dtype(tmp_path):
    net, opt = trained("momentum", dtype="float64")
    save_checkpoint(tmp_path / "c", net, opt)
    net2 = load_checkpoint(tmp_path / "c")
    assert net2.dtype == np.float64
    assert np.array_equal(net.store.values, net2.store.values)


def test_net_save_and_gn_load_checkpoint(tmp_path):
    net, _ = trained()
    net.save(str(tmp_path / "m"))
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [SPEC_FILE, ARRAYS_FILE]
    net2 = gn.load_checkpoint(tmp_path / "m", batch_size=4)
    X = batches(1)[0][0]
    assert np.array_equal(net.forward(X), net2.forward(X))
    assert net2.spec == net.spec
    # without an optimizer there is no optimizer state to restore
    with pytest.raises(gn.CheckpointError, match="no optimizer state"):
        restore(tmp_path / "m", make_optimizer=make_optimizer("adam"))


def test_meta_is_plain_json_and_arrays_are_named(checkpoint):
    spec, arrays, meta = read_checkpoint(checkpoint)
    assert spec.name == "bn_dropout"
    assert meta["note"] == "hi" and meta["format"] == 1 and meta["dtype"] == "float32"
    assert set(arrays) == {"param/fc1.W", "param/fc1.b", "param/bn1.gamma", "param/bn1.beta", "param/fc2.W",
                           "param/fc2.b", "state/bn1.running_mean", "state/bn1.running_var", "optim/m", "optim/v"}
    with np.load(checkpoint / ARRAYS_FILE, allow_pickle=False) as npz:  # no pickles anywhere
        assert all(npz[key].dtype != object for key in npz.files)


def test_the_meta_is_stored_as_utf8_bytes_one_byte_a_character(checkpoint):
    """Not as a numpy unicode string (4 bytes a character, as graphnet wrote it before)."""
    stored = read_arrays(checkpoint)["meta"]
    assert stored.dtype == np.uint8 and stored.ndim == 1
    assert json.loads(stored.tobytes().decode("utf-8")) == read_checkpoint(checkpoint)[2]
    assert stored.nbytes == len(json.dumps(read_checkpoint(checkpoint)[2]))


def test_a_checkpoint_whose_meta_is_a_unicode_string_still_loads(checkpoint):
    """The meta as graphnet wrote it before: np.array(json_text), a 0-d unicode array."""
    net, _ = trained()
    arrays = read_arrays(checkpoint)
    meta = meta_from_array(arrays["meta"])
    write_arrays(checkpoint, {**arrays, "meta": np.array(json.dumps(meta))})
    assert read_checkpoint(checkpoint)[2] == meta
    restored, _, optimizer = restore(checkpoint, make_optimizer=make_optimizer("adam"))
    assert np.array_equal(restored.store.values, net.store.values) and optimizer.t == 5


def test_saving_again_replaces_and_cleans_stale_temporaries(checkpoint):
    stale = checkpoint / f".{ARRAYS_FILE}.killed.tmp"
    stale.write_bytes(b"half a zip")  # what a SIGKILL during a write leaves
    load_checkpoint(checkpoint)  # never read as the checkpoint
    net, opt = trained(steps=7)
    save_checkpoint(checkpoint, net, opt)
    assert not stale.exists()
    assert sorted(p.name for p in checkpoint.iterdir()) == [SPEC_FILE, ARRAYS_FILE]
    assert np.array_equal(load_checkpoint(checkpoint).store.values, net.store.values)


# ---- tampering -------------------------------------------------------------------------------


def read_arrays(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / ARRAYS_FILE, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def write_arrays(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    (folder / ARRAYS_FILE).write_bytes(buffer.getvalue())


def with_meta(arrays, **changes):
    meta = meta_from_array(arrays["meta"])
    meta.update(changes)
    return {**arrays, "meta": meta_array(meta)}


def _drop(arrays, key):
    return {k: v for k, v in arrays.items() if k != key}


TAMPERING = {
    "wrong shape": (lambda a: {**a, "param/fc1.W": a["param/fc1.W"][:, :5]},
                    ["param/fc1.W", "shape (2, 5)", "(2, 16)"]),
    "transposed": (lambda a: {**a, "param/fc1.W": np.ascontiguousarray(a["param/fc1.W"].T)},
                   ["param/fc1.W", "(16, 2)"]),
    "wrong dtype": (lambda a: {**a, "param/fc2.b": a["param/fc2.b"].astype(np.float64)},
                    ["param/fc2.b", "float64", "float32"]),
    "integer dtype": (lambda a: {**a, "state/bn1.running_var": a["state/bn1.running_var"].astype(np.int32)},
                      ["state/bn1.running_var", "int32"]),
    "missing param": (lambda a: _drop(a, "param/bn1.gamma"), ["missing 'param/bn1.gamma'"]),
    "missing state": (lambda a: _drop(a, "state/bn1.running_mean"), ["missing 'state/bn1.running_mean'"]),
    "extra array": (lambda a: {**a, "param/fc3.W": np.zeros((3, 3), np.float32)}, ["unexpected 'param/fc3.W'"]),
    "object array": (lambda a: {**a, "param/fc1.b": np.array([{"evil": 1}], dtype=object)},
                     ["refused", "array 'param/fc1.b' holds Python objects", "never loads"]),
    "no meta": (lambda a: _drop(a, "meta"), ["no 'meta'"]),
    "meta not json": (lambda a: {**a, "meta": np.array("{not json")}, ["unreadable meta"]),
    "meta a number": (lambda a: {**a, "meta": np.array(3.5)}, ["unreadable meta", "float64", "not JSON text"]),
    "meta json not an object": (lambda a: {**a, "meta": meta_array(3.5)}, ["unknown checkpoint format 3.5"]),
    "meta bytes not utf-8": (lambda a: {**a, "meta": np.frombuffer(b"{\xff}", np.uint8)}, ["unreadable meta"]),
    "meta future format": (lambda a: with_meta(a, format=99), ["unknown checkpoint format 99"]),
    "meta bad dtype": (lambda a: with_meta(a, dtype="float16"), ["unsupported dtype 'float16'"]),
    "meta bad seed": (lambda a: with_meta(a, seed="zero"), ["seed"]),
    "meta bad generator": (lambda a: with_meta(a, dropout_rng={"bit_generator": "MT19937"}), ["dropout_rng"]),
    "meta generator not a dict": (lambda a: with_meta(a, dropout_rng=42), ["dropout_rng"]),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_tampered_arrays_are_refused_with_file_and_problem(checkpoint, case):
    tamper, phrases = TAMPERING[case]
    write_arrays(checkpoint, tamper(read_arrays(checkpoint)))
    with pytest.raises(gn.CheckpointError) as info:
        load_checkpoint(checkpoint)
    message = str(info.value)
    assert str(checkpoint / ARRAYS_FILE) in message
    for phrase in phrases:
        assert phrase in message, (phrase, message)
    assert "\n" not in message


OPTIMIZER_TAMPERING = {
    "slot wrong shape": (lambda a: {**a, "optim/m": a["optim/m"][:-1]}, ["optim/m", "shape"]),
    "slot wrong dtype": (lambda a: {**a, "optim/v": a["optim/v"].astype(np.float64)}, ["optim/v", "float64"]),
    "slot missing": (lambda a: _drop(a, "optim/v"), ["missing 'optim/v'"]),
    "slot extra": (lambda a: {**a, "optim/velocity": a["optim/m"]}, ["unexpected 'optim/velocity'"]),
    "state not an object": (lambda a: with_meta(a, optimizer=[1, 2]), ["optimizer state"]),
    "step missing": (lambda a: with_meta(a, optimizer={"rule": "adam", "hyperparameters": {}}), ["missing 't'"]),
    "other rule": (lambda a: with_meta(a, optimizer={**meta_from_array(a["meta"])["optimizer"], "rule": "sgd"}),
                   ["'sgd'"]),
}


@pytest.mark.parametrize("case", list(OPTIMIZER_TAMPERING))
def test_tampered_optimizer_state_is_refused(checkpoint, case):
    tamper, phrases = OPTIMIZER_TAMPERING[case]
    write_arrays(checkpoint, tamper(read_arrays(checkpoint)))
    with pytest.raises(gn.CheckpointError) as info:
        restore(checkpoint, make_optimizer=make_optimizer("adam"))
    message = str(info.value)
    assert str(checkpoint / ARRAYS_FILE) in message
    for phrase in phrases:
        assert phrase in message, (phrase, message)


class _Payload:
    """Unpickling this creates a marker file: proof that a loader unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_object_arrays_are_refused_without_unpickling(checkpoint, tmp_path):
    marker = tmp_path / "UNPICKLED"
    arrays = read_arrays(checkpoint)
    arrays["param/fc1.b"] = np.array([_Payload(marker)], dtype=object)
    write_arrays(checkpoint, arrays)
    # The payload is live: a pickle-enabled load would run it.
    with np.load(checkpoint / ARRAYS_FILE, allow_pickle=True) as npz:
        npz["param/fc1.b"]
    assert marker.exists()
    marker.unlink()
    with pytest.raises(gn.CheckpointError, match="refused"):
        load_checkpoint(checkpoint)
    with pytest.raises(gn.CheckpointError):
        restore(checkpoint, make_optimizer=make_optimizer("adam"))
    assert not marker.exists()


def test_every_truncation_is_a_checkpoint_error(checkpoint):
    whole = (checkpoint / ARRAYS_FILE).read_bytes()
    cuts = sorted(set(range(0, len(whole), max(1, len(whole) // 150))) | {1, len(whole) - 1, len(whole) - 22})
    for cut in cuts:
        (checkpoint / ARRAYS_FILE).write_bytes(whole[:cut])
        with pytest.raises(gn.CheckpointError) as info:
            load_checkpoint(checkpoint)
        assert str(checkpoint / ARRAYS_FILE) in str(info.value), cut


def test_corrupted_bytes_never_escape_as_other_errors(checkpoint):
    whole = (checkpoint / ARRAYS_FILE).read_bytes()
    rng = np.random.default_rng(0)
    outcomes = {"refused": 0, "loaded": 0}
    for _ in range(120):
        data = bytearray(whole)
        for position in rng.integers(0, len(data), rng.integers(1, 4)):
            data[position] ^= int(rng.integers(1, 256))
        (checkpoint / ARRAYS_FILE).write_bytes(bytes(data))
        try:
            load_checkpoint(checkpoint)
            outcomes["loaded"] += 1
        except gn.CheckpointError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0  # zip CRCs catch flipped array bytes


@pytest.mark.parametrize("content,phrase", [
    (b"", "invalid network spec"),
    (b"{garbage", "invalid network spec"),
    (b"\xff\xfe\x00 not utf-8", "network.json"),
    (json.dumps({**BN_DROPOUT, "nodes": BN_DROPOUT["nodes"][:2]}).encode(), "invalid network spec"),
])
def test_bad_network_json_is_refused(checkpoint, content, phrase):
    (checkpoint / SPEC_FILE).write_bytes(content)
    with pytest.raises(gn.CheckpointError) as info:
        load_checkpoint(checkpoint)
    assert str(checkpoint / SPEC_FILE) in str(info.value) and phrase in str(info.value)


def test_network_json_of_another_architecture_is_a_mismatch(checkpoint):
    other = json.loads(json.dumps(BN_DROPOUT))
    other["nodes"][0]["units"] = 12
    (checkpoint / SPEC_FILE).write_text(json.dumps(other))
    with pytest.raises(gn.CheckpointError) as info:
        load_checkpoint(checkpoint)
    message = str(info.value)
    assert "does not match its network spec" in message and "param/fc1.W" in message and "(2, 12)" in message


@pytest.mark.parametrize("missing", [SPEC_FILE, ARRAYS_FILE])
def test_missing_files(checkpoint, missing):
    (checkpoint / missing).unlink()
    with pytest.raises(gn.CheckpointError, match=f"{missing}: missing"):
        load_checkpoint(checkpoint)


def test_not_a_folder(tmp_path):
    with pytest.raises(gn.CheckpointError, match="missing"):
        load_checkpoint(tmp_path / "nowhere")
    shutil.rmtree(tmp_path)


# ---- non-finite values, the network hash, files that are not npz archives ----------------------


@pytest.mark.parametrize("key, index", [("param/fc1.W", (1, 3)), ("param/bn1.beta", (5,)),
                                        ("state/bn1.running_var", (0,)), ("optim/m", (7,)), ("optim/v", (2,))])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_arrays_are_refused_naming_file_and_array(checkpoint, key, index, value):
    arrays = read_arrays(checkpoint)
    arrays[key] = arrays[key].copy()
    arrays[key][index] = value
    write_arrays(checkpoint, arrays)
    for load in (lambda: load_checkpoint(checkpoint), lambda: restore(checkpoint, make_optimizer=make_optimizer("adam"))):
        with pytest.raises(gn.CheckpointError) as info:
            load()
        message = str(info.value)
        assert message.startswith(f"{checkpoint / ARRAYS_FILE}: refused: non-finite values in '{key}' "
                                  f"(1 of {arrays[key].size} values NaN or inf, first at {index})"), message


def test_a_diverged_network_is_not_saved(tmp_path):
    net, _ = trained(steps=1)
    net.params["fc2.b"][1] = np.nan
    with pytest.raises(gn.CheckpointError, match=r"refusing to save .*'param/fc2.b' \(1 of 3 values"):
        save_checkpoint(tmp_path / "ckpt", net)
    assert not (tmp_path / "ckpt" / ARRAYS_FILE).exists()


def test_an_edited_network_json_of_the_same_shapes_is_refused(checkpoint):
    edited = json.loads((checkpoint / SPEC_FILE).read_text())
    edited["nodes"][2]["op"] = "tanh"  # relu -> tanh: every array keeps its shape
    (checkpoint / SPEC_FILE).write_text(json.dumps(edited))
    with pytest.raises(gn.CheckpointError) as info:
        load_checkpoint(checkpoint)
    message = str(info.value)
    assert message.startswith(f"{checkpoint / SPEC_FILE} does not match {checkpoint / ARRAYS_FILE}: ")
    assert "was network.json edited?" in message


def test_cosmetic_edits_and_reformatting_keep_the_hash(checkpoint):
    edited = json.loads((checkpoint / SPEC_FILE).read_text())
    edited["description"] = "renamed and reindented"
    edited["name"] = "other_name"
    edited["nodes"][0]["init"] = "xavier_uniform"  # the default, now spelled out
    (checkpoint / SPEC_FILE).write_text(json.dumps(edited, indent=7))
    assert load_checkpoint(checkpoint).spec.name == "other_name"


def test_a_checkpoint_without_a_hash_still_loads(checkpoint):
    arrays = read_arrays(checkpoint)
    meta = meta_from_array(arrays["meta"])
    del meta["network_sha256"]
    write_arrays(checkpoint, {**arrays, "meta": meta_array(meta)})
    edited = json.loads((checkpoint / SPEC_FILE).read_text())
    edited["nodes"][2]["op"] = "tanh"
    (checkpoint / SPEC_FILE).write_text(json.dumps(edited))
    assert load_checkpoint(checkpoint).spec.nodes[2].op == "tanh"  # nothing to check it against


@pytest.mark.parametrize("content, what", [
    (bytes(range(256)) * 4, "it starts with bytes 00 01 02 03 04 05 06 07, not a zip header"),
    (b'{"param/fc1.W": [[1, 2]]}', "it looks like JSON text"),
    (b"", "the file is empty"),
    (b"\x93NUMPY\x01\x00" + b" " * 100, "it is a single .npy array"),
])
def test_a_file_that_is_not_an_npz_archive_says_so(checkpoint, content, what):
    (checkpoint / ARRAYS_FILE).write_bytes(content)
    with pytest.raises(gn.CheckpointError) as info:
        load_checkpoint(checkpoint)
    assert str(info.value) == f"{checkpoint / ARRAYS_FILE}: not an npz archive ({what})"
    assert "pickle" not in str(info.value)


def test_load_checkpoint_takes_a_run_folder_as_graphnet_eval_does(tmp_path):
    net, _ = trained()
    save_checkpoint(tmp_path / "run" / "checkpoint", net)
    (tmp_path / "run" / "run.json").write_text("{}", encoding="utf-8")
    loaded = gn.load_checkpoint(tmp_path / "run", batch_size=4)
    assert np.array_equal(loaded.store.values, net.store.values)


