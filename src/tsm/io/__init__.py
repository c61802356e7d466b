"""Checkpoints (this project's format), conversion of foreign checkpoints, export."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from tsm.io.checkpoint import CheckpointInfo, load_native_checkpoint, read_native_metadata, save_checkpoint
from tsm.io.export import ExportCheck, export_model, read_export_metadata, verify_export
from tsm.io.foreign import load_foreign_checkpoint
from tsm.io.formats import FOREIGN_FORMATS, UnsafeCheckpointError
from tsm.models import Recognizer


def load_checkpoint(
    path: str | Path, *, allow_pickle: bool = False, **overrides: Any
) -> tuple[Recognizer, CheckpointInfo]:
    """Load any supported checkpoint into a :class:`tsm.Recognizer`; returns ``(model, info)``.

    Formats: this project's ``.safetensors``; the reference's ``ckpt.pth.tar`` / published
    ``.pth``; its online demo's ``mobilenetv2_jester_online.pth.tar``; MMAction2's ``.pth``. The
    architecture is read from the weights; num_segments and fold_div from the checkpoint's
    metadata or file name, or from ``overrides`` (any :class:`Recognizer` argument), which win.
    ``info.sources`` says where each setting came from. Files are read with
    ``torch.load(weights_only=True)``; ``allow_pickle=True`` permits full unpickling of a trusted
    file that stores other Python objects.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    unknown = sorted(set(overrides) - set(inspect.signature(Recognizer).parameters))
    if unknown:
        valid = ", ".join(inspect.signature(Recognizer).parameters)
        raise TypeError(f"unknown model settings {unknown}: load_checkpoint accepts allow_pickle and {valid}")
    if read_native_metadata(path) is not None:
        return load_native_checkpoint(path, **overrides)
    if Path(path).suffix == ".safetensors":
        raise ValueError(
            f"{path} is a safetensors file without tsm metadata, so not a tsm checkpoint; a plain "
            "ImageNet backbone file is used as Recognizer(pretrained=PATH)"
        )
    return load_foreign_checkpoint(path, allow_pickle=allow_pickle, **overrides)


__all__ = [
    "FOREIGN_FORMATS",
    "CheckpointInfo",
    "ExportCheck",
    "UnsafeCheckpointError",
    "export_model",
    "load_checkpoint",
    "read_export_metadata",
    "save_checkpoint",
    "verify_export",
]
