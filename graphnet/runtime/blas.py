"""numpy's own BLAS GEMM with alpha and beta, called through ctypes.

`np.matmul(A, B, out=C)` always computes C = A @ B. An SGD update folded into
the backward pass needs the general form, W = beta * W + alpha * X^T @ dY, so
that the weight gradient is never written to memory and read back: the GEMM
updates W as it computes. This module finds the `cblas_?gemm` symbol of the
BLAS library numpy itself loaded (one library, one thread pool: calling a
second BLAS, such as numba's SciPy one, would put two spinning pools on the
same cores) and checks it against `np.matmul` before anyone uses it.

    gemm = find_gemm(np.float32)      # None when no usable cblas is found
    gemm.update_at_b(X, dY, W, alpha=-lr, beta=1.0)     # W = W - lr * X.T @ dY
    update = AtBUpdate(gemm)          # the same, for repeated calls on the same arrays
    update = at_b_update(np.float32)  # the same, raising ValueError when there is no GEMM

Neither ops nor the compiler import this module: `gn.compile` puts the GEMM into the
network's Target (graphnet.runtime.config.resolve_target), and the compiler hands a fresh
`Gemm.at_b_update()` to an op through the lowering context (`ctx.at_b_update()`,
see graphnet.ops.lowering).

The libraries are those `threadpoolctl` reports as loaded (it reads the
loader's own lists, on Linux, macOS and Windows alike). `gemm_status()` says
which library and symbol were found, or why none was; `blas_info()` adds the
library's path, kind, kernel (OpenBLAS's `architecture`) and thread count, for
benchmark reports.
"""
from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112

# (symbol prefix + suffix, integer type): ILP64 builds take 64-bit sizes.
_SYMBOLS = (
    ("scipy_cblas_{t}gemm64_", ctypes.c_int64),  # numpy >= 2 wheels (scipy-openblas64)
    ("cblas_{t}gemm64_", ctypes.c_int64),  # numpy 1.2x wheels (openblas64_)
    ("cblas_{t}gemm_64", ctypes.c_int64),  # MKL ILP64 naming
    ("cblas_{t}gemm", ctypes.c_int),  # LP64 system BLAS (Debian, conda)
)
_SCALARS = {np.dtype(np.float32): ("s", ctypes.c_float), np.dtype(np.float64): ("d", ctypes.c_double)}
_DISABLE_VAR = "GRAPHNET_NO_CBLAS"


@dataclass
class Gemm:
    """One `cblas_?gemm` of numpy's BLAS library, for one dtype."""

    library: str
    symbol: str
    dtype: np.dtype
    function: Any  # the ctypes function
    integer: Any  # its ctypes integer type
    scalar: Any  # its ctypes float type

    def update_at_b(self, A: np.ndarray, B: np.ndarray, C: np.ndarray, alpha: float, beta: float) -> None:
        """C = beta * C + alpha * A.T @ B in place. A: (K, M), B: (K, N), C: (M, N), each C-contiguous
        or a block of columns of a C-contiguous array (rows of contiguous elements)."""
        AtBUpdate(self)(A, B, C, alpha, beta)

    def at_b_update(self) -> "AtBUpdate":
        """A fresh `AtBUpdate` on this GEMM (the kernel one SGD-in-backward step calls)."""
        return AtBUpdate(self)


