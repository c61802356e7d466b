"""The model a server recognises with: network, class names, test pipeline and streaming engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from tsm.checkpoint import CheckpointInfo
from tsm.data import DataConfig
from tsm.inference import (
    ClipEngine,
    StreamingEngine,
    class_names_of,
    clip_engine,
    prediction_data_config,
    streaming_engine,
)
from tsm.models import Recognizer, check_streamable


@dataclass(frozen=True)
class ServedModel:
    """A checkpoint ready to serve.

    ``engine`` runs uni-directional (online) models frame by frame; it is None for offline
    models (bi-directional, non-local, temporal pooling), which are served on a sliding window
    of their last T frames through ``clip`` (a clip engine: ``clip(clips) -> logits``).
    """

    name: str
    model: Recognizer
    info: CheckpointInfo | None
    engine: StreamingEngine | None
    engine_name: str
    offline_reason: str | None = None  # why the model cannot stream frame by frame
    clip: ClipEngine | None = None
    engine_reason: str = ""  # which engine runs the model, and why (printed by tsm serve)
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
    engine: StreamingEngine | str = "auto",
    name: str = "model",
    threads: int | None = None,
) -> ServedModel:
    """Wrap a loaded model for serving. ``engine``: a streaming engine object, or an engine name
    ("auto", "torch", "onnxruntime": :func:`tsm.inference.streaming_engine`), which for an offline
    model picks its clip engine (:func:`tsm.inference.clip_engine`). ``threads``: ONNX Runtime's."""
    model = model.eval()
    device = next(model.parameters()).device
    size = prediction_data_config(info, model.num_segments).test_crop_size
    options = {"frame_size": (size, size), "device": device, "threads": threads}
    try:
        check_streamable(model)
    except ValueError as reason:
        if not isinstance(engine, str):
            raise ValueError(f"a streaming engine was given, but the model cannot stream: {reason}") from None
        clip = clip_engine(model, engine, **options)
        label = f"{clip.name} (clip window)"
        return ServedModel(name, model, info, None, label, str(reason), clip, clip.reason)
    if isinstance(engine, str):  # the factories refuse unknown names
        engine = streaming_engine(model, engine, **options)
    reason = getattr(engine, "reason", "")
    return ServedModel(name, model, info, engine, getattr(engine, "name", "torch"), engine_reason=reason)
