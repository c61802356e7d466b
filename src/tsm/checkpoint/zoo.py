"""tsm's built-in model names as data, registered in :mod:`tsm.checkpoint.registry`: the
architectures beyond each backbone's standard three, and the published TSM checkpoints, one row
each, named ``ARCHITECTURE.TAG`` as timm names its weights. No downloading here
(:mod:`tsm.checkpoint.loader` fetches and loads).

``ARCHITECTURE`` is a :func:`tsm.list_models` entry; the tag says whose weights, trained on what:
``tsm_resnet50.reference_kinetics400_8f`` is the reference's 8-frame Kinetics-400 TSM ResNet-50,
``tsm_resnet50.mmaction2_kinetics400_8f`` MMAction2's. The names of tsm 0.1
(``tsm_r50_kinetics400_8f``, ``mmaction2/tsm_r50_sthv2_8f``) still resolve to the same rows.

Every URL, file name and figure is copied from its publisher:

* the reference (mit-han-lab/temporal-shift-module): ``README.md``, tables "Kinetics-400"
  (dense and uniform sampling, optical flow) and "Something-Something", and the test commands of
  its "Testing" section (``test_models.py`` options); the online demo's file from
  ``online_demo/main.py``. Its files carry no hash.
* MMAction2 (open-mmlab/mmaction2): ``configs/recognition/tsm/README.md`` (tables with top-1 and
  ckpt links), ``configs/recognition/tsm/metafile.yml`` (weights URLs) and each config's
  ``test_pipeline`` (the protocol). The 8 hex digits before ``.pth`` are the sha256 prefix.

Each test protocol is a :class:`tsm.DataConfig` (with the publisher's training flips from the
dataset catalog, for fine-tuning). ``top1`` is the publisher's figure on its own copy of the
validation set: none of them was reproduced by this project (``docs/model-zoo.md`` says how to
check one).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from tsm.checkpoint.pretrained import MMACTION2, REFERENCE, PretrainedInfo
from tsm.checkpoint.registry import model_config, register_model, register_pretrained
from tsm.data import DataConfig, public_dataset

PUBLISHER_TITLES = {REFERENCE: "The reference (mit-han-lab/temporal-shift-module)", MMACTION2: "MMAction2"}
_REFERENCE_MODELS = "https://hanlab18.mit.edu/projects/tsm/models/"
_MMACTION2_MODELS = "https://download.openmmlab.com/mmaction/v1.0/recognition/tsm/"
_REFERENCE_README = "mit-han-lab/temporal-shift-module README.md"
_MMACTION2_README = "open-mmlab/mmaction2 configs/recognition/tsm/README.md"

# Architectures beyond each backbone's standard tsm_X / tsn_X / tsm_online_X (the registry makes those).
register_model("tsm_resnet50_tpool", backbone="resnet50", temporal_pool=True)
# Non-local TSM: the reference's (embedded gaussian) and MMAction2's other two modes; TSN-NL baseline.
register_model("tsm_resnet50_nl", backbone="resnet50", non_local="embedded_gaussian")
register_model("tsm_resnet50_nl_gaussian", backbone="resnet50", non_local="gaussian")
register_model("tsm_resnet50_nl_dot_product", backbone="resnet50", non_local="dot_product")
register_model("tsn_resnet50_nl", backbone="resnet50", shift=False, non_local="embedded_gaussian")


def _row(
    name: str, legacy: str, source: str, url: str, dataset: str, num_classes: int, frames: int,
    protocol: Mapping[str, Any], settings: Mapping[str, Any] | None = None, **details: Any,
) -> PretrainedInfo:
    architecture = model_config(name.split(".", 1)[0])
    config = architecture.replace(num_classes=num_classes, num_segments=frames, **(settings or {}))
    flips = public_dataset(dataset).training_flips(source)
    data_config = DataConfig(num_segments=frames, **{**flips, **protocol})
    return PretrainedInfo(
        name, source, url, dataset, config, data_config=data_config, legacy_name=legacy, **details
    )


def _reference(
    name: str, legacy: str, file: str, dataset: str, num_classes: int, frames: int, top1: float | None,
    measured: str, protocol: Mapping[str, Any], **details: Any,
) -> PretrainedInfo:
    return _row(
        name, legacy, REFERENCE, _REFERENCE_MODELS + file, dataset, num_classes, frames, protocol,
        top1=top1, top1_measured_on=measured, reported_in=_REFERENCE_README, **details,
    )


def _mmaction2(
    name: str, legacy: str, config: str, stamp: str, dataset: str, num_classes: int, frames: int,
    top1: float, protocol: Mapping[str, Any], **details: Any,
) -> PretrainedInfo:
    url = f"{_MMACTION2_MODELS}{config}/{config}_{stamp}.pth"  # stamp: <YYYYMMDD>-<sha256 prefix>
    return _row(
        name, f"mmaction2/{legacy}", MMACTION2, url, dataset, num_classes, frames, protocol,
        top1=top1, top1_measured_on=_MMACTION2_VALIDATION[dataset], sha256_prefix=stamp.split("-")[1],
        view_average="softmax", class_order=MMACTION2, reported_in=_MMACTION2_README, **details,
    )


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
_K400_VAL = "Kinetics-400 validation set"
_STHV1_VAL = "Something-Something V1 validation set"
_STHV2_VAL = "Something-Something V2 validation set"
_MMACTION2_VALIDATION = {  # its README: "The validation set of Kinetics400 we used consists of 19796 videos"
    "kinetics400": "Kinetics-400 validation set, MMAction2's copy of 19796 videos",
    "sthv2": _STHV2_VAL,
}
_PUBLISHED = (
    # --- the reference: README "Kinetics-400", uniform sampling ---
    _reference(
        "tsn_resnet50.reference_kinetics400_8f", "tsn_r50_kinetics400",
        "TSM_kinetics_RGB_resnet50_avg_segment5_e50.pth", "kinetics400", 400, 8,
        68.8, _K400_VAL, _CENTRE,
        also_reported="69.9 with 10 crops; 70.6 with dense sampling, 10 clips x 3 crops at full resolution",
        notes=("trained with 5 segments, tested with 8 (test_models.py --test_segments=8)",),
    ),
    _reference(
        "tsm_resnet50.reference_kinetics400_8f", "tsm_r50_kinetics400_8f",
        "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth",
        "kinetics400", 400, 8, 71.2, _K400_VAL, _CENTRE, also_reported="72.8 with 10 crops",
    ),
    _reference(
        "tsm_resnet50.reference_kinetics400_16f", "tsm_r50_kinetics400_16f",
        "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment16_e50.pth",
        "kinetics400", 400, 16, 72.6, _K400_VAL, _CENTRE, also_reported="73.7 with 10 crops",
    ),
    # --- the reference: README "Kinetics-400", dense sampling (non-local testing protocol) ---
    _reference(
        "tsm_resnet50.reference_kinetics400_8f_dense", "tsm_r50_kinetics400_8f_dense",
        "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e100_dense.pth", "kinetics400", 400, 8,
        74.1, _K400_VAL, _DENSE_THREE_FULL_RES,
    ),
    _reference(
        "tsm_resnet50_nl.reference_kinetics400_8f_dense", "tsm_r50_nl_kinetics400_8f_dense",
        "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e100_dense_nl.pth", "kinetics400", 400, 8,
        75.6, _K400_VAL, _DENSE_THREE_FULL_RES,
    ),
    _reference(
        "tsm_mobilenet_v2.reference_kinetics400_8f_dense", "tsm_mobilenetv2_kinetics400_8f_dense",
        "TSM_kinetics_RGB_mobilenetv2_shift8_blockres_avg_segment8_e100_dense.pth", "kinetics400", 400, 8,
        69.5, _K400_VAL, _DENSE_THREE_FULL_RES,
    ),
    # --- the reference: README "Optical Flow" ---
    _reference(
        "tsm_resnet50.reference_kinetics400_flow_8f", "tsm_r50_flow_kinetics400_8f",
        "TSM_kinetics_Flow_resnet50_shift8_blockres_avg_segment8_e50.pth",
        "kinetics400", 400, 8, 55.7, _K400_VAL, _CENTRE, buildable=False,
        reason="optical-flow input: tsm reads RGB frames only",
        notes=("the README: meant for transfer learning, not for performance evaluation",),
    ),
    # --- the reference: README "Something-Something-V1" (centre crop x 1 clip) ---
    _reference(
        "tsm_resnet50.reference_sthv1_8f", "tsm_r50_sthv1_8f",
        "TSM_something_RGB_resnet50_shift8_blockres_avg_segment8_e45.pth", "sthv1", 174,
        8, 45.6, _STHV1_VAL, _CENTRE,
        also_reported="47.2 with 2 clips x 3 crops at full resolution",
    ),
    _reference(
        "tsm_resnet50.reference_sthv1_16f", "tsm_r50_sthv1_16f",
        "TSM_something_RGB_resnet50_shift8_blockres_avg_segment16_e45.pth", "sthv1",
        174, 16, 47.2, _STHV1_VAL, _CENTRE,
        also_reported="48.4 with 2 clips x 3 crops at full resolution",
    ),
    _reference(
        "tsm_resnet101.reference_sthv1_8f", "tsm_r101_sthv1_8f",
        "TSM_something_RGB_resnet101_shift8_blockres_avg_segment8_e45.pth", "sthv1",
        174, 8, 46.9, _STHV1_VAL, _CENTRE,
        also_reported="48.7 with 2 clips x 3 crops at full resolution",
    ),
    # --- the reference: README "Something-Something-V2" (full resolution x 2 clips) ---
    _reference(
        "tsm_resnet50.reference_sthv2_8f", "tsm_r50_sthv2_8f",
        "TSM_somethingv2_RGB_resnet50_shift8_blockres_avg_segment8_e45.pth", "sthv2",
        174, 8, 61.2, _STHV2_VAL, _TWO_CLIPS_THREE_FULL_RES,
    ),
    _reference(
        "tsm_resnet50.reference_sthv2_16f", "tsm_r50_sthv2_16f",
        "TSM_somethingv2_RGB_resnet50_shift8_blockres_avg_segment16_e45.pth", "sthv2",
        174, 16, 63.1, _STHV2_VAL, _TWO_CLIPS_THREE_FULL_RES,
    ),
    _reference(
        "tsm_resnet101.reference_sthv2_8f", "tsm_r101_sthv2_8f",
        "TSM_somethingv2_RGB_resnet101_shift8_blockres_avg_segment8_e45.pth", "sthv2",
        174, 8, 63.3, _STHV2_VAL, _TWO_CLIPS_THREE_FULL_RES,
    ),
    # --- the reference: online_demo/main.py (frame by frame: 8 only sets offline clips) ---
    _reference(
        "tsm_online_mobilenet_v2.reference_jester", "tsm_online_mobilenetv2_jester",
        "mobilenetv2_jester_online.pth.tar", "jester", 27, 8, None,
        "not reported", _CENTRE,
        notes=("the online gesture demo: per-frame outputs do not depend on num_segments",),
    ),
    # --- MMAction2: configs/recognition/tsm, Kinetics-400 ---
    _mmaction2(
        "tsm_resnet50.mmaction2_kinetics400_8f", "tsm_r50_kinetics400_8f",
        "tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb",
        "20220831-64d69186", "kinetics400", 400, 8, 73.18, _TEN_CROPS,
    ),
    _mmaction2(
        "tsm_resnet50.mmaction2_kinetics400_8f_100e", "tsm_r50_kinetics400_8f_100e",
        "tsm_imagenet-pretrained-r50_8xb16-1x1x8-100e_kinetics400-rgb",
        "20220831-a6db1e5d", "kinetics400", 400, 8, 73.22, _TEN_CROPS,
    ),
    _mmaction2(
        "tsm_resnet50.mmaction2_kinetics400_16f", "tsm_r50_kinetics400_16f",
        "tsm_imagenet-pretrained-r50_8xb16-1x1x16-50e_kinetics400-rgb",
        "20220831-042b1748", "kinetics400", 400, 16, 75.12, _TEN_CROPS,
    ),
    _mmaction2(
        "tsm_resnet50.mmaction2_kinetics400_8f_dense", "tsm_r50_kinetics400_8f_dense",
        "tsm_imagenet-pretrained-r50_8xb16-dense-1x1x8-50e_kinetics400-rgb",
        "20220831-f55d3c2b", "kinetics400", 400, 8, 73.38, _DENSE_TEN_CROPS,
    ),
    _mmaction2(
        "tsm_resnet50_nl_dot_product.mmaction2_kinetics400_8f", "tsm_r50_nl_dot_product_kinetics400_8f",
        "tsm_imagenet-pretrained-r50-nl-dot-product_8xb16-1x1x8-50e_kinetics400-rgb", "20220831-108bfde5",
        "kinetics400", 400, 8, 74.49, _TEN_CROPS,
    ),
    _mmaction2(
        "tsm_resnet50_nl_gaussian.mmaction2_kinetics400_8f", "tsm_r50_nl_gaussian_kinetics400_8f",
        "tsm_imagenet-pretrained-r50-nl-gaussian_8xb16-1x1x8-50e_kinetics400-rgb", "20220831-7e54dacf",
        "kinetics400", 400, 8, 73.66, _TEN_CROPS,
    ),
    _mmaction2(
        "tsm_resnet50_nl.mmaction2_kinetics400_8f", "tsm_r50_nl_embedded_gaussian_kinetics400_8f",
        "tsm_imagenet-pretrained-r50-nl-embedded-gaussian_8xb16-1x1x8-50e_kinetics400-rgb",
        "20220831-35eddb57", "kinetics400", 400, 8, 74.34, _TEN_CROPS,
    ),
    _mmaction2(
        "tsm_mobilenet_v2.mmaction2_kinetics400_8f", "tsm_mobilenetv2_kinetics400_8f",
        "tsm_imagenet-pretrained-mobilenetv2_8xb16-1x1x8-100e_kinetics400-rgb",
        "20230414-401127fd", "kinetics400", 400, 8, 68.71, _THREE_FULL_RES,
    ),
    _mmaction2(
        "tsm_mobileone_s4.mmaction2_kinetics400_16f", "tsm_mobileone_s4_kinetics400_16f",
        "tsm_imagenet-pretrained-mobileone-s4_8xb16-1x1x16-50e_kinetics400-rgb", "20230825-a7f8876b",
        "kinetics400", 400, 16, 74.38, _THREE_FULL_RES, settings={"backbone_segments": 8},
        notes=(
            "the README says 16 clips x 10 crops; the config's test_pipeline has ThreeCrop(256)",
            "its config keeps the backbone's shifts at 8 segments while clips have 16 frames",
        ),
    ),
    # --- MMAction2: configs/recognition/tsm, Something-Something V2 ---
    _mmaction2(
        "tsm_resnet50.mmaction2_sthv2_8f", "tsm_r50_sthv2_8f",
        "tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb", "20230317-be0fc26e",
        "sthv2", 174, 8, 62.72, _TWO_CLIPS_THREE_FULL_RES,
    ),
    _mmaction2(
        "tsm_resnet50.mmaction2_sthv2_16f", "tsm_r50_sthv2_16f",
        "tsm_imagenet-pretrained-r50_8xb16-1x1x16-50e_sthv2-rgb", "20230317-ec6696ad",
        "sthv2", 174, 16, 64.16, _TWO_CLIPS_THREE_FULL_RES,
    ),
    _mmaction2(
        "tsm_resnet101.mmaction2_sthv2_8f", "tsm_r101_sthv2_8f",
        "tsm_imagenet-pretrained-r101_8xb16-1x1x8-50e_sthv2-rgb", "20230320-efcc0d1b",
        "sthv2", 174, 8, 63.70, _TWO_CLIPS_THREE_FULL_RES,
    ),
)
for _info in _PUBLISHED:
    register_pretrained(_info)
