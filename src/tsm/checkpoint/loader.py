"""Any checkpoint in, a :class:`tsm.Recognizer` and what the file said about itself out: this
project's files, the reference's and MMAction2's, and the published checkpoints by name
(downloaded once, verified, into torch's hub cache)."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from tsm.checkpoint.foreign import load_foreign_checkpoint
from tsm.checkpoint.hub_mirror import file_from_hub_mirror
from tsm.checkpoint.hub_names import is_hub_name, resolve_hub_name
from tsm.checkpoint.info import CheckpointInfo
from tsm.checkpoint.native import (
    load_native_checkpoint,
    native_model_config,
    native_view_average,
    read_native_metadata,
)
from tsm.checkpoint.registry import list_pretrained, pretrained_info, published_name
from tsm.checkpoint.weights import copy_matching_weights
from tsm.data import DataConfig, as_data_config, dataset_class_names
from tsm.download import MIRROR_VARIABLE, cached_file, download
from tsm.models import MODEL_SETTINGS, ModelConfig, Recognizer


def is_cached(name: str) -> bool:
    """Whether the file of the published checkpoint ``name`` is in torch's hub cache already."""
    return cached_file(pretrained_info(name).filename).is_file()


def download_pretrained(name: str, *, progress: bool = True) -> Path:
    """The cached file of ``name``, downloaded when missing: from the Hub mirror ``TSM_HUB_MIRROR``
    names, if set and it has the file, else from the publisher (or ``TSM_WEIGHTS_MIRROR``)."""
    info = pretrained_info(name)
    if not is_cached(name) and (mirrored := file_from_hub_mirror(info, progress=progress)) is not None:
        return mirrored
    return download(info.url, info.filename, sha256_prefix=info.sha256_prefix, progress=progress)


def is_published_name(name_or_path: str | Path) -> bool:
    """Whether ``name_or_path`` names a published model rather than an existing file."""
    return published_name(str(name_or_path)) is not None and not Path(name_or_path).is_file()


def resolve_checkpoint(name_or_path: str | Path, *, progress: bool = True) -> Path:
    """The file of a checkpoint given as a path or as a published name (downloaded if needed).

    An existing file wins over a name; a name that is no file and no published model is an error
    naming both possibilities. An ``hf-hub:ORG/NAME[@REVISION]`` name is the weights of that Hub repo.
    """
    if is_hub_name(name_or_path):
        return resolve_hub_name(str(name_or_path), progress=progress)
    if Path(name_or_path).is_file():
        return Path(name_or_path)
    if published_name(str(name_or_path)) is None:
        close = difflib.get_close_matches(str(name_or_path), list_pretrained(), n=1)
        hint = f"; did you mean the published {close[0]!r}?" if close else ""
        raise FileNotFoundError(
            f"checkpoint {str(name_or_path)!r} does not exist and is not a published model name{hint} "
            "(`tsm models --pretrained` lists them)"
        )
    info = pretrained_info(str(name_or_path))
    if not info.buildable:
        raise ValueError(f"{info.name} cannot be built by tsm: {info.reason} (listed for reference only)")
    return download_pretrained(info.name, progress=progress)


def _check_settings(overrides: dict[str, Any]) -> None:
    unknown = sorted(set(overrides) - set(MODEL_SETTINGS))
    if unknown:
        raise TypeError(
            f"unknown model settings {unknown}: load_checkpoint accepts allow_pickle, progress and "
            f"{', '.join(MODEL_SETTINGS)}"
        )


def load_checkpoint(
    path: str | Path, *, allow_pickle: bool = False, progress: bool = True, **overrides: Any
) -> tuple[Recognizer, CheckpointInfo]:
    """Load any supported checkpoint into a :class:`tsm.Recognizer`; returns ``(model, info)``.

    Formats: this project's ``.safetensors``; the reference's ``ckpt.pth.tar`` / published
    ``.pth``; its online demo's ``mobilenetv2_jester_online.pth.tar``; MMAction2's ``.pth``. The
    architecture is read from the weights; num_segments and fold_div from the checkpoint's
    metadata or file name, or from ``overrides`` (any :class:`~tsm.models.ModelConfig` setting),
    which win. ``info.sources`` says where each setting came from. Files are read with
    ``torch.load(weights_only=True)``; ``allow_pickle=True`` permits full unpickling of a trusted
    file that stores other Python objects. ``path`` may also be a published model's name
    (:func:`tsm.list_pretrained`): that is :func:`load_pretrained`; or ``hf-hub:ORG/NAME[@REVISION]``,
    a tsm model repo on the Hugging Face Hub (downloaded into huggingface_hub's cache).
    """
    _check_settings(overrides)
    if is_published_name(path):
        return load_pretrained(str(path), allow_pickle=allow_pickle, progress=progress, **overrides)
    path = resolve_checkpoint(path, progress=progress)
    if read_native_metadata(path) is not None:
        return load_native_checkpoint(path, **overrides)
    if Path(path).suffix == ".safetensors":
        raise ValueError(
            f"{path} is a safetensors file without tsm metadata, so not a tsm checkpoint; a plain "
            "ImageNet backbone file is used as Recognizer(backbone_weights=PATH)"
        )
    return load_foreign_checkpoint(path, allow_pickle=allow_pickle, **overrides)


