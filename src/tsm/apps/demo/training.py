"""One demo training, run in a worker process of its own: train, test and save one model."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

from tsm.apps.demo.settings import DEMO_MODELS, DemoSettings


def _quiet_lightning() -> None:
    """Keep the demo's output to its own lines: no Lightning tips, hardware banners or hints.

    Called in the demo's own worker processes only (each trains one model and exits), never in
    the caller's process.
    """
    import logging
    import warnings

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"lightning\..*")
    warnings.filterwarnings("ignore", category=FutureWarning)


def exit_with_parent() -> None:
    """Worker initializer: end this worker when the demo process dies (a SIGTERM or a kill of the
    parent would otherwise leave the spawned trainings running)."""
    import threading

    parent = multiprocessing.parent_process()
    if parent is None:  # not started by a multiprocessing parent: nothing to watch
        return

    def watch() -> None:
        parent.join()  # returns when the parent process is gone
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def train_and_test(
    name: str, settings: DemoSettings, dataset: Any, out: Path, threads: int
) -> dict[str, Any]:
    """Train one demo model, test it, save its checkpoint; return its metrics and history.

    Runs in a worker process of its own (the three models train side by side).
    """
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.loggers import CSVLogger

    from tsm.checkpoint import model_config, save_checkpoint
    from tsm.training import GRADIENT_CLIP_VAL, OptimizerConfig, RecognizerModule, VideoDataModule
    from tsm.training.callbacks import EpochSummary

    torch.set_num_threads(threads)
    _quiet_lightning()
    pl.seed_everything(settings.seed, verbose=False)
    # No spatial augmentation at this size; flips stay on.
    data_config = dataset.data_config.replace(num_segments=settings.segments, train_pipeline="center_crop")
    data = VideoDataModule(
        train=str(dataset.lists["train"]),
        val=str(dataset.lists["val"]),
        test=str(dataset.lists["test"]),
        num_segments=settings.segments,
        data_config=data_config,
        batch_size=settings.batch_size,
        num_workers=0,
        pin_memory=False,
    )
    architecture = f"{DEMO_MODELS[name][1]}_{settings.backbone}"
    module = RecognizerModule(
        model=model_config(architecture).replace(dropout=0.0),
        num_classes=data.num_classes,
        num_segments=settings.segments,
        optimizer=OptimizerConfig(
            lr=settings.lr, weight_decay=1e-4, schedule="cosine", warmup_epochs=min(1.0, settings.epochs / 4)
        ),
        class_names=data.class_names,
        data_config=data.data_config,
        report_dir=str(out / name / "test"),
    )
    summary = EpochSummary(prefix=f"  {name:<10} ", printer=lambda line: print(line, flush=True))
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=settings.epochs,
        gradient_clip_val=GRADIENT_CLIP_VAL,
        logger=CSVLogger(out, name=name, version=""),
        callbacks=[summary],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=True,
    )
    started = time.perf_counter()
    trainer.fit(module, datamodule=data)
    train_seconds = time.perf_counter() - started
    trainer.test(module, datamodule=data, verbose=False)
    save_checkpoint(out / name / "model.safetensors", module.model, data.class_names, data.data_config)
    return {
        "model": architecture,
        "top1": round(module.test_metrics["top1"], 2),
        "top5": round(module.test_metrics["top5"], 2),
        "mean_class_accuracy": round(module.test_metrics["mean_class_accuracy"], 2),
        "num_test_clips": module.test_metrics["num_clips"],
        "train_seconds": round(train_seconds, 1),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "history": summary.history,
    }
