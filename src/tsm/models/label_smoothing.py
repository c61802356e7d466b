"""Label smoothing over time for live streams: the reference online demo's rule, per stream."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

# The reference demo's smoothing (online_demo/main.py): the sum of the last 12 frames' logits, and a
# new label only when 2 frames in a row agree. The live pages use it by default.
DEMO_SMOOTH_WINDOW, DEMO_AGREE = 12, 2


class LabelSmoother:
    """The reference demo's label smoothing, per stream, off by default.

    The candidate label is the argmax of the sum of the last ``window`` logits; the shown label
    changes only when the last ``agree`` candidates are the same (the first frame after a reset
    shows its candidate). ``window=12, agree=2`` is the reference demo's setting.
    """

    def __init__(self, window: int = 1, agree: int = 1) -> None:
        for name, value in (("window", window), ("agree", agree)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"smoothing {name} must be a positive int, got {value!r}")
        self.window = window
        self.agree = agree
        self._logits: Tensor | None = None  # (window, B, K) ring buffer, zero rows when unused
        self._candidates: Tensor | None = None  # (agree, B) ring buffer, -1 when unused
        self._labels: Tensor | None = None  # (B,), -1 before the first frame
        self._position = 0

    def update(self, logits: Tensor) -> Tensor:
        """Add one frame's logits (B, K); return the smoothed label of every stream (B,)."""
        if self._logits is None or self._logits.shape[1:] != logits.shape:
            self._logits = logits.new_zeros(self.window, *logits.shape)
            self._candidates = torch.full((self.agree, logits.shape[0]), -1, device=logits.device)
            self._labels = torch.full((logits.shape[0],), -1, device=logits.device)
        self._logits[self._position % self.window] = logits
        candidate = self._logits.sum(dim=0).argmax(dim=1)
        self._candidates[self._position % self.agree] = candidate
        agreed = (self._candidates == candidate).all(dim=0) | (self._labels < 0)
        self._labels = torch.where(agreed, candidate, self._labels)
        self._position += 1
        return self._labels

    @property
    def labels(self) -> Tensor | None:
        """The label shown for each stream (B,); None before the first update."""
        return self._labels

    def reset(self, stream_ids: Sequence[int] | Tensor | None = None) -> None:
        """Forget the history of the given streams (all when ``None``)."""
        if stream_ids is None or self._logits is None:
            self._logits = self._candidates = self._labels = None
            return
        stream_ids = torch.as_tensor(stream_ids, dtype=torch.long, device=self._logits.device)
        self._logits[:, stream_ids] = 0
        self._candidates[:, stream_ids] = -1
        self._labels = self._labels.index_fill(0, stream_ids, -1)  # the caller may hold the old one
