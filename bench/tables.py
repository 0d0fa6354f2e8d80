"""A table like UCI Adult (numbers, text categories, missing cells, a 1:4 binary label):
graphnet trained from the raw CSV against scikit-learn's HistGradientBoostingClassifier
(native categorical support) and MLPClassifier (one-hot + imputation + scaling), all three
on the same train/validation/test split.

    python bench/tables.py [--rows 30000] [--seed 0] [--csv FILE --label COLUMN] [--results DIR]
        # writes DIR/tables.json, prints a markdown table

The CSV is made by graphnet.data.synthetic.adult_like (seeded), or given with --csv (a
header row, comma-separated, a two-class label column). graphnet trains from the raw file
through `gn.train` and a run document (train.data.options: categorical, missing, impute,
stratify; class_weight "balanced"; early stopping on val_loss, the best epoch restored).

The split is graphnet's own: `graphnet.data.load` of a file of row numbers with the same
labels, seed and split settings gives the rows of each split (graphnet's split depends on
the labels and the seed, not the features). The script checks it: graphnet's test
accuracy and log loss in metrics.json equal those of the served model on those rows.

scikit-learn fits on the training rows, uses the validation rows to stop and scores the test
rows: HistGradientBoosting through `X_val` (its early stopping, patience 10, at most 1000
rounds); the MLP one `partial_fit` epoch at a time, with graphnet's network, optimizer, batch
size and patience, its best epoch kept. Both weigh the classes as "balanced" does. Every
figure is computed by sklearn.metrics from each model's test predictions. Training seconds:
graphnet's epochs (history.json: the steps and each epoch's validation metrics);
scikit-learn's preprocessing fit and model fit (the MLP's validation loss per epoch included).
"""
from __future__ import annotations

import argparse
import copy
import csv
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # graphnet from this checkout when run as a script
sys.path.insert(0, str(Path(__file__).parent))
from report import add_results_option, write_report  # noqa: E402

ROWS = 30000
LABEL = "income"
HIDDEN = (64, 32)
LEARNING_RATE = 1e-3
BATCH = 128
EPOCHS = 100
PATIENCE = 5
MISSING = ["", "NA", "NaN", "?"]
BOOSTING_ROUNDS = 1000  # at most; its early stopping on the validation rows ends it
MODELS = ("graphnet", "hist_gradient_boosting", "mlp")


def make_csv(path: Path, rows: int, seed: int) -> Path:
    """An Adult-like CSV of `rows` rows (graphnet.data.synthetic.adult_like), label column "income"."""
    from graphnet.data.synthetic import ADULT_COLUMNS, adult_like, write_table_csv

    X, income = adult_like(rows, seed=seed)
    return write_table_csv(path, X, income, ADULT_COLUMNS, label=LABEL)


