"""What ``--ckpt_path`` of ``tsm fit`` / ``validate`` / ``test`` may hold: Lightning's meaning, a
training state (``.ckpt``: weights, optimizer, schedule, loop) of this version of tsm. Anything
else is a one-line error saying what to write instead."""

from __future__ import annotations

from pathlib import Path

import torch

from tsm.checkpoint import is_hub_name, is_published_name

TSM_0_1_HYPERPARAMETERS = ("checkpoint", "backbone_weights")  # RecognizerModule's, now model.init


def is_model_file(path: str | None) -> bool:
    """A trained model's weights (tsm, reference, MMAction2, a published name, an ``hf-hub:`` repo),
    not a Lightning training checkpoint."""
    if not path:
        return False
    model_files = (".safetensors", ".pth", ".pth.tar", ".pt")
    return str(path).endswith(model_files) or is_published_name(path) or is_hub_name(path)


def check_ckpt_path(path: str | None) -> None:
    """Refuse a model file (it goes to ``--model.init.checkpoint``) and a training state of tsm 0.1
    (its hyperparameters name options this version does not have)."""
    if is_model_file(path):
        raise ValueError(
            f"--ckpt_path takes a Lightning training state (.ckpt), and {path} is a model: "
            f"write --model.init.checkpoint {path} (its network and weights; fine-tuning: "
            "--model.init.finetune_from)"
        )
    if path and Path(path).is_file():
        state = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
        old = [key for key in TSM_0_1_HYPERPARAMETERS if key in state.get("hyper_parameters", {})]
        if old:
            raise ValueError(
                f"{path} is a training state of tsm 0.1 (hyperparameters {', '.join(old)}), which this "
                "version cannot resume: resume it with tsm 0.1, or start a new run from the model saved "
                "beside it (--model.init.finetune_from .../last.safetensors)"
            )
