"""graphnet: declarative, compiled-graph neural networks for the CPU."""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import CheckpointError, DataError, GraphnetError, NonFiniteError, PlanError, SpecError

__all__ = [
    "__version__",
    "CheckpointError",
    "DataError",
    "GraphnetError",
    "NonFiniteError",
    "PlanError",
    "SpecError",
]
