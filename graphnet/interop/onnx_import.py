"""ONNX import: an ONNX model of an MLP -> a network spec with its weights.

    net = gn.from_onnx("model.onnx", batch_size=128)     # a CompiledNetwork
    imported = read_onnx("model.onnx")                   # spec + arrays, not compiled

Accepted: the graphs PyTorch's exporters write for MLPs (TorchScript: Gemm
with transB, Identity, BatchNormalization, Flatten; torch.export: Gemm or
MatMul + Add, Reshape to (batch, features), constants as initializers) and
graphnet's own export. Folded away on the way in: Identity, Dropout, Reshape
or Flatten to (batch, features), Transpose of a weight or of the input of a
Gemm with transA, Gemm's alpha/beta/transA/transB, Constant nodes, and an Add
of a constant after a MatMul (its bias). An affine followed by its only reader,
an elementwise activation, becomes one affine with that activation. A Sub
and/or Div of a graph input by constants, read by nothing else, is the
input's preprocessing (graphnet's export writes it first): it becomes
`net.preprocessing`, and the class names and CSV columns graphnet's export
keeps in the model's metadata come back too, so predictions take raw features.
A table model's column encoding and target scaling (graphnet.interop.onnx_table)
are cut off the graph and come back as `net.encoding` and `net.target_scaling`.

The spec has no labels and no loss: it is an inference network. To train it,
add labels and a loss node that reads an output (see README).
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import GraphnetError, SpecError, SpecWarning
from . import require_onnx
from .onnx_export import CLASS_NAMES_PROP, FEATURES_PROP
from .onnx_graph import FLOAT_TYPES, Const, Importer, Pending, Transposed, Val
from .onnx_rules import IMPORTERS
from .onnx_spec import AFFINE_ACTIVATIONS, MAX_ID, identifier, spec_document
from .onnx_table import ENCODING_PROP, strip_table
from .onnx_tensors import load_model

if TYPE_CHECKING:
    from ..data.columns import ColumnEncoding
    from ..data.preprocessing import Preprocessing
    from ..data.targets import TargetScaling
    from ..model.compiled import CompiledNetwork
    from ..spec import NetworkSpec

__all__ = ["AFFINE_ACTIVATIONS", "FLOAT_TYPES", "IMPORTERS", "MAX_ID", "Const", "ImportedModel", "Importer",
           "Pending", "Transposed", "Val", "from_onnx", "identifier", "import_onnx", "read_onnx"]


@dataclass
class ImportedModel:
    """What an ONNX file turns into: the network spec, its arrays by name (`fc1.W`,
    `bn.running_mean`) and the dtype of the model's inputs."""

    spec: "NetworkSpec"
    arrays: dict[str, np.ndarray]
    dtype: np.dtype
    renamed: dict[str, str] = field(default_factory=dict)  # ONNX input/output name -> spec name, where changed
    preprocessing: "Preprocessing | None" = None
    class_names: tuple[str, ...] | None = None
    encoding: "ColumnEncoding | None" = None  # a table model's (graphnet.interop.onnx_table)
    target_scaling: "TargetScaling | None" = None



