"""Lightning callbacks of training: a line per epoch, and trained models in tsm's own format."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from tsm.checkpoint import save_checkpoint
from tsm.models import load_weights
from tsm.training.module import RecognizerModule


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


MODEL_PREFIX = "model."


class ExportNativeCheckpoints(pl.Callback):
    """At the end of ``fit``, write ``last.safetensors`` and ``best.safetensors`` (best val top-1).

    They go beside Lightning's ``.ckpt`` files (the :class:`ModelCheckpoint` folder, or
    ``dirpath``) and hold the model with its class names and data configuration, so
    ``tsm.load_checkpoint`` / ``tsm predict`` / ``tsm test`` need nothing else.
    """

    def __init__(self, dirpath: str | None = None) -> None:
        self.dirpath = dirpath
        self.written: dict[str, Path] = {}

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or not isinstance(pl_module, RecognizerModule):
            return
        checkpointing = trainer.checkpoint_callback
        folder = (
            self.dirpath or (checkpointing.dirpath if checkpointing else None) or trainer.default_root_dir
        )
        folder = Path(folder)
        meta = {"class_names": pl_module.class_names, "data_config": pl_module.data_config}
        self.written["last"] = save_checkpoint(folder / "last.safetensors", pl_module.model, **meta)
        best_path = getattr(checkpointing, "best_model_path", "")
        if best_path:
            state = torch.load(best_path, map_location="cpu", weights_only=True)["state_dict"]
            best = copy.deepcopy(pl_module.model).cpu()
            weights = {
                k.removeprefix(MODEL_PREFIX): v for k, v in state.items() if k.startswith(MODEL_PREFIX)
            }
            load_weights(best, weights)
            self.written["best"] = save_checkpoint(folder / "best.safetensors", best, **meta)
