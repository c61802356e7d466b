"""The published TSM checkpoints by name: where each is served, what it is, how it was tested.

Every URL, file name and figure is copied from its publisher:

* the reference (mit-han-lab/temporal-shift-module): ``README.md``, tables "Kinetics-400"
  (dense and uniform sampling, optical flow) and "Something-Something", and the test commands of
  its "Testing" section (``test_models.py`` options); the online demo's file from
  ``online_demo/main.py``. Its files carry no hash.
* MMAction2 (open-mmlab/mmaction2): ``configs/recognition/tsm/README.md`` (tables with top-1 and
  ckpt links), ``configs/recognition/tsm/metafile.yml`` (weights URLs) and each config's
  ``test_pipeline`` (the protocol). The 8 hex digits before ``.pth`` are the sha256 prefix.

Each test protocol is a :class:`tsm.DataConfig` (with the publisher's training flips, for
fine-tuning). ``top1`` is the publisher's figure on its own copy of the validation set: none of
them was reproduced by this project (``docs/model-zoo.md`` says how to check one).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from tsm.checkpoint.hub import MIRROR_VARIABLE, cached_file, download
from tsm.checkpoint.native import CheckpointInfo
from tsm.data import SOMETHING_V2_FLIP_LABEL_MAP, DataConfig
from tsm.models import Recognizer
from tsm.models.registry import matching_names

REFERENCE = "reference"
MMACTION2 = "mmaction2"
DATASET_TITLES = {
    "kinetics400": "Kinetics-400",
    "sthv1": "Something-Something V1",
    "sthv2": "Something-Something V2",
    "jester": "Jester",
}
_REFERENCE_MODELS = "https://hanlab18.mit.edu/projects/tsm/models/"
_MMACTION2_MODELS = "https://download.openmmlab.com/mmaction/v1.0/recognition/tsm/"
_REFERENCE_README = "mit-han-lab/temporal-shift-module README.md"
_MMACTION2_README = "open-mmlab/mmaction2 configs/recognition/tsm/README.md"
# What the weights decide; a downloaded file whose weights say otherwise is not the published one.
_ARCHITECTURE_KEYS = ("backbone", "shift", "place", "temporal_pool", "mode", "num_classes", "non_local")
_NOT_IN_WEIGHTS = ("num_segments", "fold_div", "backbone_segments")


@dataclass(frozen=True)
class PretrainedInfo:
    """One published checkpoint: its file, network, dataset, test protocol and reported top-1."""

    name: str
    source: str  # "reference" or "mmaction2"
    url: str
    dataset: str  # class-name list of tsm.data.dataset_class_names: kinetics400, sthv1, sthv2, jester
    num_classes: int
    num_segments: int  # frames per clip of the reported test
    top1: float | None  # percent, as reported
    top1_measured_on: str  # the split the figure was measured on (the views: ``protocol``)
    architecture: Mapping[str, Any]  # Recognizer arguments besides num_classes / num_segments
    data_config: DataConfig  # the published test protocol (and the publisher's training flips)
    sha256_prefix: str | None = None  # leading hex digits of the file's sha256, where its name has them
    view_average: str = "logits"  # how the publisher averages view scores: "logits" or "softmax"
    class_order: str = REFERENCE  # whose class-index order: "reference" or "mmaction2"
    buildable: bool = True
    reason: str = ""  # why tsm cannot build it, when not buildable
    also_reported: str = ""  # other figures of the same file
    reported_in: str = ""  # the publisher's document holding the figure
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def filename(self) -> str:
        """The published file name (the cache and mirrors keep the file under it)."""
        return self.url.rsplit("/", 1)[1]

    @property
    def recognizer_kwargs(self) -> dict[str, Any]:
        """``Recognizer(**recognizer_kwargs)`` is this network (with random weights)."""
        return {**self.architecture, "num_classes": self.num_classes, "num_segments": self.num_segments}

    @property
    def protocol(self) -> str:
        """The test protocol in words: frames x clips x crops."""
        config = self.data_config
        crops = {"center": "1 centre crop", "three": "3 crops", "ten": "10 crops"}[config.test_views]
        clips = f"{config.test_clips} {config.sampling} clip{'' if config.test_clips == 1 else 's'}"
        return f"{config.num_segments} frames x {clips} x {crops} of {config.test_crop_size} px"

    @property
    def protocol_settings(self) -> dict[str, Any]:
        """The data-config settings of the protocol that differ from :class:`tsm.DataConfig`'s defaults."""
        defaults = DataConfig(num_segments=self.num_segments).to_dict()
        return {key: value for key, value in self.data_config.to_dict().items() if value != defaults[key]}


