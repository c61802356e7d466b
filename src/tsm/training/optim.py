"""The reference's optimizer (SGD with the recognizer's parameter groups) and learning-rate schedules;
their default settings are the recipe's (:mod:`tsm.training.recipe`).

Schedules are stepped once per optimizer step, so the linear warm-up is smooth even when it lasts a
fraction of an epoch; the step schedule still decays exactly at epoch boundaries, as the reference's
per-epoch ``adjust_learning_rate`` does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.optim.lr_scheduler import LambdaLR

from tsm.models import Recognizer
from tsm.training.recipe import REFERENCE_OPTIMIZER, SCHEDULES, OptimizerConfig, Schedule

# OptimizerConfig lived here until the recipe module: still importable from here.
__all__ = ["OptimizerConfig", "build_optimizer", "build_scheduler", "lr_factor"]

_REFERENCE = REFERENCE_OPTIMIZER




def build_optimizer(
    model: Recognizer,
    lr: float,
    weight_decay: float = _REFERENCE.weight_decay,
    momentum: float = _REFERENCE.momentum,
    fc_lr5: bool = _REFERENCE.fc_lr5,
) -> torch.optim.SGD:
    """SGD with momentum over :meth:`Recognizer.param_groups` (no decay on BN/biases, 2x bias lr)."""
    if lr <= 0:
        raise ValueError(f"the learning rate must be positive, got {lr}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    groups = model.param_groups(lr, weight_decay, fc_lr5=fc_lr5)
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)


def lr_factor(
    step: int,
    steps_per_epoch: int,
    epochs: int,
    schedule: Schedule = _REFERENCE.schedule,
    milestones: Sequence[int] = _REFERENCE.milestones,
    gamma: float = _REFERENCE.gamma,
    warmup_epochs: float = _REFERENCE.warmup_epochs,
    warmup_start: float = 0.01,
) -> float:
    """Multiplier of the base learning rate after ``step`` optimizer steps.

    Linear warm-up from ``warmup_start`` to 1 over ``warmup_epochs``; then ``step`` multiplies by
    ``gamma`` at each milestone epoch, ``cosine`` anneals to 0 at the end of ``epochs``, ``constant``
    keeps 1.
    """
    warmup_steps = round(warmup_epochs * steps_per_epoch)
    if step < warmup_steps:
        return warmup_start + (1.0 - warmup_start) * step / warmup_steps
    if schedule == "step":
        epoch = step // steps_per_epoch
        return gamma ** sum(epoch >= milestone for milestone in milestones)
    if schedule == "cosine":
        total = max(epochs * steps_per_epoch - warmup_steps, 1)
        progress = min((step - warmup_steps) / total, 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    steps_per_epoch: int,
    epochs: int,
    schedule: Schedule = _REFERENCE.schedule,
    milestones: Sequence[int] = _REFERENCE.milestones,
    gamma: float = _REFERENCE.gamma,
    warmup_epochs: float = _REFERENCE.warmup_epochs,
) -> LambdaLR:
    """A per-step :class:`LambdaLR` following :func:`lr_factor`; every param group keeps its multiplier."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}: use one of {', '.join(SCHEDULES)}")
    if steps_per_epoch < 1 or epochs < 1:
        raise ValueError(f"need at least one epoch of one step, got {epochs} epochs x {steps_per_epoch}")
    if warmup_epochs < 0 or warmup_epochs > epochs:
        raise ValueError(f"warmup_epochs must be in [0, epochs={epochs}], got {warmup_epochs}")
    milestones = tuple(sorted(milestones))

    def factor(step: int) -> float:
        return lr_factor(step, steps_per_epoch, epochs, schedule, milestones, gamma, warmup_epochs)

    return LambdaLR(optimizer, factor)
