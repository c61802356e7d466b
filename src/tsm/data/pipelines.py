"""Named train/test pipelines built from a :class:`DataConfig`: ``build_pipeline`` makes the
transform, ``load_clip`` turns one video + config into the test-view tensor, so a checkpoint
alone is enough to rebuild the test pipeline."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from tsm.data.config import DataConfig, as_data_config
from tsm.data.decode import VideoReadError, count_frame_files, probe, read_frame_folder, read_frames
from tsm.data.sampling import clip_indices
from tsm.data.transforms import MultiScaleCrop, flip_clip, three_crop

ConfigLike = DataConfig | Mapping[str, Any] | None


class _Normalize:
    """uint8 -> float32 ``(value * pixel_scale - mean) / std``; with the default scale, bit for bit
    what ``v2.ToDtype(torch.float32, scale=True)`` then ``v2.Normalize`` give."""

    def __init__(self, config: DataConfig) -> None:
        self.scale = config.pixel_scale
        self.mean, self.std = list(config.mean), list(config.std)

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        return self.in_place(clip.as_subclass(torch.Tensor).to(torch.float32))

    def in_place(self, values: torch.Tensor) -> torch.Tensor:
        """Normalise float32 pixel values (..., 3, H, W) where they are: the same operations, in
        the same order, as :meth:`__call__`."""
        return v2.functional.normalize(values.mul_(self.scale), self.mean, self.std, inplace=True)


def _resize(config: DataConfig) -> list[v2.Transform]:
    if not config.resize:
        return []
    mode = v2.InterpolationMode(config.interpolation)
    return [v2.Resize(config.resize, interpolation=mode, antialias=config.antialias)]


class TrainPipeline:
    """uint8 frames (T, 3, H, W) + label -> augmented float clip (T, 3, S, S) + label (possibly
    remapped by the flip)."""

    def __init__(self, config: ConfigLike) -> None:
        config = as_data_config(config)
        size = config.input_size
        if config.train_pipeline == "multiscale_crop":
            crop = MultiScaleCrop(size, config.scales, config.max_distort)
        else:
            crop = v2.CenterCrop(size)
        self.spatial = v2.Compose([*_resize(config), crop])
        self.flip_probability = 0.5 if config.flip else 0.0
        label_map = config.flip_label_map or {}
        self.label_map = {int(key): int(value) for key, value in label_map.items()}
        self.normalize = _Normalize(config)

    def __call__(self, frames: torch.Tensor, label: int) -> tuple[torch.Tensor, int]:
        clip = self.spatial(tv_tensors.Video(frames))
        clip, label = flip_clip(clip, label, self.flip_probability, self.label_map)
        return self.normalize(clip), label


class EvalPipeline:
    """uint8 frames (clips*T, 3, H, W) + label -> float views (V, T, 3, S, S) + label, with
    V = clips x crops in clip-major order."""

    def __init__(self, config: ConfigLike) -> None:
        config = as_data_config(config)
        self.num_segments = config.num_segments
        self.views = config.test_views
        self.crop_size = config.test_crop_size
        self.resize = v2.Compose(_resize(config)) if config.resize else None
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


def build_pipeline(config: ConfigLike, train: bool) -> TrainPipeline | EvalPipeline:
    """The named train pipeline (``config.train_pipeline``) or the test pipeline
    (``config.test_views``) for a data config."""
    config = as_data_config(config)
    return TrainPipeline(config) if train else EvalPipeline(config)


def read_clip_frames(
    path: str | Path, config: DataConfig, train: bool, num_frames: int | None = None
) -> tuple[torch.Tensor, int]:
    """Sample and decode the frames of one sample: uint8 (clips*T, 3, H, W) and the clip count.
    ``path`` is a video file or a raw-frame folder (``frame_template``, ``frame_start_index``)."""
    path = Path(path)
    if path.is_dir():
        template, start = config.frame_template, config.frame_start_index
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


def load_clip(path: str | Path, data_config: ConfigLike = None) -> torch.Tensor:
    """One video (or raw-frame folder) as the test-view tensor (V, T, 3, S, S) of ``data_config``,
    ready for ``model(clip)`` (V plays the batch dimension; average the V scores)."""
    config = as_data_config(data_config)
    frames, _ = read_clip_frames(path, config, train=False)
    clip, _ = EvalPipeline(config)(frames, -1)
    return clip


class FrameTransform:
    """The test pipeline of one frame: uint8 (3, H, W) -> its normalised centre crop (3, S, S),
    bit for bit :class:`EvalPipeline`'s centre view, in one pass over the output.

    The uint8 frame is resized (the antialiased uint8 kernel, on a channels_last copy where the
    frame is not one already: the fastest layout) and cropped as a view, then converted and
    normalised where it lands: into a new tensor (``transform(frame)``) or into a given one
    (``transform.write(frame, out)``: a row of a batch, with no copy in between).
    """

    def __init__(self, data_config: ConfigLike) -> None:
        config = as_data_config(data_config)
        self.crop_size = config.test_crop_size
        self.resize = v2.Compose(_resize(config)) if config.resize else None
        self.normalize = _Normalize(config)

    def crop(self, frame: torch.Tensor) -> torch.Tensor:
        """The resized centre crop of ``frame``, uint8 (3, S, S) (a view where it can be)."""
        if self.resize is not None:
            if frame.is_contiguous() and frame.shape[0] > 1:  # (3, H, W) planes: the slower kernel
                frame = frame.permute(1, 2, 0).contiguous().permute(2, 0, 1)
            frame = self.resize(frame)
        return v2.functional.center_crop(frame, [self.crop_size, self.crop_size])

    def write(self, frame: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Put ``frame``'s model input into ``out`` (float32 (3, S, S)); returns ``out``."""
        return self.normalize.in_place(out.copy_(self.crop(frame)))

    def __call__(self, frame: torch.Tensor) -> torch.Tensor:
        return self.write(frame, torch.empty(3, self.crop_size, self.crop_size))


def frame_transform(data_config: ConfigLike) -> FrameTransform:
    """The test pipeline for single frames: uint8 (3, H, W) -> normalised centre crop (3, S, S)."""
    return FrameTransform(data_config)


__all__ = [
    "EvalPipeline",
    "FrameTransform",
    "TrainPipeline",
    "build_pipeline",
    "frame_transform",
    "load_clip",
    "read_clip_frames",
]
