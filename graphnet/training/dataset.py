"""A run's data set: loaded, shaped for the network's input, and its labels checked."""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

import numpy as np

from .. import data as data_module
from ..data import DataInfo, table_settings
from ..data.columns import ColumnEncoding
from ..data.preprocessing import Preprocessing
from ..data.targets import TargetScaling
from ..errors import DataError, SpecError
from ..model.compiled import CompiledNetwork
from ..model.record import ModelRecord
from ..ops import Value
from ..ops.tasks import Task, evaluate, task_of
from ..spec import DataSpec, NetworkSpec, RunSpec


def load_data(spec: DataSpec, seed: int, dtype: str, input_shape: tuple[int, ...],
              label: Value | None = None) -> dict[str, np.ndarray]:
    """The data set of a run, shaped for the network's input; y_* as `label` declares it:
    class indices (N,) for `classes`, `dtype` targets (N, *shape) for `shape`."""
    return load_data_with_info(spec, seed, dtype, input_shape, label)[0]


def load_data_with_info(spec: DataSpec, seed: int, dtype: str, input_shape: tuple[int, ...],
                        label: Value | None = None, *, normalize: str | None = None,
                        class_names: tuple[str, ...] | None = None, arrays: Mapping[str, Any] | None = None,
                        task: Task | None = None, encoding: ColumnEncoding | None = None,
                        raw_targets: bool = False) -> tuple[dict[str, np.ndarray], DataInfo]:
    """`load_data` and what was fitted to the data (normalization, column and class names,
    a table's encoding, the target scaling); DataError when text labels name a number of
    classes other than `label` declares.
    `normalize` overrides the data spec's (e.g. "none" for raw features); `class_names`
    maps text labels (a trained model's names); `arrays`, an in-memory data dict
    (graphnet.data.from_arrays), replaces the data the spec names. The splits are
    stratified by class ("stratify", default for the `task`s classification and binary
    with one target). `encoding`: a trained model's column encoding, which reads a
    table's columns instead of one fitted to it; `raw_targets`: no target scaling (the
    options' "target_scaling" left out)."""
    options: dict[str, Any] = dict(spec.options)
    if class_names is not None and arrays is None and data_module.source_kind(spec.name) == "csv":
        options["class_names"] = class_names  # other files have numeric labels
    if label is not None and label.kind == "float":
        options["target_shape"] = label.shape
    if label is not None and label.kind == "classes" and arrays is None and data_module.source_path(spec.name):
        options.setdefault("classes", label.classes)  # a file's reader names the line of a label out of range
    if task is not None:
        options.setdefault("stratify", task == "classification" or (task == "binary" and label is not None
                                                                    and label.shape == (1,)))
    if raw_targets:
        options.pop("target_scaling", None)
    if encoding is not None:
        options["encoding"] = encoding
    if arrays is not None:
        classes = label.classes if label is not None and label.kind == "classes" else None
        table = table_settings(*(options.pop(key, None) for key in ("categorical", "missing", "impute")),
                               "data=")
        extra = {key: options[key] for key in ("stratify", "target_scaling", "encoding") if key in options}
        data, info = data_module.from_arrays(arrays, val_size=spec.val_size, normalize=normalize or spec.normalize,
                                             seed=seed, dtype=dtype, classes=classes,
                                             target_shape=options.get("target_shape"), class_names=class_names,
                                             name="data=", table=table, **extra)
    else:
        data, info = data_module.load_with_info(spec.name, val_size=spec.val_size,
                                                normalize=normalize or spec.normalize,
                                                seed=seed, dtype=dtype, **options)
    if label is not None and label.kind == "classes" and info.class_names is not None \
            and len(info.class_names) != label.classes:
        raise DataError(f"data set '{spec.name}': its labels name {len(info.class_names)} classes "
                        f"({', '.join(info.class_names[:10])}{', ...' if len(info.class_names) > 10 else ''}), "
                        f"the network's label declares {label.classes}")
    size = int(np.prod(input_shape))
    for split in ("train", "val", "test"):
        X = data[f"X_{split}"]
        if X.shape[0] and int(np.prod(X.shape[1:])) != size:
            raise DataError(f"data set '{spec.name}': {split} examples have {_features(X, info)}, "
                            f"the network's input has {size} values {input_shape}")
        data[f"X_{split}"] = np.ascontiguousarray(X.reshape((X.shape[0], *input_shape)), dtype=dtype)
        data[f"y_{split}"] = np.ascontiguousarray(data[f"y_{split}"])
    return data, info


