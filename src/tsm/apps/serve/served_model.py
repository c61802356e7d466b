"""The model a server recognises with: its engine for live streams, the same runtime for whole
uploaded videos, its class names and its test pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tsm.checkpoint import CheckpointInfo
from tsm.data import DataConfig
from tsm.export import read_export_metadata
from tsm.inference import (
    DEFAULT_ENGINE,
    ClipEngine,
    Precision,
    StreamClipEngine,
    StreamingEngine,
    class_names_of,
    clip_engine,
    open_model,
    prediction_data_config,
    streaming_engine,
)
from tsm.models import ModelKind, Recognizer, check_streamable


@dataclass(frozen=True)
class ServedModel:
    """A model ready to serve: one engine for everything it answers.

    ``engine`` runs the live streams: a streaming engine (``kind`` "stream": uni-directional
    models, frame by frame with caches), or for offline models (bi-directional, non-local,
    temporal pooling) a clip engine on a sliding window of each stream's last T frames (``kind``
    "clip"). ``uploads`` runs ``POST /predict`` on the same runtime: the clip engine itself, or
    the streaming engine over whole clips.
    """

    name: str
    info: CheckpointInfo | None
    engine: StreamingEngine | ClipEngine
    uploads: ClipEngine
    offline_reason: str | None = None  # why the model cannot stream frame by frame
    class_names: list[str] = field(init=False)
    data_config: DataConfig = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", class_names_of(self.info, self.engine.num_classes))
        config = prediction_data_config(self.info, self.engine.num_segments)
        object.__setattr__(self, "data_config", config)

    @property
    def kind(self) -> ModelKind:
        """``"stream"``: one step per frame with caches; ``"clip"``: clips of each stream's last T frames."""
        return self.engine.kind

    @property
    def frame_size(self) -> int:
        """Side of the square frames the model sees (the test crop)."""
        return self.data_config.test_crop_size

    @property
    def device(self) -> torch.device:
        return self.engine.device

    def describe(self) -> dict[str, Any]:
        """What ``GET /info`` says about the model and what runs it."""
        return {
            "model": self.name,
            "classes": self.class_names,
            "num_segments": self.engine.num_segments,
            "engine": self.engine.name,
            "engine_reason": self.engine.reason,
            "precision": self.engine.precision,
            "kind": self.kind,
            "input_size": self.frame_size,
            "resize": self.data_config.resize,
        }


def _offline_reason(model: Recognizer | Path) -> str | None:
    """Why the model cannot run frame by frame (None: it can)."""
    if isinstance(model, Path):
        kind = read_export_metadata(model)["tsm_export"]
        return (
            None
            if kind == "stream"
            else "the file is a clip export, not a streaming step (tsm export --streaming)"
        )
    try:
        check_streamable(model)
    except ValueError as reason:
        return str(reason)
    return None


def serve_model(
    model: Recognizer | str | Path,
    info: CheckpointInfo | None = None,
    *,
    engine: str | StreamingEngine = DEFAULT_ENGINE,
    name: str | None = None,
    device: str | torch.device | None = None,
    threads: int | None = None,
    precision: Precision = "fp32",
) -> ServedModel:
    """Ready a model for serving: a Recognizer (with its checkpoint's ``info``), a checkpoint or
    published name, or an exported file. ``engine``: an engine name of the engine table ("auto",
    the default everywhere, "torch", "onnxruntime", ...) or a streaming engine object.
    ``device``: where it runs (default: the Recognizer's device, else the CPU). ``threads``: the
    runtime's CPU threads. ``precision``: "fp32", "bf16" or "auto" (the torch engine's). The
    engines are made for the "served" workload (frames decoded beside them)."""
    if isinstance(model, str | Path):
        name = name or Path(str(model)).name
        model, opened = open_model(model)
        info = info or opened
    if device is None:
        device = next(model.parameters()).device if isinstance(model, Recognizer) else "cpu"
    reason = _offline_reason(model)
    if not isinstance(engine, str):
        if reason is not None:
            raise ValueError(f"a streaming engine was given, but the model cannot stream: {reason}")
        return ServedModel(name or "model", info, engine, StreamClipEngine(engine))
    segments = (
        model.num_segments if isinstance(model, Recognizer) else read_export_metadata(model)["num_segments"]
    )
    size = prediction_data_config(info, segments).test_crop_size
    options = {
        "frame_size": (size, size),
        "device": device,
        "threads": threads,
        "precision": precision,
        "workload": "served",
    }
    if reason is not None:
        clip = clip_engine(model, engine, **options)
        return ServedModel(name or "model", info, clip, clip, reason)
    steps = streaming_engine(model.eval() if isinstance(model, Recognizer) else model, engine, **options)
    return ServedModel(name or "model", info, steps, StreamClipEngine(steps))
