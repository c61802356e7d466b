"""What a foreign checkpoint's file name and saved metadata say beyond its weights.

The weights decide the architecture (see :mod:`.architecture`); what they cannot tell (frames per
clip, fold_div, the non-local mode of theta/phi blocks, the backbone's clip window) comes from
the checkpoint's own metadata (MMAction2 stores its config text), the reference's file-name
convention (``TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50``) or MMAction2's
(``..._1x1x8_...``). Names of backbones and datasets in file names come from the backbone specs
and the dataset catalog. Each value is returned with the place it was read from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tsm.data import dataset_named_in_file
from tsm.models import MODEL_SETTINGS, Setting
from tsm.models.specs import backbone_named_by, publisher_config_types, publisher_names


@dataclass
class FileHints:
    """What a checkpoint's format, metadata and file name say: model settings (``settings``, keyed
    by :class:`~tsm.models.ModelConfig` field) and facts that are not settings."""

    settings: dict[str, Setting] = field(default_factory=dict)
    dataset: Setting | None = None  # a catalog name (``"sthv2"``) when known, else the file's word
    modality: Setting | None = None  # the reference's RGB / Flow / RGBDiff
    dense: Setting | None = None  # trained on dense clips (the test protocol of such models)
    theta_phi_mode: Setting | None = None  # what theta/phi non-local blocks are when nothing says

    def __post_init__(self) -> None:
        unknown = sorted(set(self.settings) - set(MODEL_SETTINGS))
        if unknown:
            raise ValueError(f"not model settings: {unknown}")


def _dataset(word: str, source: str) -> Setting:
    row = dataset_named_in_file(word)
    return Setting(row.name if row is not None else word, source)


# --- the reference's file names ---------------------------------------------------------------------
_REFERENCE_NAME = re.compile(
    r"TSM_(?P<dataset>[A-Za-z0-9-]+)_(?P<modality>RGB|Flow|RGBDiff)_(?P<arch>[A-Za-z0-9]+)(?P<rest>_.*)?$"
)


def _checkpoint_stem(path: Path) -> str:
    name = path.name
    for suffix in (".tar", ".pth", ".pt", ".best", ".ckpt"):
        name = name.removesuffix(suffix)
    return name


def reference_name_hints(path: str | Path) -> FileHints:
    """What the reference's naming convention says, read from the file name or its folder.

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
        return FileHints()
    source = f"file name {name!r}"
    rest = match.group("rest") or ""
    arch = match.group("arch")
    settings = {
        "backbone": Setting(backbone_named_by("reference", arch) or arch, source),
        "shift": Setting("_shift" in rest, source),
        "temporal_pool": Setting("_tpool" in rest, source),
        # main.py appends "_nl" for --non_local; the reference's only non-local mode
        "non_local": Setting("embedded_gaussian" if re.search(r"_nl(?=_|$)", rest) else None, source),
    }
    if shift := re.search(r"_shift(\d+)_(blockres|block)(?=_|$)", rest):
        settings["fold_div"] = Setting(int(shift.group(1)), f"{source} ('shift{shift.group(1)}')")
        settings["place"] = Setting(shift.group(2), source)
    if segments := re.search(r"_segment(\d+)", rest):
        settings["num_segments"] = Setting(int(segments.group(1)), f"{source} ('segment{segments[1]}')")
    return FileHints(
        settings,
        dataset=_dataset(match.group("dataset"), source),
        modality=Setting(match.group("modality"), source),
        dense=Setting("_dense" in rest, source),
    )


# --- MMAction2's file names and saved configs ---------------------------------------------------------
_MMACTION2_SAMPLING = re.compile(r"(?:^|[_-])(\d+)x(\d+)x(\d+)(?:[_-]|$)")
_MMACTION2_NON_LOCAL_NAME = re.compile(r"-nl-(embedded-gaussian|gaussian|dot-product)(?:_|$)")
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
    is_tsm = any(kind in text for kind in publisher_config_types("mmaction2"))
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


def _mmaction2_name_settings(name: str) -> dict[str, Setting]:
    """Clip length, backbone and non-local mode in MMAction2's file-name convention."""
    settings: dict[str, Setting] = {}
    if sampling := _MMACTION2_SAMPLING.search(name):
        settings["num_segments"] = Setting(
            int(sampling.group(3)), f"file name ('{sampling.group(0).strip('_-')}')"
        )
    words = "|".join(re.escape(word) for word in publisher_names("mmaction2"))
    if backbone := re.search(rf"pretrained-({words})(?=[_-])", name):
        settings["backbone"] = Setting(
            backbone_named_by("mmaction2", backbone[1]), f"file name ('{backbone[1]}')"
        )
    if non_local := _MMACTION2_NON_LOCAL_NAME.search(name):
        settings["non_local"] = Setting(
            non_local.group(1).replace("-", "_"), f"file name ('nl-{non_local[1]}')"
        )
    return settings


def mmaction2_hints(path: str | Path, extras: dict[str, Any]) -> FileHints:
    """What MMAction2's saved config text (``meta['cfg']``, 0.x: ``meta['config']``) and its file
    name say: num_segments, fold_div, the non-local mode, the backbone's window, the dataset.

    MMAction2 names files ``tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb_<date>.pth``
    where ``1x1x8`` is clip_len x frame_interval x num_clips (= num_segments for TSM), and marks
    non-local models ``r50-nl-<mode>``. ``backbone_segments`` is the backbone's num_segments,
    which may be smaller than the head's (MMAction2's MobileOne-S4 1x1x16 model keeps 8).
    """
    name = Path(path).name
    settings = _mmaction2_name_settings(name)
    meta = extras.get("meta") if isinstance(extras.get("meta"), dict) else {}
    config_text = meta.get("cfg", meta.get("config"))  # MMAction2 1.x (mmengine) / 0.x (mmcv)
    if isinstance(config_text, str):
        settings.update(_mmaction2_config_settings(config_text))
    dataset = re.search(r"_([a-z0-9]+)-(?:rgb|flow)", name)
    return FileHints(
        settings,
        dataset=_dataset(dataset.group(1), f"file name ('{dataset.group(0).strip('_')}')")
        if dataset
        else None,
        dense=Setting("dense" in name, "file name"),
    )
