"""graphnet.runtime.contention: the governor that sets graphnet's threads from the other processes' CPU use."""
from __future__ import annotations

import dataclasses
import os
import time

import numpy as np
import pytest

import graphnet as gn
from graphnet.runtime import contention, threads
from graphnet.runtime.contention import CpuTimes, Governor

from tests._support.thread_state import no_thread_choice

PROC_STAT = """cpu  300 0 100 500 10 0 5 20 0 0
cpu0 100 0 50 300 5 0 0 10 0 0
cpu1 200 0 50 200 5 0 5 10 0 0
intr 1 2 3
"""


def test_proc_stat_counts_busy_and_total_ticks_of_the_chosen_cpus():
    assert contention.parse_proc_stat(PROC_STAT, [0]) == (160, 465)
    assert contention.parse_proc_stat(PROC_STAT, [1]) == (265, 470)
    assert contention.parse_proc_stat(PROC_STAT, [0, 1]) == (425, 935)
    assert contention.parse_proc_stat(PROC_STAT, [7]) == (0, 0)


def test_own_ticks_survive_a_process_name_with_spaces_and_parentheses():
    fields = " ".join(str(i) for i in range(3, 53))  # fields 3..52 of proc(5): utime is 14, stime 15
    assert contention.parse_own_ticks(f"4242 (my (odd) name) {fields}") == 14 + 15


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="no /proc on this platform")
def test_read_cpu_times_reads_this_machine():
    cpus = sorted(os.sched_getaffinity(0))
    before = contention.read_cpu_times(cpus)
    end = time.process_time() + 0.05
    while time.process_time() < end:  # burn some CPU of our own
        pass
    after = contention.read_cpu_times(cpus)
    assert before is not None and after is not None
    assert 0 <= after.busy - before.busy <= after.total - before.total
    assert after.own > before.own


@pytest.mark.parametrize("busy, own, total, expected", [
    (100, 100, 200, 0.0),  # all the busy time was ours
    (200, 100, 200, 1.0),  # the others took one of two cores
    (150, 100, 200, 0.5),
    (100, 120, 200, 0.0),  # tick rounding: never below zero
])
def test_others_busy_cores(busy, own, total, expected):
    start = CpuTimes(1000, 5000, 300)
    assert contention.others_busy_cores(start, CpuTimes(1000 + busy, 5000 + total, 300 + own), 2) == expected


@pytest.mark.parametrize("cores, others, ceiling, expected", [
    (2, 0.0, 2, 2), (2, 0.35, 2, 2), (2, 0.45, 2, 1), (2, 0.7, 2, 1), (2, 1.0, 2, 1), (2, 2.0, 2, 1),
    (8, 3.0, 8, 5), (8, 0.0, 4, 4), (8, 7.9, 8, 1),
])
def test_threads_for(cores, others, ceiling, expected):
    assert contention.threads_for(cores, others, ceiling) == expected


class FakeMachine:
    """A clock and CPU counters the test moves by hand; records every thread count applied."""

    def __init__(self):
        self.now, self.busy, self.total, self.own = 0.0, 0, 0, 0
        self.applied: list[int] = []

    def run(self, seconds: float, ours: float, others: float, cores: int = 2) -> None:
        ticks = int(seconds * 100)
        self.now += seconds
        self.total += cores * ticks
        self.own += int(ours * ticks)
        self.busy += int((ours + others) * ticks)

    def governor(self, threads: int = 2) -> Governor:
        return Governor([0, 1], 2, threads, self.applied.append,
                        lambda: CpuTimes(self.busy, self.total, self.own), lambda: self.now, interval=0.2)


def test_the_governor_backs_off_while_a_core_is_taken_and_comes_back_after():
    machine = FakeMachine()
    governor = machine.governor()
    governor.tick()  # the first sample
    machine.run(0.3, ours=2.0, others=0.0)
    governor.tick()
    assert machine.applied == [] and governor.others == 0.0
    machine.run(0.3, ours=1.3, others=0.7)  # another process arrives
    governor.tick()
    assert machine.applied == [1] and governor.status().threads == 1
    machine.run(0.3, ours=1.0, others=1.0)
    governor.tick()
    assert machine.applied == [1]  # no call when nothing changes
    machine.run(0.3, ours=1.0, others=0.0)  # it leaves
    governor.tick()
    assert machine.applied == [1, 2] and governor.status().threads == 2


