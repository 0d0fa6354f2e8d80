"""Train-time augmentation (graphnet.training.augment): the draws, the batches the loop trains
on (augmented, labels unchanged), what it leaves alone (validation, test, the served model) and
a training step with it allocating nothing. Resume and MPI ranks: tests/system/training/."""
from __future__ import annotations

from contextlib import ExitStack

import numpy as np
import pytest

import graphnet as gn
from graphnet.kernels import available_backends, get_backend
from graphnet.ops.tasks import evaluate
from graphnet.runtime.optimizer import Optimizer
from graphnet.spec import AugmentSpec
from graphnet.training.augment import Augmenter, epoch_draws
from graphnet.training.dataset import load_run_data
from graphnet.training.loop import EpochLoop
from graphnet.training.setup import set_up

from tests._support.allocations import counting_numpy_allocations
from tests._support.image_data import SIZE, image_arrays, image_run

FLIP_SHIFT = {"flip": "horizontal", "shift": 2}


# ---- the draws -------------------------------------------------------------------------------

def test_the_draws_are_a_function_of_seed_and_epoch():
    augment = AugmentSpec(**FLIP_SHIFT)
    first = epoch_draws(augment, 7, 3, 500)
    assert all(np.array_equal(a, b) for a, b in zip(first, epoch_draws(augment, 7, 3, 500)))
    for other in (epoch_draws(augment, 8, 3, 500), epoch_draws(augment, 7, 4, 500)):
        assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_the_draws_cover_their_ranges():
    flip, dy, dx = epoch_draws(AugmentSpec(**FLIP_SHIFT), 0, 0, 4000)
    assert set(np.unique(flip)) == {0, 1} and 0.45 < flip.mean() < 0.55
    for shift in (dy, dx):
        assert set(np.unique(shift)) == {-2, -1, 0, 1, 2}
    flip, dy, dx = epoch_draws(AugmentSpec(shift=1), 0, 0, 1000)
    assert not flip.any() and set(np.unique(dy)) == {-1, 0, 1}
    flip, dy, dx = epoch_draws(AugmentSpec(flip="horizontal"), 0, 0, 1000)
    assert flip.any() and not dy.any() and not dx.any()


@pytest.mark.parametrize("backend", available_backends())
def test_apply_uses_the_draws_of_the_batch_positions(backend):
    kernels = get_backend(backend)
    augmenter = Augmenter(AugmentSpec(**FLIP_SHIFT), 1, 8, (1, SIZE, SIZE), np.dtype(np.float32), kernels)
    augmenter.start_epoch(2, 30)
    X = np.random.default_rng(0).random((5, 1, SIZE, SIZE), dtype=np.float32)
    got = augmenter.apply(X, 20).copy()
    flip, dy, dx = epoch_draws(AugmentSpec(**FLIP_SHIFT), 1, 2, 30)
    expected = np.empty_like(X)
    get_backend("numpy").flip_shift_images(X, flip[20:25], dy[20:25], dx[20:25], expected)
    assert np.array_equal(got, expected)


# ---- the loop --------------------------------------------------------------------------------

def batches_trained_on(monkeypatch, run: dict, arrays: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train `run` on `arrays`, recording a copy of every batch an optimizer step was given."""
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    real = Optimizer.step

    def spy(self, X, y):  # noqa: ANN001, ANN202
        seen.append((X.copy(), y.copy()))
        return real(self, X, y)

    monkeypatch.setattr(Optimizer, "step", spy)
    gn.train(run, data=arrays, log=None, progress=False)
    monkeypatch.undo()
    return seen


def test_training_batches_are_augmented_by_their_position_and_keep_their_labels(monkeypatch):
    run, arrays = image_run("data=", FLIP_SHIFT, epochs=2), image_arrays()
    seen = batches_trained_on(monkeypatch, run, arrays)
    dataset = load_run_data(gn.parse_run(run), arrays)[0]
    X_train, y_train = dataset["X_train"], dataset["y_train"]
    shuffling, batch, twin = np.random.default_rng([3, 1]), 16, get_backend("numpy")  # the run's seed is 3
    expected, changed = [], 0
    for epoch in range(2):
        order = shuffling.permutation(len(X_train))
        flip, dy, dx = epoch_draws(AugmentSpec(**FLIP_SHIFT), 3, epoch, len(X_train))
        for start in range(0, len(order), batch):
            rows = order[start:start + batch]
            X = np.empty_like(X_train[rows])
            twin.flip_shift_images(X_train[rows], *(d[start:start + len(rows)] for d in (flip, dy, dx)), X)
            expected.append((X, y_train[rows]))
            changed += not np.array_equal(X, X_train[rows])
    assert len(seen) == len(expected)
    for (X, y), (X_expected, y_expected) in zip(seen, expected):
        assert np.array_equal(y, y_expected)
        assert np.array_equal(X, X_expected)
    assert changed == len(expected)  # every batch has some example flipped or moved


def test_an_augmentation_that_changes_nothing_trains_as_none(monkeypatch):
    arrays = image_arrays()
    plain = batches_trained_on(monkeypatch, image_run("data="), arrays)
    still = batches_trained_on(monkeypatch, image_run("data=", {"flip": "none", "shift": 0}), arrays)
    assert len(plain) == len(still)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(plain, still))


def test_validation_test_and_the_served_model_see_the_images_unchanged(tmp_path):
    run, arrays = image_run("data=", FLIP_SHIFT, epochs=2), image_arrays()
    result = gn.train(run, data=arrays, out=tmp_path / "run", log=None, progress=False)
    dataset = load_run_data(gn.parse_run(run), arrays)[0]
    record = result.history[-1]
    assert record.val_accuracy == evaluate(result.net, dataset["X_val"], dataset["y_val"])["accuracy"]
    served = gn.load_checkpoint(tmp_path / "run" / "checkpoint")
    assert result.metrics["test_accuracy"] == evaluate(served, dataset["X_test"], dataset["y_test"])["accuracy"]
    assert np.array_equal(served.predict(arrays["X_test"]), result.net.predict(arrays["X_test"]))
    assert "augment" not in (tmp_path / "run" / "checkpoint" / "network.json").read_text()


@pytest.mark.parametrize("backend", available_backends())
def test_a_training_step_with_augmentation_allocates_nothing(backend):
    run = image_run("data=", FLIP_SHIFT, backend=backend)
    with ExitStack() as hold:
        setup = set_up(run, out=None, data=image_arrays(), epochs=None, batch_size=None, learning_rate=None,
                       resume=None, backend=None, overwrite=False, hold=hold, say=lambda line: None)
        loop = EpochLoop(setup.run, setup.net, setup.optimizer, setup.dataset, None, setup.saved, lambda line: None,
                         show_progress=False, unsaved_overrides=False, good_checkpoint=None)
        order = np.random.default_rng(0).permutation(len(setup.dataset["X_train"]))
        loop.augmenter.start_epoch(0, len(order))
        loop._step(0, 0, order)  # warm-up: compile, scratch, optimizer state
        with counting_numpy_allocations() as sizes:
            loop._step(0, 1, order)
        assert sizes == [], f"a training step allocated numpy memory: {sizes} bytes"
