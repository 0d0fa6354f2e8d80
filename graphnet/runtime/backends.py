"""The kernel backend a network computes with: the name asked for, else $GRAPHNET_BACKEND,
else numba; graphnet's own errors when the name is unknown (BackendError, a ValueError) or
numba is not installed (NumbaMissingError, an ImportError too), saying what to use instead."""
from __future__ import annotations

import os

from ..errors import BackendError, NumbaMissingError
from ..kernels import BACKEND_NAMES, HAVE_NUMBA, KernelBackend, get_backend
from ..kernels.backend import ENV_VAR

_NO_NUMBA = "the numba backend needs numba, which is not installed: pip install numba, or use the numpy backend"


def kernel_backend(name: str | KernelBackend | None = None) -> KernelBackend:
    """The kernels of backend `name` ("numba" or "numpy"; None: $GRAPHNET_BACKEND, else "numba")."""
    if isinstance(name, KernelBackend):
        return name
    chosen, source = (name, "backend") if name is not None else (os.environ.get(ENV_VAR) or "numba", ENV_VAR)
    key = str(chosen).strip().lower()
    if key not in BACKEND_NAMES:
        raise BackendError(f"{source}={chosen!r}: unknown kernel backend; choose one of {', '.join(BACKEND_NAMES)}")
    if key == "numba" and not HAVE_NUMBA:
        raise NumbaMissingError(f"{_NO_NUMBA} (backend='numpy', or {ENV_VAR}=numpy)",
                                cli=f"{_NO_NUMBA} (--backend numpy, or {ENV_VAR}=numpy for any command)")
    return get_backend(key)
