"""Frame-by-frame recognition of many streams in one engine call: a cache slot per stream."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from tsm.inference import StreamingEngine


class StepRunner:
    """Keeps every stream's caches in one pool (one row per slot) around a streaming engine.

    Each call gathers the caches of the given slots, runs the engine once on their frames and
    scatters the new caches back. A cleared slot holds zeros, which is exactly the offline
    model's view of a clip's first frame. Not thread-safe: one worker thread calls it.
    """

    def __init__(self, engine: StreamingEngine, slots: int, frame_size: int, device: torch.device) -> None:
        self.engine = engine
        shapes = engine.cache_shapes((1, 3, frame_size, frame_size))
        self.pool = [torch.zeros(slots, *shape[1:], device=device) for shape in shapes]

    def clear(self, rows: Sequence[int]) -> None:
        """Start the streams of these slots afresh."""
        for cache in self.pool:
            cache[list(rows)] = 0

    @torch.inference_mode()
    def run(self, rows: Sequence[int], frames: Tensor) -> list[Tensor | None]:
        """One frame per slot (B, 3, S, S) -> each frame's logits (K,)."""
        index = torch.tensor(list(rows), device=frames.device)
        caches = [cache.index_select(0, index) for cache in self.pool]
        logits, *new_caches = self.engine(frames, *caches)
        for cache, new in zip(self.pool, new_caches, strict=True):
            cache.index_copy_(0, index, new)
        return list(logits.float().cpu())
