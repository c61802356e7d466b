"""A Recognizer on a runtime that runs exported files, at any frame size: one exported file (and
engine) per size, made when frames of that size first arrive, so that callers need not know the
size in advance, as with the torch engine."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from tsm.inference.engine_api import Engine
from tsm.models import ModelKind, Recognizer, StreamingStep

# engine_for(size) -> the engine of the model at frames of ``size`` (H, W)
EngineMaker = Callable[[tuple[int, int]], Engine]


class PerSizeEngine:
    """An engine that makes one inner engine per frame size (``make(size)``) and runs each input
    on the engine of its size. Its attributes are those of the latest inner engine; before the
    first, they come from ``model`` and ``reason`` says what will happen."""

    frame_size = None  # any size

    def __init__(
        self, model: Recognizer, kind: ModelKind, name: str, device: torch.device, make: EngineMaker
    ) -> None:
        self.kind = kind
        self.name = name
        self.device = device
        self.num_classes = model.num_classes
        self.num_segments = model.num_segments
        self.precision = "fp32"
        self.reason = f"{name}: the model is exported for each frame size on first use"
        self._make = make
        self._engines: dict[tuple[int, int], Engine] = {}
        if kind == "stream":
            self.num_caches = StreamingStep(model).num_caches

    def engine_for(self, size: Sequence[int]) -> Engine:
        """The inner engine for frames of ``size`` (H, W), made on first use."""
        size = (int(size[0]), int(size[1]))
        engine = self._engines.get(size)
        if engine is None:
            engine = self._engines[size] = self._make(size)
            self.name, self.precision, self.reason = engine.name, engine.precision, engine.reason
        return engine

    def cache_shapes(self, frame_shape: Sequence[int]) -> list[tuple[int, ...]]:
        return self.engine_for(frame_shape[-2:]).cache_shapes(frame_shape)

    def __call__(self, inputs: Tensor, *caches: Tensor) -> Tensor | tuple[Tensor, ...]:
        return self.engine_for(inputs.shape[-2:])(inputs, *caches)
