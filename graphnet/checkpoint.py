"""Checkpoints: a folder with the network spec (JSON) and one `.npz` of arrays.

    checkpoint/
      network.json   the NetworkSpec (canonical JSON)
      weights.npz    param/<name>, state/<name>, optim/<slot>, and `meta` (a JSON string):
                     dtype, optimizer rule/hyperparameters/step, generator states,
                     training position and history

Each file is written atomically (temporary file, fsync, rename), so a crash
at any moment leaves the previous checkpoint or the new one, never a torn
file. Loading never unpickles (`allow_pickle=False`) and checks every array's
name, shape and dtype against the spec.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import CheckpointError, SpecError
from .fileio import write_bytes_atomic, write_text_atomic
from .network import CompiledNetwork, compile
from .spec import NetworkSpec, parse_network

FORMAT = 1
SPEC_FILE = "network.json"
ARRAYS_FILE = "weights.npz"


def generator_state(rng: np.random.Generator) -> dict[str, Any]:
    """A JSON-able snapshot of a numpy Generator."""
    return rng.bit_generator.state


def restore_generator(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = state


def save_checkpoint(folder: str | Path, net: CompiledNetwork, optimizer: Any = None,
                    meta: dict[str, Any] | None = None) -> Path:
    """Write `net` (and optionally an Optimizer's state and extra `meta`) to `folder`."""
    folder = Path(folder)
    arrays: dict[str, np.ndarray] = {}
    for name in net.store.names():
        arrays[f"param/{name}"] = net.store.view(name)
    for name in net.store.state_slots:
        arrays[f"state/{name}"] = net.store.state_view(name)
    info: dict[str, Any] = {
        "format": FORMAT,
        "dtype": net.dtype.name,
        "seed": net.seed,
        "dropout_rng": generator_state(net.dropout_rng),
    }
    if optimizer is not None:
        state = optimizer.state_dict()
        for slot, buffer in state.pop("slots").items():
            arrays[f"optim/{slot}"] = buffer
        info["optimizer"] = state
    info.update(meta or {})
    arrays["meta"] = np.array(json.dumps(info))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    spec_text = net.spec.to_json() + "\n"
    spec_path = folder / SPEC_FILE
    _remove_stale_temporaries(folder)
    if not spec_path.exists() or spec_path.read_text(encoding="utf-8") != spec_text:
        write_text_atomic(spec_path, spec_text)
    write_bytes_atomic(folder / ARRAYS_FILE, buffer.getvalue())
    return folder


def _remove_stale_temporaries(folder: Path) -> None:
    """Delete the temporary files a killed writer left behind (`.weights.npz.*.tmp`);
    they are never read as a checkpoint, but would pile up over many crashes."""
    for name in (SPEC_FILE, ARRAYS_FILE):
        for stale in folder.glob(f".{name}.*.tmp"):
            try:
                stale.unlink()
            except OSError:
                pass


def read_checkpoint(folder: str | Path) -> tuple[NetworkSpec, dict[str, np.ndarray], dict[str, Any]]:
    """The spec, the arrays and the meta of a checkpoint folder (CheckpointError if unusable)."""
    folder = Path(folder)
    spec_path, arrays_path = folder / SPEC_FILE, folder / ARRAYS_FILE
    for path in (spec_path, arrays_path):
        if not path.is_file():
            raise CheckpointError(f"{path}: missing (is {folder} a graphnet checkpoint folder?)")
    try:
        spec = parse_network(spec_path.read_text(encoding="utf-8"), str(spec_path))
    except SpecError as error:
        raise CheckpointError(f"{spec_path}: invalid network spec: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{spec_path}: unreadable: {error}") from None
    try:
        with np.load(arrays_path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except ValueError as error:
        if "allow_pickle" in str(error):  # object arrays are refused without unpickling
            raise CheckpointError(f"{arrays_path}: refused: {error}") from None
        raise CheckpointError(f"{arrays_path}: corrupt or truncated ({error})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise CheckpointError(f"{arrays_path}: corrupt or truncated ({error})") from None
    except Exception as error:  # a damaged zip surfaces as many kinds (NotImplementedError, zlib.error, ...)
        raise CheckpointError(f"{arrays_path}: corrupt ({type(error).__name__}: {error})") from None
    if "meta" not in arrays:
        raise CheckpointError(f"{arrays_path}: no 'meta' entry (not a graphnet checkpoint)")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{arrays_path}: unreadable meta: {error}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{arrays_path}: unknown checkpoint format {meta.get('format') if isinstance(meta, dict) else meta!r}")
    return spec, arrays, meta


def _check_arrays(net: CompiledNetwork, arrays: dict[str, np.ndarray], source: Path) -> None:
    expected: dict[str, tuple[int, ...]] = {f"param/{n}": net.store.slots[n].shape for n in net.store.names()}
    expected.update({f"state/{n}": net.store.state_slots[n].shape for n in net.store.state_slots})
    present = {key for key in arrays if not key.startswith("optim/")}
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


def checkpoint_folder(folder: str | Path) -> Path:
    """The checkpoint folder of `folder`: itself, or the `checkpoint/` inside a run folder."""
    folder = Path(folder)
    inside = folder / "checkpoint"
    if not (folder / SPEC_FILE).is_file() and inside.is_dir():
        return inside
    return folder


def load_checkpoint(folder: str | Path, *, batch_size: int = 128, backend: str | None = None) -> CompiledNetwork:
    """Compile the checkpoint's network and load its arrays; `folder` is a checkpoint
    folder or a run folder written by `graphnet train` (its `checkpoint/` is read)."""
    net, _, _ = restore(checkpoint_folder(folder), batch_size=batch_size, backend=backend)
    return net


def restore(folder: str | Path, *, batch_size: int = 128, backend: str | None = None,
            make_optimizer: Callable[[CompiledNetwork], Any] | None = None) -> tuple[CompiledNetwork, dict[str, Any], Any]:
    """The checkpoint's network, its meta (training position, history) and, with
    `make_optimizer`, an optimizer for the network with its saved state loaded."""
    folder = Path(folder)
    spec, arrays, meta = read_checkpoint(folder)
    dtype = meta.get("dtype", "float32")
    if dtype not in ("float32", "float64"):
        raise CheckpointError(f"{folder / ARRAYS_FILE}: unsupported dtype {dtype!r}")
    seed = meta.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise CheckpointError(f"{folder / ARRAYS_FILE}: meta 'seed' is {seed!r}, not a non-negative integer")
    net = compile(spec, batch_size=batch_size, dtype=dtype, backend=backend, seed=seed)
    _check_arrays(net, arrays, folder / ARRAYS_FILE)
    for name in net.store.names():
        net.store.view(name)[...] = arrays[f"param/{name}"]
    for name in net.store.state_slots:
        net.store.state_view(name)[...] = arrays[f"state/{name}"]
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
    return net, meta, optimizer


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
