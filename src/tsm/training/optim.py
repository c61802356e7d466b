"""The reference's optimizer (SGD with the recognizer's parameter groups) and learning-rate schedules.

Schedules are stepped once per optimizer step, so the linear warm-up is smooth even when it lasts a
fraction of an epoch; the step schedule still decays exactly at epoch boundaries, as the reference's
per-epoch ``adjust_learning_rate`` does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch.optim.lr_scheduler import LambdaLR

from tsm.models import Recognizer

Schedule = Literal["step", "cosine", "constant"]
SCHEDULES: tuple[str, ...] = ("step", "cosine", "constant")


@dataclass(frozen=True)
class OptimizerConfig:
    """The reference recipe's SGD and learning-rate schedule.

    Attributes:
        lr: base learning rate (the reference scales it linearly with the total batch: 0.01 per 64 clips).
        weight_decay, momentum: SGD's (no decay on BatchNorm parameters and biases).
        fc_lr5: the fine-tuning recipe's 5x lr on the new classifier's weight, 10x on its bias.
        schedule: ``"step"`` (x gamma at each milestone epoch), ``"cosine"`` or ``"constant"``.
        milestones, gamma: the step schedule's epochs and factor.
        warmup_epochs: linear warm-up from 1% of lr (may be a fraction of an epoch).
    """

    lr: float = 0.01
    weight_decay: float = 1e-4
    momentum: float = 0.9
    fc_lr5: bool = False
    schedule: Schedule = "step"
    milestones: tuple[int, ...] = (20, 40)
    gamma: float = 0.1
    warmup_epochs: float = 0.0

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"the learning rate must be positive, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}: use one of {', '.join(SCHEDULES)}")
        if self.warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {self.warmup_epochs}")
        object.__setattr__(self, "milestones", tuple(sorted(int(m) for m in self.milestones)))


def build_optimizer(
    model: Recognizer,
    lr: float,
    weight_decay: float = 1e-4,
    momentum: float = 0.9,
    fc_lr5: bool = False,
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
    schedule: Schedule = "step",
    milestones: Sequence[int] = (20, 40),
    gamma: float = 0.1,
    warmup_epochs: float = 0.0,
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
    schedule: Schedule = "step",
    milestones: Sequence[int] = (20, 40),
    gamma: float = 0.1,
    warmup_epochs: float = 0.0,
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
