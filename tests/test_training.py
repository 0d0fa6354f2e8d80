"""gn.train end to end: run folders, exact resume (epoch boundary and mid-epoch Ctrl-C),
overrides, non-finite losses, and a short Fashion-MNIST run."""
from __future__ import annotations

import json
import math
import signal
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

import graphnet as gn
import graphnet.training as training
from graphnet.checkpoint import ARRAYS_FILE, load_checkpoint, read_checkpoint

SPECS = Path(__file__).resolve().parents[1] / "specs"
FASHION = Path("/usr/share/datasets/fashion-mnist")
SPIRAL_TRAIN, BATCH = 216, 32  # spiral with val_size 0.1: 216 training examples
PER_EPOCH = math.ceil(SPIRAL_TRAIN / BATCH)  # 7 iterations, the last one short (24)

BN_DROPOUT = {
    "name": "bn_dropout",
    "inputs": {"x": {"shape": [2]}},
    "labels": {"y": {"classes": 3}},
    "nodes": [
        {"id": "fc1", "op": "affine", "inputs": ["x"], "units": 32, "init": "he_normal"},
        {"id": "bn1", "op": "batchnorm", "inputs": ["fc1"]},
        {"id": "h", "op": "relu", "inputs": ["bn1"]},
        {"id": "drop", "op": "dropout", "inputs": ["h"], "rate": 0.2},
        {"id": "fc2", "op": "affine", "inputs": ["drop"], "units": 3},
        {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc2", "y"]},
    ],
    "outputs": ["fc2"],
    "loss": "loss",
    "l2": 1e-4,
}


def make_run(epochs=6, schedule=None, optimizer=None, network=None) -> gn.RunSpec:
    """Dropout masks, batchnorm statistics, Adam moments and a schedule that depends on the
    total: every piece of state a resume has to restore."""
    return gn.parse_run({
        "network": network or BN_DROPOUT,
        "train": {"data": {"name": "spiral", "val_size": 0.1},
                  "optimizer": optimizer or {"rule": "adam", "learning_rate": 1e-2},
                  "schedule": schedule or {"kind": "cosine", "min_lr": 1e-4, "warmup_epochs": 1},
                  "epochs": epochs, "batch_size": BATCH, "seed": 5},
    })


def comparable(history) -> list[dict]:
    """Epoch records without the wall-clock field: everything else must match exactly."""
    return [{k: v for k, v in asdict(r).items() if k != "seconds"} for r in history]


def saved_arrays(folder: Path) -> dict[str, np.ndarray]:
    return read_checkpoint(folder / "checkpoint")[1]


def assert_same_outcome(a: gn.TrainResult, b: gn.TrainResult) -> None:
    assert comparable(a.history) == comparable(b.history)  # exact floats
    assert np.array_equal(a.net.store.values, b.net.store.values)
    assert np.array_equal(a.net.store.state, b.net.store.state)
    assert a.metrics["test_accuracy"] == b.metrics["test_accuracy"]
    if a.out is not None and b.out is not None:
        arrays_a, arrays_b = saved_arrays(a.out), saved_arrays(b.out)
        assert set(arrays_a) == set(arrays_b)
        for key in arrays_a:  # params, batchnorm state and optimizer slots
            assert np.array_equal(arrays_a[key], arrays_b[key]), key
        meta_a, meta_b = read_checkpoint(a.out / "checkpoint")[2], read_checkpoint(b.out / "checkpoint")[2]
        assert meta_a["optimizer"] == meta_b["optimizer"]  # rule, hyperparameters, step count
        assert meta_a["dropout_rng"] == meta_b["dropout_rng"]
        assert meta_a["position"] == meta_b["position"]


def interrupt_at(monkeypatch, epoch: int, iteration: int, times: int = 1) -> None:
    """Simulate Ctrl-C while iteration `iteration` of epoch `epoch` (0-based) is being set up:
    the real SIGINT handler runs, exactly as for a key press at that moment."""
    target = epoch + iteration / PER_EPOCH  # the same expression training evaluates
    real = training.learning_rate_at

    def spy(schedule, base_lr, at, total_epochs, iterations_per_epoch=1):
        if at == target:
            for _ in range(times):
                signal.raise_signal(signal.SIGINT)
        return real(schedule, base_lr, at, total_epochs, iterations_per_epoch)

    monkeypatch.setattr(training, "learning_rate_at", spy)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> gn.TrainResult:
    """The uninterrupted 6-epoch run every resumed run must reproduce."""
    return gn.train(make_run(), out=tmp_path_factory.mktemp("reference") / "run", log=None, progress=False)


# ---- the run folder -------------------------------------------------------------------------


def test_run_folder_contents(reference):
    out = reference.out
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint", "history.json", "learning_curve.png",
                                                   "metrics.json", "run.json"]
    assert gn.parse_run((out / "run.json").read_text()) == make_run()
    history = json.loads((out / "history.json").read_text())
    assert history == [asdict(r) for r in reference.history] and len(history) == 6
    assert [r["epoch"] for r in history] == [1, 2, 3, 4, 5, 6]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == reference.metrics
    assert metrics["epochs"] == 6 and metrics["interrupted"] is False
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["final_loss"] == history[-1]["train_loss"]
    assert (out / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not reference.interrupted
    net = load_checkpoint(out / "checkpoint")
    X = np.random.default_rng(0).standard_normal((50, 2)).astype(np.float32)
    assert np.array_equal(net.forward(X), reference.net.forward(X))
    assert not [p for p in out.rglob("*.tmp")]


def test_training_learns_spiral():
    result = gn.train(str(SPECS / "spiral_mlp.json"), epochs=40, log=None, progress=False)
    assert result.out is None and result.metrics["test_accuracy"] >= 0.9
    losses = [r.train_loss for r in result.history]
    assert losses[-1] < 0.5 * losses[0]


def test_same_seed_same_run(reference):
    again = gn.train(make_run(), log=None, progress=False)
    assert comparable(again.history) == comparable(reference.history)
    assert np.array_equal(again.net.store.values, reference.net.store.values)


def test_log_lines_and_progress_bar(capsys):
    lines: list[str] = []
    gn.train(make_run(epochs=2), log=lines.append, progress=True)
    assert [line.split()[:2] for line in lines[:2]] == [["epoch", "1/2"], ["epoch", "2/2"]]
    assert lines[-1].startswith("test accuracy")
    assert "epoch 1/2" in capsys.readouterr().err  # tqdm writes to stderr


# ---- exact resume -----------------------------------------------------------------------------


def test_resume_at_an_epoch_boundary_reproduces_the_run(tmp_path):
    spiral = gn.load(str(SPECS / "spiral_mlp.json"))  # constant rate: the total number of epochs doesn't matter
    full = gn.train(spiral, out=tmp_path / "full", epochs=8, log=None, progress=False)
    gn.train(spiral, out=tmp_path / "part", epochs=3, log=None, progress=False)
    resumed = gn.train(None, resume=tmp_path / "part", epochs=8, log=None, progress=False)
    assert_same_outcome(full, resumed)
    # the extension is recorded, so a later resume knows the run has 8 epochs
    assert gn.parse_run((tmp_path / "part" / "run.json").read_text()).train.epochs == 8


def test_resume_from_a_checkpoint_without_the_shuffle_state(tmp_path, reference):
    """Checkpoints written at an epoch end by graphnet before the fix had data_rng None:
    the shuffles of the finished epochs are replayed."""
    run = make_run(schedule={"kind": "exponential", "decay": 0.8})
    full = gn.train(run, out=tmp_path / "full", log=None, progress=False)
    gn.train(run, out=tmp_path / "part", epochs=2, log=None, progress=False)
    spec, arrays, meta = read_checkpoint(tmp_path / "part" / "checkpoint")
    assert meta["position"]["epoch"] == 2 and meta["position"]["data_rng"] is not None
    meta["position"]["data_rng"] = None
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "part" / "checkpoint" / ARRAYS_FILE, **arrays)
    resumed = gn.train(None, resume=tmp_path / "part", epochs=6, log=None, progress=False)
    assert_same_outcome(full, resumed)


