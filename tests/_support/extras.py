"""Which optional extras are installed, for tests whose premise needs one."""
from importlib.util import find_spec

import pytest

from graphnet.kernels import available_backends

HAVE_MATPLOTLIB = find_spec("matplotlib") is not None  # graphnet[plot]
HAVE_TQDM = find_spec("tqdm") is not None  # graphnet[progress]
HAVE_MPI4PY = find_spec("mpi4py") is not None  # graphnet[mpi]
HAVE_ONNX = find_spec("onnx") is not None  # graphnet[onnx]
HAVE_OPTUNA = find_spec("optuna") is not None  # graphnet[sweep]
HAVE_SKLEARN = find_spec("sklearn") is not None  # the test extra: the metrics' oracle
HAVE_TENSORBOARDX = find_spec("tensorboardX") is not None  # graphnet[tensorboard]
HAVE_TENSORBOARD = find_spec("tensorboard") is not None  # the test extra: TensorBoard's own event reader
HAVE_MLFLOW = find_spec("mlflow") is not None  # graphnet[mlflow]
# numba is a dependency, but graphnet runs without it on the numpy backend
needs_numba = pytest.mark.skipif("numba" not in available_backends(), reason="numba is not installed")