def load_pretrained(
    name: str, *, allow_pickle: bool = False, progress: bool = True, **overrides: Any
) -> tuple[Recognizer, CheckpointInfo]:
    """``(Recognizer, CheckpointInfo)`` of a published checkpoint, downloaded and cached on first use.

    The file is read like any checkpoint (``weights_only=True`` unless ``allow_pickle``); what
    weights cannot tell (frames, fold_div, the backbone's window) comes from the published
    settings, and a file whose weights are not the published network is refused. The info gets the
    dataset's class names and the published test protocol as its data config, so
    :class:`tsm.Predictor` and ``tsm predict`` print class names and test as the publisher did.
    ``overrides`` are :class:`~tsm.models.ModelConfig` settings (e.g. ``num_segments``).
    """
    _check_settings(overrides)
    info = pretrained_info(name)
    path = resolve_checkpoint(info.name, progress=progress)  # refuses models tsm cannot build
    published = info.model_config
    from_table = {
        key: getattr(published, key) for key in ModelConfig.settings_beyond_weights() if key not in overrides
    }
    model, checkpoint = load_checkpoint(path, allow_pickle=allow_pickle, **from_table, **overrides)
    _refuse_other_networks(model.config, published, overrides, path, info.name)
    checkpoint.sources.update(dict.fromkeys(from_table, f"published settings of {info.name}"))
    names = dataset_class_names(info.dataset, order=info.class_order)
    if len(names) != model.num_classes:
        raise ValueError(
            f"{len(names)} {info.dataset} class names for {info.name}'s {model.num_classes} classes"
        )
    checkpoint.class_names = names
    checkpoint.data_config = info.data_config.replace(num_segments=model.num_segments)
    checkpoint.notes.append(f"published model {info.name} ({info.source}): {info.url}")
    checkpoint.view_average = info.view_average
    return model, checkpoint


def _refuse_other_networks(
    loaded: ModelConfig, published: ModelConfig, overrides: dict[str, Any], path: Path, name: str
) -> None:
    """A file whose weights say another network than the published one (a wrong file on a mirror)."""
    differing = [
        f"{key}={getattr(loaded, key)!r} (published: {getattr(published, key)!r})"
        for key in ModelConfig.settings_in_weights()
        if key not in overrides and getattr(loaded, key) != getattr(published, key)
    ]
    if differing:
        raise ValueError(
            f"{path} is not the published {name}: its weights say {', '.join(differing)}; delete the file "
            f"and download it again (check {MIRROR_VARIABLE} if you use a mirror)"
        )


def init_from_checkpoint(model: Recognizer, path: str | Path) -> CheckpointInfo:
    """Start ``model`` from the weights of the trained model in ``path`` (any supported format or a
    published name); a classifier of another size stays fresh (fine-tuning). Returns the file's info."""
    source, info = load_checkpoint(path, num_segments=model.num_segments)
    copy_matching_weights(model, source, name=str(path))
    return info


def checkpoint_test_protocol(name_or_path: str | Path) -> tuple[DataConfig, str]:
    """The test pipeline (frames per clip included) a checkpoint was made for and how its
    publisher averages the views: from the table for a published name, from the metadata of a
    tsm file, else by loading the file."""
    if is_published_name(name_or_path):
        info = pretrained_info(str(name_or_path))
        return info.data_config, info.view_average
    metadata = read_native_metadata(name_or_path) if Path(name_or_path).is_file() else None
    if metadata is not None:
        frames = native_model_config(metadata).num_segments
        config = as_data_config(json.loads(metadata.get("data_config", "{}")), num_segments=frames)
        return config, native_view_average(metadata)
    info = load_checkpoint(name_or_path)[1]
    return info.data_config, info.view_average