@pytest.mark.parametrize("epoch,iteration", [(0, 0), (0, 3), (2, 0), (3, 5), (4, PER_EPOCH - 1)],
                         ids=lambda v: str(v))
def test_ctrl_c_mid_epoch_then_resume_reproduces_the_run(tmp_path, monkeypatch, reference, epoch, iteration):
    lines: list[str] = []
    interrupt_at(monkeypatch, epoch, iteration)
    first = gn.train(make_run(), out=tmp_path / "run", log=lines.append, progress=False)
    monkeypatch.undo()
    assert first.interrupted and first.metrics["interrupted"] is True
    # the flag is seen before the next step: the step in progress is completed
    stop_epoch, stop_iteration = (epoch, iteration + 1) if iteration + 1 < PER_EPOCH else (epoch + 1, 0)
    assert len(first.history) == stop_epoch
    note = [line for line in lines if line.startswith("interrupted")]
    assert note == [f"interrupted at epoch {stop_epoch + 1}, before iteration {stop_iteration + 1} of {PER_EPOCH}; "
                    f"checkpoint saved, resume with: graphnet train --resume {tmp_path / 'run'}"]
    meta = read_checkpoint(tmp_path / "run" / "checkpoint")[2]
    assert (meta["position"]["epoch"], meta["position"]["iteration"]) == (stop_epoch, stop_iteration)
    assert meta["optimizer"]["t"] == stop_epoch * PER_EPOCH + stop_iteration
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["interrupted"] is True

    resumed = gn.train(None, resume=tmp_path / "run", log=lines.append, progress=False)
    assert not resumed.interrupted
    assert f"resuming {tmp_path / 'run'} at epoch {stop_epoch + 1}, iteration {stop_iteration + 1} of {PER_EPOCH}" \
        in lines
    assert_same_outcome(reference, resumed)
    assert json.loads((tmp_path / "run" / "history.json").read_text()) == [asdict(r) for r in resumed.history]


