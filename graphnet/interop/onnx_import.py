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
an elementwise activation, becomes one affine with that activation.

The spec has no labels and no loss: it is an inference network. To train it,
add labels and a loss node that reads an output (see README).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import GraphnetError, SpecError, SpecWarning
from . import require_onnx
from .onnx_graph import FLOAT_TYPES, Const, Importer, Pending, Transposed, Val, load_model
from .onnx_rules import IMPORTERS
from .onnx_spec import AFFINE_ACTIVATIONS, MAX_ID, identifier, spec_document

if TYPE_CHECKING:
    from ..network import CompiledNetwork
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



def read_onnx(path: str | Path) -> ImportedModel:
    """The network spec and arrays of an ONNX model (GraphnetError naming the node if unsupported)."""
    from ..checkpoint import nonfinite_arrays
    from ..spec import parse_network

    onnx = require_onnx("ONNX import")
    path = Path(path)
    model = load_model(onnx, path)
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
    return ImportedModel(spec, arrays, dtype, renamed)


def from_onnx(path: str | Path, batch_size: int = 128, dtype: Any = None, backend: str | None = None,
              seed: int | None = 0) -> "CompiledNetwork":
    """An ONNX model as a CompiledNetwork with its weights (see `read_onnx`).

    `dtype` defaults to the model's (float -> float32, double -> float64); the
    network has no loss: `forward` and `predict` work, training needs a loss added.
    """
    from ..network import compile

    imported = read_onnx(path)
    net = compile(imported.spec, batch_size=batch_size, dtype=dtype or imported.dtype, backend=backend, seed=seed)
    net.load_state_dict(imported.arrays)
    return net


def import_onnx(path: str | Path, folder: str | Path, dtype: Any = None) -> Path:
    """Write the ONNX model at `path` as a checkpoint folder (network.json + weights.npz)."""
    from ..checkpoint import save_checkpoint

    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise GraphnetError(f"{folder}: exists and is not an empty folder; choose a new folder for the checkpoint")
    net = from_onnx(path, batch_size=1, dtype=dtype)
    return save_checkpoint(folder, net)
