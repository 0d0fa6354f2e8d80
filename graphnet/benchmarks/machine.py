"""What a benchmark ran on: the BLAS kernel against the CPU's widest vectors, and the
machine's measured peak, the anchor every step and inference figure is given against.

    kernel = blas_kernel()      # KernelCheck: OpenBLAS's kernel ("SkylakeX"), the CPU's widest
    print(kernel)               #   vectors, and a warning when a variable forces narrower ones
    peak = measure_peak()       # Peak: sgemm GFLOP/s on one core and on all of them
    step_flops((784, 512, 256, 10), 128)     # the GEMM FLOPs of one training step
    forward_flops((784, 512, 256, 10), 128)  # the GEMM FLOPs of one forward pass

OpenBLAS picks its kernels for the CPU it runs on unless `OPENBLAS_CORETYPE`
says otherwise: on a CPU with AVX-512 a `Haswell` kernel runs on 256-bit vectors
and our GEMMs take about twice as long. `blas_kernel` compares the kernel
threadpoolctl reports (`architecture`) with the widest vectors the CPU's flags
(/proc/cpuinfo) offer, and names the variables set that narrow kernels.
Benchmarks run with `OPENBLAS_CORETYPE` and `OPENBLAS_L2_SIZE` unset in their own
command (README, "Benchmarks"), never in tests.

The peak is a float32 GEMM of a large square size, best of a few calls, on one
BLAS thread and on one thread per core: what the BLAS reaches on this machine,
not a datasheet figure.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..runtime.blas import BlasInfo, blas_info

#: Vector width in bits of each ISA level, and the levels in order.
LEVEL_BITS = {"sse": 128, "avx": 256, "avx2": 256, "avx512": 512}
LEVELS = ("sse", "avx", "avx2", "avx512")

#: OpenBLAS's x86 kernel names (openblas_get_corename, lower case) by the vectors they use.
OPENBLAS_KERNELS = {
    "skylakex": "avx512", "cooperlake": "avx512", "sapphirerapids": "avx512",
    "haswell": "avx2", "zen": "avx2", "excavator": "avx2",
    "sandybridge": "avx", "bulldozer": "avx", "piledriver": "avx", "steamroller": "avx",
    "prescott": "sse", "core2": "sse", "penryn": "sse", "dunnington": "sse", "nehalem": "sse",
    "atom": "sse", "opteron": "sse", "barcelona": "sse", "nano": "sse", "katmai": "sse",
    "coppermine": "sse", "northwood": "sse", "banias": "sse", "athlon": "sse",
}

#: Variables that make a BLAS (or numpy) use narrower kernels than the CPU has, or other blocking.
NARROWING_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "MKL_ENABLE_INSTRUCTIONS",
                       "MKL_DEBUG_CPU_TYPE", "NPY_DISABLE_CPU_FEATURES")

#: The side of the square float32 GEMM the peak probe times.
PEAK_SIZE = 2048


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The CPU feature flags of a /proc/cpuinfo text (its first `flags` line; x86)."""
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def read_cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """This machine's CPU flags; empty where /proc/cpuinfo is not readable or has none (not x86 Linux)."""
    try:
        with open(path) as file:
            return cpu_flags(file.read())
    except OSError:
        return frozenset()


def cpu_level(flags: frozenset[str]) -> str | None:
    """The widest x86 vector level the flags offer ("avx512", "avx2", "avx", "sse"); None for no flags.
    avx512 needs the subsets OpenBLAS's SkylakeX kernels use (F, BW, VL, DQ, CD)."""
    if not flags:
        return None
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"} <= flags:
        return "avx512"
    if {"avx2", "fma"} <= flags:
        return "avx2"
    if "avx" in flags:
        return "avx"
    return "sse"


def kernel_level(architecture: str) -> str | None:
    """The vector level of an OpenBLAS kernel name (threadpoolctl's `architecture`); None if unknown."""
    return OPENBLAS_KERNELS.get(architecture.strip().lower())


@dataclass(frozen=True)
class KernelCheck:
    """The BLAS kernel that ran against the CPU: `architecture` as threadpoolctl reports it ("" when
    the BLAS does not say), its vector level and the CPU's (None: unknown), the narrowing variables set."""

    blas: str  # "openblas 0.3.31", or "" without a BLAS
    architecture: str
    kernel_level: str | None
    cpu_level: str | None
    variables: tuple[tuple[str, str], ...]  # (name, value) of the NARROWING_VARIABLES set

    @property
    def narrower(self) -> bool:
        """The kernel uses narrower vectors than the CPU has."""
        if self.kernel_level is None or self.cpu_level is None:
            return False
        return LEVELS.index(self.kernel_level) < LEVELS.index(self.cpu_level)

    def warning(self) -> str | None:
        """One line when the kernel is narrower than the CPU or a narrowing variable is set; else None."""
        set_here = ", ".join(f"{name}={value}" for name, value in self.variables)
        if self.narrower:
            why = f"forced by {set_here}" if set_here else "no variable forces it (a BLAS older than the CPU?)"
            return (f"warning: the BLAS kernel {self.architecture} uses {LEVEL_BITS[self.kernel_level]}-bit "
                    f"vectors and this CPU has {self.cpu_level} ({LEVEL_BITS[self.cpu_level]}-bit): {why}; "
                    "GEMMs run slower than this machine can (unset it for this command)")
        if set_here:
            return (f"warning: {set_here} set: the BLAS may block or pick kernels other than it would "
                    "on its own (benchmarks run with it unset)")
        return None

    def __str__(self) -> str:
        vectors = f"{LEVEL_BITS[self.kernel_level]}-bit" if self.kernel_level else "vector width unknown"
        cpu = f"CPU {self.cpu_level}" if self.cpu_level else "CPU flags unknown"
        line = f"BLAS kernel: {self.architecture or 'not reported'} ({vectors}; {cpu})"
        warning = self.warning()
        return line if warning is None else f"{line}\n{warning}"