def test_the_governor_samples_at_most_once_per_interval():
    machine = FakeMachine()
    calls = []
    governor = machine.governor()
    sample = governor.sample
    governor.sample = lambda: calls.append(machine.now) or sample()
    for _ in range(50):
        machine.run(0.01, ours=1.0, others=1.0)
        governor.tick()
    assert calls == pytest.approx([0.01, 0.21, 0.41])
    assert machine.applied == [1]


def test_the_governor_stays_off_where_it_cannot_sample():
    machine = FakeMachine()
    governor = machine.governor()
    governor.sample = lambda: None
    governor.tick()
    assert not governor.status().active and machine.applied == []


def test_a_forked_child_measures_from_its_own_first_sample(monkeypatch):
    machine = FakeMachine()
    governor = machine.governor()
    monkeypatch.setattr(contention, "_governor", [governor])
    governor.tick()
    machine.run(0.3, ours=1.0, others=0.0)
    contention._forget_sample_after_fork()  # what os.fork runs in the child
    machine.own = 0  # the child's own CPU time starts from zero
    machine.busy -= 30  # and the parent's share of the busy time is not the child's
    governor.tick()
    assert governor.last is not None and machine.applied == []  # a new first sample, no decision
    machine.run(0.3, ours=1.0, others=0.0)
    governor.tick()
    assert governor.others == 0.0 and machine.applied == []


def test_a_stopped_governor_changes_nothing(monkeypatch):
    machine = FakeMachine()
    governor = machine.governor()
    monkeypatch.setattr(contention, "_governor", [governor])
    contention.tick()
    contention.stop()
    machine.run(1.0, ours=1.0, others=1.0)
    contention.tick()
    assert machine.applied == [] and not contention.governor_status().active


def test_every_plan_run_ticks_the_governor(monkeypatch):
    ticks = []
    monkeypatch.setattr(threads, "STATE", dataclasses.replace(threads.STATE, settled=True, settled_count=None))
    # the default was applied: compile starts no governor
    monkeypatch.setattr(contention, "_governor", [type("Counter", (), {"tick": lambda self: ticks.append(1)})()])
    net = gn.compile(gn.sequential([{"op": "affine", "units": 3}], input_shape=[4], classes=3), batch_size=4)
    X = np.ones((4, 4), np.float32)
    net.forward(X)
    net.forward(X)  # the hot path of a repeated call
    net.loss(X, np.zeros(4, np.int64))
    assert len(ticks) >= 3


@pytest.fixture
def governed(monkeypatch):
    """The adaptive default in a fresh state (graphnet's record of the threads restored afterwards)."""
    with no_thread_choice(monkeypatch):
        gn.set_threads("auto")
        if not contention._governor:
            pytest.skip("no governor here (one core, or no /proc)")
        yield contention._governor[0]


def test_a_governor_that_changes_the_count_between_steps_changes_no_bit(governed):
    """What a CPU hog makes the governor do, done on purpose: the count it sets flips at every
    step, and the run gives the bits of a run at a fixed count."""
    spec = gn.sequential([{"op": "affine", "units": 256, "activation": "relu"}, {"op": "dropout", "rate": 0.2},
                          {"op": "affine", "units": 10}], input_shape=[784], classes=10)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((128, 784)).astype(np.float32), rng.integers(0, 10, 128)

    def train(counts: list[int]) -> bytes:
        net = gn.compile(spec, batch_size=128, seed=0)
        optimizer = gn.Optimizer(net, "adam", learning_rate=1e-3)
        for count in counts:
            governed.apply(count)
            optimizer.step(X, y)
            optimizer.step(X[:88], y[:88])
        return b"".join(value.tobytes() for value in net.params.values()) + net.forward(X).tobytes()

    fixed = train([governed.ceiling] * 6)
    assert train([1, governed.ceiling] * 3) == fixed
