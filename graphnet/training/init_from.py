"""`init_from`: a run starts from the weights of a checkpoint, a run folder or an ONNX model (fine-tuning)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import CheckpointError
from ..network import CompiledNetwork
from ..spec import RunSpec, parse_run


def with_absolute_init_from(run: RunSpec) -> RunSpec:
    """`run` with its `init_from` path made absolute (run.json must name the same weights from anywhere)."""
    path = run.train.init_from
    if path is None or Path(path).expanduser().is_absolute() or not Path(path).expanduser().exists():
        return run
    document = json.loads(run.model_dump_json(by_alias=True))
    document["train"]["init_from"] = str(Path(path).expanduser().resolve())
    return parse_run(document)


def initial_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Parameters and running statistics by name from a checkpoint folder, a run folder or an
    .onnx model (needs the `onnx` extra); CheckpointError naming `path` if there are none."""
    from ..checkpoint import checkpoint_folder, read_checkpoint

    source = Path(path).expanduser()
    if source.suffix.lower() == ".onnx" and source.is_file():
        from ..interop import require_onnx
        from ..interop.onnx_import import read_onnx

        require_onnx("init_from an .onnx model")
        return {name: np.asarray(a) for name, a in read_onnx(source).arrays.items()}
    if not source.exists():
        raise CheckpointError(f"init_from: {source}: no such checkpoint folder, run folder or .onnx file")
    _, arrays, _ = read_checkpoint(checkpoint_folder(source))
    return {key.split("/", 1)[1]: array for key, array in arrays.items() if key.startswith(("param/", "state/"))}


def load_initial_weights(net: CompiledNetwork, path: str | Path, say: Callable[[str], None]) -> None:
    """Copy the parameters and running statistics of `path` (see `initial_arrays`) into `net`
    by name. A shape mismatch is a CheckpointError naming the parameter and both shapes;
    the network's names the source lacks keep their initial values, and the source's names
    the network lacks are ignored -- both said in a log line."""
    arrays = initial_arrays(path)
    own = {**{name: net.store.view(name) for name in net.store.names()},
           **{name: net.store.state_view(name) for name in net.store.state_slots}}
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
