"""The batched engine: frames are decoded as they arrive, beside the engine; each tick, the newest
decoded frame of the waiting streams goes through one model call (as many as the batch policy says)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import Tensor

from tsm.apps.serve.batch_policy import BatchPolicy
from tsm.apps.serve.frames import FrameError, decode_frame
from tsm.apps.serve.live_model import LiveModel
from tsm.apps.serve.metrics import ServeMetrics
from tsm.apps.serve.replies import NO_RECOGNITION, error_reply, frame_reply, recognition, switch_reply
from tsm.apps.serve.settings import ServeSettings
from tsm.apps.serve.streams import Stream, Waiting
from tsm.inference import single_threaded_torch

LOG = logging.getLogger("tsm.serve")
T = TypeVar("T")


@dataclass(frozen=True)
class DecodedFrame:
    """A received frame through the test pipeline of the model that was live when it arrived."""

    version: int  # that model's LiveModel.version
    model_input: Tensor  # (3, S, S)
    data: bytes  # the encoded frame, to decode again if another model took over meanwhile


@dataclass(frozen=True)
class Job:
    """One stream's frame in one tick."""

    stream: Stream
    generation: int
    frame: Waiting
    clear: bool  # start the slot afresh before this frame


@dataclass(frozen=True)
class TickResult:
    """What the worker made of a tick: per job its logits (None: no recognition) or an error."""

    logits: list[Tensor | None]
    errors: dict[int, str]
    batch: int  # frames in the engine call
    model_ms: float | None
    live: LiveModel  # the model that made them


