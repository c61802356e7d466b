"""Read a foreign checkpoint's model configuration from its weights, metadata and file name.

Architecture (backbone depth, number of classes, shifted or not, placement, n_round, temporal
pooling, non-local blocks and whether they have theta/phi weights, MobileOne's fused form) comes
from the keys and shapes, which cannot lie. What weights cannot tell (frames per
clip, fold_div) comes from the checkpoint's own metadata (MMAction2 stores its config text), the
reference's file-name convention (``TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50``)
or MMAction2's (``..._1x1x8_...``). Each setting is returned with the place it was read from.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tsm.checkpoint.formats import StateDict
from tsm.models.non_local import NON_LOCAL_BLOCKS
from tsm.models.specs import Setting, list_backbones, reveal_backbone

_NON_LOCAL_KEY = re.compile(r"^base_model\.layer(\d)\.(\d+)\.nl\.")
# Weights cannot tell these two apart (same parameters, different affinity): metadata must.
THETA_PHI_MODES = ("embedded_gaussian", "dot_product")


def _non_local_architecture(state: StateDict) -> Setting:
    """None (no non-local blocks), ``"gaussian"`` (no theta/phi weights) or :data:`THETA_PHI_MODES`."""
    positions = sorted({(int(m[1]), int(m[2])) for key in state if (m := _NON_LOCAL_KEY.match(key))})
    if not positions:
        return Setting(None, "weights: no non-local blocks")
    expected = sorted((int(layer[-1]), i) for layer, indices in NON_LOCAL_BLOCKS.items() for i in indices)
    if positions != expected:
        raise ValueError(
            f"the checkpoint has non-local blocks after (layer, block) {positions}; tsm supports the "
            f"published placement {expected} only"
        )
    if any(".nl.g.weight" in key for key in state):
        raise ValueError(
            "the checkpoint's non-local blocks do not sub-sample (g is a bare conv); tsm supports the "
            "published, sub-sampled blocks (sub_sample=True) only"
        )
    where = f"weights: {len(positions)} non-local blocks"
    if not any(".nl.theta." in key for key in state):
        return Setting("gaussian", f"{where} without theta/phi weights (gaussian)")
    return Setting(THETA_PHI_MODES, f"{where} with theta/phi weights")


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
    settings = reveal_backbone(state)
    if settings is None:
        raise ValueError(
            f"the checkpoint's backbone is none of tsm's ({', '.join(list_backbones())}); its first keys: "
            + ", ".join(list(state)[:4])
        )
    settings["non_local"] = _non_local_architecture(state)
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
        # main.py appends "_nl" for --non_local; the reference's only non-local mode
        "non_local": Setting("embedded_gaussian" if re.search(r"_nl(?=_|$)", rest) else None, source),
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
    "mobileone-s4": "mobileone_s4",
}


_MMACTION2_NON_LOCAL_NAME = re.compile(r"-nl-(embedded-gaussian|gaussian|dot-product)(?:_|$)")
_TSM_BACKBONE_TYPES = ("ResNetTSM", "MobileNetV2TSM", "MobileOneTSM")
_MMACTION2_DEFAULT = "MMAction2's default 8"


def _config_section(text: str, name: str) -> str | None:
    """The text of ``name=dict(...)`` (or ``'name': {...}``) in a saved config, brackets balanced."""
    match = re.search(rf"""(?:\b{name}\s*=\s*dict\(|['"]{name}['"]\s*:\s*\{{)""", text)
    if match is None:
        return None
    depth, start = 1, match.end()
    for index in range(start, len(text)):
        depth += (text[index] in "({[") - (text[index] in ")}]")
        if depth == 0:
            return text[start:index]
    return text[start:]


def _config_value(section: str | None, key: str) -> str | None:
    """A scalar ``key=value`` / ``'key': value`` of a config section (quotes stripped)."""
    if section is None:
        return None
    match = re.search(rf"""['"]?\b{key}['"]?\s*[=:]\s*['"]?([\w.]+)""", section)
    return None if match is None else match.group(1)


def _mmaction2_config_settings(text: str) -> dict[str, Setting]:
    """Clip length, backbone window, fold and non-local mode from MMAction2's saved config text."""
    source = "checkpoint config (meta['cfg'])"
    settings: dict[str, Setting] = {}
    backbone, head = _config_section(text, "backbone"), _config_section(text, "cls_head")
    is_tsm = any(kind in text for kind in _TSM_BACKBONE_TYPES)
    backbone_segments = _config_value(backbone if backbone is not None else text, "num_segments")
    head_segments = _config_value(head, "num_segments")
    if head_segments is not None:  # TSMHead averages over its num_segments: the clip length
        settings["num_segments"] = Setting(int(head_segments), f"{source}, cls_head")
    elif head is not None and is_tsm:
        settings["num_segments"] = Setting(8, f"{source}: cls_head sets none, TSMHead's default 8")
    elif backbone_segments is not None:
        settings["num_segments"] = Setting(int(backbone_segments), source)
    elif is_tsm:
        settings["num_segments"] = Setting(8, f"checkpoint config sets none: {_MMACTION2_DEFAULT}")
    if is_tsm and "num_segments" in settings:
        value, where = (
            (8, _MMACTION2_DEFAULT) if backbone_segments is None else (int(backbone_segments), source)
        )
        settings["backbone_segments"] = Setting(value, f"{where}, backbone")
    if fold := _config_value(text, "shift_div"):
        settings["fold_div"] = Setting(int(fold), source)
    elif is_tsm:
        settings["fold_div"] = Setting(8, f"checkpoint config sets none: {_MMACTION2_DEFAULT}")
    non_local = _config_section(text, "non_local_cfg")
    if non_local:  # ResNetTSM adds non-local blocks only for a non-empty non_local_cfg
        mode = _config_value(non_local, "mode") or "embedded_gaussian"  # mmcv's default mode
        if mode == "embedded_gaussian" and _config_value(non_local, "use_scale") != "False":
            raise ValueError(
                "the checkpoint config's non-local blocks scale the embedded gaussian by 1/sqrt(C) "
                "(use_scale=True, mmcv's default); tsm supports the published unscaled form only"
            )
        settings["non_local"] = Setting(mode, f"{source}, non_local_cfg")
    elif is_tsm:
        settings["non_local"] = Setting(None, f"{source}: no non_local_cfg")
    return settings


def mmaction2_settings(path: str | Path, extras: dict[str, Any]) -> dict[str, Setting]:
    """num_segments / fold_div / non-local mode from MMAction2's saved config text
    (``meta['cfg']``, 0.x: ``meta['config']``) or its file name.

    MMAction2 names files ``tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb_<date>.pth``
    where ``1x1x8`` is clip_len x frame_interval x num_clips (= num_segments for TSM), and marks
    non-local models ``r50-nl-<mode>``. ``backbone_segments`` is the backbone's num_segments,
    which may be smaller than the head's (MMAction2's MobileOne-S4 1x1x16 model keeps 8).
    """
    settings: dict[str, Setting] = {}
    name = Path(path).name
    if sampling := _MMACTION2_SAMPLING.search(name):
        settings["num_segments"] = Setting(
            int(sampling.group(3)), f"file name ('{sampling.group(0).strip('_-')}')"
        )
    backbone = re.search(r"pretrained-(r\d+|mobilenetv2|mobileone-s4)", name)
    if backbone and backbone.group(1) in _MMACTION2_BACKBONES:
        settings["backbone"] = Setting(
            _MMACTION2_BACKBONES[backbone.group(1)], f"file name ('{backbone[1]}')"
        )
        if backbone.group(1) == "mobileone-s4":
            settings["backbone_segments"] = Setting(
                8, "MMAction2's configs/_base_/models/tsm_mobileone_s4.py (backbone num_segments=8)"
            )
    if non_local := _MMACTION2_NON_LOCAL_NAME.search(name):
        settings["non_local"] = Setting(
            non_local.group(1).replace("-", "_"), f"file name ('nl-{non_local[1]}')"
        )
    settings["dense"] = Setting("dense" in name, "file name")
    if dataset := re.search(r"_([a-z0-9]+)-(?:rgb|flow)", name):
        settings["dataset"] = Setting(dataset.group(1), f"file name ('{dataset.group(0).strip('_')}')")
    meta = extras.get("meta") if isinstance(extras.get("meta"), dict) else {}
    config_text = meta.get("cfg", meta.get("config"))  # MMAction2 1.x (mmengine) / 0.x (mmcv)
    if isinstance(config_text, str):
        settings.update(_mmaction2_config_settings(config_text))
    return settings
