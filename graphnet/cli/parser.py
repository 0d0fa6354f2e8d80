"""The argument parser of `graphnet` and its subcommands."""
from __future__ import annotations

import argparse

from ..version import __version__


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (anything else is a usage error, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


CSV_HELP = """\
CSV data (--data FILE.csv, or "data" in the run file):
  The first line is a header of column names (a file whose first line is all
  numbers has none). The delimiter is the first of , TAB ; found in it. One
  column holds the labels: --label-column NAME, else the first column named
  label, y or target; every other column is a feature: numbers, or text (a
  categorical column, one-hot inside the model; the data options'
  "categorical" names more). Cells "", NA, NaN, nan and ? are missing values
  ("missing" sets them), imputed ("impute": median, mean, zero); a missing
  label is an error. Labels are class indices (0..classes-1), class names
  (text: classes are the sorted names, saved with the model, so predictions
  and `graphnet eval` show names) or, for a regression/binary label declared
  with "shape", numbers ("target_scaling": true standardizes them for
  training). The test set is a seeded 20% of the rows, or the file in the
  data options' "test_file" (same columns); "test_size" sets the fraction;
  class labels split class by class ("stratify"). The data's "normalize"
  (standardize, scale), categories and imputation values are fitted on the
  training split and saved with the model: `graphnet predict` and `eval`
  take raw features.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphnet",
        description="Declarative, compiled-graph neural networks for the CPU.",
    )
    parser.add_argument("--version", action="version", version=f"graphnet {__version__}")
    parser.add_argument("--threads", type=positive_int, metavar="N",
                        help="threads (default: $GRAPHNET_THREADS, else adaptive: one per core other processes leave free, re-checked as it runs)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("validate", help="check spec files; print nodes, shapes and parameter counts")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("-q", "--quiet", action="store_true", help="one line per valid file")

    p = sub.add_parser("schema", help="print or write the JSON Schema of spec files")
    p.add_argument("-o", "--out", metavar="PATH", help="write here instead of stdout (a file atomically; a device, FIFO or - as written)")

    p = sub.add_parser("compile", help="compile a spec and print its plan (or --dot: Graphviz)")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--batch", type=positive_int, default=128, help="plan capacity (default 128)")
    p.add_argument("--mode", choices=["train", "sgd", "infer", "eval"], default="train",
                   help="sgd: the train plan of a plain SGD step, weights updated inside backward")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--backend", choices=["numba", "numpy"], default=None)
    p.add_argument("--dot", action="store_true", help="print the (fused) graph in Graphviz DOT")
    p.add_argument("--no-fuse", action="store_true", help="the plan (or --dot: the graph) without fusion")

    p = sub.add_parser("gradcheck", help="check every parameter gradient against central differences")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--batch", type=positive_int, default=4)
    p.add_argument("--entries", type=int, default=32, help="entries per parameter (0: all)")
    p.add_argument("--h", type=float, default=1e-5, help="finite-difference step")
    p.add_argument("--tolerance", type=float, default=1e-6, help="relative tolerance")
    p.add_argument("--atol", type=float, default=None,
                   help="absolute tolerance, for gradients that vanish (default: scaled to rounding noise)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", choices=["numba", "numpy"], default=None)

    p = sub.add_parser("train", help="train a run file; writes a run folder", epilog=CSV_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", metavar="FILE", nargs="?")
    p.add_argument("--data", help="data set name or path (overrides the run file)")
    p.add_argument("--tensorboard", metavar="DIR",
                   help="write TensorBoard event files into DIR (the run's train.tensorboard; "
                        "pip install 'graphnet[tensorboard]')")
    p.add_argument("--mlflow", nargs="?", const="", default=None, metavar="URI",
                   help="log the run to MLflow at this tracking URI (default: ./mlruns, a local file store; "
                        "the run's train.mlflow; pip install 'graphnet[mlflow]')")
    p.add_argument("--label-column", metavar="NAME",
                   help="the CSV column holding the labels (default: the first named label, y or target)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--out", metavar="RUN", help="run folder (default runs/<name>-<time>); it must not exist "
                   "or be empty (or hold only a run that never trained), unless --overwrite")
    existing = p.add_mutually_exclusive_group()
    existing.add_argument("--resume", metavar="RUN",
                          help="continue an interrupted run folder (with --epochs: extend it)")
    existing.add_argument("--overwrite", action="store_true",
                          help="replace the run in the --out folder: removes run.json, run_id.txt, history.jsonl, "
                               "history.json, metrics.json, learning_curve.png and checkpoint/ there; other files "
                               "are kept")
    p.add_argument("--backend", choices=["numba", "numpy"], default=None)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--workers", type=positive_int, metavar="N",
                   help="train on N MPI processes, each on 1/N of every batch (needs graphnet[mpi]; "
                        "the same as mpiexec -n N graphnet train ...)")

    p = sub.add_parser("eval", help="the metrics of a trained run: a classification report and confusion matrix "
                                    "(binary: ROC AUC, PR AUC too; regression: loss, RMSE, MAE, R2)")
    p.add_argument("run", metavar="RUN", help="run folder (or checkpoint folder)")
    p.add_argument("--data", help="a CSV file, scored whole (every labelled row; columns by name), or a data set "
                                  "name or path (default: the run's), scored on --split")
    p.add_argument("--split", choices=["test", "val", "train"], default=None,
                   help="the split of a data set to score (default: test)")
    p.add_argument("--label-column", metavar="NAME",
                   help="the label column of a --data CSV (default: the model's, else label, y or target)")
    p.add_argument("--batch-size", type=positive_int, default=1000)
    p.add_argument("--backend", choices=["numba", "numpy"], default=None)
    p.add_argument("--plot", nargs="?", const="", default=None, metavar="DIR",
                   help="write confusion_matrix.png (binary or two classes: roc_curve.png, pr_curve.png too) into DIR "
                        "(default: the run folder); needs matplotlib (pip install 'graphnet[plot]')")

    p = sub.add_parser("predict", help="predictions of a trained network for a file of raw examples (CSV out)",
                       description="Predict for every example of a CSV (header row; the training features' "
                                   "columns, by name; a label column is ignored), an .npz (X) or .npy, or an "
                                   "IDX images file. The model's preprocessing applies (give raw features). "
                                   "Output: CSV with a 'prediction' column (class name, 0/1, or value); "
                                   "--proba adds p_<class> columns. Streams in batches.")
    p.add_argument("run", metavar="RUN", help="run folder (or checkpoint folder)")
    p.add_argument("--data", metavar="FILE", required=True, help="the examples: .csv, .npz/.npy or IDX images")
    p.add_argument("--out", metavar="PRED.csv", help="write here (a file atomically; a device, FIFO or - as written); default: stdout")
    p.add_argument("--proba", action="store_true", help="add one probability column per class (p_<class>)")
    p.add_argument("--batch-size", type=positive_int, default=4096, help="examples per batch (default 4096)")
    p.add_argument("--backend", choices=["numba", "numpy"], default=None)

    p = sub.add_parser("export", help="write a trained network's inference graph as an ONNX model")
    p.add_argument("run", metavar="RUN", help="run folder (or checkpoint folder)")
    p.add_argument("out", metavar="OUT.onnx")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, 17 or later (default 17)")

    p = sub.add_parser("import", help="turn an ONNX model of an MLP into a checkpoint folder")
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument("out", metavar="OUT_DIR", help="a new (or empty) folder: network.json + weights.npz")
    p.add_argument("--dtype", choices=["float32", "float64"], default=None, help="default: the model's")


    p = sub.add_parser("sweep", help="search hyperparameters of a run with Optuna (needs graphnet[sweep])",
                       description="Sample values for the paths of SWEEP.json's space, train each trial's run "
                                   "into DIR/trial-<n>/, and report the best. The study is kept in storage: "
                                   "running the same command again resumes it.")
    p.add_argument("file", metavar="SWEEP.json")
    p.add_argument("--trials", type=positive_int, required=True,
                   help="the total the study should reach, counting trials of earlier runs of this command "
                        "(complete, pruned and failed ones; not those cut short by Ctrl-C)")
    p.add_argument("--jobs", type=positive_int, default=1, help="trials run in parallel processes (default 1)")
    p.add_argument("--out", metavar="DIR", help="sweep folder (default sweeps/<SWEEP name>)")
    p.add_argument("--storage", metavar="URL",
                   help="Optuna RDB URL (default sqlite:///DIR/study.db); a PostgreSQL or MySQL URL lets "
                        "workers on several machines share the study")
    p.add_argument("--prune", action="store_true",
                   help="stop trials early whose per-epoch metric is below the median of earlier trials")

    p = sub.add_parser("bench", help="kernels vs their NumPy twins, training step vs the BLAS floor (quick subset)")
    p.add_argument("--full", action="store_true", help="all sizes, more repeats")
    p.add_argument("--kernels-only", action="store_true")
    p.add_argument("--json", metavar="PATH", help="also write the step table as JSON (bench/results/step.json)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")

    return parser