def _tsm(
    backbone: str, shift: bool = True, mode: str = "bidirectional", place: str = "blockres", **extra: Any
) -> Mapping[str, Any]:
    settings = {"backbone": backbone, "shift": shift, "place": place, "fold_div": 8}
    return MappingProxyType({**settings, "temporal_pool": False, "mode": mode, **extra})


# Test protocols (data configs). The reference: test_models.py with --test_crops 1 is resize 256 +
# centre crop 224; --dense_sample --full_res --test_crops=3 is 10 dense clips x 3 crops of 256;
# --twice_sample --test_crops=3 --full_res is 2 clips x 3 crops of 256. MMAction2: SampleFrames
# (test_mode) is the same uniform clip, DenseSampleFrames 10 dense clips (64-frame window),
# TenCrop(224) 10 crops, ThreeCrop(256) 3 crops of 256, twice_sample=True 2 clips.
_CENTRE = MappingProxyType({"sampling": "uniform", "test_views": "center"})
_DENSE_THREE_FULL_RES = MappingProxyType({"sampling": "dense", "test_views": "three", "full_res": True})
_TWO_CLIPS_THREE_FULL_RES = MappingProxyType({"twice_sample": True, "test_views": "three", "full_res": True})
_TEN_CROPS = MappingProxyType({"test_views": "ten"})
_DENSE_TEN_CROPS = MappingProxyType({"sampling": "dense", "test_views": "ten"})
_THREE_FULL_RES = MappingProxyType({"test_views": "three", "full_res": True})
_NO_FLIP = {"flip": False}  # the reference trains direction-sensitive classes without flips


def _with(config: Mapping[str, Any], **extra: Any) -> Mapping[str, Any]:
    return MappingProxyType({**config, **extra})


# MMAction2 trains Something-Something V2 with flips that swap the left/right classes.
_MMACTION2_STHV2 = _with(_TWO_CLIPS_THREE_FULL_RES, flip_label_map=SOMETHING_V2_FLIP_LABEL_MAP)


def _reference(
    name: str, file: str, dataset: str, num_classes: int, frames: int, top1: float | None, measured: str,
    architecture: Mapping[str, Any], data_config: Mapping[str, Any], **details: Any,
) -> PretrainedInfo:
    return PretrainedInfo(
        name, REFERENCE, _REFERENCE_MODELS + file, dataset, num_classes, frames, top1, measured,
        architecture, DataConfig(num_segments=frames, **data_config), reported_in=_REFERENCE_README,
        **details,
    )


def _mmaction2(
    name: str, config: str, stamp: str, dataset: str, num_classes: int, frames: int, top1: float,
    architecture: Mapping[str, Any], data_config: Mapping[str, Any], **details: Any,
) -> PretrainedInfo:
    url = f"{_MMACTION2_MODELS}{config}/{config}_{stamp}.pth"  # stamp: <YYYYMMDD>-<sha256 prefix>
    return PretrainedInfo(
        f"mmaction2/{name}", MMACTION2, url, dataset, num_classes, frames, top1,
        _MMACTION2_VALIDATION[dataset], architecture, DataConfig(num_segments=frames, **data_config),
        sha256_prefix=stamp.split("-")[1], view_average="softmax", class_order=MMACTION2,
        reported_in=_MMACTION2_README, **details,
    )


