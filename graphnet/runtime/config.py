"""The settings networks are compiled with, as scikit-learn's set_config / config_context.

    gn.set_config(packed_parallel=True)          # from now on, in every thread
    with gn.config_context(small_batch_rows=1):  # inside the block, in this thread or task only
        net = gn.compile(spec)
    gn.get_config()                              # -> KernelSwitches(small_batch_rows=0, ...)

The settings are the affine inference kernel switches and how GEMMs are cut over threads
(graphnet.ops.target.KernelSwitches; what each one measured: graphnet/ops/affine.py,
graphnet/runtime/gemm_split.py). `gn.compile` resolves them, with the backend, the dtype,
the threads the process is set up for, the GEMM cut and numpy's GEMM, into the network's
`Target` (`resolve_target`): a compiled network keeps the settings it was compiled with.
The thread count is not a setting here: it is one per process, which `gn.set_threads`
sets (graphnet.runtime.threads).

`set_config` changes the process-wide settings; `config_context` overrides some of
them in the current context (a contextvars.ContextVar: this thread, or this asyncio
task), restoring them on exit. ConfigError names an unknown or out-of-range setting.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import fields, replace
from typing import Any, Iterator

import numpy as np

from ..errors import ConfigError, did_you_mean
from ..ops.target import KernelSwitches, Target

_process_settings = KernelSwitches()  # set_config's; only this module writes it
_overrides: ContextVar[tuple[tuple[str, Any], ...]] = ContextVar("graphnet_config_overrides", default=())
NAMES = tuple(field.name for field in fields(KernelSwitches))


def get_config() -> KernelSwitches:
    """The settings in effect here: the process's, with the enclosing config_context's overrides."""
    overrides = _overrides.get()
    return replace(_process_settings, **dict(overrides)) if overrides else _process_settings


def set_config(**settings: Any) -> KernelSwitches:
    """Change settings for the whole process (networks compiled from now on); returns them all.
    Inside a config_context, the names it overrides keep its values until it exits."""
    global _process_settings
    _process_settings = _changed(_process_settings, settings)
    return get_config()


@contextmanager
def config_context(**settings: Any) -> Iterator[KernelSwitches]:
    """Override settings inside a with-block (this thread or task only); yields the settings
    in effect inside it. The block's exit restores what was in effect before."""
    _changed(get_config(), settings)  # checked before anything changes
    token = _overrides.set(_overrides.get() + tuple(settings.items()))
    try:
        yield get_config()
    finally:
        _overrides.reset(token)


def _changed(current: KernelSwitches, settings: dict[str, Any]) -> KernelSwitches:
    for name in settings:
        if name not in NAMES:
            raise ConfigError(f"unknown setting '{name}'{did_you_mean(name, NAMES)} (settings: {', '.join(NAMES)})")
    return replace(current, **settings)


def resolve_target(kernels: Any, dtype: Any) -> Target:
    """The Target of a network compiled now on `kernels` (a backend) in `dtype`: the settings in
    effect here, the threads the process is set up for and the GEMM cut over them, numpy's GEMM for `dtype`."""
    from .blas import find_gemm, gemm_status
    from .contention import tick as contention_tick
    from .gemm_split import GemmSplit
    from .helper_thread import helper_thread
    from .threads import planned_threads, threads_now

    dtype = np.dtype(dtype)
    switches, threads = get_config(), planned_threads()
    split = GemmSplit(parts=threads, part_work=switches.gemm_part_work, lag_work=switches.gemm_lag_work,
                      live=threads_now)
    return Target(kernels=kernels, dtype=dtype, threads=threads, switches=switches, gemm=find_gemm(dtype),
                  gemm_status=gemm_status(dtype), live_threads=threads_now, helper=helper_thread,
                  tick=contention_tick, split=split)
