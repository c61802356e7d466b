"""Named train/test pipelines built from a JSON-able data config (the dict stored in checkpoints).

A data config says everything needed to turn a video into model input: sampling, sizes, crops,
flip, normalisation and test views. ``default_data_config`` fills and checks it, ``build_pipeline``
makes the transform, ``load_clip`` turns one video + config into the test-view tensor, so a
checkpoint alone is enough to rebuild the test pipeline.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from tsm.data.decode import VideoReadError, count_frame_files, probe, read_frame_folder, read_frames
from tsm.data.sampling import clip_indices
from tsm.data.transforms import TSN_SCALES, MultiScaleCrop, flip_clip, three_crop

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TRAIN_PIPELINES = ("multiscale_crop", "center_crop")
# Something-Something V2 classes that swap under a horizontal flip ("... left to right" and
# "... right to left" style pairs), as MMAction2 maps them; use as "flip_label_map".
SOMETHING_V2_FLIP_LABEL_MAP = {"86": 87, "87": 86, "93": 94, "94": 93, "166": 167, "167": 166}
TEST_VIEWS = {"center": 1, "three": 3, "ten": 10}

DEFAULT_DATA_CONFIG: dict[str, Any] = {
    "num_segments": 8,
    "sampling": "uniform",  # "uniform" (TSN segments) or "dense" (64-frame window)
    "twice_sample": False,  # uniform test: add the segment-start clip (2 clips)
    "num_clips": None,  # dense test clips; None: 10 for dense, 1 for uniform
    "dense_window": 64,
    "train_pipeline": "multiscale_crop",  # or "center_crop" (no spatial augmentation)
    "resize": 256,  # short side before cropping; None keeps the decoded size
    "input_size": 224,
    "scales": list(TSN_SCALES),
    "max_distort": 1,
    "flip": True,  # horizontal flip p=0.5 in training; False for direction-sensitive classes
    "flip_label_map": None,  # {"86": 87, "87": 86, ...}: labels swapped when a clip is mirrored
    "mean": list(IMAGENET_MEAN),
    "std": list(IMAGENET_STD),
    "test_views": "center",  # "center", "three" (left/centre/right) or "ten" (5 crops + flips)
    "full_res": False,  # test crops of size `resize` instead of `input_size`
    "frame_template": "img_{:05d}.jpg",  # raw-frame folders
    "frame_start_index": 1,
}


def _check_choice(config: Mapping[str, Any], key: str, choices: Any) -> None:
    if config[key] not in choices:
        raise ValueError(f"data config: {key}={config[key]!r} is not one of {sorted(choices)}")


def default_data_config(config: Mapping[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """A complete, checked data config: the defaults updated with ``config`` then ``overrides``."""
    merged = copy.deepcopy(DEFAULT_DATA_CONFIG)
    for source in (config or {}, overrides):
        unknown = sorted(set(source) - set(DEFAULT_DATA_CONFIG))
        if unknown:
            raise ValueError(
                f"data config: unknown keys {unknown}; valid keys: {sorted(DEFAULT_DATA_CONFIG)}"
            )
        merged.update(copy.deepcopy(dict(source)))
    _check_choice(merged, "sampling", ("uniform", "dense"))
    _check_choice(merged, "train_pipeline", TRAIN_PIPELINES)
    _check_choice(merged, "test_views", TEST_VIEWS)
    for key in ("num_segments", "input_size", "dense_window"):
        if not isinstance(merged[key], int) or merged[key] < 1:
            raise ValueError(f"data config: {key} must be a positive integer, got {merged[key]!r}")
    if merged["num_clips"] is None:
        merged["num_clips"] = 10 if merged["sampling"] == "dense" else 1
    if merged["sampling"] == "uniform" and merged["num_clips"] != 1:
        raise ValueError(
            "data config: uniform sampling has one test clip; use twice_sample=True or sampling='dense'"
        )
    if len(merged["mean"]) != 3 or len(merged["std"]) != 3:
        raise ValueError("data config: mean and std need 3 values (RGB)")
    if merged["flip_label_map"] is not None:
        merged["flip_label_map"] = {str(key): int(value) for key, value in merged["flip_label_map"].items()}
    return merged


def views_per_sample(config: Mapping[str, Any]) -> int:
    """V of a test sample (V, T, 3, H, W): clips x crops."""
    clips = 2 if config["sampling"] == "uniform" and config["twice_sample"] else config["num_clips"]
    return clips * TEST_VIEWS[config["test_views"]]


class _Normalize:
    def __init__(self, config: Mapping[str, Any]) -> None:
        self.transform = v2.Compose(
            [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(config["mean"]), list(config["std"]))]
        )

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        return self.transform(clip).as_subclass(torch.Tensor)


def _resize(config: Mapping[str, Any]) -> list[v2.Transform]:
    return [v2.Resize(config["resize"], antialias=True)] if config["resize"] else []


class TrainPipeline:
    """uint8 frames (T, 3, H, W) + label -> augmented float clip (T, 3, S, S) + label (possibly
    remapped by the flip)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        config = default_data_config(config)
        size = config["input_size"]
        if config["train_pipeline"] == "multiscale_crop":
            crop = MultiScaleCrop(size, config["scales"], config["max_distort"])
        else:
            crop = v2.CenterCrop(size)
        self.spatial = v2.Compose([*_resize(config), crop])
        self.flip_probability = 0.5 if config["flip"] else 0.0
        label_map = config["flip_label_map"] or {}
        self.label_map = {int(key): int(value) for key, value in label_map.items()}
        self.normalize = _Normalize(config)

    def __call__(self, frames: torch.Tensor, label: int) -> tuple[torch.Tensor, int]:
        clip = self.spatial(tv_tensors.Video(frames))
        clip, label = flip_clip(clip, label, self.flip_probability, self.label_map)
        return self.normalize(clip), label


