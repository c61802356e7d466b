"""Online recognition of a video file or camera, frame by frame, with a streaming model."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import Tensor

from tsm.data import DataConfig, frame_transform, open_frames
from tsm.inference.overlay import draw_prediction_band
from tsm.inference.streaming_recognizer import StreamingRecognizer


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
    device = streamer.device
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
