"""Ways in and out of graphnet: ONNX export (`onnx_export`) and import (`onnx_import`, whose
parts are `onnx_graph` (reading the model), `onnx_rules` (a rule per ONNX op type) and
`onnx_spec` (the spec document built from what the rules recorded)).

The modules here import the optional `onnx` package only when used
(`require_onnx`), so `import graphnet` works without the `[onnx]` extra.
"""
from __future__ import annotations

from types import ModuleType

from ..errors import GraphnetError

INSTALL_HINT = "pip install 'graphnet[onnx]'"


def require_onnx(what: str) -> ModuleType:
    """The `onnx` module, or a GraphnetError saying which extra to install."""
    try:
        import onnx
    except ImportError:
        raise GraphnetError(f"{what} needs the onnx package, which is not installed: {INSTALL_HINT}") from None
    return onnx
