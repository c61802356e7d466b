"""Offline models on live streams: the clip forward on each stream's last T frames, every k-th frame."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from tsm.inference import ClipEngine


class WindowRunner:
    """Keeps the last T frames of every stream (one ring per slot) for a clip engine.

    A stream is recognised on its frame n (counting from 1) when ``n >= T`` and ``(n - T)`` is a
    multiple of ``every``; all streams due in one call share one ``model(clips)``. Other frames
    only enter their window (result None). Not thread-safe: one worker thread calls it.
    """

    def __init__(
        self, model: ClipEngine, slots: int, frame_size: int, every: int, device: torch.device
    ) -> None:
        self.model = model
        self.length = model.num_segments
        self.every = every
        self.windows = torch.zeros(slots, self.length, 3, frame_size, frame_size, device=device)
        self.counts = [0] * slots  # frames seen by each slot since it was cleared

    def clear(self, rows: Sequence[int]) -> None:
        """Start the streams of these slots afresh (an empty window)."""
        for row in rows:
            self.counts[row] = 0

    def _due(self, row: int) -> bool:
        count = self.counts[row]
        return count >= self.length and (count - self.length) % self.every == 0

    @torch.inference_mode()
    def run(self, rows: Sequence[int], frames: Tensor) -> list[Tensor | None]:
        """One frame per slot (B, 3, S, S) -> the clip logits (K,) of the slots that are due, else None."""
        for row, frame in zip(rows, frames, strict=True):
            self.windows[row, self.counts[row] % self.length] = frame
            self.counts[row] += 1
        due = [row for row in rows if self._due(row)]
        results: dict[int, Tensor] = {}
        if due:
            # Oldest frame first: the ring starts at the slot written T frames ago.
            order = [[(self.counts[row] + t) % self.length for t in range(self.length)] for row in due]
            rows_index = torch.tensor(due, device=frames.device)[:, None]
            clips = self.windows[rows_index, torch.tensor(order, device=frames.device)]
            results = dict(zip(due, self.model(clips).float().cpu(), strict=True))
        return [results.get(row) for row in rows]