def read_table(path: Path, label: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(feature column names, cells (N, C) str, labels (N,) str) of a comma-separated CSV with a header."""
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], [row for row in rows[1:] if row]
    if label not in header:
        raise SystemExit(f"{path}: no label column {label!r} (columns: {', '.join(header)})")
    cells = np.array(body, dtype=object)
    at = header.index(label)
    keep = [j for j in range(len(header)) if j != at]
    return [header[j] for j in keep], cells[:, keep].astype(str), cells[:, at].astype(str)


def data_settings(path: Path, label: str) -> dict[str, Any]:
    return {"name": str(path), "normalize": "standardize",
            "options": {"label_column": label, "categorical": [], "missing": MISSING, "impute": "median",
                        "stratify": True}}


def run_document(path: Path, label: str, width: int, seed: int, epochs: int) -> dict[str, Any]:
    """graphnet's run: an MLP of HIDDEN ReLU layers over `width` features, two scores."""
    nodes, last = [], "x"
    for i, units in enumerate(HIDDEN, 1):
        nodes.append({"id": f"fc{i}", "op": "affine", "inputs": [last], "units": units, "activation": "relu"})
        last = f"fc{i}"
    nodes += [{"id": "scores", "op": "affine", "inputs": [last], "units": 2},
              {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["scores", "y"]}]
    return {"network": {"name": "table", "inputs": {"x": {"shape": [width]}}, "labels": {"y": {"classes": 2}},
                        "nodes": nodes, "outputs": ["scores"], "loss": "loss"},
            "train": {"data": data_settings(path, label), "optimizer": {"rule": "adam", "learning_rate": LEARNING_RATE},
                      "epochs": epochs, "batch_size": BATCH, "seed": seed, "class_weight": "balanced",
                      "early_stopping": {"metric": "val_loss", "patience": PATIENCE}}}


def graphnet_split(folder: Path, labels: np.ndarray, label: str, seed: int) -> dict[str, np.ndarray]:
    """The rows (int indices into the file) of graphnet's train, val and test splits: graphnet's
    loader on a file of the same labels whose one feature is the row number."""
    from graphnet.data import load

    rows = folder / "rows.csv"
    rows.write_text(f"{label},row\n" + "".join(f"{name},{i}\n" for i, name in enumerate(labels)))
    options = {k: v for k, v in data_settings(rows, label)["options"].items() if k in ("label_column", "stratify")}
    data = load(rows, normalize=None, seed=seed, dtype="float64", **options)
    return {split: data[f"X_{split}"][:, 0].astype(np.int64) for split in ("train", "val", "test")}


def train_graphnet(path: Path, folder: Path, label: str, seed: int, epochs: int) -> dict[str, Any]:
    """Train graphnet from the raw CSV; the served model, metrics.json, the log and the seconds."""
    import graphnet as gn
    from graphnet.data import load_with_info

    data, _ = load_with_info(path, normalize=None, seed=seed, **data_settings(path, label)["options"])
    lines: list[str] = []
    start = time.perf_counter()
    result = gn.train(run_document(path, label, data["X_train"].shape[1], seed, epochs), out=folder / "run",
                      progress=False, log=lines.append)
    wall = time.perf_counter() - start
    return {"net": gn.load_checkpoint(folder / "run"), "metrics": result.metrics, "log": lines, "wall": wall,
            "seconds": sum(record.seconds for record in result.history), "epochs": len(result.history)}


def sklearn_inputs(names: list[str], cells: np.ndarray, net: Any) -> tuple[np.ndarray, list[int], list[int]]:
    """The raw cells as scikit-learn reads them: an object array (N, C) in the model's column
    order, floats in number columns and str in categorical ones, NaN where a cell is missing
    (graphnet's markers); the indices of the number and of the categorical columns. Which
    column is which is graphnet's fitted encoding's (text columns categorical)."""
    encoding = net.encoding
    X = cells[:, [names.index(name) for name in encoding.names]].astype(object)
    absent = np.isin(np.char.strip(X.astype(str)), list(encoding.missing))
    X[absent] = np.nan
    numbers, categories = encoding.numbers(), encoding.categorical()
    for j in numbers:
        X[~absent[:, j], j] = X[~absent[:, j], j].astype(np.float64)
    return X, numbers, categories


def hist_gradient_boosting(X: np.ndarray, y: np.ndarray, split: dict[str, np.ndarray], numbers: list[int],
                           categories: list[int], seed: int) -> dict[str, Any]:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.preprocessing import OrdinalEncoder

    start = time.perf_counter()
    columns = ColumnTransformer([  # categories first: HistGradientBoosting's categorical_features
        ("categories", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                      encoded_missing_value=np.nan), categories),
        ("numbers", "passthrough", numbers)])
    X_train = columns.fit_transform(X[split["train"]], y[split["train"]]).astype(np.float64)
    X_val = columns.transform(X[split["val"]]).astype(np.float64)
    model = HistGradientBoostingClassifier(categorical_features=list(range(len(categories))), early_stopping=True,
                                           max_iter=BOOSTING_ROUNDS, class_weight="balanced", random_state=seed)
    model.fit(X_train, y[split["train"]], X_val=X_val, y_val=y[split["val"]])
    seconds = time.perf_counter() - start
    X_test = columns.transform(X[split["test"]]).astype(np.float64)
    return {"classes": list(model.classes_), "proba": model.predict_proba(X_test), "predicted": model.predict(X_test),
            "seconds": seconds, "iterations": int(model.n_iter_)}


