"""The reference's training recipe, each setting once: its SGD and learning-rate schedule
(:class:`OptimizerConfig`) and gradient clipping. The Lightning CLI (``tsm fit``), the demo and the
optimizer functions take their defaults from here; a config in ``configs/`` writes only what its
recipe changes.

Source: mit-han-lab/temporal-shift-module, ``opts.py`` (``--lr``, ``--momentum 0.9``,
``--weight-decay``, ``--lr_steps``, ``--clip-gradient 20``) and ``main.py`` (``clip_grad_norm_``
of all parameters together; ``adjust_learning_rate``: x0.1 at each step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Schedule = Literal["step", "cosine", "constant"]
SCHEDULES: tuple[str, ...] = ("step", "cosine", "constant")

GRADIENT_CLIP_VAL = 20.0  # the norm all gradients together are clipped to (Trainer.gradient_clip_val)


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


REFERENCE_OPTIMIZER = OptimizerConfig()
