"""The input preprocessing fitted in training travels with the model: saved, restored, applied to raw features."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import graphnet as gn
from graphnet.data import load_with_info
from graphnet.data.preprocessing import Preprocessing
from graphnet.errors import CheckpointError, DataError
from graphnet.model.checkpoint import ARRAYS_FILE, read_checkpoint
from graphnet.model.record import CLASS_NAMES_KEY, PREPROCESSING_KEY
from graphnet.system.fileio import write_npz_atomic

from tests._support.task_data import SPECIES, classifier_run, named_classes, write_named_csv


def train_named(folder: Path, normalize: str = "standardize", epochs: int = 15) -> gn.training.TrainResult:
    X, names = named_classes(300)
    csv = write_named_csv(folder / "flowers.csv", X, names)
    run = folder / "run.json"
    run.write_text(json.dumps(classifier_run(str(csv), normalize=normalize, epochs=epochs, label_column="species")))
    return gn.train(str(run), out=folder / "run", log=None, progress=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> gn.training.TrainResult:
    return train_named(tmp_path_factory.mktemp("named"))


def test_training_fits_the_normalization_on_the_training_split_and_keeps_it(trained):
    record = trained.net.preprocessing
    assert record is not None and record.mode == "standardize" and record.input == "x"
    raw, _ = load_with_info(trained.out.parent / "flowers.csv", normalize="none", label_column="species")
    train = raw["X_train"].astype(np.float64)  # the float32 features training saw, before the fit
    np.testing.assert_allclose(record.shift, train.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(record.scale, train.std(axis=0), rtol=1e-6)
    assert record.feature_names == ("f0", "f1", "f2", "f3") and record.label_column == "species"
    assert trained.net.class_names == SPECIES


def test_the_checkpoint_restores_preprocessing_and_class_names(trained):
    net = gn.load_checkpoint(trained.out)
    assert net.class_names == SPECIES
    assert net.preprocessing.description() == trained.net.preprocessing.description()
    np.testing.assert_array_equal(net.preprocessing.shift, trained.net.preprocessing.shift)
    np.testing.assert_array_equal(net.preprocessing.scale, trained.net.preprocessing.scale)


def test_predict_on_raw_features_equals_forward_on_the_normalized_ones(trained):
    net = gn.load_checkpoint(trained.out)
    raw, info = load_with_info(trained.out.parent / "flowers.csv", normalize="none", label_column="species")
    normalized, _ = load_with_info(trained.out.parent / "flowers.csv", normalize="standardize",
                                   label_column="species")
    names = net.predict(raw["X_test"])
    assert names.dtype.kind == "U" and set(names) <= set(SPECIES)
    np.testing.assert_array_equal(names, np.asarray(SPECIES)[net.forward(normalized["X_test"]).argmax(axis=1)])
    truth = np.asarray(info.class_names)[raw["y_test"]]
    assert (names == truth).mean() > 0.9  # raw features on scales 1000x apart: only right if standardized


def test_an_old_checkpoint_without_preprocessing_loads_with_none(trained, tmp_path):
    folder = tmp_path / "old"
    trained.net.save(folder)
    spec, arrays, meta = read_checkpoint(folder)
    assert any(k.startswith("preprocessing/") for k in arrays) and PREPROCESSING_KEY in meta
    old = {k: v for k, v in arrays.items() if not k.startswith("preprocessing/")}
    old["meta"] = np.array(json.dumps({k: v for k, v in meta.items() if k not in (PREPROCESSING_KEY, CLASS_NAMES_KEY)}))
    write_npz_atomic(folder / ARRAYS_FILE, old)
    net = gn.load_checkpoint(folder)
    assert net.preprocessing is None and net.class_names is None
    X = np.zeros((2, 4), np.float32)
    np.testing.assert_array_equal(net.predict(X), net.forward(X).argmax(axis=1))


def tamper(folder: Path, change) -> None:
    """Rewrite a checkpoint's arrays and meta through `change(arrays, meta)`."""
    _, arrays, meta = read_checkpoint(folder)
    change(arrays, meta)
    arrays["meta"] = np.array(json.dumps(meta))
    write_npz_atomic(folder / ARRAYS_FILE, arrays)


@pytest.mark.parametrize("change, message", [
    (lambda a, m: a.__setitem__("preprocessing/scale", np.zeros(4)), "scale' has zeros"),
    (lambda a, m: a.__setitem__("preprocessing/shift", np.full(4, np.nan)), "non-finite values in 'preprocessing/shift'"),
    (lambda a, m: a.pop("preprocessing/shift"), "missing 'preprocessing/shift'"),
    (lambda a, m: m[PREPROCESSING_KEY].update(raw_shape=[5], feature_names=None), r"shift' has shape \(4,\), expected \(\) or \(5,\)"),
    (lambda a, m: m[PREPROCESSING_KEY].update(raw_shape=[5], feature_names=None, mode="none"), "makes 5 features"),
    (lambda a, m: m.__setitem__(CLASS_NAMES_KEY, ["a", "b"]), "2 class names for a label of 3 classes"),
    (lambda a, m: m[PREPROCESSING_KEY].update(mode="whiten"), "mode 'whiten'"),
])
def test_a_damaged_preprocessing_is_a_located_checkpoint_error(trained, tmp_path, change, message):
    folder = tmp_path / "ckpt"
    trained.net.save(folder)
    tamper(folder, change)
    with pytest.raises(CheckpointError, match=message) as error:
        gn.load_checkpoint(folder)
    assert str(folder / ARRAYS_FILE) in str(error.value)


def test_saving_refuses_a_non_finite_preprocessing(trained, tmp_path):
    net = gn.load_checkpoint(trained.out)
    record = net.preprocessing
    net.preprocessing = Preprocessing(record.input, record.raw_shape, "standardize", np.full(4, np.inf), record.scale)
    with pytest.raises(CheckpointError, match="preprocessing/shift"):
        net.save(tmp_path / "bad")


def test_preprocessing_reshapes_images_and_scales_uint8_as_the_loader_does():
    record = Preprocessing("x", (2, 3), "scale", np.zeros(()), np.array(255.0))
    images = np.arange(12, dtype=np.uint8).reshape(2, 2, 3) * 20
    out = record.apply(images, (6,), np.float32)
    assert out.shape == (2, 6) and out.dtype == np.float32
    np.testing.assert_array_equal(out, images.reshape(2, 6).astype(np.float32) / np.float32(255))
    with pytest.raises(DataError, match=r"do not fit the model's \(2, 3\)"):
        record.apply(np.zeros((2, 5)), (6,), np.float32)