class AtBUpdate:
    """`C = beta * C + alpha * A.T @ B` as a reusable call: its ctypes arguments are
    built once and rebuilt only for an argument that is a different array than
    last time (a bound plan passes the same views on every run), which takes the
    call from about 8 µs to about 1.5 µs. It holds the last arrays it was given."""

    def __init__(self, gemm: Gemm):
        self.gemm = gemm
        self.arrays: list[Any] = [None, None, None]
        integer, scalar = gemm.integer, gemm.scalar
        self.args = [ctypes.c_int(_ROW_MAJOR), ctypes.c_int(_TRANS), ctypes.c_int(_NO_TRANS),
                     integer(0), integer(0), integer(0), scalar(0), ctypes.c_void_p(), integer(1),
                     ctypes.c_void_p(), integer(1), scalar(0), ctypes.c_void_p(), integer(1)]

    def __call__(self, A: np.ndarray, B: np.ndarray, C: np.ndarray, alpha: float, beta: float) -> None:
        arrays, args = self.arrays, self.args
        if A is not arrays[0] or B is not arrays[1] or C is not arrays[2]:
            self._rebind(A, B, C)
        if args[5].value == 0:  # an empty inner dimension: BLAS may not touch C at all
            C *= beta
            return
        args[6].value, args[11].value = alpha, beta
        self.gemm.function(*args)

    def _rebind(self, A: np.ndarray, B: np.ndarray, C: np.ndarray) -> None:
        dtype = self.gemm.dtype
        if not (A.ndim == B.ndim == C.ndim == 2) or B.shape[0] != A.shape[0] or C.shape != (A.shape[1], B.shape[1]) \
                or not (_row_major(A) and _row_major(B) and _row_major(C)) \
                or not (A.dtype == B.dtype == C.dtype == dtype):
            raise ValueError(f"update_at_b: A {A.dtype}{A.shape}, B {B.dtype}{B.shape}, C {C.dtype}{C.shape} "
                             f"do not make C = beta*C + alpha*A.T@B ({dtype.name} arrays, rows of contiguous "
                             "elements)")
        args, arrays = self.args, self.arrays
        K, M = A.shape
        N = C.shape[1]
        for value, index in ((M, 3), (N, 4), (K, 5), (_leading(A), 8), (_leading(B), 10), (_leading(C), 13)):
            args[index].value = value
        for slot, (array, index) in enumerate(((A, 7), (B, 9), (C, 12))):
            if array is not arrays[slot]:
                args[index].value = array.ctypes.data
                arrays[slot] = array


def _row_major(array: np.ndarray) -> bool:
    """Rows of contiguous elements, each row at a fixed stride of at least its length (a
    C-contiguous array, or a block of columns of one): what a row-major BLAS call takes."""
    rows, columns = array.shape
    item = array.itemsize
    if rows == 0 or columns == 0:
        return True
    if columns > 1 and array.strides[1] != item:
        return False
    return rows <= 1 or (array.strides[0] % item == 0 and array.strides[0] >= max(columns, 1) * item)


def _leading(array: np.ndarray) -> int:
    """The BLAS leading dimension of a row-major array (`_row_major`): its row stride in elements."""
    rows, columns = array.shape
    if rows <= 1:
        return max(columns, 1)
    return max(array.strides[0] // array.itemsize, columns, 1)


def _threadpool_info() -> list[dict[str, Any]]:
    """threadpoolctl's report of the native thread pools loaded in this process."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return threadpool_info()


def _numpy_package() -> str:
    return os.path.dirname(os.path.realpath(np.__file__))


def _loaded_libraries() -> list[str]:
    """The BLAS libraries loaded in this process, numpy's own first (as `blas_candidates`)."""
    return blas_candidates(_threadpool_info(), _numpy_package())


def _blas_entries(info: list[dict[str, Any]], numpy_package: str) -> list[dict[str, Any]]:
    """The BLAS entries of a `threadpool_info()` list, ordered as `blas_candidates`."""
    blas = [entry for entry in info if entry.get("user_api") == "blas" and entry.get("filepath")]
    own = (numpy_package + os.sep, numpy_package + ".libs" + os.sep)

    def order(entry: dict[str, Any]) -> tuple[bool, str]:
        path = entry["filepath"]
        return not os.path.realpath(path).startswith(own), path

    return sorted(blas, key=order)


def blas_candidates(info: list[dict[str, Any]], numpy_package: str) -> list[str]:
    """The file paths of the BLAS libraries in `info` (a `threadpoolctl.threadpool_info()`
    list), those shipped with numpy (its package folder or a wheel's `numpy.libs`)
    first, then by path. OpenMP pools and the like are left out."""
    return [entry["filepath"] for entry in _blas_entries(info, numpy_package)]


@dataclass(frozen=True)
class BlasInfo:
    """numpy's BLAS as threadpoolctl reports it, and the GEMM graphnet calls in it."""

    library: str | None  # file path of the loaded library; None when none was found
    internal_api: str  # "openblas", "mkl", "blis", ...
    version: str
    num_threads: int
    gemm: str  # gemm_status(): the symbol used, or why none is
    architecture: str = ""  # the kernel the library picked ("SkylakeX"), where it says

    def __str__(self) -> str:
        if self.library is None:
            return f"BLAS: none found by threadpoolctl; SGD-in-backward GEMM: {self.gemm}"
        kernel = f", kernel {self.architecture}" if self.architecture else ""
        return (f"BLAS: {self.internal_api} {self.version}{kernel}, {self.num_threads} threads "
                f"({self.library}); SGD-in-backward GEMM: {self.gemm}")


def blas_info(dtype: Any = np.float32) -> BlasInfo:
    """The BLAS library numpy loaded (the first candidate), with its thread count."""
    np.matmul(np.ones((2, 2)), np.ones((2, 2)))  # make sure numpy has loaded its BLAS
    entries = _blas_entries(_threadpool_info(), _numpy_package())
    status = gemm_status(dtype)
    if not entries:
        return BlasInfo(None, "", "", 0, status)
    first = entries[0]
    return BlasInfo(first["filepath"], str(first.get("internal_api", "")), str(first.get("version") or ""),
                    int(first.get("num_threads") or 0), status, str(first.get("architecture") or ""))


def _bind(library: str, dtype: np.dtype) -> Gemm | None:
    letter, scalar = _SCALARS[dtype]
    try:
        handle = ctypes.CDLL(library)
    except OSError:
        return None
    for pattern, integer in _SYMBOLS:
        symbol = pattern.format(t=letter)
        function = getattr(handle, symbol, None)
        if function is None:
            continue
        function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, integer, integer, integer, scalar,
                             ctypes.c_void_p, integer, ctypes.c_void_p, integer, scalar, ctypes.c_void_p, integer]
        function.restype = None
        gemm = Gemm(library, symbol, dtype, function, integer, scalar)
        if _agrees_with_numpy(gemm):
            return gemm
    return None


