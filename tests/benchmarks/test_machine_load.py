"""graphnet.benchmarks.machine_load: how many cores other processes kept busy while something was measured."""
from __future__ import annotations

import os

import pytest

from graphnet.benchmarks.machine_load import BUSY_CORES, LoadMeter, tree_ticks
from graphnet.runtime.contention import CpuTimes
CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def stat_line(pid: int, name: str, parent: int, utime: int, stime: int, cutime: int = 0, cstime: int = 0) -> str:
    return (f"{pid} ({name}) S {parent} {pid} {pid} 0 -1 4194560 100 0 0 0 {utime} {stime} {cutime} {cstime} "
            "20 0 1 0 100 1000 100\n")


def test_tree_ticks_add_up_a_process_and_its_descendants_only(tmp_path):
    processes = {1: ("init", 0, 500, 500, 0, 0), 100: ("python", 1, 10, 2, 3, 1),
                 101: ("a (b) c", 100, 5, 0, 0, 0), 102: ("worker", 101, 7, 1, 0, 0),
                 200: ("hog", 1, 1000, 0, 0, 0)}
    for pid, (name, parent, *times) in processes.items():
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(stat_line(pid, name, parent, *times))
    (tmp_path / "self").mkdir()  # not a pid: skipped
    (tmp_path / "300").mkdir()   # a process gone while reading: skipped
    assert tree_ticks(100, tmp_path) == 16 + 5 + 8
    assert tree_ticks(102, tmp_path) == 8
    assert tree_ticks(999, tmp_path) == 0


class FakeSamples:
    """CpuTimes where, between two samples, each core ran 100 ticks, of which `others` cores'
    worth went to other processes and one core's worth to this process tree."""

    def __init__(self, others: float) -> None:
        self.others, self.n = others, 0

    def __call__(self, cpus: list[int]) -> CpuTimes:
        self.n += 1
        return CpuTimes(busy=int(self.n * 100 * (self.others + 1)), total=self.n * 100 * len(cpus), own=self.n * 100)


@pytest.mark.skipif(len(CPUS) < 2, reason="needs 2 cores")
def test_a_busy_machine_gets_a_warning_and_a_quiet_one_a_plain_line():
    load = LoadMeter(sample=FakeSamples(1.0), clock=iter([0.0, 30.0]).__next__).load()
    assert load is not None and load.others == pytest.approx(1.0) and load.cores == len(CPUS) and load.busy
    busy = LoadMeter(sample=FakeSamples(1.0), clock=iter([0.0, 30.0]).__next__)
    assert busy.report() == (f"warning: the machine was busy: other processes kept 1.00 of {len(CPUS)} cores busy during "
                             "the 30 s of this measurement, so the times and ratios above are not reliable; "
                             "measure again on a quiet machine")
    assert BUSY_CORES < 0.5  # a quarter of a core; half of one is busy
    quiet = LoadMeter(sample=FakeSamples(0.1), clock=iter([0.0, 30.0]).__next__)
    assert quiet.report() == (f"machine load while measuring: other processes kept 0.10 of {len(CPUS)} cores busy during "
                              "the 30 s (quiet)")
    assert LoadMeter(sample=lambda cpus: None).report() == (
        "machine load while measuring: unknown (no /proc to read it from)")
