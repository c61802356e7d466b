"""The PyTorch runtime: a Recognizer run in eager mode, without autograd.

In fp32 it shares the model's weights (changes to the model show in the next call). In bf16 it
runs a copy made when the engine is made: BatchNorms folded into the convolutions (in float32),
then weights in bfloat16 and channels_last, the layout oneDNN's bf16 kernels run fastest
(docs/benchmarks.md); inputs are cast on the way in, logits come back as float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from tsm.inference.engine_api import EngineOptions
from tsm.inference.precision import resolve_precision
from tsm.models import ModelKind, Recognizer, StreamingStep
from tsm.models.fusion import fold_batch_norms

TORCH = "torch"
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def _precision(model: Recognizer) -> str:
    dtype = next(model.parameters()).dtype
    return {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype, str(dtype))


def _as_model_input(tensor: Tensor, dtype: torch.dtype | None) -> Tensor:
    """``tensor`` in the dtype and layout of a reduced-precision copy (as it is for fp32)."""
    if dtype is None:
        return tensor
    layout = torch.channels_last if tensor.dim() == 4 else torch.channels_last_3d
    return tensor.to(dtype, memory_format=layout if tensor.dim() in (4, 5) else torch.preserve_format)


def reduced_precision_copy(model: Recognizer, precision: str) -> Recognizer:
    """A copy of ``model`` for inference in ``precision`` ("bf16"): BatchNorms folded into the
    convolutions in float32, then cast, channels_last."""
    folded, _ = fold_batch_norms(model)
    return folded.to(dtype=_DTYPES[precision], memory_format=torch.channels_last)


class _TorchEngine:
    """What both torch engines share: the model's facts, its precision and the input dtype."""

    name = TORCH
    frame_size = None  # any size

    def __init__(self, model: Recognizer, reason: str = TORCH) -> None:
        self.num_classes = model.num_classes
        self.num_segments = model.num_segments
        self.device = next(model.parameters()).device
        self.precision = _precision(model)
        self._dtype = None if self.precision == "fp32" else next(model.parameters()).dtype
        self.reason = reason


class TorchStreamingEngine(_TorchEngine):
    """:class:`StreamingStep` in eager mode: ``engine(frames, *caches) -> (logits, *new_caches)``.
    Caches come back in the engine's precision; float32 caches are accepted too."""

    kind: ModelKind = "stream"

    def __init__(self, model: Recognizer, reason: str = TORCH) -> None:
        super().__init__(model, reason)
        self.step = StreamingStep(model)
        self.num_caches = self.step.num_caches

    @torch.no_grad()  # not inference_mode: callers may write into the returned caches
    def __call__(self, frames: Tensor, *caches: Tensor) -> tuple[Tensor, ...]:
        inputs = [_as_model_input(tensor, self._dtype) for tensor in (frames, *caches)]
        logits, *new_caches = self.step(*inputs)
        return (logits.float(), *new_caches)

    def cache_shapes(self, frame_shape: Sequence[int]) -> list[tuple[int, ...]]:
        return self.step.cache_shapes(frame_shape)


class TorchClipEngine(_TorchEngine):
    """``Recognizer.forward`` in eager mode: ``engine(clips) -> logits``."""

    kind: ModelKind = "clip"

    def __init__(self, model: Recognizer, reason: str = TORCH) -> None:
        super().__init__(model, reason)
        self.model = model.eval()

    @torch.no_grad()
    def __call__(self, clips: Tensor) -> Tensor:
        if self._dtype is None:
            return self.model(clips)
        frames = _as_model_input(clips.flatten(0, 1), self._dtype)  # channels_last frames
        return self.model(frames.unflatten(0, clips.shape[:2])).float()


def wrap_torch_model(
    model: Recognizer, kind: ModelKind, options: EngineOptions, reason: str
) -> TorchStreamingEngine | TorchClipEngine:
    """The torch engine of ``model`` (moved to ``options.device``, in eval mode) in the precision
    ``options.precision`` resolves to on that device (the reason says which and why)."""
    model = model.to(options.device).eval()
    if options.threads is not None:
        torch.set_num_threads(options.threads)
    precision, why = resolve_precision(options.precision, options.device)
    if precision != "fp32":
        model = reduced_precision_copy(model, precision)
    if options.precision != "fp32":  # asked for bf16 or auto: say what it became and why
        reason = f"{reason}, {why}"
    return TorchStreamingEngine(model, reason) if kind == "stream" else TorchClipEngine(model, reason)