def _agrees_with_numpy(gemm: Gemm) -> bool:
    """A small GEMM with alpha and beta against np.matmul: guards the symbol's calling convention."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((7, 5)).astype(gemm.dtype)
    B = rng.standard_normal((7, 3)).astype(gemm.dtype)
    C = rng.standard_normal((5, 3)).astype(gemm.dtype)
    expected = 0.5 * C - 2.0 * (A.T.astype(np.float64) @ B.astype(np.float64))
    gemm.update_at_b(A, B, C, -2.0, 0.5)
    return bool(np.allclose(C, expected, rtol=1e-4, atol=1e-4))


_FOUND: dict[np.dtype, Gemm | None] = {}


def find_gemm(dtype: Any) -> Gemm | None:
    """numpy's cblas GEMM for float32/float64, checked; None if there is none (or $GRAPHNET_NO_CBLAS is set)."""
    dtype = np.dtype(dtype)
    if dtype not in _SCALARS or os.environ.get(_DISABLE_VAR, "") not in ("", "0"):
        return None
    if dtype not in _FOUND:
        np.matmul(np.ones((2, 2)), np.ones((2, 2)))  # make sure numpy has loaded its BLAS
        _FOUND[dtype] = next((g for lib in _loaded_libraries() if (g := _bind(lib, dtype)) is not None), None)
    return _FOUND[dtype]


def at_b_update(dtype: Any) -> AtBUpdate:
    """A fresh `AtBUpdate` on numpy's cblas GEMM for `dtype` (the kernel a plan's
    SGD-in-backward step calls); ValueError saying why when there is none."""
    gemm = find_gemm(dtype)
    if gemm is None:
        raise ValueError(f"no {np.dtype(dtype).name} GEMM for an update in backward: {gemm_status(dtype)}")
    return gemm.at_b_update()


def gemm_status(dtype: Any = np.float32) -> str:
    """Which cblas GEMM graphnet uses for `dtype`, or why it uses none."""
    dtype = np.dtype(dtype)
    if os.environ.get(_DISABLE_VAR, "") not in ("", "0"):
        return f"disabled by ${_DISABLE_VAR}"
    gemm = find_gemm(dtype)
    if gemm is None:
        if not _loaded_libraries():
            return "threadpoolctl finds no BLAS library loaded in this process"
        return f"no cblas {dtype.name} GEMM found in the BLAS libraries numpy loaded"
    return f"{gemm.symbol} from {os.path.basename(gemm.library)}"