def test_interrupted_twice_then_resumed_twice(tmp_path, monkeypatch, reference):
    interrupt_at(monkeypatch, 1, 2)
    assert gn.train(make_run(), out=tmp_path / "run", log=None, progress=False).interrupted
    interrupt_at(monkeypatch, 3, 6)
    assert gn.train(None, resume=tmp_path / "run", log=None, progress=False).interrupted
    monkeypatch.undo()
    assert_same_outcome(reference, gn.train(None, resume=tmp_path / "run", log=None, progress=False))


def test_second_ctrl_c_stops_at_once_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    run = make_run(epochs=4)
    interrupt_at(monkeypatch, 2, 3, times=2)
    with pytest.raises(KeyboardInterrupt):
        gn.train(run, out=tmp_path / "run", log=None, progress=False)
    monkeypatch.undo()
    meta = read_checkpoint(tmp_path / "run" / "checkpoint")[2]
    assert (meta["position"]["epoch"], meta["position"]["iteration"]) == (2, 0)  # the epoch-2 checkpoint
    # and the handler is restored: Ctrl-C outside training is a KeyboardInterrupt again
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    full = gn.train(run, log=None, progress=False)
    assert_same_outcome(full, gn.train(None, resume=tmp_path / "run", log=None, progress=False))


def test_ctrl_c_without_a_run_folder(monkeypatch):
    interrupt_at(monkeypatch, 1, 1)
    result = gn.train(make_run(epochs=3), log=None, progress=False)
    assert result.interrupted and len(result.history) == 1 and result.out is None


