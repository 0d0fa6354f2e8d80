"""graphnet: declarative, compiled-graph neural networks for the CPU.

    import graphnet as gn
    run = gn.load("specs/fashion_mlp.json")            # RunSpec or NetworkSpec
    net = gn.compile(run.network, batch_size=128)       # CompiledNetwork
    opt = gn.Optimizer(net, "adam", learning_rate=1e-3)
    loss = opt.step(X, y)

`import graphnet` loads the errors alone; every other name, and every subpackage
(`graphnet.data`, `graphnet.kernels`, ...), loads its module on first use.
"""
from __future__ import annotations

import importlib
from typing import Any

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
from .version import __version__

# name -> the module (relative to graphnet) that defines it
_NAMES = {
    "CompiledNetwork": "model.compiled", "compile": "model.compiled",
    "load_checkpoint": "model.restore", "save_checkpoint": "model.checkpoint",
    "export_onnx": "interop.onnx_export", "from_onnx": "interop.onnx_import",
    "config_context": "runtime.config", "get_config": "runtime.config", "set_config": "runtime.config",
    "Optimizer": "runtime.optimizer", "get_threads": "runtime.threads", "set_threads": "runtime.threads",
    "NetworkSpec": "spec", "RunSpec": "spec", "TrainSpec": "spec", "load": "spec", "parse": "spec",
    "parse_network": "spec", "parse_run": "spec", "sequential": "spec.builder",
    "TrainResult": "training", "train": "training",
}
_SUBPACKAGES = {"benchmarks", "cli", "compiler", "data", "gradient_check", "homework", "interop", "kernels",
                "layer_utils", "layers", "model", "models", "nn", "ops", "optim", "runs", "runtime", "solver",
                "spec", "specs", "sweep", "system", "training"}

__all__ = ["__version__", "BackendError", "CheckpointError", "ConfigError", "DataError", "GraphnetError",
           "NonFiniteError", "NumbaMissingError", "PlanError", "RunFolderError", "SpecError", "SpecWarning",
           *sorted(_NAMES)]


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        value = getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'graphnet' has no attribute {name!r}")
    globals()[name] = value  # found once
    return value


def __dir__() -> list[str]:
    return sorted(set(__all__) | _SUBPACKAGES)
