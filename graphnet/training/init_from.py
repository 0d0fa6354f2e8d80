"""`init_from`: a run starts from the weights of a checkpoint, a run folder or an ONNX model (fine-tuning)."""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import CheckpointError
from ..model.compiled import CompiledNetwork
from ..model.record import ModelRecord
from ..spec import NetworkSpec, RunSpec, parse_run


def with_absolute_init_from(run: RunSpec) -> RunSpec:
    """`run` with its `init_from` path made absolute (run.json must name the same weights from anywhere)."""
    path = run.train.init_from
    if path is None or Path(path).expanduser().is_absolute() or not Path(path).expanduser().exists():
        return run
    document = json.loads(run.model_dump_json(by_alias=True))
    document["train"]["init_from"] = str(Path(path).expanduser().resolve())
    return parse_run(document)


@dataclass(frozen=True)
class InitialModel:
    """What a run starts from with `init_from`: the arrays (parameters and running statistics
    by name) and the model record (preprocessing, class names) of `source`."""

    source: str
    arrays: dict[str, np.ndarray]
    record: ModelRecord


def read_initial_model(path: str | Path, network: NetworkSpec) -> InitialModel:
    """The arrays and model record of a checkpoint folder, a run folder or an .onnx model
    (needs the `onnx` extra), the record fitted to `network`'s one input; CheckpointError
    naming `path` if there are no arrays or the record does not fit."""
    from ..model.checkpoint import checkpoint_folder, read_checkpoint
    from ..model.snapshot import served_arrays

    source = Path(path).expanduser()
    if source.suffix.lower() == ".onnx" and source.is_file():
        from ..interop import require_onnx
        from ..interop.onnx_import import read_onnx

        require_onnx("init_from an .onnx model")
        imported = read_onnx(source)
        arrays = {name: np.asarray(a) for name, a in imported.arrays.items()}
        record = ModelRecord(imported.preprocessing, imported.class_names, imported.encoding,
                             imported.target_scaling)
    else:
        if not source.exists():
            raise CheckpointError(f"init_from: {source}: no such checkpoint folder, run folder or .onnx file")
        folder = checkpoint_folder(source)
        _, saved, meta = read_checkpoint(folder)
        arrays = {key.split("/", 1)[1]: array for key, array in served_arrays(saved).items()}  # the best epoch's, if kept
        try:
            record = ModelRecord.from_saved(meta, saved)
        except ValueError as error:
            raise CheckpointError(f"init_from {path}: {folder}: {error}") from None
    return InitialModel(str(path), arrays, _fitted(record, network, str(path)))


def _fitted(record: ModelRecord, network: NetworkSpec, source: str) -> ModelRecord:
    """`record` for `network`: a preprocessing of the source's one input moves to the network's
    one input (their names may differ, e.g. an ONNX model's); CheckpointError when it does not fit."""
    [input_name] = network.inputs  # training checks there is one
    if record.preprocessing is not None and record.preprocessing.input != input_name:
        record = replace(record, preprocessing=replace(record.preprocessing, input=input_name))
    label = network.value(next(iter(network.labels))) if network.labels else None
    if (record.class_names is not None and label is not None and label.kind == "classes"
            and len(record.class_names) != label.classes):  # a new head: its classes come from the data
        record = replace(record, class_names=None)
    if record.target_scaling is not None and (label is None or label.kind != "float"
                                              or label.shape != record.target_scaling.shape):
        record = replace(record, target_scaling=None)  # another task: its targets are the data's
    try:
        return record.check_fits({input_name: network.value(input_name)}, label)
    except ValueError as error:
        raise CheckpointError(f"init_from {source}: {error}") from None


def copy_initial_weights(net: CompiledNetwork, initial: InitialModel, say: Callable[[str], None]) -> None:
    """Copy the parameters and running statistics of `initial` into `net` by name. A shape
    mismatch is a CheckpointError naming the parameter and both shapes; the network's names
    the source lacks keep their initial values, and the source's names the network lacks are
    ignored -- both said in a log line. State the network's spec defines (a loss's class
    weights) is the network's own, never copied."""
    path, arrays = initial.source, initial.arrays
    arrays = {name: array for name, array in arrays.items()
              if name not in net.store.state_decls or net.store.state_decls[name].values is None}
    own = {**{name: net.store.view(name) for name in net.store.names()},
           **{name: net.store.state_view(name) for name in net.store.state_slots
              if net.store.state_decls[name].values is None}}
    for name in sorted(set(own) & set(arrays)):
        if arrays[name].shape != own[name].shape:
            raise CheckpointError(f"init_from {path}: '{name}' has shape {arrays[name].shape} there, "
                                  f"the network's is {own[name].shape}")
    copied = [name for name in own if name in arrays]
    if not copied:
        raise CheckpointError(f"init_from {path}: none of its arrays ({', '.join(sorted(arrays)) or 'none'}) "
                              f"is a parameter of this network ({', '.join(own)}): are the node ids the same?")
    net.load_state_dict({name: arrays[name] for name in copied}, strict=False)
    kept = [name for name in own if name not in arrays]
    ignored = sorted(set(arrays) - set(own))
    note = f"init_from {path}: loaded {len(copied)} of {len(own)} arrays"
    if kept:
        note += f"; kept the initial values of {', '.join(kept)} (not in the source)"
    if ignored:
        note += f"; ignored {', '.join(ignored)} (not in this network)"
    say(note)
