"""Online recognition of a video file or camera, frame by frame, with a streaming model."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from tsm.data import DataConfig, frame_transform, open_frames
from tsm.models import StreamingRecognizer


@dataclass
class StreamEvent:
    """What the streaming model says after one frame of a stream."""

    index: int  # frame number
    time: float  # seconds from the start (frame number / frame rate)
    label: str  # the (smoothed) label shown
    probabilities: Tensor  # softmax of this frame's logits (K,)
    frame: Tensor  # the decoded frame, uint8 (3, H, W)
    step_seconds: float  # time spent in the model for this frame


def stream_predictions(
    source: str | int | Path,
    streamer: StreamingRecognizer,
    class_names: Sequence[str],
    data_config: DataConfig,
    max_frames: int | None = None,
) -> Iterator[StreamEvent]:
    """Run ``streamer`` on a video file or camera frame by frame; one event per frame."""
    frames, fps = open_frames(source)
    transform = frame_transform(data_config)
    device = next(streamer.parameters()).device
    streamer.reset()
    for index, frame in enumerate(frames):
        if max_frames is not None and index >= max_frames:
            break
        model_input = transform(frame).unsqueeze(0).to(device)
        start = time.perf_counter()
        logits = streamer.step(model_input)
        elapsed = time.perf_counter() - start
        yield StreamEvent(
            index=index,
            time=index / fps,
            label=class_names[int(streamer.labels[0])],
            probabilities=logits[0].softmax(dim=0).cpu(),
            frame=frame,
            step_seconds=elapsed,
        )