def _features(X: np.ndarray, info: DataInfo) -> str:
    """How a message says what a split's examples are: their shape, and for a table how its
    columns make that many features (so the input shape to declare is plain)."""
    if info.encoding is None:
        return f"shape {X.shape[1:]}"
    encoding = info.encoding
    blocks = ", ".join(f"{encoding.columns[j].name}: {encoding.columns[j].width}" for j in encoding.categorical())
    return (f"{encoding.width} features ({len(encoding.numbers())} numeric columns, one each; categorical columns, "
            f"their categories + missing + unknown: {blocks or 'none'}): declare the input with \"shape\": "
            f"[{encoding.width}]")


def preprocessing_of(info: DataInfo, input_name: str) -> Preprocessing:
    """The preprocessing record of the network input `input_name` fed by this data."""
    return Preprocessing(input_name, info.raw_shape, info.mode, info.shift, info.scale, info.feature_names,
                         info.label_column)


def load_run_data(run: RunSpec, arrays: Mapping[str, Any] | None = None, keep: ModelRecord | None = None,
                  source: str = "") -> tuple[dict[str, np.ndarray], ModelRecord, list[str]]:
    """The data set of a run, as the network's inputs, the model record it trains and lines
    for the run log (a table's columns, its missing and unseen cells, stratified splits,
    the target scaling): SpecError unless the network has one input, DataError when the
    training split is empty.

    arrays: in-memory data instead of the spec's (see `load_data_with_info`).
    keep: the record of the model training starts from (a checkpoint resumed, an `init_from`
        source). Its preprocessing, when it has one, is kept: the raw features are read,
        their columns put in the model's order by name, and the kept transform applied (a
        `normalize` other than "auto" that differs is a SpecError naming both, with `source`,
        the model's origin); its class names map text labels; its column encoding reads a
        table's columns and its target scaling scales the targets. Otherwise the data spec's
        normalization, a table's encoding and the target scaling are fitted on the training split.
    """
    settings = run.train
    if len(run.network.inputs) != 1:
        raise SpecError([("network.inputs", "training on a data set needs a network with exactly one input")])
    input_name = next(iter(run.network.inputs))
    input_shape = run.network.value(input_name).shape
    spec = settings.data_spec()
    task = task_of(run.network)
    if spec.options.get("target_scaling") is True and task != "regression":
        raise SpecError([("train.data.options.target_scaling", f"target_scaling standardizes regression targets "
                          f"(an mse, mae or huber loss); this network's task is {task or 'none (no loss)'}")])
    kept = keep.preprocessing if keep is not None else None
    kept_scaling = keep.target_scaling if keep is not None else None
    if kept is not None and spec.normalize not in ("auto", kept.mode):
        raise SpecError(f"train.data.normalize is {spec.normalize!r}, but the model training starts from "
                        f"({source}) has its own input preprocessing, {kept.mode!r}, which its weights "
                        f"expect: remove \"normalize\" (or set it to \"auto\" or {kept.mode!r}) to keep it")
    dataset, info = load_data_with_info(spec, settings.seed, settings.dtype, input_shape, label_of(run.network),
                                        arrays=arrays, normalize="none" if kept is not None else None,
                                        class_names=keep.class_names if keep is not None else None, task=task,
                                        encoding=keep.encoding if kept is not None else None,
                                        raw_targets=kept_scaling is not None)
    if len(dataset["X_train"]) == 0:
        raise DataError(f"data set '{spec.name}' has no training examples")
    if kept_scaling is not None:
        for split in ("train", "val", "test"):
            dataset[f"y_{split}"] = kept_scaling.scale(dataset[f"y_{split}"])
    class_names = info.class_names if info.class_names is not None else keep.class_names if keep else None
    encoding = info.encoding if info.encoding is not None else keep.encoding if kept is not None else None
    record = ModelRecord(preprocessing_of(info, input_name), class_names, encoding,
                         kept_scaling or info.target_scaling)
    notes = _notes(info, kept_scaling)
    if kept is None:
        return dataset, record, notes
    order = _kept_column_order(kept, info, spec.name, source)
    for split in ("train", "val", "test"):
        X = dataset[f"X_{split}"]
        if order is not None:
            X = X.reshape(len(X), -1)[:, order]
        dataset[f"X_{split}"] = kept.apply(X, input_shape, settings.dtype)
    if kept.feature_names is None and info.feature_names is not None:  # e.g. an ONNX model trained on a CSV
        kept = replace(kept, feature_names=info.feature_names, label_column=info.label_column)
    return dataset, replace(record, preprocessing=kept), notes


