"""Checkpoints: a folder with the network spec (JSON) and one `.npz` of arrays.

    checkpoint/
      network.json   the NetworkSpec (canonical JSON)
      weights.npz    param/<name>, state/<name>, optim/<slot>, preprocessing/{shift,scale},
                     best/param/<name> and best/state/<name> (the best epoch's state, which
                     the checkpoint serves, when early stopping kept one: graphnet.model.snapshot),
                     and `meta` (JSON text as UTF-8 bytes, a uint8 array): dtype, the network's
                     sha256 (see `spec_hash`), optimizer rule/hyperparameters/step, generator
                     states, what training adds (graphnet.training.position: the position, a
                     count of epoch records, the run's identity), the input preprocessing's
                     description and the class names

Each file is written atomically (temporary file, fsync, rename), so a crash
at any moment leaves the previous checkpoint or the new one, never a torn
file. Loading never unpickles (`allow_pickle=False`) and checks every array's
name, shape and dtype against the spec, that every value is finite (saving
refuses non-finite values too), and that network.json is the network the
weights were saved with (its hash; checkpoints written before the hash was
stored load without this check). Checkpoints written before the preprocessing
and class names were saved load with none (`net.preprocessing is None`); those
whose meta is a numpy unicode string (4 bytes a character, as graphnet wrote it
before) load too.
"""
from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import CheckpointError, SpecError
from ..spec import NetworkSpec, parse_network
from ..system.fileio import remove_stale_temporaries, write_npz_atomic, write_text_atomic
from .record import ModelRecord
from .snapshot import Snapshot

if TYPE_CHECKING:
    from .compiled import CompiledNetwork

FORMAT = 1
SPEC_FILE = "network.json"
ARRAYS_FILE = "weights.npz"
HASH_KEY = "network_sha256"
# the fields that do not change what a network computes, left out of its hash
_COSMETIC_FIELDS = {"schema_ref", "name", "description"}

log = logging.getLogger("graphnet")


def _hashed(spec: NetworkSpec) -> dict[str, Any]:
    """The network's JSON document less the cosmetic fields; a node's `"trainable": true` (the
    default) is left out too, so networks saved before the field existed keep their hash."""
    document = spec.model_dump(mode="json", exclude=_COSMETIC_FIELDS)
    for node in document.get("nodes", []):
        if node.get("trainable") is True:
            del node["trainable"]
    return document


def spec_hash(spec: NetworkSpec) -> str:
    """sha256 (hex) of the network's canonical JSON: every field, defaults included, keys
    sorted, except the cosmetic $schema, name and description (see `_hashed`)."""
    document = _hashed(spec)
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def spec_difference(a: NetworkSpec, b: NetworkSpec) -> str | None:
    """Where two networks first differ in what they compute, as `location: A vs B`, or None."""
    return _first_difference(_hashed(a), _hashed(b), "")


def _first_difference(a: Any, b: Any, where: str) -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = _first_difference(a.get(key), b.get(key), f"{where}.{key}" if where else str(key))
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            found = _first_difference(x, y, f"{where}[{i}]")
            if found:
                return found
        return None
    return None if a == b else f"{where or 'the network'}: {json.dumps(a)} vs {json.dumps(b)}"


def nonfinite_arrays(arrays: dict[str, np.ndarray]) -> list[str]:
    """'name' (count of NaN/inf values, first index) for every float array that is not all finite."""
    found = []
    for name, array in arrays.items():
        if array.dtype.kind in "fc" and not np.isfinite(array).all():
            bad = ~np.isfinite(array)
            first = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), array.shape))
            found.append(f"'{name}' ({int(bad.sum())} of {array.size} values NaN or inf, first at {first})")
    return found


def generator_state(rng: np.random.Generator) -> dict[str, Any]:
    """A JSON-able snapshot of a numpy Generator."""
    return rng.bit_generator.state


def restore_generator(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = state


def save_checkpoint(folder: str | Path, net: CompiledNetwork, optimizer: Any = None,
                    meta: dict[str, Any] | None = None, best: Snapshot | None = None) -> Path:
    """Write `net` (and optionally an Optimizer's state, extra `meta`, and the `best` state to
    serve instead of the network's own) to `folder`."""
    folder = Path(folder)
    arrays: dict[str, np.ndarray] = {} if best is None else best.arrays(net)
    for name in net.store.names():
        arrays[f"param/{name}"] = net.store.view(name)
    for name in net.store.state_slots:
        arrays[f"state/{name}"] = net.store.state_view(name)
    info: dict[str, Any] = {
        "format": FORMAT,
        "dtype": net.dtype.name,
        HASH_KEY: spec_hash(net.spec),
        "seed": net.seed,
        "dropout_rng": generator_state(net.dropout_rng),
    }
    if optimizer is not None:
        state = optimizer.state_dict()
        for slot, buffer in state.pop("slots").items():
            arrays[f"optim/{slot}"] = buffer
        info["optimizer"] = state
    info.update(meta or {})
    record_meta, record_arrays = ModelRecord.of(net).saved()  # preprocessing, class names
    arrays.update(record_arrays)
    info.update(record_meta)
    bad = nonfinite_arrays(arrays)
    if bad:
        raise CheckpointError(f"{folder}: refusing to save a checkpoint that holds non-finite values: "
                              f"{'; '.join(bad)}")
    arrays["meta"] = meta_array(info)
    spec_text = net.spec.to_json() + "\n"
    spec_path = folder / SPEC_FILE
    remove_stale_temporaries(folder, [SPEC_FILE, ARRAYS_FILE])
    if not spec_path.exists() or spec_path.read_text(encoding="utf-8") != spec_text:
        write_text_atomic(spec_path, spec_text)
    write_npz_atomic(folder / ARRAYS_FILE, arrays)
    return folder


def meta_array(meta: dict[str, Any]) -> np.ndarray:
    """`meta` as the npz member "meta": its JSON text as UTF-8 bytes, shape (bytes,) uint8."""
    return np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)


