"""One connected stream: its slot, frame counters, the newest waiting frame and its outgoing replies."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

# Replies a stream may have waiting to be sent before its frames stop being taken (a client that
# reads slowly gets its frames dropped, not queued), and the most that may ever wait.
REPLIES_AHEAD = 2
OUTBOX_LIMIT = 64


@dataclass(frozen=True)
class Waiting:
    """A received frame the model has not taken yet, and its decoding (started on arrival: the
    model input, or a FrameError)."""

    number: int
    decoded: Future
    arrived: float  # time.perf_counter() at arrival


class Stream:
    """The server side of one WebSocket stream; used on the event loop only."""

    def __init__(self, row: int, with_logits: bool, model_version: int) -> None:
        self.row = row  # the slot: this stream's row in the engine's caches or windows
        self.with_logits = with_logits
        self.model_version = model_version  # the served model its latest replies came from
        self.received = 0  # frames received since the start or the last reset
        self.dropped = 0  # frames replaced by a newer one before the model took them
        self.waiting: Waiting | None = None
        self.needs_clear = True  # the slot holds another stream's state until cleared
        self.generation = 0  # bumped by a reset: results of older frames are discarded
        self.latest: dict[str, Any] | None = None  # latest recognition (window models repeat it)
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=OUTBOX_LIMIT)
        self.closing = asyncio.Event()
        self.close_code = 1000
        self.close_reason = ""

    def put_frame(self, decoded: Future, arrived: float | None = None) -> bool:
        """Keep the frame being decoded into ``decoded`` as the newest; returns True when it replaced
        (dropped) a waiting one, whose decoding is cancelled if it has not started."""
        replaced = self.waiting is not None
        if replaced:
            self.dropped += 1
            self.waiting.decoded.cancel()
        self.waiting = Waiting(self.received, decoded, time.perf_counter() if arrived is None else arrived)
        self.received += 1
        return replaced

    @property
    def ready(self) -> bool:
        """A frame waits, decoded (or failed to decode), and the client keeps up with its replies."""
        waiting = self.waiting
        return waiting is not None and waiting.decoded.done() and self.outbox.qsize() < REPLIES_AHEAD

    def take(self) -> Waiting | None:
        """The waiting frame, if it is ready."""
        if not self.ready:
            return None
        waiting, self.waiting = self.waiting, None
        return waiting

    def restart(self) -> None:
        """Start afresh (a reset): frame numbers from 0, zero caches, no reply about older frames."""
        if self.waiting is not None:
            self.waiting.decoded.cancel()
        self.waiting = None
        self.received = 0
        self.latest = None
        self.needs_clear = True
        self.generation += 1
        while not self.outbox.empty():  # replies about frames before the reset
            self.outbox.get_nowait()

    def post(self, reply: dict[str, Any]) -> None:
        """Queue a reply; a client that has stopped reading them is closed instead."""
        try:
            self.outbox.put_nowait(reply)
        except asyncio.QueueFull:
            self.request_close(1008, f"more than {OUTBOX_LIMIT} replies unread: read the replies")

    def request_close(self, code: int, reason: str) -> None:
        """Ask the stream's connection to close with ``code`` (the first request wins)."""
        if not self.closing.is_set():
            self.close_code, self.close_reason = code, reason
            self.closing.set()