def mlp(X: np.ndarray, y: np.ndarray, split: dict[str, np.ndarray], numbers: list[int], categories: list[int],
        seed: int, epochs: int) -> dict[str, Any]:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.metrics import log_loss
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight

    start = time.perf_counter()
    columns = ColumnTransformer([
        ("numbers", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numbers),
        ("categories", make_pipeline(SimpleImputer(strategy="constant", fill_value="<missing>"),
                                     OneHotEncoder(handle_unknown="ignore")), categories)], sparse_threshold=0)
    X_train, y_train = columns.fit_transform(X[split["train"]]).astype(np.float64), y[split["train"]]
    X_val, y_val = columns.transform(X[split["val"]]).astype(np.float64), y[split["val"]]
    classes = np.unique(y_train)  # "balanced" weights of the training split, on the validation split too
    balanced = dict(zip(classes, compute_class_weight("balanced", classes=classes, y=y_train)))
    weights, val_weights = (compute_sample_weight(balanced, labels) for labels in (y_train, y_val))
    model = MLPClassifier(hidden_layer_sizes=HIDDEN, learning_rate_init=LEARNING_RATE, batch_size=BATCH, alpha=0.0,
                          random_state=seed)
    best, best_loss, best_epoch, ran = None, np.inf, 0, 0
    for epoch in range(1, epochs + 1):
        model.partial_fit(X_train, y_train, sample_weight=weights, classes=classes)
        loss = log_loss(y_val, model.predict_proba(X_val), sample_weight=val_weights, labels=model.classes_)
        ran = epoch
        if loss < best_loss:
            best, best_loss, best_epoch = copy.deepcopy(model), loss, epoch
        elif epoch - best_epoch >= PATIENCE:
            break
    seconds = time.perf_counter() - start
    X_test = columns.transform(X[split["test"]]).astype(np.float64)
    return {"classes": list(best.classes_), "proba": best.predict_proba(X_test), "predicted": best.predict(X_test),
            "seconds": seconds, "epochs": ran, "best_epoch": best_epoch}