def check_kernel(info: BlasInfo, flags: frozenset[str], environ: Mapping[str, str]) -> KernelCheck:
    """The KernelCheck of a BLAS described by `info` on a CPU with `flags`, in the environment `environ`."""
    variables = tuple((name, environ[name]) for name in NARROWING_VARIABLES if environ.get(name, "").strip())
    blas = f"{info.internal_api} {info.version}".strip() if info.library else ""
    return KernelCheck(blas, info.architecture, kernel_level(info.architecture) if info.internal_api == "openblas"
                       else None, cpu_level(flags), variables)


def blas_kernel() -> KernelCheck:
    """The check of numpy's BLAS in this process against this machine's CPU and environment."""
    return check_kernel(blas_info(), read_cpu_flags(), os.environ)


# ---- the peak --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Peak:
    """Float32 GEMM GFLOP/s of an n x n x n sgemm: on one BLAS thread and on `cores` threads."""

    size: int
    per_core: float
    cores: int
    all_cores: float

    def __str__(self) -> str:
        return (f"peak (sgemm {self.size}^3, best of the calls): {self.per_core:.0f} GFLOP/s on 1 core, "
                f"{self.all_cores:.0f} GFLOP/s on {self.cores} cores")

    def fraction(self, gflops: float, threads: int | None = None) -> float:
        """`gflops` as a fraction of the peak on `threads` cores (all of them by default)."""
        return gflops / (self.per_core if threads == 1 else self.all_cores)


def _gemm_gflops(size: int, calls: int) -> float:
    rng = np.random.default_rng(0)
    A = rng.standard_normal((size, size), dtype=np.float32)
    B = rng.standard_normal((size, size), dtype=np.float32)
    C = np.empty((size, size), np.float32)
    np.matmul(A, B, out=C)  # warm: pages touched, threads started
    best = float("inf")
    for _ in range(calls):
        start = time.perf_counter()
        np.matmul(A, B, out=C)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size ** 3 / best / 1e9


def measure_peak(size: int = PEAK_SIZE, calls: int = 3, cores: int | None = None) -> Peak:
    """The sgemm peak of this machine: best of `calls` GEMMs of `size`^3 on 1 BLAS thread and on
    `cores` (default: the CPUs this process may use); numpy's BLAS thread count is restored after."""
    from threadpoolctl import threadpool_limits

    from ..runtime.threads import available_cores

    cores = cores or available_cores()
    with threadpool_limits(1, user_api="blas"):
        one = _gemm_gflops(size, calls)
    with threadpool_limits(cores, user_api="blas"):
        every = _gemm_gflops(size, calls)
    return Peak(size, one, cores, every)


# ---- the work of a step ------------------------------------------------------------------------


def forward_flops(dims: Sequence[int], batch: int) -> int:
    """FLOPs (2 per multiply-add) of the GEMMs of one forward pass of an MLP with layer sizes `dims`."""
    return 2 * batch * sum(a * b for a, b in zip(dims[:-1], dims[1:]))


def step_flops(dims: Sequence[int], batch: int) -> int:
    """FLOPs of the GEMMs of one training step of an MLP: forward X @ W, the weight gradients
    X.T @ dY, and the input gradients dY @ W.T of every layer but the first."""
    products = [a * b for a, b in zip(dims[:-1], dims[1:])]
    return 2 * batch * (2 * sum(products) + sum(products[1:]))


def gflops(flops: float, seconds: float | None) -> float | None:
    """GFLOP/s of `flops` done in `seconds` (None when there is no time)."""
    return None if not seconds else flops / seconds / 1e9


def peak_columns(row: dict[str, Any], flops: float, peak: Peak | None) -> dict[str, Any]:
    """`row` with `gflops` (from its `us`) and `peak_fraction` (of the all-cores peak) added."""
    seconds = row.get("us") and row["us"] * 1e-6
    rate = gflops(flops, seconds)
    return {**row, "gflops": rate, "peak_fraction": peak.fraction(rate) if peak and rate else None}
