"""The PyTorch runtime: a Recognizer run in eager mode, without autograd, sharing the model's
weights (changes to the model show in the next call)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from tsm.inference.engine_api import EngineOptions
from tsm.models import ModelKind, Recognizer, StreamingStep

TORCH = "torch"


def _precision(model: Recognizer) -> str:
    dtype = next(model.parameters()).dtype
    return {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype, str(dtype))


class TorchStreamingEngine:
    """:class:`StreamingStep` in eager mode: ``engine(frames, *caches) -> (logits, *new_caches)``."""

    name = TORCH
    kind: ModelKind = "stream"
    frame_size = None  # any size

    def __init__(self, model: Recognizer, reason: str = TORCH) -> None:
        self.step = StreamingStep(model)
        self.num_caches = self.step.num_caches
        self.num_classes = model.num_classes
        self.num_segments = model.num_segments
        self.device = next(model.parameters()).device
        self.precision = _precision(model)
        self.reason = reason

    @torch.no_grad()  # not inference_mode: callers may write into the returned caches
    def __call__(self, frames: Tensor, *caches: Tensor) -> tuple[Tensor, ...]:
        return self.step(frames, *caches)

    def cache_shapes(self, frame_shape: Sequence[int]) -> list[tuple[int, ...]]:
        return self.step.cache_shapes(frame_shape)


class TorchClipEngine:
    """``Recognizer.forward`` in eager mode: ``engine(clips) -> logits``."""

    name = TORCH
    kind: ModelKind = "clip"
    frame_size = None

    def __init__(self, model: Recognizer, reason: str = TORCH) -> None:
        self.model = model.eval()
        self.num_classes = model.num_classes
        self.num_segments = model.num_segments
        self.device = next(model.parameters()).device
        self.precision = _precision(model)
        self.reason = reason

    @torch.no_grad()
    def __call__(self, clips: Tensor) -> Tensor:
        return self.model(clips)


def wrap_torch_model(
    model: Recognizer, kind: ModelKind, options: EngineOptions, reason: str
) -> TorchStreamingEngine | TorchClipEngine:
    """The torch engine of ``model`` (moved to ``options.device``, in eval mode)."""
    model = model.to(options.device).eval()
    if options.threads is not None:
        torch.set_num_threads(options.threads)
    return TorchStreamingEngine(model, reason) if kind == "stream" else TorchClipEngine(model, reason)
