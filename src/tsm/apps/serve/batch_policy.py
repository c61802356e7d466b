"""How many waiting frames go into one engine call: a fixed number, or decided from the engine's
measured cost per frame at each batch size (docs/serving.md, "Batching").

Batching pays only where the engine's cost per frame falls with the batch (a GPU, PyTorch with
idle threads); where it does not (ONNX Runtime on a few CPU cores), a batch only makes its first
frames wait for its last ones. So the measured policy runs the smallest batch whose cost per frame
is within ``margin`` of the best it has measured, learning each batch size's cost from the
server's own calls: a size it has not measured yet (or not for ``refresh`` calls) is tried once.
"""

from __future__ import annotations

import statistics
from collections import deque

SAMPLES = 8  # calls per batch size whose median is its cost


class BatchPolicy:
    """``size(ready)``: how many of ``ready`` waiting frames the next engine call takes;
    ``record(batch, seconds)``: what a call of ``batch`` frames cost.

    ``max_batch``: a fixed limit (1: one frame at a time), or None: measured, as above.
    """

    def __init__(self, max_batch: int | None, margin: float = 0.1, refresh: int = 200) -> None:
        self.max_batch = max_batch
        self.margin = margin
        self.refresh = refresh
        self._seconds: dict[int, deque[float]] = {}
        self._calls = 0
        self._last_measured: dict[int, int] = {}  # batch size -> the call it was last measured at

    def record(self, batch: int, seconds: float) -> None:
        self._calls += 1
        self._seconds.setdefault(batch, deque(maxlen=SAMPLES)).append(seconds)
        self._last_measured[batch] = self._calls

    def per_frame_seconds(self) -> dict[int, float]:
        """The measured cost per frame (median seconds per call / batch) of each batch size."""
        return {batch: statistics.median(calls) / batch for batch, calls in sorted(self._seconds.items())}

    def size(self, ready: int) -> int:
        """How many of the ``ready`` frames (the longest waiting first) to run in the next call."""
        if self.max_batch is not None:
            return min(ready, self.max_batch)
        if ready <= 1:
            return ready
        stale = self._calls - self._last_measured.get(ready, -self.refresh) >= self.refresh
        if stale or 1 not in self._seconds:
            return ready if 1 in self._seconds else 1  # measure what is missing
        costs = {batch: cost for batch, cost in self.per_frame_seconds().items() if batch <= ready}
        best = min(costs.values())
        return min(batch for batch, cost in costs.items() if cost <= best * (1 + self.margin))

    def describe(self) -> dict[str, object]:
        """What ``GET /info`` says about batching."""
        measured = {str(batch): round(cost * 1e3, 2) for batch, cost in self.per_frame_seconds().items()}
        policy = f"at most {self.max_batch}" if self.max_batch is not None else "measured"
        return {"policy": policy, "per_frame_ms": measured}
