"""``load_checkpoint``: any supported checkpoint file in, a :class:`tsm.Recognizer` and what the
file said about itself out."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from tsm.checkpoint.foreign import load_foreign_checkpoint
from tsm.checkpoint.native import CheckpointInfo, load_native_checkpoint, read_native_metadata
from tsm.checkpoint.published import is_published_name, load_pretrained, pretrained_info, resolve_checkpoint
from tsm.checkpoint.weights import copy_matching_weights
from tsm.data import DataConfig, as_data_config
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
    file that stores other Python objects. ``path`` may also be a published model's name
    (:func:`tsm.list_pretrained`): that is :func:`tsm.load_pretrained`.
    """
    if is_published_name(path):
        return load_pretrained(str(path), **overrides)
    path = resolve_checkpoint(path)
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


def init_from_checkpoint(model: Recognizer, path: str | Path) -> CheckpointInfo:
    """Start ``model`` from the weights of the trained model in ``path`` (any supported format);
    a classifier of another size stays fresh (fine-tuning). Returns the file's info."""
    source, info = load_checkpoint(path, num_segments=model.num_segments)
    copy_matching_weights(model, source, name=str(path))
    return info


def checkpoint_test_protocol(name_or_path: str | Path) -> tuple[DataConfig, str]:
    """The test pipeline (frames per clip included) a checkpoint was made for and how its
    publisher averages the views: from the registry for a published name, from the metadata of a
    tsm file, else by loading the file."""
    if is_published_name(name_or_path):
        info = pretrained_info(str(name_or_path))
        return info.data_config, info.view_average
    metadata = read_native_metadata(name_or_path) if Path(name_or_path).is_file() else None
    if metadata is not None:
        frames = json.loads(metadata["model_config"])["num_segments"]
        config = as_data_config(json.loads(metadata.get("data_config", "{}")), num_segments=frames)
        return config, CheckpointInfo.view_average
    info = load_checkpoint(name_or_path)[1]
    return info.data_config, info.view_average
