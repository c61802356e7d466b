"""Read a foreign checkpoint's model configuration from its weights, metadata and file name.

Architecture (backbone depth, number of classes, shifted or not, placement, n_round, temporal
pooling) comes from the keys and shapes, which cannot lie. What weights cannot tell (frames per
clip, fold_div) comes from the checkpoint's own metadata (MMAction2 stores its config text), the
reference's file-name convention (``TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50``)
or MMAction2's (``..._1x1x8_...``). Each setting is returned with the place it was read from.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tsm.checkpoint.formats import StateDict
from tsm.models.specs import Setting, list_backbones, reveal_backbone


def infer_architecture(state: StateDict) -> dict[str, Setting]:
    """Backbone, number of classes, shift, placement and temporal pool from tsm-layout weights."""
    head = state.get("new_fc.weight")
    if head is None or head.dim() != 2:
        raise ValueError(
            "the checkpoint has no classifier (new_fc / cls_head.fc_cls / classifier weight); an "
            "ImageNet backbone file is not a recognizer: use it as Recognizer(pretrained=PATH)"
        )
    stem = next((v for k, v in state.items() if k.startswith("base_model.") and v.dim() == 4), None)
    if stem is not None and stem.shape[1] != 3:
        raise ValueError(
            f"the first convolution takes {stem.shape[1]} input channels, not 3 (RGB): optical flow "
            "and RGB-difference models are not supported by tsm"
        )
    nonlocal_keys = [k for k in state if ".nl." in k or "non_local" in k]  # reference / MMAction2
    if nonlocal_keys:
        raise ValueError(
            f"non-local TSM models are not supported by tsm (found {nonlocal_keys[0]!r}); use a "
            "checkpoint without non-local blocks"
        )
    settings = reveal_backbone(state)
    if settings is None:
        raise ValueError(
            f"the checkpoint's backbone is none of tsm's ({', '.join(list_backbones())}); its first keys: "
            + ", ".join(list(state)[:4])
        )
    settings["num_classes"] = Setting(int(head.shape[0]), f"weights: classifier {tuple(head.shape)}")
    return settings


# --- file names and metadata ------------------------------------------------------------------------
_REFERENCE_NAME = re.compile(
    r"TSM_(?P<dataset>[A-Za-z0-9-]+)_(?P<modality>RGB|Flow|RGBDiff)_(?P<arch>[A-Za-z0-9]+)(?P<rest>_.*)?$"
)
_REFERENCE_ARCHS = {"mobilenetv2": "mobilenet_v2"}


def _checkpoint_stem(path: Path) -> str:
    name = path.name
    for suffix in (".tar", ".pth", ".pt", ".best", ".ckpt"):
        name = name.removesuffix(suffix)
    return name


def reference_name_settings(path: str | Path) -> dict[str, Setting]:
    """Settings in the reference's naming convention, read from the file name or its folder.

    The reference names published files ``TSM_<dataset>_<modality>_<arch>[_shift<div>_<place>]
    [_tpool]_avg_segment<T>_e<epochs>[_dense][_nl].pth`` and saves training runs as
    ``<that name>/ckpt.pth.tar``.
    """
    path = Path(path)
    for name in (_checkpoint_stem(path), path.parent.name):
        match = _REFERENCE_NAME.search(name)
        if match is not None:
            break
    else:
        return {}
    source = f"file name {name!r}"
    rest = match.group("rest") or ""
    arch = match.group("arch")
    settings = {
        "dataset": Setting(match.group("dataset"), source),
        "modality": Setting(match.group("modality"), source),
        "backbone": Setting(_REFERENCE_ARCHS.get(arch, arch), source),
        "shift": Setting("_shift" in rest, source),
        "temporal_pool": Setting("_tpool" in rest, source),
        "dense": Setting("_dense" in rest, source),
    }
    if shift := re.search(r"_shift(\d+)_(blockres|block)(?=_|$)", rest):
        settings["fold_div"] = Setting(int(shift.group(1)), f"{source} ('shift{shift.group(1)}')")
        settings["place"] = Setting(shift.group(2), source)
    if segments := re.search(r"_segment(\d+)", rest):
        settings["num_segments"] = Setting(int(segments.group(1)), f"{source} ('segment{segments[1]}')")
    return settings


_MMACTION2_SAMPLING = re.compile(r"(?:^|[_-])(\d+)x(\d+)x(\d+)(?:[_-]|$)")
_MMACTION2_BACKBONES = {
    "r18": "resnet18",
    "r34": "resnet34",
    "r50": "resnet50",
    "r101": "resnet101",
    "r152": "resnet152",
    "mobilenetv2": "mobilenet_v2",
}


def mmaction2_settings(path: str | Path, extras: dict[str, Any]) -> dict[str, Setting]:
    """num_segments / fold_div from MMAction2's saved config text (``meta['cfg']``, 0.x:
    ``meta['config']``) or its file name.

    MMAction2 names files ``tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb_<date>.pth``
    where ``1x1x8`` is clip_len x frame_interval x num_clips (= num_segments for TSM).
    """
    settings: dict[str, Setting] = {}
    name = Path(path).name
    if sampling := _MMACTION2_SAMPLING.search(name):
        settings["num_segments"] = Setting(
            int(sampling.group(3)), f"file name ('{sampling.group(0).strip('_-')}')"
        )
    backbone = re.search(r"pretrained-(r\d+|mobilenetv2)", name)
    if backbone and backbone.group(1) in _MMACTION2_BACKBONES:
        settings["backbone"] = Setting(
            _MMACTION2_BACKBONES[backbone.group(1)], f"file name ('{backbone[1]}')"
        )
    settings["dense"] = Setting("dense" in name, "file name")
    if dataset := re.search(r"_([a-z0-9]+)-(?:rgb|flow)", name):
        settings["dataset"] = Setting(dataset.group(1), f"file name ('{dataset.group(0).strip('_')}')")
    meta = extras.get("meta") if isinstance(extras.get("meta"), dict) else {}
    config_text = meta.get("cfg", meta.get("config"))  # MMAction2 1.x (mmengine) / 0.x (mmcv)
    if isinstance(config_text, str):
        if segments := re.search(r"num_segments\s*=\s*(\d+)", config_text):
            settings["num_segments"] = Setting(int(segments.group(1)), "checkpoint config (meta['cfg'])")
        elif "ResNetTSM" in config_text or "MobileNetV2TSM" in config_text:
            settings["num_segments"] = Setting(8, "checkpoint config sets none: MMAction2's default 8")
        if fold := re.search(r"shift_div\s*=\s*(\d+)", config_text):
            settings["fold_div"] = Setting(int(fold.group(1)), "checkpoint config (meta['cfg'])")
        elif "ResNetTSM" in config_text or "MobileNetV2TSM" in config_text:
            settings["fold_div"] = Setting(8, "checkpoint config sets none: MMAction2's default 8")
    return settings
