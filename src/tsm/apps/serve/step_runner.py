"""Frame-by-frame recognition of many streams in one engine call: a cache row per slot, held by
:class:`tsm.inference.StreamCaches` (the holder ``StreamingRecognizer`` uses too)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from tsm.inference import StreamCaches, StreamingEngine


class StepRunner:
    """Every stream's caches in one pool of ``slots`` rows around a streaming engine: each call
    steps the given slots' streams in one engine call. Not thread-safe: one worker thread calls it."""

    def __init__(self, engine: StreamingEngine, slots: int) -> None:
        self.caches = StreamCaches(engine, rows=slots)

    def clear(self, rows: Sequence[int]) -> None:
        """Start the streams of these slots afresh."""
        if rows:
            self.caches.clear(rows)

    @torch.inference_mode()
    def run(self, rows: Sequence[int], frames: Tensor) -> list[Tensor | None]:
        """One frame per slot (B, 3, S, S) -> each frame's logits (K,)."""
        return list(self.caches.step(frames, rows).float().cpu())