def scores(y: np.ndarray, predicted: np.ndarray, p_positive: np.ndarray, positive: str) -> dict[str, float]:
    """accuracy, balanced accuracy, F1 of the positive class and ROC AUC (sklearn.metrics)."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, roc_auc_score

    return {"accuracy": float(accuracy_score(y, predicted)),
            "balanced_accuracy": float(balanced_accuracy_score(y, predicted)),
            "f1": float(f1_score(y, predicted, pos_label=positive)),
            "roc_auc": float(roc_auc_score(y == positive, p_positive))}


def served(trained: dict[str, Any], names: list[str], cells: np.ndarray, labels: np.ndarray,
           test: np.ndarray) -> dict[str, Any]:
    """graphnet's served model on the raw `test` rows: its classes, probabilities and
    predictions; AssertionError unless its accuracy and log loss there are metrics.json's
    (the rows are graphnet's test split)."""
    from sklearn.metrics import log_loss

    net = trained["net"]
    raw = cells[test][:, [names.index(name) for name in net.encoding.names]]  # the model's column order
    proba, predicted = net.predict_proba(raw), net.predict(raw)
    check = {"accuracy": float(np.mean(predicted == labels[test])),
             "log_loss": float(log_loss(labels[test], proba, labels=list(net.class_names)))}
    for name, value in check.items():
        saved = trained["metrics"][f"test_{name}"]
        if abs(value - saved) > 1e-5 * max(1.0, abs(value)):
            raise AssertionError(f"graphnet's test_{name} {saved} differs from {value} on the rows taken for its "
                                 "test split: the splits differ")
    return {"classes": list(net.class_names), "proba": proba, "predicted": predicted}


def run_benchmark(rows: int = ROWS, seed: int = 0, csv_path: Path | None = None, label: str = LABEL,
                  epochs: int = EPOCHS) -> dict[str, Any]:
    """Train the three models on one split of the table; their test scores and seconds."""
    import sklearn

    import graphnet as gn

    with tempfile.TemporaryDirectory(prefix="graphnet-tables-") as scratch:
        folder = Path(scratch)
        path = csv_path or make_csv(folder / "adult.csv", rows, seed)
        names, cells, labels = read_table(path, label)
        classes = sorted(set(labels.tolist()))
        if len(classes) != 2:
            raise SystemExit(f"{path}: column {label!r} has {len(classes)} classes; this benchmark is binary")
        positive = min(classes, key=lambda c: (int(np.sum(labels == c)), c))  # the rarer class
        split = graphnet_split(folder, labels, label, seed)
        trained = train_graphnet(path, folder, label, seed, epochs)
    X, numbers, categories = sklearn_inputs(names, cells, trained["net"])
    fitted = {"graphnet": served(trained, names, cells, labels, split["test"]),
              "hist_gradient_boosting": hist_gradient_boosting(X, labels, split, numbers, categories, seed),
              "mlp": mlp(X, labels, split, numbers, categories, seed, epochs)}
    fitted["graphnet"].update({"seconds": trained["seconds"], "epochs": trained["epochs"],
                               "best_epoch": trained["metrics"].get("best_epoch"), "wall_seconds": trained["wall"]})
    models = {}
    for name, out in fitted.items():
        p_positive = out["proba"][:, out["classes"].index(positive)]
        models[name] = {**scores(labels[split["test"]], np.asarray(out["predicted"]), p_positive, positive),
                        **{key: value for key, value in out.items() if key not in ("classes", "proba", "predicted")}}
    return {"data": str(csv_path) if csv_path else f"adult_like({rows}, seed={seed})", "rows": len(labels),
            "label": label, "positive": positive, "positive_share": float(np.mean(labels == positive)),
            "split": {name: len(index) for name, index in split.items()}, "seed": seed,
            "settings": {"hidden": list(HIDDEN), "learning_rate": LEARNING_RATE, "batch_size": BATCH,
                         "epochs": epochs, "patience": PATIENCE, "boosting_rounds": BOOSTING_ROUNDS,
                         "class_weight": "balanced"},
            "graphnet_log": trained["log"][:4],
            "versions": {"graphnet": gn.__version__, "scikit-learn": sklearn.__version__},
            "models": models}


NAMES = {"graphnet": "graphnet MLP", "hist_gradient_boosting": "HistGradientBoosting", "mlp": "scikit-learn MLP"}


def markdown_table(results: dict[str, Any]) -> str:
    lines = ["| model | accuracy | balanced accuracy | F1 (" + results["positive"] + ") | ROC AUC | training seconds | "
             "stopped at |", "|---|---:|---:|---:|---:|---:|---|"]
    for name, row in results["models"].items():
        stop = (f"{row['iterations']} iterations" if "iterations" in row else
                f"epoch {row['epochs']} (best {row['best_epoch']})")
        lines.append(f"| {NAMES[name]} | {row['accuracy']:.4f} | {row['balanced_accuracy']:.4f} | {row['f1']:.4f} | "
                     f"{row['roc_auc']:.4f} | {row['seconds']:.1f} | {stop} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS, help="rows of the Adult-like table made (not with --csv)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the table, the split and every model")
    parser.add_argument("--csv", type=Path, help="a CSV file to use instead (a header, a two-class label column)")
    parser.add_argument("--label", default=LABEL, help=f"the label column (default {LABEL})")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="at most this many epochs for the MLPs")
    add_results_option(parser)
    args = parser.parse_args(argv)
    results = run_benchmark(args.rows, args.seed, args.csv, args.label, args.epochs)
    split = results["split"]
    print(f"{results['data']}: {results['rows']} rows, {100 * results['positive_share']:.1f}% {results['positive']}; "
          f"graphnet's split: train {split['train']}, validation {split['val']}, test {split['test']}")
    print(markdown_table(results))
    write_report(args.results / "tables.json", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
