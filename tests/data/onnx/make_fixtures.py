"""Regenerate the PyTorch-exported ONNX fixtures of tests/test_onnx_import.py.

    pip install torch onnxscript      # not test dependencies: CI only reads the files written here
    python tests/data/onnx/make_fixtures.py

For each small MLP and CNN below, writes `<name>_torchscript.onnx` (torch.onnx.export with
dynamo=False, opset 17) and `<name>_dynamo.onnx` (dynamo=True, opset 18), both with a
dynamic batch dimension, and `<name>.npz` holding a sample input `X` (float32) and
torch's eval-mode output `y` for it. Weights and running statistics come from a
fixed seed and a few train-mode batches, so batchnorm's statistics are not trivial.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent


def models() -> dict[str, tuple[nn.Module, tuple[int, ...]]]:
    """name -> (module, per-example input shape)."""
    torch.manual_seed(0)
    return {
        "mlp_bn": (nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.3),
                                 nn.Linear(8, 3)), (6,)),
        "mlp_softmax": (nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3), nn.Softmax(dim=1)), (6,)),
        "mlp_flatten": (nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.LeakyReLU(0.2), nn.Linear(5, 2),
                                      nn.Tanh()), (2, 3)),
        "cnn_bn": (nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Conv2d(4, 6, 3, bias=False), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                                 nn.Dropout(0.2), nn.Linear(6, 3)), (1, 10, 10)),
        "cnn_gap": (nn.Sequential(nn.Conv2d(2, 5, (3, 2), stride=(2, 1), padding=(1, 0)), nn.LeakyReLU(0.1),
                                  nn.MaxPool2d(3, stride=1, padding=1), nn.Conv2d(5, 4, 3, padding="same"), nn.Tanh(),
                                  nn.AvgPool2d(2, stride=1, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(4, 2)), (2, 7, 6)),
    }


def settle_statistics(module: nn.Module, shape: tuple[int, ...]) -> None:
    """A few train-mode forward passes on shifted data: batchnorm's running stats move off (0, 1)."""
    module.train()
    with torch.no_grad():
        for _ in range(5):
            module(torch.randn(16, *shape) * 2.0 + 0.5)
    module.eval()


def export(module: nn.Module, example: torch.Tensor, path: Path, dynamo: bool) -> None:
    options = dict(input_names=["x"], output_names=["y"], dynamo=dynamo)
    if dynamo:
        options.update(opset_version=18, dynamic_shapes=({0: torch.export.Dim("batch")},), external_data=False)
    else:
        options.update(opset_version=17, dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), str(path), **options)


def main() -> None:
    for name, (module, shape) in models().items():
        settle_statistics(module, shape)
        X = torch.randn(7, *shape)
        with torch.no_grad():
            y = module(X)
        for exporter, dynamo in (("torchscript", False), ("dynamo", True)):
            export(module, X, HERE / f"{name}_{exporter}.onnx", dynamo)
        np.savez(HERE / f"{name}.npz", X=X.numpy(), y=y.numpy())
        print(f"wrote {name}: torchscript, dynamo, npz")


if __name__ == "__main__":
    main()
