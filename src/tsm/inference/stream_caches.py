"""The caches of many live streams around one streaming engine: one row per stream.

The one holder of per-stream state, used by :class:`~tsm.inference.StreamingRecognizer` (B streams,
every row each step) and by ``tsm serve`` (a pool of slots, the waiting streams' rows each tick).
A cleared row holds zeros, exactly the offline model's view of a clip's first frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from tsm.inference.engine_api import StreamingEngine


class StreamCaches:
    """Caches of ``rows`` streams (None: as many as the first step's frames) for ``engine``.

    They are made, all zero, at the first step for its frame size, dtype and device. Not
    thread-safe: one thread steps it.
    """

    def __init__(self, engine: StreamingEngine, rows: int | None = None) -> None:
        self.engine = engine
        self.rows = rows
        self.caches: list[Tensor] | None = None  # none before the first step, and after a full reset
        self.count = 0  # streams the caches hold
        self.frame_format: tuple | None = None  # ((H, W), dtype, device) the caches were made for

    def _allocate(self, frames: Tensor) -> None:
        self.count = self.rows if self.rows is not None else frames.shape[0]
        shapes = self.engine.cache_shapes((self.count, *frames.shape[1:]))
        self.caches = [torch.zeros(shape, dtype=frames.dtype, device=frames.device) for shape in shapes]
        self.frame_format = (tuple(frames.shape[-2:]), frames.dtype, frames.device)

    def check(self, frames: Tensor) -> None:
        """Refuse frames the caches were not made for (another size, dtype or device, or another
        number of streams), with what to do instead."""
        if frames.dim() != 4:
            raise ValueError(f"frames must be one per stream, shaped (B, 3, H, W); got {tuple(frames.shape)}")
        if self.caches is None:
            return
        size, dtype, device = self.frame_format
        if (tuple(frames.shape[-2:]), frames.dtype, frames.device) != self.frame_format:
            raise ValueError(
                f"the streams were started with {size[0]}x{size[1]} {dtype} frames on {device}, got "
                f"{tuple(frames.shape[-2:])} {frames.dtype} on {frames.device}; reset all streams to change"
            )
        if self.rows is None and frames.shape[0] != self.count:
            raise ValueError(
                f"the streams were started with {self.count} streams, got frames for "
                f"{frames.shape[0]}; reset all streams to change their number"
            )

    @torch.inference_mode()  # the caches are inference tensors: every use of them is in this mode
    def step(self, frames: Tensor, rows: Sequence[int] | None = None) -> Tensor:
        """One frame per stream of ``rows`` (None: every row, in order) -> their logits (B, K)."""
        self.check(frames)
        if self.caches is None:
            self._allocate(frames)
        if rows is None:
            logits, *self.caches = self.engine(frames, *self.caches)
            return logits
        index = torch.as_tensor(list(rows), device=frames.device)
        logits, *new_caches = self.engine(frames, *(cache.index_select(0, index) for cache in self.caches))
        for cache, new in zip(self.caches, new_caches, strict=True):
            cache.index_copy_(0, index, new.to(cache.dtype))
        return logits

    @torch.inference_mode()
    def clear(self, rows: Sequence[int] | Tensor | None = None) -> None:
        """Start the streams of ``rows`` afresh (all when None: the caches are dropped, and the next
        step may bring frames of another size or another number of streams)."""
        if rows is None or self.caches is None:
            self.caches = self.frame_format = None
            return
        ids = torch.as_tensor(rows, dtype=torch.long).reshape(-1)
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.count):
            raise ValueError(f"stream ids {ids.tolist()} out of range: there are {self.count} streams")
        for cache in self.caches:
            cache[ids.to(cache.device)] = 0
