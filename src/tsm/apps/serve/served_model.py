"""The model a server recognises with: network, class names, test pipeline and streaming engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor

from tsm.checkpoint import CheckpointInfo
from tsm.data import DataConfig
from tsm.inference import class_names_of, prediction_data_config
from tsm.models import Recognizer, StreamingStep, check_streamable

ENGINES = ("torch", "onnxruntime", "auto")


class StreamingEngine(Protocol):
    """One step of a streaming model: ``engine(frames, *caches) -> (logits, *new_caches)``.

    ``frames`` (B, 3, H, W) float32, one per stream, B free to change each call; no caches means
    all-zero caches (new streams). :class:`tsm.models.StreamingStep` is the torch engine.
    """

    num_caches: int

    def __call__(self, frames: Tensor, *caches: Tensor) -> tuple[Tensor, ...]: ...

    def cache_shapes(self, frame_shape: tuple[int, ...]) -> list[tuple[int, ...]]: ...


def check_engine(engine: str) -> None:
    """Refuse engine names that are unknown, or not available yet."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    if engine != "torch":
        raise ValueError(f"--engine {engine} needs the ONNX Runtime engine (issue 19); use --engine torch")


def streaming_engine(model: Recognizer, engine: str = "torch") -> StreamingEngine:
    """The streaming engine called ``engine`` for an online ``model``."""
    check_engine(engine)
    return StreamingStep(model)


@dataclass(frozen=True)
class ServedModel:
    """A checkpoint ready to serve.

    ``engine`` runs uni-directional (online) models frame by frame; it is None for offline
    models (bi-directional, non-local, temporal pooling), which are served on a sliding window
    of their last T frames through the clip forward ``model(clips)``.
    """

    name: str
    model: Recognizer
    info: CheckpointInfo | None
    engine: StreamingEngine | None
    engine_name: str
    offline_reason: str | None = None  # why the model cannot stream frame by frame
    class_names: list[str] = field(init=False)
    data_config: DataConfig = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", class_names_of(self.info, self.model.num_classes))
        object.__setattr__(self, "data_config", prediction_data_config(self.info, self.model.num_segments))

    @property
    def frame_size(self) -> int:
        """Side of the square frames the model sees (the test crop)."""
        return self.data_config.test_crop_size

    @property
    def mode(self) -> str:
        """``"frame"``: one step per frame with caches; ``"window"``: clips of the last T frames."""
        return "frame" if self.engine is not None else "window"

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def describe(self) -> dict[str, Any]:
        """What ``GET /info`` says about the model."""
        return {
            "model": self.name,
            "classes": self.class_names,
            "num_segments": self.model.num_segments,
            "engine": self.engine_name,
            "mode": self.mode,
            "input_size": self.frame_size,
            "resize": self.data_config.resize,
        }


def serve_model(
    model: Recognizer,
    info: CheckpointInfo | None = None,
    *,
    engine: StreamingEngine | str = "torch",
    name: str = "model",
) -> ServedModel:
    """Wrap a loaded model for serving; ``engine``: an engine object, or its name for online models."""
    model = model.eval()
    try:
        check_streamable(model)
    except ValueError as reason:
        if not isinstance(engine, str):
            raise ValueError(f"a streaming engine was given, but the model cannot stream: {reason}") from None
        check_engine(engine)
        return ServedModel(name, model, info, None, f"{engine} (clip window)", offline_reason=str(reason))
    if isinstance(engine, str):
        engine = streaming_engine(model, engine)
    return ServedModel(name, model, info, engine, getattr(engine, "name", "torch"))
