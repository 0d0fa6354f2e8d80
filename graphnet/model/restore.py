"""Loading a checkpoint back: the network compiled from its network.json, its arrays
checked against the spec and loaded, its model record attached, and (to resume) the
optimizer's state. The files themselves: graphnet.model.checkpoint."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..data.preprocessing import ARRAY_PREFIX as PREPROCESSING_PREFIX
from ..errors import CheckpointError
from .checkpoint import ARRAYS_FILE, check_spec_hash, checkpoint_folder, read_checkpoint, restore_generator
from .compiled import CompiledNetwork, compile
from .record import ModelRecord
from .snapshot import PREFIX as BEST_PREFIX
from .snapshot import Snapshot


def _check_arrays(net: CompiledNetwork, arrays: dict[str, np.ndarray], source: Path) -> None:
    expected: dict[str, tuple[int, ...]] = {f"param/{n}": net.store.slots[n].shape for n in net.store.names()}
    expected.update({f"state/{n}": net.store.state_slots[n].shape for n in net.store.state_slots})
    if any(key.startswith(BEST_PREFIX) for key in arrays):  # a best state is whole, like the last one
        expected.update({BEST_PREFIX + key: shape for key, shape in expected.items()})
    present = {key for key in arrays if not key.startswith(("optim/", PREPROCESSING_PREFIX))}
    problems = [f"missing '{key}'" for key in sorted(set(expected) - present)]
    problems += [f"unexpected '{key}'" for key in sorted(present - set(expected))]
    for key, shape in expected.items():
        if key in arrays:
            array = arrays[key]
            if array.shape != shape:
                problems.append(f"'{key}' has shape {array.shape}, the spec says {shape}")
            elif array.dtype != net.dtype:
                problems.append(f"'{key}' has dtype {array.dtype}, the checkpoint says {net.dtype}")
    if problems:
        raise CheckpointError(f"{source}: does not match its network spec: {'; '.join(problems)}")


def load_checkpoint(folder: str | Path, *, batch_size: int = 128, backend: str | None = None) -> CompiledNetwork:
    """Compile the checkpoint's network and load the state it serves: the best epoch's when
    early stopping kept one, else the last; `folder` is a checkpoint folder or a run folder
    written by `graphnet train` (its `checkpoint/` is read)."""
    net, _, _, best = restore_training(checkpoint_folder(folder), batch_size=batch_size, backend=backend)
    if best is not None:
        best.restore_into(net)
    return net


def restore(folder: str | Path, *, batch_size: int = 128, backend: str | None = None,
            make_optimizer: Callable[[CompiledNetwork], Any] | None = None) -> tuple[CompiledNetwork, dict[str, Any], Any]:
    """The checkpoint's network in its last state, its meta (with the training state, if any)
    and, with `make_optimizer`, an optimizer for the network with its saved state loaded."""
    net, meta, optimizer, _ = restore_training(folder, batch_size=batch_size, backend=backend,
                                               make_optimizer=make_optimizer)
    return net, meta, optimizer


def restore_training(folder: str | Path, *, batch_size: int = 128, backend: str | None = None,
                     make_optimizer: Callable[[CompiledNetwork], Any] | None = None, freeze: Sequence[str] = ()
                     ) -> tuple[CompiledNetwork, dict[str, Any], Any, Snapshot | None]:
    """`restore`, and the best epoch's state the checkpoint keeps besides the last (None without one);
    `freeze`: the run's frozen parameters (see graphnet.runtime.network.Network), which the
    optimizer's saved state leaves out."""
    folder = Path(folder)
    spec, arrays, meta = read_checkpoint(folder)
    dtype = meta.get("dtype", "float32")
    if dtype not in ("float32", "float64"):
        raise CheckpointError(f"{folder / ARRAYS_FILE}: unsupported dtype {dtype!r}")
    seed = meta.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise CheckpointError(f"{folder / ARRAYS_FILE}: meta 'seed' is {seed!r}, not a non-negative integer")
    net = compile(spec, batch_size=batch_size, dtype=dtype, backend=backend, seed=seed, freeze=freeze)
    _check_arrays(net, arrays, folder / ARRAYS_FILE)
    check_spec_hash(spec, meta, folder)
    for name in net.store.names():
        net.store.view(name)[...] = arrays[f"param/{name}"]
    for name in net.store.state_slots:
        net.store.state_view(name)[...] = arrays[f"state/{name}"]
    try:
        label = next(iter(net.graph.labels.values()), None)
        ModelRecord.from_saved(meta, arrays).check_fits(net.graph.inputs, label).attach(net)
    except ValueError as error:
        raise CheckpointError(f"{folder / ARRAYS_FILE}: {error}") from None
    if "dropout_rng" in meta:
        try:
            restore_generator(net.dropout_rng, meta["dropout_rng"])
        except (TypeError, ValueError, KeyError) as error:
            raise CheckpointError(f"{folder / ARRAYS_FILE}: meta 'dropout_rng' is not a generator state: "
                                  f"{error}") from None
    optimizer = None
    if make_optimizer is not None:
        optimizer = make_optimizer(net)
        load_optimizer_state(optimizer, arrays, meta, folder)
    return net, meta, optimizer, Snapshot.from_arrays(net, arrays)


def load_optimizer_state(optimizer: Any, arrays: dict[str, np.ndarray], meta: dict[str, Any], folder: Path) -> None:
    source = folder / ARRAYS_FILE
    state = meta.get("optimizer")
    if state is None:
        raise CheckpointError(f"{source}: the checkpoint has no optimizer state")
    if not isinstance(state, dict):
        raise CheckpointError(f"{source}: optimizer state in meta is {state!r}, not an object")
    slots = {key.removeprefix("optim/"): value for key, value in arrays.items() if key.startswith("optim/")}
    expected = getattr(optimizer, "slots", None)
    if isinstance(expected, dict):
        problems = [f"missing 'optim/{name}'" for name in sorted(set(expected) - set(slots))]
        problems += [f"unexpected 'optim/{name}'" for name in sorted(set(slots) - set(expected))]
        for name in sorted(set(expected) & set(slots)):
            want, got = expected[name], slots[name]
            if got.shape != want.shape:
                problems.append(f"'optim/{name}' has shape {got.shape}, the optimizer needs {want.shape}")
            elif got.dtype != want.dtype:
                problems.append(f"'optim/{name}' has dtype {got.dtype}, the optimizer needs {want.dtype}")
        if problems:
            raise CheckpointError(f"{source}: optimizer state does not fit: {'; '.join(problems)}")
    try:
        optimizer.load_state_dict({**state, "slots": slots})
    except (KeyError, ValueError, TypeError) as error:
        detail = f"missing {error}" if isinstance(error, KeyError) else str(error)
        raise CheckpointError(f"{source}: optimizer state does not fit: {detail}") from None