def meta_from_array(array: np.ndarray) -> Any:
    """The JSON value in an npz "meta" member: UTF-8 bytes (uint8, 1-d) or, as written by an
    older graphnet, a numpy unicode string (0-d); ValueError for anything else."""
    if array.dtype == np.uint8 and array.ndim == 1:
        text = array.tobytes().decode("utf-8")
    elif array.dtype.kind == "U" and array.ndim == 0:
        text = str(array)
    else:
        raise ValueError(f"a {array.dtype} array of shape {array.shape}, not JSON text")
    return json.loads(text)


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
    not_npz = _not_an_npz(arrays_path)
    if not_npz:
        raise CheckpointError(f"{arrays_path}: not an npz archive ({not_npz})")
    try:
        arrays = _read_arrays(arrays_path)
    except ValueError as error:
        raise CheckpointError(f"{arrays_path}: corrupt or truncated ({error})") from None
    if "meta" not in arrays:
        raise CheckpointError(f"{arrays_path}: no 'meta' entry (not a graphnet checkpoint)")
    try:
        meta = meta_from_array(arrays.pop("meta"))
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{arrays_path}: unreadable meta: {error}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{arrays_path}: unknown checkpoint format {meta.get('format') if isinstance(meta, dict) else meta!r}")
    bad = nonfinite_arrays(arrays)
    if bad:
        raise CheckpointError(f"{arrays_path}: refused: non-finite values in {'; '.join(bad)} "
                              "(the checkpoint was saved from a diverged model or is corrupt)")
    return spec, arrays, meta


_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first local file header, or an empty zip


def _not_an_npz(path: Path) -> str | None:
    """Why the file cannot be an npz archive (what it looks like instead), or None if it may be one."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError as error:
        raise CheckpointError(f"{path}: unreadable ({error})") from None
    if head.startswith(_ZIP_MAGIC):
        return None
    if not head:
        return "the file is empty"
    if head.startswith(b"\x93NUMPY"):
        return "it is a single .npy array"
    if head.lstrip()[:1] in (b"{", b"["):
        return "it looks like JSON text"
    return f"it starts with bytes {head[:8].hex(' ')}, not a zip header"


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of an npz archive, never unpickling (an object array is a CheckpointError naming it)."""
    arrays = {}
    try:
        with np.load(path, allow_pickle=False) as npz:
            for key in npz.files:
                try:
                    arrays[key] = npz[key]
                except ValueError as error:
                    if "allow_pickle" not in str(error):
                        raise
                    raise CheckpointError(f"{path}: refused: array '{key}' holds Python objects (pickled data), "
                                          "which graphnet never loads") from None
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise CheckpointError(f"{path}: corrupt or truncated ({error})") from None
    except (CheckpointError, ValueError):
        raise
    except Exception as error:  # a damaged zip surfaces as many kinds (NotImplementedError, zlib.error, ...)
        raise CheckpointError(f"{path}: corrupt ({type(error).__name__}: {error})") from None
    return arrays


def check_spec_hash(spec: NetworkSpec, meta: dict[str, Any], folder: Path) -> None:
    """CheckpointError when network.json is not the network the weights were saved with."""
    saved = meta.get(HASH_KEY)
    if saved is None:
        log.info("graphnet: %s has no network hash (written by an older graphnet): network.json is not "
                 "checked against the weights", folder / ARRAYS_FILE)
        return
    if saved != spec_hash(spec):
        raise CheckpointError(
            f"{folder / SPEC_FILE} does not match {folder / ARRAYS_FILE}: the weights were saved with a network "
            f"whose sha256 is {str(saved)[:12]}..., {SPEC_FILE} now hashes to {spec_hash(spec)[:12]}... "
            f"(was {SPEC_FILE} edited? restore the network it was saved with, or train the edited one anew)")


def checkpoint_folder(folder: str | Path) -> Path:
    """The checkpoint folder of `folder`: itself, or the `checkpoint/` inside a run folder."""
    folder = Path(folder)
    inside = folder / "checkpoint"
    if not (folder / SPEC_FILE).is_file() and inside.is_dir():
        return inside
    return folder
