"""One model on every path: every way a model is made, crossed with every way it is served.

The data are raw features on very different scales (standardized inside the model), a
text column and missing cells (categories one-hot and missing cells imputed inside the
model, with a category the training data never saw in the test rows), text class labels
(class names inside the model) and a label column among the feature columns (feature
columns, by name, inside the model). A route that drops any part of the
model record (graphnet.model.record) serves different predictions than it reports in
metrics.json, or a different record than one process trains: a new route or a new piece
of model state fails here until every path carries it.
"""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

import graphnet as gn
from graphnet.cli import main
from graphnet.model.record import ModelRecord
from graphnet.training.distributed import find_mpiexec

from tests._support.extras import HAVE_MPI4PY
from tests._support.task_data import SOILS, SPECIES, flowers_table, write_table_csv

HAVE_ONNX = all(__import__("importlib").util.find_spec(name) for name in ("onnx", "onnxruntime"))
HAVE_OPTUNA = __import__("importlib").util.find_spec("optuna") is not None
EPOCHS = 12
COLUMNS = ["f0", "f1", "f2", "f3", "soil"]
SERVE_ORDER = ["id", "f3", "soil", "species", "f1", "f0", "f2"]  # another order than training's, and an extra column
WIDTH = 4 + len(SOILS) + 2  # the numbers, then the soils with the missing and unknown slots


