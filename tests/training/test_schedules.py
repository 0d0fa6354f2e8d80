"""Learning-rate schedules: each kind, warmup, and the rate training actually uses."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphnet as gn
import graphnet.training.loop as training_loop
from graphnet.spec import Constant, Cosine, Exponential, StepDecay
from graphnet.training.schedules import learning_rate_at

from tests._support.paths import SPECS

BASE = 0.1


def rates(schedule, total_epochs: int, per_epoch: int, base: float = BASE) -> list[list[float]]:
    """The rate of every iteration, as training asks for it: epoch + iteration / per_epoch."""
    return [[learning_rate_at(schedule, base, e + i / per_epoch, total_epochs, per_epoch) for i in range(per_epoch)]
            for e in range(total_epochs)]


def test_constant_is_the_base_rate_everywhere():
    for epoch in rates(Constant(), 5, 7):
        assert epoch == [BASE] * 7


def test_exponential_is_the_seed_solvers_per_epoch_lr_decay():
    # The homework Solver: lr is used for a whole epoch, then `lr *= lr_decay`.
    decay, lr, expected = 0.95, BASE, []
    for _ in range(6):
        expected.append([lr] * 4)
        lr *= decay
    got = rates(Exponential(decay=decay), 6, 4)
    for epoch, (g, e) in enumerate(zip(got, expected)):
        assert g == pytest.approx(e, rel=1e-12), f"epoch {epoch}"


def test_exponential_decay_one_is_constant():
    assert rates(Exponential(decay=1.0), 3, 2) == [[BASE] * 2] * 3


def test_step_decay_drops_by_gamma_every_step_epochs():
    got = rates(StepDecay(step_epochs=3, gamma=0.5), 9, 5)
    for epoch, row in enumerate(got):
        assert row == pytest.approx([BASE * 0.5 ** (epoch // 3)] * 5, rel=1e-12), f"epoch {epoch}"


def test_cosine_matches_the_closed_form_per_iteration():
    # PyTorch's CosineAnnealingLR closed form with T_max = all iterations of the run.
    epochs, per_epoch, min_lr = 4, 10, 1e-3
    T = epochs * per_epoch
    flat = [r for row in rates(Cosine(min_lr=min_lr), epochs, per_epoch) for r in row]
    expected = [min_lr + 0.5 * (BASE - min_lr) * (1 + math.cos(math.pi * t / T)) for t in range(T)]
    assert flat == pytest.approx(expected, rel=1e-12)
    assert flat[0] == pytest.approx(BASE)
    assert all(a >= b for a, b in zip(flat, flat[1:])), "cosine annealing must not increase"
    assert flat[T // 2] == pytest.approx((BASE + min_lr) / 2)
    assert min_lr < flat[-1] < min_lr + 0.01 * (BASE - min_lr)


def test_cosine_is_clamped_past_the_end():
    assert learning_rate_at(Cosine(min_lr=0.01), BASE, 12.0, 10, 1) == pytest.approx(0.01)


@pytest.mark.parametrize("schedule", [Constant(warmup_epochs=2), Exponential(decay=0.5, warmup_epochs=2),
                                      StepDecay(step_epochs=1, gamma=0.5, warmup_epochs=2),
                                      Cosine(warmup_epochs=2)], ids=lambda s: s.kind)
def test_warmup_ramps_linearly_from_base_over_warmup_iterations(schedule):
    per_epoch = 5
    warm = 2 * per_epoch
    flat = [r for row in rates(schedule, 6, per_epoch) for r in row]
    assert flat[:warm] == pytest.approx([BASE * (i + 1) / warm for i in range(warm)], rel=1e-12)
    assert flat[warm - 1] == pytest.approx(BASE)
    # After warmup: the schedule itself (exponential and step count epochs from the start
    # of the run, cosine anneals over the epochs left after warmup).
    after = flat[warm:]
    if isinstance(schedule, Constant):
        assert after == [BASE] * len(after)
    elif isinstance(schedule, Exponential):
        assert after == pytest.approx([BASE * 0.5 ** (2 + i // per_epoch) for i in range(len(after))])
    elif isinstance(schedule, StepDecay):
        assert after == pytest.approx([BASE * 0.5 ** (2 + i // per_epoch) for i in range(len(after))])
    else:
        T = len(after)
        assert after == pytest.approx([0.5 * BASE * (1 + math.cos(math.pi * t / T)) for t in range(T)])


def test_fractional_warmup():
    # Half an epoch of 10 iterations: 5 warmup iterations at 1/5 .. 5/5 of the base.
    got = rates(Constant(warmup_epochs=0.5), 1, 10)[0]
    assert got == pytest.approx([BASE * k / 5 for k in range(1, 6)] + [BASE] * 5)


schedules = st.one_of(
    st.builds(Constant, warmup_epochs=st.floats(0, 5)),
    st.builds(Exponential, decay=st.floats(1e-3, 1.0), warmup_epochs=st.floats(0, 5)),
    st.builds(StepDecay, step_epochs=st.integers(1, 10), gamma=st.floats(1e-3, 1.0), warmup_epochs=st.floats(0, 5)),
    st.builds(Cosine, min_lr=st.floats(0, 1e-2), warmup_epochs=st.floats(0, 5)),
)


@settings(max_examples=300, deadline=None)
@given(schedule=schedules, base=st.floats(1e-6, 10), total=st.integers(1, 50), per_epoch=st.integers(1, 100),
       where=st.floats(0, 1, exclude_max=True))
def test_rates_are_finite_positive_and_bounded(schedule, base, total, per_epoch, where):
    epoch = math.floor(where * total * per_epoch) / per_epoch
    lr = learning_rate_at(schedule, base, epoch, total, per_epoch)
    assert math.isfinite(lr)
    in_warmup = epoch < schedule.warmup_epochs
    low = min(schedule.min_lr, base) if isinstance(schedule, Cosine) and not in_warmup else 0.0
    high = max(base, getattr(schedule, "min_lr", 0.0))
    assert low - 1e-12 * high <= lr <= high * (1 + 1e-12)
    if not isinstance(schedule, Cosine) or in_warmup:
        assert lr > 0


@pytest.mark.parametrize("bad", [{"kind": "exponential", "decay": 0}, {"kind": "exponential", "decay": 1.5},
                                 {"kind": "exponential"}, {"kind": "step", "step_epochs": 0},
                                 {"kind": "step", "step_epochs": 2, "gamma": 0}, {"kind": "cosine", "min_lr": -1},
                                 {"kind": "constant", "warmup_epochs": -1}, {"kind": "linear"},
                                 {"kind": "cosine", "T_max": 3}])
def test_bad_schedules_are_spec_errors_naming_the_field(bad):
    doc = {"network": gn.load(str(SPECS / "spiral_mlp.json")).network.model_dump(mode="json", exclude_defaults=True),
           "train": {"data": "spiral", "schedule": bad}}
    with pytest.raises(gn.SpecError) as info:
        gn.parse_run(doc)
    assert "train.schedule" in str(info.value)


@pytest.mark.parametrize("schedule", [{"kind": "exponential", "decay": 0.5},
                                      {"kind": "step", "step_epochs": 2, "gamma": 0.1},
                                      {"kind": "cosine", "min_lr": 1e-4, "warmup_epochs": 1}], ids=lambda s: s["kind"])
def test_training_uses_the_schedule_at_every_iteration(schedule, monkeypatch):
    run = gn.load(str(SPECS / "spiral_mlp.json"))
    doc = run.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    doc["train"].update(epochs=4, schedule=schedule)
    run = gn.parse_run(doc)
    seen: list[tuple[float, float]] = []

    def spy(sched, base_lr, epoch, total_epochs, iterations_per_epoch=1):
        lr = learning_rate_at(sched, base_lr, epoch, total_epochs, iterations_per_epoch)
        seen.append((epoch, lr))
        return lr

    monkeypatch.setattr(training_loop, "learning_rate_at", spy)
    result = gn.train(run, log=None, progress=False)
    per_epoch = math.ceil(216 / 32)  # spiral: 216 training examples (val_size 0.1)
    assert [e for e, _ in seen] == pytest.approx([e + i / per_epoch for e in range(4) for i in range(per_epoch)])
    expected = rates(run.train.schedule, 4, per_epoch, base=1e-2)
    assert [lr for _, lr in seen] == pytest.approx([r for row in expected for r in row], rel=1e-12)
    # each epoch's record carries the rate of its last iteration
    assert [r.learning_rate for r in result.history] == pytest.approx([row[-1] for row in expected], rel=1e-12)