_K400_VAL = "Kinetics-400 validation set"
_STHV1_VAL = "Something-Something V1 validation set"
_STHV2_VAL = "Something-Something V2 validation set"
_MMACTION2_VALIDATION = {  # its README: "The validation set of Kinetics400 we used consists of 19796 videos"
    "kinetics400": "Kinetics-400 validation set, MMAction2's copy of 19796 videos",
    "sthv2": _STHV2_VAL,
}
_SHIFTED_R50 = _tsm("resnet50")
_PUBLISHED = (
    # --- the reference: README "Kinetics-400", uniform sampling ---
    _reference(
        "tsn_r50_kinetics400", "TSM_kinetics_RGB_resnet50_avg_segment5_e50.pth", "kinetics400", 400, 8,
        68.8, _K400_VAL, _tsm("resnet50", shift=False), _CENTRE,
        also_reported="69.9 with 10 crops; 70.6 with dense sampling, 10 clips x 3 crops at full resolution",
        notes=("trained with 5 segments, tested with 8 (test_models.py --test_segments=8)",),
    ),
    _reference(
        "tsm_r50_kinetics400_8f", "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth",
        "kinetics400", 400, 8, 71.2, _K400_VAL, _SHIFTED_R50, _CENTRE, also_reported="72.8 with 10 crops",
    ),
    _reference(
        "tsm_r50_kinetics400_16f", "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment16_e50.pth",
        "kinetics400", 400, 16, 72.6, _K400_VAL, _SHIFTED_R50, _CENTRE, also_reported="73.7 with 10 crops",
    ),
    # --- the reference: README "Kinetics-400", dense sampling (non-local testing protocol) ---
    _reference(
        "tsm_r50_kinetics400_8f_dense",
        "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e100_dense.pth", "kinetics400", 400, 8,
        74.1, _K400_VAL, _SHIFTED_R50, _DENSE_THREE_FULL_RES,
    ),
    _reference(
        "tsm_r50_nl_kinetics400_8f_dense",
        "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e100_dense_nl.pth", "kinetics400", 400, 8,
        75.6, _K400_VAL, _tsm("resnet50", non_local="embedded_gaussian"), _DENSE_THREE_FULL_RES,
    ),
    _reference(
        "tsm_mobilenetv2_kinetics400_8f_dense",
        "TSM_kinetics_RGB_mobilenetv2_shift8_blockres_avg_segment8_e100_dense.pth", "kinetics400", 400, 8,
        69.5, _K400_VAL, _tsm("mobilenet_v2"), _DENSE_THREE_FULL_RES,
    ),
    # --- the reference: README "Optical Flow" ---
    _reference(
        "tsm_r50_flow_kinetics400_8f", "TSM_kinetics_Flow_resnet50_shift8_blockres_avg_segment8_e50.pth",
        "kinetics400", 400, 8, 55.7, _K400_VAL, _SHIFTED_R50, _CENTRE, buildable=False,
        reason="optical-flow input: tsm reads RGB frames only",
        notes=("the README: meant for transfer learning, not for performance evaluation",),
    ),
    # --- the reference: README "Something-Something-V1" (centre crop x 1 clip) ---
    _reference(
        "tsm_r50_sthv1_8f", "TSM_something_RGB_resnet50_shift8_blockres_avg_segment8_e45.pth", "sthv1", 174,
        8, 45.6, _STHV1_VAL, _SHIFTED_R50, _with(_CENTRE, **_NO_FLIP),
        also_reported="47.2 with 2 clips x 3 crops at full resolution",
    ),
    _reference(
        "tsm_r50_sthv1_16f", "TSM_something_RGB_resnet50_shift8_blockres_avg_segment16_e45.pth", "sthv1",
        174, 16, 47.2, _STHV1_VAL, _SHIFTED_R50, _with(_CENTRE, **_NO_FLIP),
        also_reported="48.4 with 2 clips x 3 crops at full resolution",
    ),
    _reference(
        "tsm_r101_sthv1_8f", "TSM_something_RGB_resnet101_shift8_blockres_avg_segment8_e45.pth", "sthv1",
        174, 8, 46.9, _STHV1_VAL, _tsm("resnet101"), _with(_CENTRE, **_NO_FLIP),
        also_reported="48.7 with 2 clips x 3 crops at full resolution",
    ),
    # --- the reference: README "Something-Something-V2" (full resolution x 2 clips) ---
    _reference(
        "tsm_r50_sthv2_8f", "TSM_somethingv2_RGB_resnet50_shift8_blockres_avg_segment8_e45.pth", "sthv2",
        174, 8, 61.2, _STHV2_VAL, _SHIFTED_R50, _with(_TWO_CLIPS_THREE_FULL_RES, **_NO_FLIP),
    ),
    _reference(
        "tsm_r50_sthv2_16f", "TSM_somethingv2_RGB_resnet50_shift8_blockres_avg_segment16_e45.pth", "sthv2",
        174, 16, 63.1, _STHV2_VAL, _SHIFTED_R50, _with(_TWO_CLIPS_THREE_FULL_RES, **_NO_FLIP),
    ),
    _reference(
        "tsm_r101_sthv2_8f", "TSM_somethingv2_RGB_resnet101_shift8_blockres_avg_segment8_e45.pth", "sthv2",
        174, 8, 63.3, _STHV2_VAL, _tsm("resnet101"), _with(_TWO_CLIPS_THREE_FULL_RES, **_NO_FLIP),
    ),
    # --- the reference: online_demo/main.py (frame by frame: 8 only sets offline clips) ---
    _reference(
        "tsm_online_mobilenetv2_jester", "mobilenetv2_jester_online.pth.tar", "jester", 27, 8, None,
        "not reported", _tsm("mobilenet_v2", mode="unidirectional"), _with(_CENTRE, **_NO_FLIP),
        notes=("the online gesture demo: per-frame outputs do not depend on num_segments",),
    ),
    # --- MMAction2: configs/recognition/tsm, Kinetics-400 ---
    _mmaction2(
        "tsm_r50_kinetics400_8f", "tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb",
        "20220831-64d69186", "kinetics400", 400, 8, 73.18, _SHIFTED_R50, _TEN_CROPS,
    ),
    _mmaction2(
        "tsm_r50_kinetics400_8f_100e", "tsm_imagenet-pretrained-r50_8xb16-1x1x8-100e_kinetics400-rgb",
        "20220831-a6db1e5d", "kinetics400", 400, 8, 73.22, _SHIFTED_R50, _TEN_CROPS,
    ),
    _mmaction2(
        "tsm_r50_kinetics400_16f", "tsm_imagenet-pretrained-r50_8xb16-1x1x16-50e_kinetics400-rgb",
        "20220831-042b1748", "kinetics400", 400, 16, 75.12, _SHIFTED_R50, _TEN_CROPS,
    ),
    _mmaction2(
        "tsm_r50_kinetics400_8f_dense", "tsm_imagenet-pretrained-r50_8xb16-dense-1x1x8-50e_kinetics400-rgb",
        "20220831-f55d3c2b", "kinetics400", 400, 8, 73.38, _SHIFTED_R50, _DENSE_TEN_CROPS,
    ),
    _mmaction2(
        "tsm_r50_nl_dot_product_kinetics400_8f",
        "tsm_imagenet-pretrained-r50-nl-dot-product_8xb16-1x1x8-50e_kinetics400-rgb", "20220831-108bfde5",
        "kinetics400", 400, 8, 74.49, _tsm("resnet50", non_local="dot_product"), _TEN_CROPS,
    ),
    _mmaction2(
        "tsm_r50_nl_gaussian_kinetics400_8f",
        "tsm_imagenet-pretrained-r50-nl-gaussian_8xb16-1x1x8-50e_kinetics400-rgb", "20220831-7e54dacf",
        "kinetics400", 400, 8, 73.66, _tsm("resnet50", non_local="gaussian"), _TEN_CROPS,
    ),
    _mmaction2(
        "tsm_r50_nl_embedded_gaussian_kinetics400_8f",
        "tsm_imagenet-pretrained-r50-nl-embedded-gaussian_8xb16-1x1x8-50e_kinetics400-rgb",
        "20220831-35eddb57", "kinetics400", 400, 8, 74.34, _tsm("resnet50", non_local="embedded_gaussian"),
        _TEN_CROPS,
    ),
    _mmaction2(
        "tsm_mobilenetv2_kinetics400_8f",
        "tsm_imagenet-pretrained-mobilenetv2_8xb16-1x1x8-100e_kinetics400-rgb",
        "20230414-401127fd", "kinetics400", 400, 8, 68.71, _tsm("mobilenet_v2"), _THREE_FULL_RES,
    ),
    _mmaction2(
        "tsm_mobileone_s4_kinetics400_16f",
        "tsm_imagenet-pretrained-mobileone-s4_8xb16-1x1x16-50e_kinetics400-rgb", "20230825-a7f8876b",
        "kinetics400", 400, 16, 74.38, _tsm("mobileone_s4", place="block", backbone_segments=8),
        _THREE_FULL_RES,
        notes=(
            "the README says 16 clips x 10 crops; the config's test_pipeline has ThreeCrop(256)",
            "its config keeps the backbone's shifts at 8 segments while clips have 16 frames",
        ),
    ),
    # --- MMAction2: configs/recognition/tsm, Something-Something V2 ---
    _mmaction2(
        "tsm_r50_sthv2_8f", "tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb", "20230317-be0fc26e",
        "sthv2", 174, 8, 62.72, _SHIFTED_R50, _MMACTION2_STHV2,
    ),
    _mmaction2(
        "tsm_r50_sthv2_16f", "tsm_imagenet-pretrained-r50_8xb16-1x1x16-50e_sthv2-rgb", "20230317-ec6696ad",
        "sthv2", 174, 16, 64.16, _SHIFTED_R50, _MMACTION2_STHV2,
    ),
    _mmaction2(
        "tsm_r101_sthv2_8f", "tsm_imagenet-pretrained-r101_8xb16-1x1x8-50e_sthv2-rgb", "20230320-efcc0d1b",
        "sthv2", 174, 8, 63.70, _tsm("resnet101"), _MMACTION2_STHV2,
    ),
)
PUBLISHED: Mapping[str, PretrainedInfo] = MappingProxyType({info.name: info for info in _PUBLISHED})


