"""How busy the machine was while something was measured: the cores that other processes kept
busy, on average, between the start and the end (Linux: /proc, read with graphnet.runtime.contention's
readers). This process and its children (a benchmark's worker processes) do not count.

    meter = LoadMeter()          # at the start of a measurement
    ...
    print(meter.report())        # at its end: one line, a warning when the machine was busy
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..runtime.contention import CpuTimes, others_busy_cores, parse_process_ticks, read_cpu_times

#: Other processes taking more than this many cores on average make a measurement unreliable.
BUSY_CORES = 0.25

PROC = Path("/proc")


@dataclass(frozen=True)
class MachineLoad:
    """`others` of the `cores` this process may run on were kept busy by other processes, on
    average over `seconds`."""

    others: float
    cores: int
    seconds: float

    @property
    def busy(self) -> bool:
        return self.others > BUSY_CORES


def tree_ticks(root: int, proc: Path = PROC) -> int:
    """CPU ticks of process `root` and all its descendants, alive or waited for."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parents[int(entry.name)], ticks[int(entry.name)] = parse_process_ticks((entry / "stat").read_text())
        except (OSError, ValueError, IndexError):  # gone meanwhile, or not ours to read
            continue
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += ticks.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


def sample_cpu_times(cpus: list[int]) -> CpuTimes | None:
    """CPU times of the `cpus`, with this process tree's own ticks as `own`; None without /proc."""
    times = read_cpu_times(cpus)
    if times is None:
        return None
    try:
        return CpuTimes(times.busy, times.total, tree_ticks(os.getpid()))
    except OSError:
        return None


class LoadMeter:
    """Started on creation; `load()` is the machine's load since then (None where /proc is not
    readable). `sample` and `clock` are injectable for tests."""

    def __init__(self, sample: Callable[[list[int]], CpuTimes | None] | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        try:
            self.cpus = sorted(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            self.cpus = []
        self.sample, self.clock = sample or sample_cpu_times, clock
        self.started = clock()
        self.first = self.sample(self.cpus) if self.cpus else None

    def load(self) -> MachineLoad | None:
        last = self.sample(self.cpus) if self.first is not None else None
        if last is None or self.first is None:
            return None
        return MachineLoad(others_busy_cores(self.first, last, len(self.cpus)), len(self.cpus),
                           self.clock() - self.started)

    def report(self) -> str:
        """One line: how busy the machine was, and a warning when that makes the figures unreliable."""
        load = self.load()
        if load is None:
            return "machine load while measuring: unknown (no /proc to read it from)"
        taken = f"other processes kept {load.others:.2f} of {load.cores} cores busy during the {load.seconds:.0f} s"
        if load.busy:
            return (f"warning: the machine was busy: {taken} of this measurement, so the times and ratios "
                    "above are not reliable; measure again on a quiet machine")
        return f"machine load while measuring: {taken} (quiet)"
