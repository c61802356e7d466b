"""The test pipeline of one frame as one typed, versioned spec: what :func:`tsm.data.frame_transform`
applies, and what runtimes outside Python (tsm.js in the browser, a phone app) read to apply it the
same way. ``pipeline.json`` of a web folder is :meth:`FramePipeline.to_dict`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tsm.data.config import DataConfig, Interpolation, as_data_config

# The version of the written form. Readers refuse a newer one: its fields may mean something else.
PIPELINE_VERSION = 2
PIPELINE_FORMAT = "tsm-frame-pipeline"


@dataclass(frozen=True)
class FramePipeline:
    """uint8 RGB frame (H, W, 3) -> model input (3, crop H, crop W), in this order:

    1. resize so that the short side is ``resize`` (None: keep the size), with ``interpolation``
       (antialiased when shrinking if ``antialias``), rounding the long side as PyTorch does;
    2. crop the centre ``crop_size`` (height, width);
    3. ``(value * scale - mean[c]) / std[c]`` per RGB channel, in float32; channels first.
    """

    resize: int | None
    crop_size: tuple[int, int]
    interpolation: Interpolation
    antialias: bool
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def of(cls, data_config: DataConfig | Mapping[str, Any] | None, crop: int | None = None) -> FramePipeline:
        """The frame pipeline of a data config's test pipeline (a centre crop of ``crop``, default
        the test crop size)."""
        config = as_data_config(data_config)
        side = crop or config.test_crop_size
        return cls(
            resize=config.resize,
            crop_size=(side, side),
            interpolation=config.interpolation,
            antialias=config.antialias,
            scale=config.pixel_scale,
            mean=config.mean,
            std=config.std,
        )

    def to_dict(self) -> dict[str, Any]:
        """The written form: every field, with the format and version first."""
        values = dataclasses.asdict(self)
        for name in ("crop_size", "mean", "std"):
            values[name] = list(values[name])
        return {"format": PIPELINE_FORMAT, "version": PIPELINE_VERSION, **values, "layout": "NCHW RGB"}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> FramePipeline:
        """Read :meth:`to_dict`'s form; a newer version or a missing field is a ValueError."""
        version = values.get("version")
        if values.get("format") != PIPELINE_FORMAT or not isinstance(version, int):
            raise ValueError(
                f"not a {PIPELINE_FORMAT} spec (format {values.get('format')!r}, version {version!r})"
            )
        if version > PIPELINE_VERSION:
            raise ValueError(
                f"the frame pipeline is version {version}, written by a newer tsm; this tsm reads up to "
                f"version {PIPELINE_VERSION}: upgrade tsm"
            )
        names = [field.name for field in dataclasses.fields(cls)]
        missing = [name for name in names if name not in values]
        if missing:
            raise ValueError(f"the frame pipeline lacks {', '.join(missing)}")
        fields = {name: values[name] for name in names}
        for name in ("crop_size", "mean", "std"):
            fields[name] = tuple(fields[name])
        return cls(**fields)
