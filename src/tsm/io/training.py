"""Lightning callback that also writes trained models in this project's checkpoint format."""

from __future__ import annotations

import copy
from pathlib import Path

import lightning.pytorch as pl
import torch

from tsm.engine import RecognizerModule
from tsm.io.checkpoint import load_weights, save_checkpoint

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
