"""Convert any supported checkpoint into this project's self-describing format, and verify it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tsm.checkpoint.info import CheckpointInfo
from tsm.checkpoint.loader import load_checkpoint
from tsm.checkpoint.native import save_checkpoint


@dataclass
class Conversion:
    """The converted file, what was read from the source, and the check of the written file."""

    path: Path
    info: CheckpointInfo
    max_abs_difference: float
    clip_shape: tuple[int, ...]


def convert_checkpoint(
    source: str | Path,
    destination: str | Path,
    class_names: list[str] | None = None,
    allow_pickle: bool = False,
    size: int = 224,
    **overrides: Any,
) -> Conversion:
    """Load ``source`` (any supported format), save it as a tsm checkpoint, reload and compare.

    The comparison runs both models on one random clip of ``size`` pixels and reports the largest
    absolute difference of the logits: 0 for a faithful conversion, on any CPU, since both models
    hold their weights in the same layout and 64-byte alignment and so run the same kernels.
    """
    model, info = load_checkpoint(source, allow_pickle=allow_pickle, **overrides)
    names = class_names if class_names is not None else info.class_names
    if names is not None and len(names) != model.num_classes:
        raise ValueError(
            f"{len(names)} class names given but the checkpoint has {model.num_classes} classes; "
            "give one name per class, in label order"
        )
    path = save_checkpoint(
        destination, model, class_names=names, data_config=info.data_config, view_average=info.view_average
    )
    reloaded, _ = load_checkpoint(path)
    generator = torch.Generator().manual_seed(0)
    clip = torch.randn(1, model.num_segments, 3, size, size, generator=generator)
    with torch.inference_mode():
        difference = (model.eval()(clip) - reloaded.eval()(clip)).abs().max().item()
    info.class_names = names
    return Conversion(path, info, difference, tuple(clip.shape))