def test_resume_after_completion_changes_nothing(reference, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(reference.out, out)
    before = (out / "checkpoint" / ARRAYS_FILE).read_bytes()
    again = gn.train(None, resume=out, log=None, progress=False)
    assert not again.interrupted
    assert (out / "checkpoint" / ARRAYS_FILE).read_bytes() == before
    assert comparable(again.history) == comparable(reference.history)
    assert again.metrics["test_accuracy"] == reference.metrics["test_accuracy"]
    assert json.loads((out / "history.json").read_text()) == json.loads((reference.out / "history.json").read_text())


def test_resume_needs_a_run_folder_with_a_checkpoint(tmp_path):
    with pytest.raises(gn.SpecError, match="no run.json"):
        gn.train(None, resume=tmp_path, log=None)
    (tmp_path / "run.json").write_text(make_run().to_json())
    with pytest.raises(gn.CheckpointError, match="missing"):
        gn.train(None, resume=tmp_path, log=None)


@pytest.mark.parametrize("position", [None, 3, {"epoch": -1, "iteration": 0}, {"epoch": 1, "iteration": "2"},
                                      {"epoch": 1, "iteration": 2, "data_rng": "x"},
                                      {"epoch": 1, "iteration": 2, "data_rng": {"state": 1}},
                                      {"epoch": 1, "iteration": 2, "loss_sum": "x"}])
def test_resume_with_a_garbage_position_is_a_checkpoint_error(tmp_path, position):
    gn.train(make_run(epochs=1), out=tmp_path, log=None, progress=False)
    spec, arrays, meta = read_checkpoint(tmp_path / "checkpoint")
    meta["position"] = position
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "checkpoint" / ARRAYS_FILE, **arrays)
    with pytest.raises(gn.CheckpointError) as info:
        gn.train(None, resume=tmp_path, epochs=2, log=None, progress=False)
    assert ARRAYS_FILE in str(info.value)


# ---- what train accepts -----------------------------------------------------------------------


def test_overrides_are_applied_and_recorded(tmp_path):
    result = gn.train(str(SPECS / "spiral_mlp.json"), out=tmp_path, epochs=2, batch_size=16, learning_rate=0.05,
                      data="spiral", log=None, progress=False)
    saved = gn.parse_run((tmp_path / "run.json").read_text()).train
    assert (saved.epochs, saved.batch_size, saved.optimizer.learning_rate) == (2, 16, 0.05)
    assert saved.data_spec().val_size == 0.1  # the rest of the data spec is kept
    assert len(result.history) == 2
    assert read_checkpoint(tmp_path / "checkpoint")[2]["optimizer"]["t"] == 2 * math.ceil(SPIRAL_TRAIN / 16)


