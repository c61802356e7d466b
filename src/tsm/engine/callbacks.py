"""Small Lightning callbacks of the engine."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl


class EpochSummary(pl.Callback):
    """Print one line per epoch (loss, train/val top-1, lr, time) and keep them in ``history``.

    Useful where a progress bar is not (logs of batch jobs, the demo); ``history`` is a list of
    dicts with ``epoch``, ``train_loss``, ``train_top1``, ``val_top1`` (percent) and ``seconds``.
    """

    def __init__(self, prefix: str = "", printer: Callable[[str], Any] | None = print) -> None:
        self.prefix = prefix
        self.printer = printer
        self.history: list[dict[str, float]] = []
        self._started = 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics

        def value(key: str, scale: float = 1.0) -> float:
            return float(metrics[key]) * scale if key in metrics else float("nan")

        row = {
            "epoch": trainer.current_epoch + 1,
            "train_loss": value("train/loss_epoch"),
            "train_top1": value("train/top1", 100.0),
            "val_top1": value("val/top1", 100.0),
            "seconds": time.perf_counter() - self._started,
        }
        self.history.append(row)
        if self.printer is not None:
            self.printer(
                f"{self.prefix}epoch {row['epoch']}/{trainer.max_epochs}: loss {row['train_loss']:.3f}, "
                f"train top-1 {row['train_top1']:.1f}%, val top-1 {row['val_top1']:.1f}%, "
                f"{row['seconds']:.0f} s"
            )
