"""Training speed as a user feels it: whole steps, and how much of each went to waiting for data."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl


class TrainingSpeed(pl.Callback):
    """Log ``train/clips_per_s`` over whole steps and ``train/data_wait_s`` beside it.

    A step runs from the end of the previous one (or the start of the epoch, or the end of a
    validation inside it) to the end of this one: waiting for the batch, moving it to the device,
    forward, backward and the optimizer. ``train/data_wait_s`` is the part until the batch arrived;
    when it is a large share of the step, loading is the bottleneck (raise ``data.num_workers``).
    Values are per process; on a GPU a step's queued kernels may finish in the next step, which
    evens out over steps (the loss check syncs every step).
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self._step_started = 0.0
        self._data_wait = 0.0

    def _restart(self, *_: Any) -> None:
        self._step_started = self.clock()

    on_train_epoch_start = _restart
    on_validation_end = _restart  # a validation within the epoch is not the next step's wait

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *_: Any) -> None:
        self._data_wait = self.clock() - self._step_started

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = self.clock()
        seconds, self._step_started = now - self._step_started, now
        clips = len(batch[1])  # the labels, in a tsm.data.VideoBatch as in an (inputs, labels) pair
        if seconds > 0:
            pl_module.log("train/clips_per_s", clips / seconds, prog_bar=True, on_step=True, on_epoch=False)
        pl_module.log(
            "train/data_wait_s", self._data_wait, prog_bar=True, on_step=True, on_epoch=True, batch_size=clips
        )
