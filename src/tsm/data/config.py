"""``DataConfig``: everything needed to turn a video into model input, in one frozen, typed,
JSON-able record (stored in checkpoints, so a checkpoint alone rebuilds its test pipeline)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tsm.data.transforms import TSN_SCALES

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TRAIN_PIPELINES: tuple[str, ...] = ("multiscale_crop", "center_crop")
SAMPLINGS: tuple[str, ...] = ("uniform", "dense")
TEST_VIEWS = {"center": 1, "three": 3, "ten": 10}
INTERPOLATIONS: tuple[str, ...] = ("bilinear", "bicubic", "nearest")
UINT8_SCALE = 1 / 255  # decoded frames are uint8: this takes them to [0, 1]

Sampling = Literal["uniform", "dense"]
TrainPipelineName = Literal["multiscale_crop", "center_crop"]
TestViews = Literal["center", "three", "ten"]
Interpolation = Literal["bilinear", "bicubic", "nearest"]


def _fail(name: str, problem: str) -> None:
    raise ValueError(f"data config: {name} {problem}")


def _positive_int(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        _fail(name, f"must be a positive integer{' or null' if allow_none else ''}, got {value!r}")


@dataclass(frozen=True)
class DataConfig:
    """Sampling, sizes, augmentation, normalisation and test views of a video dataset.

    Attributes:
        num_segments: frames per clip (T).
        sampling: ``"uniform"`` (TSN segments) or ``"dense"`` (a ``dense_window``-frame window).
        twice_sample: uniform test: add the segment-start clip (2 clips per video).
        num_clips: dense test clips; None: 10 for dense, 1 for uniform (see :attr:`test_clips`).
        dense_window: frames the dense window spans.
        train_pipeline: ``"multiscale_crop"`` (TSN augmentation) or ``"center_crop"``.
        resize: short side before cropping; None keeps the decoded size.
        interpolation, antialias: how frames are resized (``"bilinear"``, ``"bicubic"`` or
            ``"nearest"``; antialiased when shrinking, as PIL and the publishers' pipelines do).
        input_size: side of the square crop the model sees.
        scales, max_distort: multi-scale crop settings (crop sides relative to the short side).
        flip: horizontal flips (p = 0.5) in training; False for direction-sensitive classes.
        flip_label_map: labels swapped when a clip is mirrored, ``{"86": 87, ...}``.
        pixel_scale: what decoded uint8 values are multiplied by before normalisation (1/255:
            [0, 1], the reference's; 1.0 with mean and std in 0-255 units, as MMAction2 writes them).
        mean, std: RGB normalisation, ``(value * pixel_scale - mean) / std``.
        test_views: crops per test clip: ``"center"``, ``"three"`` or ``"ten"`` (5 crops + flips).
        full_res: test crops of side ``resize`` instead of ``input_size``.
        frame_template, frame_start_index: file names in raw-frame folders.
    """

    num_segments: int = 8
    sampling: Sampling = "uniform"
    twice_sample: bool = False
    num_clips: int | None = None
    dense_window: int = 64
    train_pipeline: TrainPipelineName = "multiscale_crop"
    resize: int | None = 256
    interpolation: Interpolation = "bilinear"
    antialias: bool = True
    input_size: int = 224
    scales: tuple[float, ...] = TSN_SCALES
    max_distort: int = 1
    flip: bool = True
    flip_label_map: dict[str, int] | None = None
    pixel_scale: float = UINT8_SCALE
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    test_views: TestViews = "center"
    full_res: bool = False
    frame_template: str = "img_{:05d}.jpg"
    frame_start_index: int = 1

    def __post_init__(self) -> None:
        for name in ("num_segments", "dense_window", "input_size"):
            _positive_int(name, getattr(self, name))
        _positive_int("resize", self.resize, allow_none=True)
        _positive_int("num_clips", self.num_clips, allow_none=True)
        for name, choices in (
            ("sampling", SAMPLINGS),
            ("train_pipeline", TRAIN_PIPELINES),
            ("test_views", tuple(TEST_VIEWS)),
            ("interpolation", INTERPOLATIONS),
        ):
            if getattr(self, name) not in choices:
                _fail(name, f"is {getattr(self, name)!r}, not one of {', '.join(map(repr, choices))}")
        if self.sampling == "uniform" and self.num_clips not in (None, 1):
            _fail("num_clips", "must be 1 for uniform sampling; use twice_sample=true or sampling='dense'")
        if not isinstance(self.antialias, bool):
            _fail("antialias", f"must be true or false, got {self.antialias!r}")
        if (
            isinstance(self.pixel_scale, bool)
            or not isinstance(self.pixel_scale, int | float)
            or not self.pixel_scale > 0
        ):
            _fail("pixel_scale", f"must be a positive number, got {self.pixel_scale!r}")
        object.__setattr__(self, "pixel_scale", float(self.pixel_scale))
        if not isinstance(self.max_distort, int) or self.max_distort < 0:
            _fail("max_distort", f"must be an integer >= 0, got {self.max_distort!r}")
        if not isinstance(self.frame_start_index, int) or self.frame_start_index < 0:
            _fail("frame_start_index", f"must be an integer >= 0, got {self.frame_start_index!r}")
        for name in ("mean", "std"):
            values = tuple(getattr(self, name))
            if len(values) != 3:
                _fail(name, f"needs 3 values (RGB), got {list(values)}")
            object.__setattr__(self, name, tuple(float(v) for v in values))
        scales = tuple(float(s) for s in self.scales)
        if not scales or any(not 0 < s <= 1 for s in scales):
            _fail("scales", f"must be fractions in (0, 1], got {list(self.scales)}")
        object.__setattr__(self, "scales", scales)
        if self.flip_label_map is not None:
            try:
                label_map = {str(key): int(value) for key, value in dict(self.flip_label_map).items()}
            except (TypeError, ValueError):
                _fail("flip_label_map", f"must map labels to labels, got {self.flip_label_map!r}")
            object.__setattr__(self, "flip_label_map", label_map)
        if "{" not in self.frame_template:
            _fail("frame_template", f"needs a '{{}}' for the frame number, got {self.frame_template!r}")

    @property
    def test_clips(self) -> int:
        """Clips per test video: ``num_clips`` (dense: 10 by default), 2 with ``twice_sample``, else 1."""
        if self.sampling == "dense":
            return self.num_clips or 10
        return 2 if self.twice_sample else 1

    @property
    def views_per_sample(self) -> int:
        """V of a test sample (V, T, 3, H, W): clips x crops."""
        return self.test_clips * TEST_VIEWS[self.test_views]

    @property
    def test_crop_size(self) -> int:
        """Side of the test crops (``resize`` when testing at full resolution)."""
        return self.resize if self.full_res and self.resize else self.input_size

    def replace(self, **changes: Any) -> DataConfig:
        """A copy with ``changes`` (checked like the original)."""
        unknown = sorted(set(changes) - set(_FIELDS))
        if unknown:
            raise ValueError(f"data config: unknown settings {unknown}; valid: {', '.join(_FIELDS)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form stored in checkpoints and exported files."""
        values = dataclasses.asdict(self)
        for name in ("scales", "mean", "std"):
            values[name] = list(values[name])
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None = None, **overrides: Any) -> DataConfig:
        """Read :meth:`to_dict`'s form (also that of older checkpoints); ``overrides`` win."""
        merged = {**(values or {}), **overrides}
        unknown = sorted(set(merged) - set(_FIELDS))
        if unknown:
            raise ValueError(f"data config: unknown settings {unknown}; valid: {', '.join(_FIELDS)}")
        return cls(**merged)


_FIELDS = tuple(f.name for f in dataclasses.fields(DataConfig))


def as_data_config(config: DataConfig | Mapping[str, Any] | None, **overrides: Any) -> DataConfig:
    """``config`` as a DataConfig (None: the defaults; a dict: :meth:`DataConfig.from_dict`)."""
    if isinstance(config, DataConfig):
        return config.replace(**overrides) if overrides else config
    return DataConfig.from_dict(config, **overrides)


__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "INTERPOLATIONS",
    "SAMPLINGS",
    "TEST_VIEWS",
    "TRAIN_PIPELINES",
    "UINT8_SCALE",
    "DataConfig",
    "as_data_config",
]