class StreamBatcher:
    """Slots, waiting frames and the tick loop; frames are decoded on a decoding thread as they
    arrive, the model runs on one worker thread, so that the two overlap.

    A stream that sends faster than the model keeps only its newest frame (the others are
    counted as dropped, their decoding cancelled if it has not started), so nothing queues up.
    Streams, their frames and replies live on the event loop; the model (``live``: its runner's
    caches or windows) is used and replaced by the worker thread only, in order, so a new model
    takes over between two engine calls. How many waiting frames one call takes is the
    :class:`BatchPolicy`'s choice (``settings.max_batch``, or measured).
    """

    def __init__(self, live: LiveModel, settings: ServeSettings, metrics: ServeMetrics) -> None:
        self.live = live
        self.settings = settings
        self.metrics = metrics
        self.policy = BatchPolicy(settings.max_batch)
        self.streams: set[Stream] = set()
        self._free_rows = list(range(settings.max_streams - 1, -1, -1))
        self._wake = asyncio.Event()
        self._none_open = asyncio.Event()
        self._none_open.set()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tsm-serve-model")
        self._decoder = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="tsm-serve-decode", initializer=single_threaded_torch
        )
        self._loop_task: asyncio.Task[None] | None = None

    # --- streams (event loop) -------------------------------------------------------------------
    def open(self, with_logits: bool = False) -> Stream | None:
        """A new stream in a free slot, or None when all ``max_streams`` slots are taken."""
        if not self._free_rows:
            return None
        if self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(self._tick_loop())
        stream = Stream(self._free_rows.pop(), with_logits, self.live.version)
        self.streams.add(stream)
        self._none_open.clear()
        self.metrics.open_streams.set(len(self.streams))
        return stream

    def close(self, stream: Stream) -> None:
        """Free the stream's slot (its next owner starts from cleared state)."""
        if stream in self.streams:
            self.streams.discard(stream)
            self._free_rows.append(stream.row)
            if stream.waiting is not None:
                stream.waiting.decoded.cancel()
            stream.waiting = None
            self.metrics.open_streams.set(len(self.streams))
            if not self.streams:
                self._none_open.set()

    def submit(self, stream: Stream, data: bytes) -> None:
        """A frame arrived: it becomes the stream's newest waiting frame, and its decoding starts
        (the tick loop wakes when it is done)."""
        arrived = time.perf_counter()
        decoded = self._decoder.submit(self._decode, data, self.live)
        loop = asyncio.get_running_loop()
        decoded.add_done_callback(lambda _: loop.call_soon_threadsafe(self._wake.set))
        if stream.put_frame(decoded, arrived):
            self.metrics.dropped.inc()

    def _decode(self, data: bytes, live: LiveModel) -> DecodedFrame:
        """Decoding thread: the frame through ``live``'s test pipeline, or a FrameError."""
        start = time.perf_counter()
        settings = self.settings
        image = decode_frame(data, settings.max_frame_bytes, settings.max_frame_pixels)
        decoded = DecodedFrame(live.version, live.transform(image), data)
        self.metrics.decode_seconds.observe(time.perf_counter() - start)
        return decoded

    def reset(self, stream: Stream) -> None:
        """Restart the stream: zero state, frame numbers from 0, ``{"reset": true}`` acknowledged."""
        stream.restart()
        stream.post({"reset": True})

    def reply_sent(self, stream: Stream) -> None:
        """The stream's client got a reply: a frame held back for it may now go."""
        if stream.waiting is not None:
            self._wake.set()

    async def close_all(self, code: int, reason: str, timeout: float = 5.0) -> None:
        """Ask every stream to close with ``code`` and wait (up to ``timeout`` s) until they have."""
        for stream in list(self.streams):
            stream.request_close(code, reason)
        try:
            await asyncio.wait_for(self._none_open.wait(), timeout)
        except asyncio.TimeoutError:  # not the built-in TimeoutError before Python 3.11
            LOG.warning("%d streams did not close within %.0f s", len(self.streams), timeout)

    async def in_worker(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function`` on the model's worker thread (one model call at a time)."""
        return await asyncio.get_running_loop().run_in_executor(self._worker, function, *args)

    async def shutdown(self) -> None:
        """Stop the tick loop, the decoding thread and the worker thread."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        self._decoder.shutdown(wait=True, cancel_futures=True)
        self._worker.shutdown(wait=True)

    # --- ticks ----------------------------------------------------------------------------------
    async def _tick_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            jobs = self._take()
            if not jobs:
                continue
            try:
                result = await self.in_worker(self._process, jobs)
            except Exception as error:  # a failing engine must not stop the server
                LOG.exception("the engine failed on a batch of %d frames", len(jobs))
                message = f"the model failed on this frame: {type(error).__name__}: {error}"
                errors = dict.fromkeys(range(len(jobs)), message)
                result = TickResult([None] * len(jobs), errors, 0, None, self.live)
            self._deliver(jobs, result)

    def _take(self) -> list[Job]:
        """The newest decoded frame of the ready streams, the longest waiting first, as many as
        the batch policy says."""
        ready = sorted((s for s in self.streams if s.ready), key=lambda s: s.waiting.arrived)
        count = self.policy.size(len(ready))
        if count < len(ready):
            self._wake.set()  # the others go in the next call
        jobs = []
        for stream in ready[:count]:
            jobs.append(Job(stream, stream.generation, stream.take(), stream.needs_clear))
            stream.needs_clear = False
        return jobs

    def _process(self, jobs: list[Job]) -> TickResult:
        """Worker thread: clear fresh slots, one engine call on the decoded frames."""
        taken, live = time.perf_counter(), self.live
        live.runner.clear([job.stream.row for job in jobs if job.clear])
        frames, errors = {}, {}
        for index, job in enumerate(jobs):
            try:
                frames[index] = self._model_input(job.frame.decoded.result(), live)
            except FrameError as error:
                errors[index] = str(error)
        logits: list[Tensor | None] = [None] * len(jobs)
        if not frames:
            return TickResult(logits, errors, 0, None, live)
        for index in frames:
            self.metrics.queue_seconds.observe(taken - jobs[index].frame.arrived)
        inputs = list(frames.values())
        batch = (inputs[0].unsqueeze(0) if len(inputs) == 1 else torch.stack(inputs)).to(live.device)
        start = time.perf_counter()
        outputs = live.runner.run([jobs[index].stream.row for index in frames], batch)
        seconds = time.perf_counter() - start
        self.policy.record(len(frames), seconds)
        self.metrics.step_seconds.observe(seconds)
        self.metrics.batch_size.observe(len(frames))
        for index, output in zip(frames, outputs, strict=True):
            logits[index] = output
        return TickResult(logits, errors, len(frames), seconds * 1e3, live)

    def _model_input(self, decoded: DecodedFrame, live: LiveModel) -> Tensor:
        """The decoded frame's model input for ``live`` (decoded again in the rare tick after a
        switch to a model with another pipeline)."""
        if decoded.version == live.version:
            return decoded.model_input
        settings = self.settings
        return live.transform(decode_frame(decoded.data, settings.max_frame_bytes, settings.max_frame_pixels))

    def _deliver(self, jobs: list[Job], result: TickResult) -> None:
        now = time.perf_counter()
        for index, job in enumerate(jobs):
            stream = job.stream
            if stream not in self.streams or stream.generation != job.generation:
                continue  # closed or reset meanwhile: the reply is about a stream that is gone
            if stream.model_version != result.live.version:  # the first reply of a new model
                stream.model_version = result.live.version
                stream.latest = None
                stream.post(switch_reply(result.live.info))
            self.metrics.frame_seconds.observe(now - job.frame.arrived)
            if index in result.errors:
                self.metrics.bad_messages.inc()
                stream.post(error_reply(result.errors[index], job.frame.number))
                continue
            self.metrics.frames.inc()
            logits = result.logits[index]
            fresh = logits is not None
            if fresh:
                top = recognition(logits, result.live.class_names, self.settings.topk, stream.with_logits)
                stream.latest = {**top, "model_ms": result.model_ms}
            reply = frame_reply(
                job.frame.number, stream.latest or NO_RECOGNITION, fresh, stream.dropped, result.batch
            )
            stream.post(reply)
