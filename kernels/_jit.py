"""The numba import guard and the decorators every numba kernel uses.

Kernels import numba through this module (its guard and decorators), so the
package imports fine without numba; a numba kernel called without numba raises
ImportError. `_jitmath.py` alone also reaches, behind the same guard, numba's
extension API and llvmlite (numba's code generator) for its float32 intrinsics.

Cache keys: numba's ``cache=True`` only notices edits of the file that defines
a kernel, not of the helpers it calls from other files (``_jitmath.py``) or of
the constants it reads (``codes.py``, the flags here). Every kernel therefore
gets a cache whose index key also holds ``SOURCE_HASH``, a hash of all jitted
kernel sources, so any edit in this folder recompiles every kernel once.
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any, Callable

try:
    import numba
    from numba.core.caching import FunctionCache
except ImportError:  # numpy-only installs
    numba = None
    FunctionCache = None

HAVE_NUMBA: bool = numba is not None

#: Fast-math flags: reassociation (vectorized reductions), no signed zeros,
#: reciprocal approximations allowed, FMA contraction. Never ``nnan``/``ninf``:
#: those would break NaN/inf checks such as ``all_finite``.
FASTMATH: frozenset[str] = frozenset({"reassoc", "nsz", "arcp", "contract"})

#: ``error_model="numpy"``: no zero-division branch on ``/`` (the default
#: "python" model blocks vectorization).
JIT_OPTIONS: dict[str, Any] = {"error_model": "numpy", "fastmath": set(FASTMATH)}

MISSING_NUMBA_MESSAGE = (
    "the numba kernel backend needs numba, which is not importable: "
    "install it (pip install numba) or use the numpy backend "
    "(GRAPHNET_BACKEND=numpy, or backend='numpy')"
)

# Files whose code is never compiled by numba; editing them must not
# invalidate the kernel cache. Every other .py file here counts.
_NOT_JITTED = frozenset({"__init__.py", "backend.py", "examples.py", "_workspace.py", "bench.py"})


def _source_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        if path.name not in _NOT_JITTED:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


#: Hash of the jitted kernel sources (part of every kernel's cache key).
#: Generated njit code that calls these kernels should embed it in its own
#: source or file name so that its cache notices kernel edits too.
SOURCE_HASH: str = _source_hash()


if HAVE_NUMBA:

    class LibraryKeyedCache(FunctionCache):  # type: ignore[misc, valid-type]
        """numba's per-function disk cache, keyed also on SOURCE_HASH."""

        def _index_key(self, sig, codegen):  # noqa: ANN001, ANN202
            return (*super()._index_key(sig, codegen), SOURCE_HASH)


def _missing(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise ImportError(MISSING_NUMBA_MESSAGE)

    return unavailable


def kernel(fn: Callable) -> Callable:
    """Compile `fn` as a cached numba kernel (lazily, per dtype/layout)."""
    if not HAVE_NUMBA:
        return _missing(fn)
    dispatcher = numba.njit(**JIT_OPTIONS)(fn)
    dispatcher._cache = LibraryKeyedCache(fn)  # what cache=True does, with our key
    return dispatcher


def nogil_kernel(fn: Callable) -> Callable:
    """Compile `fn` as a cached numba kernel that releases the GIL while it runs (so another
    Python thread can run a kernel at the same time)."""
    if not HAVE_NUMBA:
        return _missing(fn)
    dispatcher = numba.njit(nogil=True, **JIT_OPTIONS)(fn)
    dispatcher._cache = LibraryKeyedCache(fn)
    return dispatcher


def helper(fn: Callable) -> Callable:
    """Compile `fn` as an njit helper inlined into the kernels calling it."""
    if not HAVE_NUMBA:
        return fn
    return numba.njit(inline="always", **JIT_OPTIONS)(fn)