def read_onnx(path: str | Path) -> ImportedModel:
    """The network spec and arrays of an ONNX model (GraphnetError naming the node if unsupported)."""
    from ..model.checkpoint import nonfinite_arrays
    from ..spec import parse_network

    onnx = require_onnx("ONNX import")
    path = Path(path)
    model = load_model(onnx, path)
    props = {p.key: p.value for p in model.metadata_props}
    model, encoding, scaling, label = strip_table(onnx, model, props, str(path))
    importer = Importer(onnx, model, str(path))
    importer.run(IMPORTERS)
    name = model.graph.name or path.stem
    document, arrays, renamed = spec_document(importer, name[:100])
    bad = nonfinite_arrays(arrays)
    if bad:
        raise GraphnetError(f"{path}: refused: non-finite weights in {'; '.join(bad)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SpecWarning)  # an input the outputs do not read is allowed
            spec = parse_network(document)
    except SpecError as error:
        raise GraphnetError(f"{path}: the imported network is not valid: {error}") from None
    dtype = next((FLOAT_TYPES[i.type.tensor_type.elem_type] for i in model.graph.input
                  if i.name in importer.values and isinstance(importer.values[i.name], Val)), np.dtype(np.float32))
    preprocessing = _preprocessing(importer, spec, renamed, props, str(path))
    if encoding is not None and preprocessing is None and len(spec.inputs) == 1:  # encoded, not normalized
        from ..data.preprocessing import Preprocessing

        [name] = spec.inputs
        preprocessing = Preprocessing(name, tuple(spec.inputs[name].shape))
    if encoding is not None:
        if preprocessing is None or preprocessing.width != encoding.width:
            raise GraphnetError(f"{path}: metadata {ENCODING_PROP} encodes {encoding.width} features, the graph's "
                                "input preprocessing reads "
                                f"{'none' if preprocessing is None else preprocessing.width}")
        preprocessing = replace(preprocessing, label_column=label)
    return ImportedModel(spec, arrays, dtype, renamed, preprocessing, _class_names(props, spec, str(path)),
                         encoding, scaling)


def _preprocessing(imp: Importer, spec: "NetworkSpec", renamed: dict[str, str], props: dict[str, str],
                   source: str) -> "Preprocessing | None":
    """The Sub/Div steps the importer found on a graph input, as a Preprocessing record."""
    from ..data.preprocessing import Preprocessing

    if not imp.preprocessing:
        return None
    if len(imp.preprocessing) > 1:
        raise GraphnetError(f"{source}: preprocessing of several inputs ({', '.join(imp.preprocessing)}) is not "
                            "supported: graphnet keeps one preprocessed input")
    [(onnx_name, steps)] = imp.preprocessing.items()
    name = renamed.get(onnx_name, onnx_name)
    raw_shape = spec.inputs[name].shape
    width = int(np.prod(raw_shape, dtype=np.int64))
    arrays = {}
    for key, default in (("shift", 0.0), ("scale", 1.0)):
        array = np.asarray(steps.get(key, default), np.float64)
        if array.size not in (1, width):
            raise GraphnetError(f"{source}: the preprocessing {key} of input '{onnx_name}' has shape {array.shape}; "
                                f"expected one value or one per feature ({width})")
        arrays[key] = array.reshape(()) if array.size == 1 else array.reshape(width)
    if not np.isfinite(arrays["shift"]).all() or not np.isfinite(arrays["scale"]).all() or np.any(arrays["scale"] == 0):
        raise GraphnetError(f"{source}: the preprocessing of input '{onnx_name}' has non-finite values or divides "
                            "by zero")
    features = _json_prop(props, FEATURES_PROP, source)
    names = label = None
    if isinstance(features, dict) and features.get("input") == onnx_name:
        names, label = features.get("feature_names"), features.get("label_column")
        if not (isinstance(names, list) and len(names) == width and all(isinstance(n, str) for n in names)):
            raise GraphnetError(f"{source}: metadata {FEATURES_PROP} does not name {width} feature columns")
        names, label = tuple(names), label if isinstance(label, str) else None
    return Preprocessing(name, tuple(raw_shape), "standardize", arrays["shift"], arrays["scale"], names, label)


def _class_names(props: dict[str, str], spec: "NetworkSpec", source: str) -> tuple[str, ...] | None:
    """The class names graphnet's export keeps in the metadata: one per column of the first output."""
    names = _json_prop(props, CLASS_NAMES_PROP, source)
    if names is None:
        return None
    columns = spec.node(spec.outputs[0]).units if spec.node(spec.outputs[0]).op == "affine" else None
    if (not isinstance(names, list) or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names)
            or (columns is not None and len(names) != columns)):
        raise GraphnetError(f"{source}: metadata {CLASS_NAMES_PROP} is not a list of distinct class names"
                            + (f" for the {columns} outputs" if columns is not None else ""))
    return tuple(names)


def _json_prop(props: dict[str, str], key: str, source: str) -> Any:
    if key not in props:
        return None
    try:
        return json.loads(props[key])
    except ValueError:
        raise GraphnetError(f"{source}: metadata {key} is not JSON") from None
    except RecursionError:
        raise GraphnetError(f"{source}: metadata {key} is nested too deeply to read") from None


def from_onnx(path: str | Path, batch_size: int = 128, dtype: Any = None, backend: str | None = None,
              seed: int | None = 0) -> "CompiledNetwork":
    """An ONNX model as a CompiledNetwork with its weights (see `read_onnx`).

    `dtype` defaults to the model's (float -> float32, double -> float64); the
    network has no loss: `forward` and `predict` work, training needs a loss added.
    """
    from ..model.compiled import compile

    imported = read_onnx(path)
    net = compile(imported.spec, batch_size=batch_size, dtype=dtype or imported.dtype, backend=backend, seed=seed)
    net.load_state_dict(imported.arrays)
    net.preprocessing, net.class_names = imported.preprocessing, imported.class_names
    net.encoding, net.target_scaling = imported.encoding, imported.target_scaling
    return net


def import_onnx(path: str | Path, folder: str | Path, dtype: Any = None) -> Path:
    """Write the ONNX model at `path` as a checkpoint folder (network.json + weights.npz)."""
    from ..model.checkpoint import save_checkpoint

    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise GraphnetError(f"{folder}: exists and is not an empty folder; choose a new folder for the checkpoint")
    net = from_onnx(path, batch_size=1, dtype=dtype)
    return save_checkpoint(folder, net)
