"""graphnet: declarative, compiled-graph neural networks for the CPU.

    import graphnet as gn
    run = gn.load("specs/fashion_mlp.json")            # RunSpec or NetworkSpec
    net = gn.compile(run.network, batch_size=128)       # CompiledNetwork
    opt = gn.Optimizer(net, "adam", learning_rate=1e-3)
    loss = opt.step(X, y)
"""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import (
                     BackendError,
                     CheckpointError,
                     ConfigError,
                     DataError,
                     GraphnetError,
                     NonFiniteError,
                     NumbaMissingError,
                     PlanError,
                     RunFolderError,
                     SpecError,
                     SpecWarning,
)
from .interop.onnx_import import from_onnx
from .model.checkpoint import load_checkpoint
from .runtime.config import config_context, get_config, set_config
from .runtime.network import CompiledNetwork, compile
from .runtime.optimizer import Optimizer
from .runtime.threads import get_threads, set_threads
from .spec import NetworkSpec, RunSpec, TrainSpec, load, parse, parse_network, parse_run
from .spec.builder import sequential
from .training import TrainResult, train

__all__ = [
    "__version__",
    "BackendError",
    "CheckpointError",
    "CompiledNetwork",
    "ConfigError",
    "DataError",
    "GraphnetError",
    "NetworkSpec",
    "NonFiniteError",
    "NumbaMissingError",
    "Optimizer",
    "PlanError",
    "RunFolderError",
    "RunSpec",
    "SpecError",
    "SpecWarning",
    "TrainResult",
    "TrainSpec",
    "compile",
    "config_context",
    "from_onnx",
    "get_config",
    "get_threads",
    "load",
    "load_checkpoint",
    "parse",
    "parse_network",
    "parse_run",
    "sequential",
    "set_config",
    "set_threads",
    "train",
]
