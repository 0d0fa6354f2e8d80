"""Learning-rate schedules: the rate for an iteration, from the schedule spec.

`epoch` is fractional progress through training (iteration / iterations per
epoch). Warmup ramps linearly from base/warmup_iterations up to the base rate.

After warmup, step and exponential decay keep their absolute epoch boundaries
(step_epochs=30 decays at epochs 30, 60, ... with or without warmup), while
cosine spans what is left: from the end of warmup to the end of training, so
it still reaches min_lr on the last epoch. (timm's schedulers count the same way.)
"""
from __future__ import annotations

import math

from ..spec import Constant, Cosine, Exponential, ScheduleSpec, StepDecay


def learning_rate_at(schedule: ScheduleSpec, base_lr: float, epoch: float, total_epochs: int,
                     iterations_per_epoch: int = 1) -> float:
    """The learning rate at fractional `epoch` (0 <= epoch < total_epochs)."""
    warmup = schedule.warmup_epochs
    if warmup > 0 and epoch < warmup:
        step = 1.0 / max(iterations_per_epoch, 1)
        return base_lr * min(1.0, (epoch + step) / warmup)
    if isinstance(schedule, Constant):
        return base_lr
    if isinstance(schedule, Exponential):
        return base_lr * schedule.decay ** math.floor(epoch)
    if isinstance(schedule, StepDecay):
        return base_lr * schedule.gamma ** math.floor(epoch / schedule.step_epochs)
    if isinstance(schedule, Cosine):
        span = max(total_epochs - warmup, 1e-12)
        progress = min(max((epoch - warmup) / span, 0.0), 1.0)
        return schedule.min_lr + 0.5 * (base_lr - schedule.min_lr) * (1.0 + math.cos(math.pi * progress))
    raise TypeError(f"unknown schedule {schedule!r}")