class EvalPipeline:
    """uint8 frames (clips*T, 3, H, W) + label -> float views (V, T, 3, S, S) + label, with
    V = clips x crops in clip-major order."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        config = default_data_config(config)
        self.num_segments = config["num_segments"]
        self.views = config["test_views"]
        self.crop_size = config["resize"] if config["full_res"] and config["resize"] else config["input_size"]
        self.resize = v2.Compose(_resize(config)) if config["resize"] else None
        self.normalize = _Normalize(config)

    def _crops(self, frames: torch.Tensor) -> list[torch.Tensor]:
        if self.views == "center":
            return [v2.functional.center_crop(frames, [self.crop_size, self.crop_size])]
        if self.views == "three":
            return three_crop(frames, self.crop_size)
        corners_and_centre = list(v2.functional.five_crop(frames, [self.crop_size, self.crop_size]))
        return corners_and_centre + [v2.functional.horizontal_flip(crop) for crop in corners_and_centre]

    def __call__(self, frames: torch.Tensor, label: int) -> tuple[torch.Tensor, int]:
        if frames.shape[0] % self.num_segments:
            raise ValueError(
                f"{frames.shape[0]} frames is not a whole number of {self.num_segments}-frame clips"
            )
        if self.resize is not None:
            frames = self.resize(tv_tensors.Video(frames)).as_subclass(torch.Tensor)
        crops = torch.stack(self._crops(frames))  # (crops, clips*T, 3, S, S)
        num_crops, _, channels, height, width = crops.shape
        views = crops.reshape(num_crops, -1, self.num_segments, channels, height, width).transpose(0, 1)
        return self.normalize(views.reshape(-1, self.num_segments, channels, height, width)), label


def build_pipeline(config: Mapping[str, Any] | None, train: bool) -> TrainPipeline | EvalPipeline:
    """The named train pipeline (``config["train_pipeline"]``) or the test pipeline
    (``config["test_views"]``) for a data config."""
    config = default_data_config(config)
    return TrainPipeline(config) if train else EvalPipeline(config)


def read_clip_frames(
    path: str | Path, config: Mapping[str, Any], train: bool, num_frames: int | None = None
) -> tuple[torch.Tensor, int]:
    """Sample and decode the frames of one sample: uint8 (clips*T, 3, H, W) and the clip count.
    ``path`` is a video file or a raw-frame folder (``frame_template``, ``frame_start_index``)."""
    path = Path(path)
    if path.is_dir():
        template, start = config["frame_template"], config["frame_start_index"]
        if num_frames is None:
            num_frames = count_frame_files(path, template, start)
        if num_frames < 1:
            raise VideoReadError(path, f"no frames named like {template.format(start)}")
        indices, clips = clip_indices(num_frames, config, train)
        return read_frame_folder(path, indices, template, start), clips
    if num_frames is None:
        num_frames = probe(path).num_frames
    indices, clips = clip_indices(num_frames, config, train)
    return read_frames(path, indices), clips


def load_clip(path: str | Path, data_config: Mapping[str, Any] | None = None) -> torch.Tensor:
    """One video (or raw-frame folder) as the test-view tensor (V, T, 3, S, S) of ``data_config``,
    ready for ``model(clip)`` (V plays the batch dimension; average the V scores)."""
    config = default_data_config(data_config)
    frames, _ = read_clip_frames(path, config, train=False)
    clip, _ = EvalPipeline(config)(frames, -1)
    return clip


__all__ = [
    "DEFAULT_DATA_CONFIG",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SOMETHING_V2_FLIP_LABEL_MAP",
    "TEST_VIEWS",
    "TRAIN_PIPELINES",
    "EvalPipeline",
    "TrainPipeline",
    "build_pipeline",
    "default_data_config",
    "load_clip",
    "read_clip_frames",
    "views_per_sample",
]
