"""What a network is compiled for: one frozen `Target`, resolved once by `gn.compile`.

The compiler (`graphnet.compiler.build_plan`) and the ops' lowering hooks read
everything that depends on the machine or on the user's settings from the
target they are handed, never from process state: the kernel backend, the
dtype, the thread count the process is set up for (and how GEMMs are cut over it), the switches that pick
the affine inference kernels (`KernelSwitches`, set with `gn.set_config` /
`gn.config_context`, see graphnet.runtime.config), and numpy's GEMM for the SGD update
inside backward. So a plan is a function of (graph, plan spec, target), and a
test builds the target it needs:

    target = dataclasses.replace(net.target, threads=1)   # as on a 1-thread BLAS
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError


@dataclass(frozen=True)
class KernelSwitches:
    """The thresholds and switches that pick the eval-mode affine kernels (what each
    measured, and why the defaults are what they are: graphnet/ops/affine.py).

    - small_batch_rows: affine_small_forward (W read once for the batch) up to this many
      rows, and up to `small_work` multiply-adds (rows * fan_in * units); 0: never.
    - packed_max_rows: affine_packed_forward (a copy of W transposed once) up to this many
      rows; 0: never. On a 1-thread BLAS it runs serially on layers of at most
      `packed_serial_work` multiply-adds.
    - packed_parallel: split the packed kernel over two threads (graphnet.runtime.helper_thread)
      from `packed_parallel_work` multiply-adds on, while the BLAS has 2+ threads.
    - helper_lag_work: how many multiply-adds less than half the helper thread takes
      (it starts that much later than the caller).
    - gemm_part_work: a GEMM of a plan is cut over graphnet's threads into blocks of at
      least this many multiply-adds (graphnet.runtime.gemm_split); 0: never cut.
    - gemm_lag_work: how many multiply-adds more than the other blocks the caller's takes.
    """

    small_batch_rows: int = 0
    small_work: int = 32768
    packed_max_rows: int = 256
    packed_serial_work: int = 1 << 17
    packed_parallel: bool = False
    packed_parallel_work: int = 1 << 18
    helper_lag_work: int = 1 << 21
    gemm_part_work: int = 1 << 21
    gemm_lag_work: int = 1 << 20

    def __post_init__(self) -> None:
        """ConfigError naming the first setting that is not of its kind."""
        for field in fields(self):
            value = getattr(self, field.name)
            if field.type == "bool":
                if not isinstance(value, (bool, np.bool_)):
                    raise ConfigError(f"{field.name} must be True or False, got {value!r}")
            elif isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ConfigError(f"{field.name} must be an integer >= 0, got {value!r}")


def _one_thread() -> int:
    return 1


def _matmul(A: np.ndarray, B: np.ndarray, C: np.ndarray) -> None:
    np.matmul(A, B, out=C)


def _no_tick() -> None:
    return None


@dataclass(frozen=True)
class Target:
    """The machine and settings a network is compiled for (see the module docstring).

    - kernels: the kernel backend (attributes named as in graphnet.kernels.KERNEL_NAMES).
    - dtype: the float dtype of every buffer.
    - threads: the threads the process is set up for (graphnet.runtime.threads.planned_threads),
      not the contention governor's count of the moment: what is picked or cut by it does not
      depend on how busy the machine was when the plan was built.
    - switches: the affine inference kernel switches (KernelSwitches).
    - gemm: numpy's cblas GEMM for `dtype` (graphnet.runtime.blas.Gemm), or None, `gemm_status`
      saying why; the SGD update inside backward needs it.
    - live_threads: graphnet's thread count at a call (graphnet.runtime.threads.threads_now, the
      governor's): the packed kernel's and the GEMMs' blocks run side by side only while it is 2+.
    - helper: the process's helper thread (graphnet.runtime.helper_thread.helper_thread).
    - split: how the plan's GEMMs are cut over the threads (graphnet.runtime.gemm_split.GemmSplit);
      None: each GEMM one BLAS call.
    - tick: called once per plan run (graphnet.runtime.contention.tick, the governor that
      takes threads away while other processes keep cores busy); a no-op by default.
    """

    kernels: Any
    dtype: np.dtype
    threads: int = 1
    switches: KernelSwitches = KernelSwitches()
    gemm: Any = None
    gemm_status: str = "no GEMM given"
    live_threads: Callable[[], int] = _one_thread
    helper: Callable[[], Any] | None = None
    tick: Callable[[], None] = _no_tick
    split: Any = None

    @property
    def backend(self) -> str:
        """The kernel backend's name ("numba" or "numpy")."""
        return str(getattr(self.kernels, "name", ""))

    def matmul(self) -> Callable[[np.ndarray, np.ndarray, np.ndarray], None]:
        """A GEMM kernel (A, B, C) for a plan step: C = A @ B, A: (M, K), B: (K, N), C: (M, N),
        cut over the threads as `split` says (a fresh one per step: it keeps its last arrays)."""
        return _matmul if self.split is None else self.split.matmul()

    def run_parts(self, kernel: Callable[..., None], parts: list[tuple]) -> None:
        """kernel(*part) for every part (parts of a batch, writing disjoint outputs): over the
        threads as `split` says, else one after the other. The parts are the caller's, so the
        result does not depend on how many threads ran them."""
        if self.split is None:
            for part in parts:
                kernel(*part)
        else:
            self.split.run(kernel, parts)

    def at_b_update(self) -> Callable[..., None]:
        """A GEMM kernel (A, B, C, alpha, beta) on `gemm`: C = beta * C + alpha * A.T @ B in place,
        cut as `split` says (a fresh one per step); ValueError saying why when there is no GEMM."""
        if self.gemm is None:
            raise ValueError(f"no {self.dtype.name} GEMM for an update in backward: {self.gemm_status}")
        return self.gemm.at_b_update() if self.split is None else self.split.at_b_update(self.gemm)
