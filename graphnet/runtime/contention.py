"""Fewer of graphnet's threads at a time while other processes keep the cores busy, all of them
again when they stop.

graphnet cuts each large GEMM of a plan into blocks (graphnet.runtime.gemm_split) and
runs them on the calling thread and its helper threads. When another process keeps
one of the cores busy, a helper that has to share that core may start its block
and then wait for the scheduler while the caller waits for it (a multi-thread BLAS
did worse: bench/busy.py measured 2-thread OpenBLAS 20-35x slower with one of two
cores taken, and 1 thread not slower at all). So, unless the thread count was chosen
(`gn.set_threads(n)`, GRAPHNET_THREADS=n, `graphnet --threads n`), a governor
watches how much CPU the other processes take and runs the blocks on one thread per
core they leave free (on one: each GEMM as one call, which gives the bits of its blocks).
So the results do not change with it, bit for bit:

    tick()                  # called by every plan run; a clock read, except every INTERVAL s
    governor_status()       # -> GovernorStatus(active, threads, ceiling, others)

Every INTERVAL seconds of plan runs, `tick` samples the CPU time of the cores
this process may run on (Linux: /proc/stat) and this process's own
(/proc/self/stat); their difference over the interval is what the others took,
in cores. The thread count is one per core they leave free, rounded so that
a core the others use 40% of the time counts as taken, at least one and at
most the count the process is set up for (graphnet.runtime.threads.planned_threads).
Sampling reads two small files (about 0.1 ms every 0.2 s); changing the count
sets one number. Where /proc is not readable (macOS, Windows) the governor stays off.
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Callable, Sequence

log = logging.getLogger("graphnet")

#: Seconds between two samples (a plan run checks the clock, nothing more, in between).
INTERVAL = 0.2
#: A core the other processes use at least this fraction of the time counts as taken.
TAKEN_FRACTION = 0.4


@dataclass(frozen=True)
class CpuTimes:
    """Cumulative CPU times, in clock ticks: `busy` and `total` summed over the cores
    this process may run on, `own` this process's (all its threads)."""

    busy: int
    total: int
    own: int


@dataclass(frozen=True)
class GovernorStatus:
    """What the governor last did: whether it runs, the threads it set, the most it
    sets, and the cores the other processes took in the last interval (None: no sample yet)."""

    active: bool
    threads: int
    ceiling: int
    others: float | None


def parse_proc_stat(text: str, cpus: Sequence[int]) -> tuple[int, int]:
    """(busy, total) ticks of the `cpus` lines of /proc/stat's text: busy is user, nice,
    system, irq, softirq and steal (a hypervisor's steal takes the core as surely as a
    process); total adds idle and iowait."""
    wanted = {f"cpu{i}" for i in cpus}
    busy = total = 0
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0] not in wanted:
            continue
        user, nice, system, idle, iowait, irq, softirq, steal = (int(f) for f in fields[1:9])
        used = user + nice + system + irq + softirq + steal
        busy += used
        total += used + idle + iowait
    return busy, total


def _fields_after_name(text: str) -> list[str]:
    """The fields of a /proc/<pid>/stat text after the process name (which may hold spaces and
    parentheses): field 3 of proc(5), counted from 1, is the first."""
    return text[text.rindex(")") + 2:].split()


def parse_own_ticks(text: str) -> int:
    """utime + stime of /proc/self/stat's text."""
    fields = _fields_after_name(text)
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5), counted from 1


def parse_process_ticks(text: str) -> tuple[int, int]:
    """(parent pid, utime + stime + cutime + cstime) of a /proc/<pid>/stat text: the CPU ticks
    of the process and of the children it has waited for."""
    fields = _fields_after_name(text)
    return int(fields[1]), sum(int(field) for field in fields[11:15])  # fields 4 and 14-17