def run_document(data: Path, test_file: Path, **train: object) -> dict:
    return {
        "network": {
            "name": "flowers",
            "inputs": {"x": {"shape": [WIDTH]}},
            "labels": {"y": {"classes": 3}},
            "nodes": [{"id": "fc1", "op": "affine", "inputs": ["x"], "units": 16, "activation": "relu"},
                      {"id": "fc2", "op": "affine", "inputs": ["fc1"], "units": 3},
                      {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc2", "y"]}],
            "outputs": ["fc2"], "loss": "loss"},
        "train": {"data": {"name": str(data), "normalize": "standardize",
                           "options": {"label_column": "species", "test_file": str(test_file)}},
                  "optimizer": {"rule": "adam", "learning_rate": 0.01},
                  "epochs": EPOCHS, "batch_size": 16, "seed": 0, **train},
    }


def write_run(path: Path, document: dict) -> Path:
    path.write_text(json.dumps(document, indent=1))
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The data files and the one-process run every other route is compared with."""
    root = tmp_path_factory.mktemp("seams")
    X, names = flowers_table(300, seed=4, unseen=3)
    train_csv = write_table_csv(root / "train.csv", X[:240], names[:240], COLUMNS, label="species")
    test_csv = write_table_csv(root / "test.csv", X[240:], names[240:], COLUMNS, label="species")
    with open(root / "serve.csv", "w", newline="") as handle:  # the test rows, columns reordered by name
        writer = csv.writer(handle)
        writer.writerow(SERVE_ORDER)
        for i, (x, name) in enumerate(zip(X[240:], names[240:])):
            cells = {"id": str(i), "species": name,
                     **{c: "" if v is None else v if isinstance(v, str) else repr(float(v)) for c, v in zip(COLUMNS, x)}}
            writer.writerow([cells[column] for column in SERVE_ORDER])
    write_table_csv(root / "features.csv", X[240:], None, COLUMNS)  # the test rows' features alone, in order
    document = run_document(train_csv, test_csv)
    run_file = write_run(root / "flowers.json", document)
    assert main(["train", str(run_file), "--out", str(root / "one"), "--no-progress"]) == 0
    return {"root": root, "run_file": run_file, "document": document, "X_test": X[240:], "y_test": names[240:],
            "X_train": X[:240], "y_train": names[:240]}


def one_process(world: dict) -> Path:
    return world["root"] / "one"


def two_workers(world: dict) -> Path:
    if not HAVE_MPI4PY or find_mpiexec() is None:
        pytest.skip("MPI is in the [mpi] extra: pip install 'graphnet[mpi]'")
    out = world["root"] / "workers"
    assert main(["train", str(world["run_file"]), "--out", str(out), "--workers", "2", "--no-progress"]) == 0
    return out


def sweep_trial(world: dict) -> Path:
    if not HAVE_OPTUNA:
        pytest.skip("Optuna is in the [sweep] extra: pip install 'graphnet[sweep]'")
    sweep = {"run": world["document"], "space": {"train.optimizer.learning_rate": {"choice": [0.01, 0.02]}},
             "metric": "val_accuracy", "direction": "maximize", "seed": 0}
    sweep_file = write_run(world["root"] / "sweep.json", sweep)
    assert main(["sweep", str(sweep_file), "--trials", "1", "--out", str(world["root"] / "sweep")]) == 0
    return world["root"] / "sweep" / "trial-0"


def resumed(world: dict) -> Path:
    out = world["root"] / "resumed"
    assert main(["train", str(world["run_file"]), "--out", str(out), "--epochs", "3", "--no-progress"]) == 0
    assert main(["train", "--resume", str(out), "--epochs", str(EPOCHS), "--no-progress"]) == 0
    return out


def from_checkpoint(world: dict) -> Path:
    document = run_document(Path(world["document"]["train"]["data"]["name"]),
                            Path(world["document"]["train"]["data"]["options"]["test_file"]),
                            init_from=str(one_process(world)), epochs=3)
    del document["train"]["data"]["normalize"]  # the run's default: the source's preprocessing is kept
    out = world["root"] / "init-checkpoint"
    assert main(["train", str(write_run(world["root"] / "init.json", document)), "--out", str(out),
                 "--no-progress"]) == 0
    return out


def from_onnx(world: dict) -> Path:
    if not HAVE_ONNX:
        pytest.skip("ONNX is in the [onnx] extra: pip install 'graphnet[onnx]'")
    model = world["root"] / "source.onnx"
    if not model.exists():
        assert main(["export", str(one_process(world)), str(model)]) == 0
    document = run_document(Path(world["document"]["train"]["data"]["name"]),
                            Path(world["document"]["train"]["data"]["options"]["test_file"]),
                            init_from=str(model), epochs=3)
    del document["train"]["data"]["normalize"]
    out = world["root"] / "init-onnx"
    assert main(["train", str(write_run(world["root"] / "init-onnx.json", document)), "--out", str(out),
                 "--no-progress"]) == 0
    return out


def from_arrays(world: dict) -> Path:
    out = world["root"] / "arrays"
    run = gn.parse_run({**world["document"], "train": {**world["document"]["train"],
                                                       "data": {"name": "arrays", "normalize": "standardize"}}})
    gn.train(run, out=out, progress=False, log=None,
             data={"X_train": world["X_train"], "y_train": world["y_train"],
                   "X_test": world["X_test"], "y_test": world["y_test"]})
    return out


ROUTES = {"one process": one_process, "--workers 2": two_workers, "sweep trial": sweep_trial,
          "resumed run": resumed, "init_from checkpoint": from_checkpoint, "init_from .onnx": from_onnx,
          "gn.train(data=dict)": from_arrays}
MADE: dict[str, Path] = {}


def made(route: str, world: dict) -> Path:
    """The run folder `route` trained (once per test session)."""
    if route not in MADE:
        MADE[route] = ROUTES[route](world)
    return MADE[route]


def knows_columns(route: str) -> bool:
    """Arrays have no column names: that model reads a CSV's columns in order."""
    return route != "gn.train(data=dict)"


# ---- the ways a model is served: each gives the test rows' predicted class names --------------

def served_by_predict_method(run: Path, world: dict, route: str, capsys) -> np.ndarray:
    return gn.load_checkpoint(run).predict(world["X_test"])


def served_by_predict_command(run: Path, world: dict, route: str, capsys) -> np.ndarray:
    out = run / "predictions.csv"
    examples = world["root"] / ("serve.csv" if knows_columns(route) else "features.csv")
    assert main(["predict", str(run), "--data", str(examples), "--out", str(out)]) == 0
    with open(out, newline="") as handle:
        return np.array([row["prediction"] for row in csv.DictReader(handle)])


def served_by_eval_command(run: Path, world: dict, route: str, capsys) -> float:
    capsys.readouterr()
    labelled = ["serve.csv"] if knows_columns(route) else ["test.csv", "--label-column", "species"]
    assert main(["eval", str(run), "--data", str(world["root"] / labelled[0]), *labelled[1:]]) == 0
    found = re.search(r"accuracy ([0-9.]+)% on (\d+) examples", capsys.readouterr().out)
    assert found and int(found.group(2)) == len(world["X_test"]), found
    return float(found.group(1))


def served_by_onnx_runtime(run: Path, world: dict, route: str, capsys) -> np.ndarray:
    if not HAVE_ONNX:
        pytest.skip("ONNX is in the [onnx] extra: pip install 'graphnet[onnx]'")
    import onnx
    from tests._support.onnx_checks import run_ort, table_feeds

    model = run / "served.onnx"
    assert main(["export", str(run), str(model)]) == 0
    names = json.loads({p.key: p.value for p in onnx.load(str(model)).metadata_props}["graphnet.class_names"])
    scores = run_ort(model, table_feeds(model, world["X_test"]))["fc2"]
    return np.asarray(names)[scores.argmax(axis=1)]


SERVED = {"net.predict": served_by_predict_method, "graphnet predict": served_by_predict_command,
          "graphnet eval --data": served_by_eval_command, "ONNX Runtime": served_by_onnx_runtime}


@pytest.mark.slow
@pytest.mark.parametrize("serving", SERVED)
@pytest.mark.parametrize("route", ROUTES)
def test_every_route_serves_the_model_it_reports(world, route, serving, capsys):
    run = made(route, world)
    reported = json.loads((run / "metrics.json").read_text())["test_accuracy"]
    served = SERVED[serving](run, world, route, capsys)
    if serving == "graphnet eval --data":
        assert served == pytest.approx(100 * reported, abs=0.005)
        return
    assert served.dtype.kind == "U" and set(served) <= set(SPECIES), "class names, not indices"
    assert np.mean(served == world["y_test"]) == pytest.approx(reported, abs=1e-12)
    np.testing.assert_array_equal(served, gn.load_checkpoint(run).predict(world["X_test"]))


def comparable(record: ModelRecord, columns: bool) -> tuple[dict, dict]:
    meta, arrays = record.saved()
    if not columns:  # the columns of arrays are their indices
        meta["preprocessing"].update(feature_names=None, label_column=None)
        meta["encoding"]["named"] = None
        for column in meta["encoding"]["columns"]:
            column["name"] = None
    return meta, arrays


@pytest.mark.slow
@pytest.mark.parametrize("route", ROUTES)
def test_every_route_makes_the_whole_model_record(world, route):
    """Every route's checkpoint holds the record one process trains: the same preprocessing
    (mode, columns, fitted values to float32 rounding: an ONNX model stores them as float32),
    class names and column encoding (the kinds of the columns, the training split's soils
    and the median of f1)."""
    expected_meta, expected_arrays = comparable(ModelRecord.of(gn.load_checkpoint(one_process(world))),
                                                knows_columns(route))
    assert [c["kind"] for c in expected_meta["encoding"]["columns"]] == ["number"] * 4 + ["category"]
    assert expected_meta["encoding"]["columns"][4]["categories"] == list(SOILS)
    meta, arrays = comparable(ModelRecord.of(gn.load_checkpoint(made(route, world))), knows_columns(route))
    assert meta == expected_meta
    assert arrays.keys() == expected_arrays.keys()
    for key in arrays:
        np.testing.assert_allclose(arrays[key], expected_arrays[key], rtol=1e-6, err_msg=key)
