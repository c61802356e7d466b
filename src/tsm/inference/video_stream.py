"""Online recognition of a video file or camera, frame by frame, with a streaming model."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import Tensor

from tsm.data import DataConfig, frame_transform, open_frames
from tsm.inference.overlay import draw_prediction_band
from tsm.inference.prefetch import prefetched
from tsm.inference.streaming_recognizer import StreamingRecognizer

PREFETCH = 4  # frames decoded and preprocessed ahead of the engine


@dataclass
class StreamEvent:
    """What the streaming model says after one frame of a stream, and where its time went."""

    index: int  # frame number
    time: float  # seconds from the start (frame number / frame rate)
    label: str  # the (smoothed) label shown
    probabilities: Tensor  # softmax of this frame's logits (K,)
    frame: Tensor  # the decoded frame, uint8 (3, H, W)
    step_seconds: float  # time spent in the model for this frame
    prepare_seconds: float = 0.0  # decoding and preprocessing it (beside the model, when prefetched)
    wait_seconds: float = 0.0  # the model waiting for it to be ready: what the overlap did not hide


def _prepared_frames(
    frames: Iterator[Tensor], transform: Callable[[Tensor], Tensor], max_frames: int | None
) -> Iterator[tuple[Tensor, Tensor, float]]:
    """(frame, model input, seconds to decode and preprocess it) for each frame, up to ``max_frames``."""
    try:
        for _ in range(max_frames) if max_frames is not None else itertools.count():
            start = time.perf_counter()
            frame = next(frames, None)
            if frame is None:
                return
            yield frame, transform(frame).unsqueeze(0), time.perf_counter() - start
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()  # the video or camera, on the thread that read it


def stream_predictions(
    source: str | int | Path,
    streamer: StreamingRecognizer,
    class_names: Sequence[str],
    data_config: DataConfig,
    max_frames: int | None = None,
    prefetch: int = PREFETCH,
) -> Iterator[StreamEvent]:
    """Run ``streamer`` on a video file or camera frame by frame; one event per frame.

    The next ``prefetch`` frames are decoded and preprocessed on another thread while the model
    runs (:func:`~tsm.inference.prefetch.prefetched`); 0 does everything in turn on this thread.
    """
    frames, fps = open_frames(source)
    transform = frame_transform(data_config)
    device = streamer.device
    streamer.reset()
    prepared = prefetched(_prepared_frames(frames, transform, max_frames), prefetch)
    try:
        for index in itertools.count():
            waited = time.perf_counter()
            item = next(prepared, None)
            if item is None:
                return
            frame, model_input, prepare_seconds = item
            start = time.perf_counter()
            logits = streamer.step(model_input.to(device))
            elapsed = time.perf_counter() - start
            yield StreamEvent(
                index=index,
                time=index / fps,
                label=class_names[int(streamer.labels[0])],
                probabilities=logits[0].softmax(dim=0).cpu(),
                frame=frame,
                step_seconds=elapsed,
                prepare_seconds=prepare_seconds,
                wait_seconds=start - waited,
            )
    finally:
        prepared.close()


def annotate_frame(event: StreamEvent, class_names: Sequence[str], topk: int = 3) -> np.ndarray:
    """The frame above a band with the label shown and the next classes, with their percentages
    (:func:`tsm.inference.overlay.draw_prediction_band`): uint8 (H + band, W, 3)."""
    return draw_prediction_band(event.frame, event.label, event.probabilities, class_names, topk)


def plot_stream_timeline(
    events_time: list[float], probabilities: Tensor, class_names: list[str], path: str | Path, topk: int
) -> None:
    """Probability over time of the ``topk`` classes with the highest mean probability (PNG)."""
    from matplotlib.figure import Figure

    top = probabilities.mean(dim=0).topk(min(topk, probabilities.shape[1])).indices.tolist()
    figure = Figure(figsize=(8, 3), layout="constrained")
    axis = figure.subplots()
    for index in top:
        axis.plot(events_time, probabilities[:, index].numpy(), label=class_names[index])
    axis.set_xlabel("time (s)")
    axis.set_ylabel("probability (per frame)")
    axis.set_ylim(0, 1)
    axis.set_title("online TSM: top classes per frame")
    axis.legend(loc="upper left", fontsize="small")
    figure.savefig(path, dpi=100)