def read_cpu_times(cpus: Sequence[int]) -> CpuTimes | None:
    """The CPU times now, from /proc; None where /proc is not readable."""
    try:
        with open("/proc/stat") as stat, open("/proc/self/stat") as own:
            busy, total = parse_proc_stat(stat.read(), cpus)
            return CpuTimes(busy, total, parse_own_ticks(own.read()))
    except (OSError, ValueError, IndexError):
        return None


def others_busy_cores(before: CpuTimes, after: CpuTimes, cores: int) -> float:
    """The cores (of `cores`) the other processes kept busy between two samples."""
    total = after.total - before.total
    if total <= 0:
        return 0.0
    others = (after.busy - before.busy) - (after.own - before.own)
    return max(0.0, min(float(cores), cores * others / total))


def threads_for(cores: int, others: float, ceiling: int) -> int:
    """Threads when the other processes keep `others` of `cores` busy: one per core
    they leave free (a core they use TAKEN_FRACTION of the time counts as taken), in [1, ceiling]."""
    taken = math.floor(others + (1.0 - TAKEN_FRACTION))
    return max(1, min(ceiling, cores - taken))


class Governor:
    """Sets the thread count from the other processes' CPU use, at most every `interval` s.

    `sample()` returns CpuTimes (or None), `apply(n)` sets the count to n threads,
    `clock()` returns seconds; injectable so tests can drive it."""

    def __init__(self, cores: list[int], ceiling: int, threads: int, apply: Callable[[int], None],
                 sample: Callable[[], CpuTimes | None], clock: Callable[[], float] = time.perf_counter,
                 interval: float = INTERVAL):
        self.cores, self.ceiling, self.threads = cores, ceiling, threads
        self.apply, self.sample, self.clock, self.interval = apply, sample, clock, interval
        self.active = True
        self.others: float | None = None
        self.next_at = 0.0
        self.last: CpuTimes | None = None

    def tick(self) -> None:
        """Sample and maybe change the thread count, when `interval` has passed since the last sample."""
        now = self.clock()
        if not self.active or now < self.next_at:
            return
        self.next_at = now + self.interval
        times = self.sample()
        if times is None:
            self.active = False
            return
        if self.last is not None:
            self.others = others_busy_cores(self.last, times, len(self.cores))
            wanted = threads_for(len(self.cores), self.others, self.ceiling)
            if wanted != self.threads:
                log.info("graphnet: other processes keep %.1f of %d cores busy: %d thread(s) at a time",
                         self.others, len(self.cores), wanted)
                self.apply(wanted)
                self.threads = wanted
        self.last = times

    def status(self) -> GovernorStatus:
        return GovernorStatus(self.active, self.threads, self.ceiling, self.others)


_governor: list[Governor] = []  # the process's governor, once started


def start(ceiling: int, threads: int, apply: Callable[[int], None]) -> Governor | None:
    """Start the process's governor: `threads` now, never more than `ceiling`, set through `apply`.
    Not started (None) on one core, for a ceiling of 1, or without /proc."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return None
    if len(cpus) < 2 or ceiling < 2 or read_cpu_times(cpus) is None:
        return None
    governor = Governor(cpus, ceiling, threads, apply, lambda: read_cpu_times(cpus))
    _governor[:] = [governor]
    return governor


def stop() -> None:
    """Stop the governor (an explicit thread count was chosen); the count stays as it is."""
    for governor in _governor:
        governor.active = False


def tick() -> None:
    """Let the governor sample and adjust, when one runs and its interval has passed."""
    if _governor:
        _governor[0].tick()


def governor_status() -> GovernorStatus | None:
    """The governor's status; None when it was never started in this process."""
    return _governor[0].status() if _governor else None


def _forget_sample_after_fork() -> None:
    """A forked child's own CPU time starts again from zero: its first interval must not be
    measured against the parent's last sample (the others would look busier than they are)."""
    for governor in _governor:
        governor.last = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_sample_after_fork)
