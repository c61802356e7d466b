"""Read a foreign checkpoint's model configuration from its weights, metadata and file name.

Architecture (backbone depth, number of classes, shifted or not, placement, n_round, temporal
pooling) comes from the keys and shapes, which cannot lie. What weights cannot tell (frames per
clip, fold_div) comes from the checkpoint's own metadata (MMAction2 stores its config text), the
reference's file-name convention (``TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50``)
or MMAction2's (``..._1x1x8_...``). Each setting is returned with the place it was read from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tsm.io.formats import StateDict

# (blocks per stage, bottleneck) -> ResNet depth, for torchvision's ResNets.
_RESNET_DEPTHS = {
    ((2, 2, 2, 2), False): 18,
    ((3, 4, 6, 3), False): 34,
    ((3, 4, 6, 3), True): 50,
    ((3, 4, 23, 3), True): 101,
    ((3, 8, 36, 3), True): 152,
}
_RESNET_BLOCK_KEY = re.compile(r"^base_model\.layer(\d)\.(net\.)?(\d+)\.(.+)$")


@dataclass(frozen=True)
class Setting:
    """A configuration value and where it was read from (shown to the user)."""

    value: Any
    source: str


def _resnet_architecture(state: StateDict) -> dict[str, Setting]:
    blocks: dict[int, set[int]] = {1: set(), 2: set(), 3: set(), 4: set()}
    wrapped_blocks, shifted_convs, pooled, bottleneck = set(), set(), False, False
    for key in state:
        match = _RESNET_BLOCK_KEY.match(key)
        if match is None:
            continue
        stage, pool_wrapper, block, rest = match.groups()
        pooled |= bool(pool_wrapper) and stage == "2"
        blocks[int(stage)].add(int(block))
        bottleneck |= ".conv3." in f".{rest}"
        if rest.startswith("net."):
            wrapped_blocks.add((stage, block))
        elif rest.startswith("conv1.net."):
            shifted_convs.add((stage, block))
    counts = tuple(len(blocks[stage]) for stage in (1, 2, 3, 4))
    depth = _RESNET_DEPTHS.get((counts, bottleneck))
    layout = f"weights: {'-'.join(map(str, counts))} {'bottleneck' if bottleneck else 'basic'} blocks"
    settings = {
        # None: no torchvision ResNet has this layout; resolved later unless an argument names one.
        "backbone": Setting(None if depth is None else f"resnet{depth}", layout),
        "temporal_pool": Setting(
            pooled, "weights: " + ("layer2 wrapped by a temporal pool" if pooled else "no temporal pool")
        ),
    }
    if wrapped_blocks:
        settings["shift"] = Setting(True, f"weights: {len(wrapped_blocks)} shifted blocks")
        settings["place"] = Setting("block", "weights: whole blocks wrapped (in-place placement)")
    elif shifted_convs:
        settings["shift"] = Setting(True, f"weights: {len(shifted_convs)} shifted conv1 layers")
        settings["place"] = Setting("blockres", "weights: shifts wrap each block's conv1 (residual)")
    else:
        settings["shift"] = Setting(False, "weights: no shifted layers (TSN)")
    return settings


def _mobilenet_architecture(state: StateDict) -> dict[str, Setting]:
    shifted = {key.split(".")[2] for key in state if ".net." in key}
    settings = {
        "backbone": Setting("mobilenet_v2", "weights: MobileNetV2 features"),
        "temporal_pool": Setting(False, "weights: MobileNetV2 has no temporal pool"),
        "shift": Setting(
            bool(shifted),
            f"weights: {len(shifted)} shifted blocks" if shifted else "weights: no shifted layers (TSN)",
        ),
    }
    if shifted:
        settings["place"] = Setting("blockres", "weights: shifts wrap the expansion convs (residual)")
    return settings


def infer_architecture(state: StateDict) -> dict[str, Setting]:
    """Backbone, number of classes, shift, placement and temporal pool from tsm-layout weights."""
    head = state.get("new_fc.weight")
    if head is None or head.dim() != 2:
        raise ValueError(
            "the checkpoint has no classifier (new_fc / cls_head.fc_cls / classifier weight); an "
            "ImageNet backbone file is not a recognizer: use it as Recognizer(pretrained=PATH)"
        )
    stem = state.get("base_model.conv1.weight", state.get("base_model.features.0.0.weight"))
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
    if any(k.startswith("base_model.features.") for k in state):
        settings = _mobilenet_architecture(state)
    elif any(k.startswith("base_model.layer1.") for k in state):
        settings = _resnet_architecture(state)
    else:
        raise ValueError("the checkpoint's backbone is neither a ResNet nor a MobileNetV2")
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
