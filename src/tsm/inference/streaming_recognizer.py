"""``StreamingRecognizer``: B live streams, one frame at a time, on any streaming engine."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from tsm.export import DEFAULT_ONNX_EXPORTER, OnnxExporter
from tsm.inference.engine_api import DEFAULT_WORKLOAD, StreamingEngine, Workload
from tsm.inference.engines import DEFAULT_ENGINE, FrameSize, streaming_engine
from tsm.inference.precision import Precision
from tsm.inference.stream_caches import StreamCaches
from tsm.models import LabelSmoother, Recognizer


class StreamingRecognizer:
    """Run a uni-directional :class:`~tsm.Recognizer` on B live streams, one frame at a time.

    ``step(frames)`` takes one new frame per stream (B, 3, H, W) and returns that frame's logits
    (B, num_classes), equal to the offline model's per-frame logits on all frames since the
    stream's last reset. Each shifted layer caches 1/fold_div of the frame's channels for the next
    frame (:class:`~tsm.inference.StreamCaches`); caches are made on the first step for its batch
    size, frame size, dtype and device, and ``reset()`` lets the next step bring other ones.
    ``labels`` holds the (optionally smoothed, see :class:`~tsm.LabelSmoother`) label of each
    stream. Bi-directional and temporal-pooling models are refused (they need future frames).

    ``model``: a Recognizer, a checkpoint, an exported ``--streaming`` file, or a streaming engine.
    ``engine``: "auto" (the default everywhere), "torch", "onnxruntime", ... (see
    :func:`~tsm.inference.streaming_engine`). Every engine takes frames of any size the same way:
    a runtime that runs exported files exports the model for the size of the first frames (or
    ``frame_size`` at once). Only the torch engine shares the model's weights, so that later
    changes to them show; the others run what was exported. ``precision`` ("fp32", "bf16",
    "auto") and ``workload``: see :func:`~tsm.inference.streaming_engine`. ``engine.reason`` says
    what runs.
    """

    def __init__(
        self,
        model: Recognizer | str | Path | StreamingEngine,
        smooth_window: int = 1,
        agree: int = 1,
        engine: str = DEFAULT_ENGINE,
        frame_size: FrameSize = None,
        device: str | torch.device = "cpu",
        threads: int | None = None,
        onnx_exporter: OnnxExporter = DEFAULT_ONNX_EXPORTER,
        cache_dir: str | Path | None = None,
        precision: Precision = "fp32",
        workload: Workload = DEFAULT_WORKLOAD,
    ) -> None:
        self.engine = streaming_engine(
            model, engine, frame_size, device, threads, onnx_exporter, cache_dir, precision, workload
        )
        self.num_classes = self.engine.num_classes
        self.streams = StreamCaches(self.engine)
        self.smoother = LabelSmoother(smooth_window, agree)

    @property
    def num_caches(self) -> int:
        """Number of shifted layers, each with one cache."""
        return self.engine.num_caches

    @property
    def device(self) -> torch.device:
        """Where frames should be: the engine's device."""
        return self.engine.device

    @property
    def labels(self) -> Tensor | None:
        """The current label of each stream (B,), smoothed if asked; None before the first step."""
        return self.smoother.labels

    @torch.inference_mode()
    def step(self, frames: Tensor) -> Tensor:
        """Feed one new frame per stream (B, 3, H, W); return its logits (B, num_classes)."""
        logits = self.streams.step(frames)
        self.smoother.update(logits)
        return logits

    @torch.inference_mode()
    def reset(self, stream_ids: Sequence[int] | Tensor | None = None) -> None:
        """Start the given streams (all when ``None``) afresh: zero their caches and history."""
        self.streams.clear(stream_ids)
        self.smoother.reset(stream_ids)
