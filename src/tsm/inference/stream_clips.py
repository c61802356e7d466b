"""Whole clips on a streaming engine: an online model's clip logits are the mean of its per-frame
logits, and the streaming step gives exactly those, frame after frame. So a streaming step (an
exported ``--streaming`` file included) also answers whole videos, on the same engine."""

from __future__ import annotations

from torch import Tensor

from tsm.inference.engine_api import StreamingEngine
from tsm.models import ModelKind


class StreamClipEngine:
    """A clip engine over a streaming engine: ``engine(clips (N, T, 3, H, W)) -> logits (N, K)``,
    the N clips run as N new streams of T steps, their per-frame logits averaged (what
    ``Recognizer.forward`` of the uni-directional model computes)."""

    kind: ModelKind = "clip"

    def __init__(self, steps: StreamingEngine) -> None:
        self.steps = steps
        self.name = steps.name
        self.device = steps.device
        self.frame_size = steps.frame_size
        self.precision = steps.precision
        self.reason = f"{steps.reason}; whole clips run frame by frame"
        self.num_classes = steps.num_classes
        self.num_segments = steps.num_segments

    def __call__(self, clips: Tensor) -> Tensor:
        if clips.dim() != 5:
            raise ValueError(f"clips must be shaped (N, T, 3, H, W), got {tuple(clips.shape)}")
        caches: tuple[Tensor, ...] = ()  # new streams
        total = None
        for t in range(clips.shape[1]):
            logits, *caches = self.steps(clips[:, t], *caches)
            total = logits if total is None else total + logits
        return total / clips.shape[1]