@pytest.mark.parametrize("override,field", [
    ({"epochs": 0}, "train.epochs"), ({"epochs": -3}, "train.epochs"), ({"epochs": 2.5}, "train.epochs"),
    ({"epochs": True}, "train.epochs"), ({"epochs": "3"}, "train.epochs"), ({"epochs": 10**9}, "train.epochs"),
    ({"batch_size": 0}, "train.batch_size"), ({"batch_size": 1.5}, "train.batch_size"),
    ({"learning_rate": 0.0}, "train.optimizer.learning_rate"),
    ({"learning_rate": -1e-3}, "train.optimizer.learning_rate"),
    ({"learning_rate": float("nan")}, "train.optimizer.learning_rate"),
    ({"learning_rate": float("inf")}, "train.optimizer.learning_rate"),
    ({"learning_rate": "fast"}, "train.optimizer.learning_rate"),
    ({"data": ""}, "train.data"),
])
def test_bad_overrides_are_spec_errors(override, field, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no serializer warnings on the way
        with pytest.raises(gn.SpecError) as info:
            gn.train(str(SPECS / "spiral_mlp.json"), out=tmp_path / "run", log=None, progress=False, **override)
    assert field in str(info.value)
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_unknown_data_override_is_a_data_error():
    with pytest.raises(gn.DataError, match="no-such-data"):
        gn.train(str(SPECS / "spiral_mlp.json"), data="no-such-data", log=None)


def test_a_network_spec_is_not_a_run(tmp_path):
    with pytest.raises(gn.SpecError) as info:
        gn.train(str(SPECS / "two_layer_net.json"), out=tmp_path / "x", log=None)
    message = str(info.value)
    assert "specs/two_layer_net.json" in message and "network spec" in message and '"train"' in message
    with pytest.raises(gn.SpecError, match="network spec"):
        gn.train(gn.load(str(SPECS / "two_layer_net.json")), log=None)
    with pytest.raises(TypeError, match="RunSpec"):
        gn.train(None, log=None)  # type: ignore[arg-type]
    assert not (tmp_path / "x").exists()


# ---- non-finite losses --------------------------------------------------------------------------


def sgd_spiral(learning_rate: float, epochs: int) -> gn.RunSpec:
    return make_run(epochs=epochs, network=gn.load(str(SPECS / "spiral_mlp.json")).network.model_dump(mode="json"),
                    optimizer={"rule": "sgd", "learning_rate": learning_rate}, schedule={"kind": "constant"})


def test_exploding_training_stops_with_a_non_finite_error(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the overflow is reported by the error, not by numpy warnings
        with pytest.raises(gn.NonFiniteError) as info:
            gn.train(sgd_spiral(1e6, 5), out=tmp_path, log=None, progress=False)
    message = str(info.value)
    assert message.startswith("epoch 1, iteration ")
    assert "at step " in message and "first non-finite value at node fc" in message
    assert "no checkpoint was written yet" in message  # it does not point at a checkpoint that isn't there
    assert not (tmp_path / "checkpoint").exists()


def test_last_good_checkpoint_survives_a_non_finite_loss(tmp_path):
    good = gn.train(sgd_spiral(0.1, 2), out=tmp_path, log=None, progress=False)
    before = (tmp_path / "checkpoint" / ARRAYS_FILE).read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(gn.NonFiniteError) as info:  # continue at a rate of a million
            gn.train(None, resume=tmp_path, epochs=5, learning_rate=1e6, log=None, progress=False)
    message = str(info.value)
    assert message.startswith("epoch 3, iteration ") and "node fc" in message
    assert f"the last good checkpoint is {tmp_path / 'checkpoint'}" in message
    assert (tmp_path / "checkpoint" / ARRAYS_FILE).read_bytes() == before
    net = load_checkpoint(tmp_path / "checkpoint")
    for name in good.net.params:  # exactly the parameters after the last good epoch
        assert np.array_equal(net.params[name], good.net.params[name]), name
        assert np.all(np.isfinite(net.params[name]))
    assert json.loads((tmp_path / "history.json").read_text()) == [asdict(r) for r in good.history]


# ---- Fashion-MNIST ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not FASHION.is_dir(), reason=f"Fashion-MNIST is not installed at {FASHION} "
                                                  "(Debian package dataset-fashion-mnist)")
def test_fashion_mnist_one_epoch_beats_80_percent(tmp_path):
    result = gn.train(str(SPECS / "fashion_mlp.json"), out=tmp_path, epochs=1, log=None, progress=False)
    assert result.metrics["test_accuracy"] > 0.80, result.metrics
    assert result.history[0].val_accuracy > 0.80
    assert gn.parse_run((tmp_path / "run.json").read_text()).train.epochs == 1
    net = load_checkpoint(tmp_path / "checkpoint", batch_size=256)
    X = np.random.default_rng(0).random((256, 784), dtype=np.float32)
    assert np.array_equal(net.forward(X), result.net.forward(X))


def test_a_last_batch_of_one_example_is_dropped_with_batchnorm():
    """216 examples in batches of 43: five of 43 and one of 1, which batchnorm cannot train on."""
    assert SPIRAL_TRAIN % 43 == 1
    result = gn.train(make_run(epochs=2), batch_size=43, log=None, progress=False)
    assert [record.epoch for record in result.history] == [1, 2]
    assert all(math.isfinite(record.train_loss) for record in result.history)


@pytest.mark.parametrize("examples, batch, fewest, expected", [
    (216, 43, 2, 5), (216, 43, 1, 6), (216, 32, 2, 7), (1, 32, 2, 1), (64, 32, 2, 2), (65, 1, 2, 65)])
def test_batches_per_epoch(examples, batch, fewest, expected):
    assert training.batches_per_epoch(examples, batch, fewest) == expected