def list_pretrained(pattern: str | None = None) -> list[str]:
    """Names of the published checkpoints, sorted; ``pattern``: a glob (``"*r50*"``) or a substring."""
    return matching_names(PUBLISHED, pattern)


def pretrained_info(name: str) -> PretrainedInfo:
    """What is known about the published checkpoint ``name`` (see :func:`list_pretrained`)."""
    if name not in PUBLISHED:
        close = difflib.get_close_matches(name, list(PUBLISHED), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown pretrained model {name!r}{hint} (`tsm models --pretrained` lists them)")
    return PUBLISHED[name]


def is_cached(name: str) -> bool:
    """Whether the file of ``name`` is in torch's hub cache already."""
    return cached_file(pretrained_info(name).filename).is_file()


def download_pretrained(name: str, *, progress: bool = True) -> Path:
    """The cached file of ``name``, downloaded (from ``TSM_WEIGHTS_MIRROR`` if set) when missing."""
    info = pretrained_info(name)
    return download(info.url, info.filename, sha256_prefix=info.sha256_prefix, progress=progress)


def resolve_checkpoint(name_or_path: str | Path, *, progress: bool = True) -> Path:
    """The file of a checkpoint given as a path or as a published name (downloaded if needed).

    An existing file wins over a name; a name that is no file and no published model is an error
    naming both possibilities.
    """
    if Path(name_or_path).is_file():
        return Path(name_or_path)
    name = str(name_or_path)
    if name not in PUBLISHED:
        close = difflib.get_close_matches(name, list(PUBLISHED), n=1)
        hint = f"; did you mean the published {close[0]!r}?" if close else ""
        raise FileNotFoundError(
            f"checkpoint {name!r} does not exist and is not a published model name{hint} "
            "(`tsm models --pretrained` lists them)"
        )
    if not PUBLISHED[name].buildable:
        reason = PUBLISHED[name].reason
        raise ValueError(f"{name} cannot be built by tsm: {reason} (listed for reference only)")
    return download_pretrained(name, progress=progress)


def is_published_name(name_or_path: str | Path) -> bool:
    """Whether ``name_or_path`` names a published model rather than an existing file."""
    return str(name_or_path) in PUBLISHED and not Path(name_or_path).is_file()


def load_pretrained(
    name: str, *, progress: bool = True, **overrides: Any
) -> tuple[Recognizer, CheckpointInfo]:
    """``(Recognizer, CheckpointInfo)`` of a published checkpoint, downloaded and cached on first use.

    The file is read like any checkpoint (:func:`tsm.load_checkpoint`, ``weights_only=True``);
    the info gets the dataset's class names and the published test protocol as its data config,
    so :class:`tsm.Predictor` and ``tsm predict`` print class names and test as the publisher did.
    ``overrides`` are :class:`tsm.Recognizer` arguments (e.g. ``num_segments``).
    """
    from tsm.checkpoint.loader import load_checkpoint  # which reads published names through here
    from tsm.data import dataset_class_names

    info = pretrained_info(name)
    path = resolve_checkpoint(name, progress=progress)  # refuses models tsm cannot build
    # What weights cannot tell, the registry knows: the published frames and fold_div.
    from_registry = {
        key: info.recognizer_kwargs[key]
        for key in _NOT_IN_WEIGHTS
        if key in info.recognizer_kwargs and key not in overrides
    }
    model, checkpoint = load_checkpoint(path, **from_registry, **overrides)
    differing = [
        f"{key}={model.config[key]!r} (published: {value!r})"
        for key, value in info.recognizer_kwargs.items()
        if key in _ARCHITECTURE_KEYS and key not in overrides and model.config[key] != value
    ]
    if differing:
        details = ", ".join(differing)
        raise ValueError(
            f"{path} is not the published {name}: its weights say {details}; delete the file and download "
            f"it again (check {MIRROR_VARIABLE} if you use a mirror)"
        )
    checkpoint.sources.update(dict.fromkeys(from_registry, f"published settings of {name}"))
    names = dataset_class_names(info.dataset, order=info.class_order)
    if len(names) != model.num_classes:
        raise ValueError(f"{len(names)} {info.dataset} class names for {name}'s {model.num_classes} classes")
    checkpoint.class_names = names
    checkpoint.data_config = info.data_config.replace(num_segments=model.num_segments)
    checkpoint.notes.append(f"published model {name} ({info.source}): {info.url}")
    checkpoint.view_average = info.view_average
    return model, checkpoint