def _notes(info: DataInfo, kept_scaling: TargetScaling | None) -> list[str]:
    """The run log's lines about the data: a table's encoding (when fitted here) and the
    cells it met, stratified splits, the target scaling (when fitted here)."""
    notes = []
    if info.encoding is not None:
        notes.append(f"data: {info.encoding.describe()}")
    if info.counts is not None and info.counts.describe():
        notes.append(f"data: {info.counts.describe()}")
    if info.stratified:
        notes.append("data: train/validation/test splits stratified by class (train.data.options.stratify)")
    if info.target_scaling is not None and kept_scaling is None:
        notes.append(f"data: {info.target_scaling.describe()}")
    return notes


def _kept_column_order(kept: Preprocessing, info: DataInfo, name: str, source: str) -> list[int] | None:
    """The data's feature columns in the kept model's order (None: the order they have);
    DataError when the model reads columns the data lacks."""
    if kept.feature_names is None or info.feature_names is None or kept.feature_names == info.feature_names:
        return None
    missing = [column for column in kept.feature_names if column not in info.feature_names]
    if missing or len(kept.feature_names) != len(info.feature_names):
        extra = [column for column in info.feature_names if column not in kept.feature_names]
        raise DataError(f"data set '{name}': its feature columns differ from those of the model training starts "
                        f"from ({source}): missing {', '.join(missing) or 'none'}; not in the model "
                        f"{', '.join(extra) or 'none'}")
    return [info.feature_names.index(column) for column in kept.feature_names]


def network_accuracy(net: CompiledNetwork, X: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> float | None:
    """Fraction of correct predictions (eval mode; see `net.predict`), or None for an empty split."""
    if len(X) == 0:
        return None
    return evaluate(net, X, y, batch_size)["accuracy"]


def label_of(network: NetworkSpec) -> Value | None:
    """The declared value of the network's (first) label, or None without labels."""
    return network.value(next(iter(network.labels))) if network.labels else None


def check_split_labels(net: CompiledNetwork, data: dict[str, np.ndarray], name: str) -> None:
    """DataError when a split's labels fall outside what the network declares (class indices
    below `classes`; targets in [0, 1] for a binary loss); `name` is the data set's."""
    label = next(iter(net.graph.labels.values()), None)
    if label is None:
        return
    binary = task_of(net.graph) == "binary"
    for split in ("train", "val", "test"):
        y = data[f"y_{split}"]
        if not len(y):
            continue
        if label.kind == "classes" and (y.min() < 0 or y.max() >= label.classes):
            raise DataError(f"data set '{name}': {split} labels span [{y.min()}, {y.max()}] but the network "
                            f"has {label.classes} classes")
        if binary and (y.min() < 0 or y.max() > 1):
            raise DataError(f"data set '{name}': {split} targets span [{y.min():g}, {y.max():g}] but "
                            f"sigmoid_binary_cross_entropy needs targets in [0, 1]")
