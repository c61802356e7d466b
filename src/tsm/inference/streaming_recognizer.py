"""``StreamingRecognizer``: B live streams, one frame at a time, on any streaming engine."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from tsm.inference.engines import EngineChoice, StreamingEngine, is_onnx_file, streaming_engine
from tsm.models import LabelSmoother, Recognizer


class StreamingRecognizer:
    """Run a uni-directional :class:`~tsm.Recognizer` on B live streams, one frame at a time.

    ``step(frames)`` takes one new frame per stream (B, 3, H, W) and returns that frame's logits
    (B, num_classes), equal to the offline model's per-frame logits on all frames since the
    stream's last reset. Each shifted layer caches 1/fold_div of the frame's channels for the next
    frame; caches are allocated on the first step for its batch size, frame size, dtype and device.
    ``labels`` holds the (optionally smoothed, see :class:`~tsm.LabelSmoother`) label of each stream.
    Bi-directional and temporal-pooling models are refused (they need future frames).

    ``model``: a Recognizer, a ``tsm export --streaming`` ``.onnx`` file, or a streaming engine.
    ``engine``: "torch" (the default for a Recognizer: it shares the model's weights, so later
    changes to them show), "onnxruntime" (the default for an ``.onnx`` file) or "auto" (see
    :func:`~tsm.inference.streaming_engine`; a Recognizer is then exported once, for frames of
    ``frame_size``). ``engine.reason`` says what runs.
    """

    def __init__(
        self,
        model: Recognizer | str | Path | StreamingEngine,
        smooth_window: int = 1,
        agree: int = 1,
        engine: EngineChoice | None = None,
        frame_size: int | tuple[int, int] | None = None,
        device: str | torch.device = "cpu",
        **engine_options,
    ) -> None:
        if isinstance(model, Recognizer | str | Path):
            default = "auto" if is_onnx_file(model) else "torch"
            self.engine = streaming_engine(model, engine or default, frame_size, device, **engine_options)
        elif hasattr(model, "cache_shapes") and hasattr(model, "num_caches"):
            self.engine = model
        else:
            raise TypeError(
                "streaming needs a tsm.Recognizer, an exported .onnx step or a streaming engine, "
                f"got {type(model).__name__}"
            )
        self.num_classes = self.engine.num_classes
        self.smoother = LabelSmoother(smooth_window, agree)
        self.caches: list[Tensor] | None = None
        self._frame_format: tuple | None = None  # (shape, dtype, device) the caches were made for

    @property
    def num_caches(self) -> int:
        """Number of shifted layers, each with one cache."""
        return self.engine.num_caches

    @property
    def device(self) -> torch.device:
        """Where frames should be: the engine's device."""
        return torch.device(getattr(self.engine, "device", "cpu"))

    @property
    def labels(self) -> Tensor | None:
        """The current label of each stream (B,), smoothed if asked; None before the first step."""
        return self.smoother.labels

    def _check_frames(self, frames: Tensor) -> None:
        if frames.dim() != 4:
            raise ValueError(
                f"step expects one frame per stream shaped (B, 3, H, W), got shape {tuple(frames.shape)}"
            )
        frame_format = (tuple(frames.shape), frames.dtype, frames.device)
        if self._frame_format is not None and frame_format != self._frame_format:
            shape, dtype, device = self._frame_format
            raise ValueError(
                f"the streams were started with frames {shape} {dtype} on {device}, got "
                f"{frame_format[0]} {frames.dtype} on {frames.device}; call reset() to start new streams"
            )

    @torch.inference_mode()
    def step(self, frames: Tensor) -> Tensor:
        """Feed one new frame per stream (B, 3, H, W); return its logits (B, num_classes)."""
        self._check_frames(frames)
        logits, *self.caches = self.engine(frames, *(self.caches or ()))
        self._frame_format = (tuple(frames.shape), frames.dtype, frames.device)
        self.smoother.update(logits)
        return logits

    @torch.inference_mode()
    def reset(self, stream_ids: Sequence[int] | Tensor | None = None) -> None:
        """Start the given streams (all when ``None``) afresh: zero their caches and history."""
        if stream_ids is None or self._frame_format is None:
            self.caches = None
            self._frame_format = None
            self.smoother.reset()
            return
        ids = torch.as_tensor(stream_ids, dtype=torch.long).reshape(-1)
        streams = self._frame_format[0][0]
        if ids.numel() and (ids.min() < 0 or ids.max() >= streams):
            raise ValueError(f"stream ids {ids.tolist()} out of range: there are {streams} streams")
        for cache in self.caches or ():
            cache[ids.to(cache.device)] = 0
        self.smoother.reset(ids)
