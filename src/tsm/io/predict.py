"""Prediction from a checkpoint: whole videos (``Predictor``) and live streams (``stream_video``).

Both use the checkpoint's own class names and test pipeline (its data config), so a checkpoint
file is all a user needs. This lives in ``io`` because it joins checkpoint loading (``io``) with
the data pipeline (``data``); ``engine`` (training) sits below ``io`` and may not load checkpoints.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import av
import torch
from torch import Tensor

from tsm.data import TEST_VIEWS, EvalPipeline, default_data_config, load_clip, views_per_sample
from tsm.data.decode import frame_to_rgb
from tsm.io import load_checkpoint
from tsm.io.checkpoint import CheckpointInfo
from tsm.models import Recognizer, StreamingRecognizer

Average = Literal["logits", "softmax"]


@dataclass
class Prediction:
    """The top classes of one video, or the reason it could not be read."""

    path: str
    classes: list[str] = field(default_factory=list)  # best first
    scores: list[float] = field(default_factory=list)  # softmax probability of each class
    views: int = 0  # clips x crops that were averaged
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``tsm predict --json``)."""
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        top = [{"class": name, "score": score} for name, score in zip(self.classes, self.scores, strict=True)]
        return {"path": self.path, "views": self.views, "top": top}

    def __str__(self) -> str:
        if self.error is not None:
            return f"{self.path}: error: {self.error}"
        ranked = ", ".join(
            f"{name} {score:.3f}" for name, score in zip(self.classes, self.scores, strict=True)
        )
        return f"{self.path}: {ranked}"


def class_names_of(info: CheckpointInfo | None, num_classes: int) -> list[str]:
    """The checkpoint's class names, or ``class_0 ...`` when it has none."""
    names = info.class_names if info is not None else None
    if names is None:
        return [f"class_{index}" for index in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(
            f"the checkpoint has {len(names)} class names for a model with {num_classes} classes"
        )
    return list(names)


def prediction_data_config(
    info: CheckpointInfo | None,
    num_segments: int,
    views: str | None = None,
    clips: int | None = None,
) -> dict[str, Any]:
    """The checkpoint's test pipeline, with the model's T and the asked views.

    ``views``: crops per clip, ``"center"``, ``"three"`` or ``"ten"``. ``clips``: 1 (uniform), 2
    (uniform plus the segment-start clip, ``twice_sample``) or, for dense sampling, any count.
    """
    config = dict(info.data_config) if info is not None else {}
    config["num_segments"] = num_segments  # the model's T decides, not a second copy of it
    if views is not None:
        if views not in TEST_VIEWS:
            raise ValueError(f"unknown views {views!r}: use one of {', '.join(TEST_VIEWS)}")
        config["test_views"] = views
    if clips is not None:
        if config.get("sampling", "uniform") == "dense":
            config["num_clips"] = clips
        elif clips in (1, 2):
            config["twice_sample"] = clips == 2
        else:
            raise ValueError(
                f"uniform sampling takes 1 or 2 clips per video, not {clips}; dense sampling "
                "(data config sampling='dense') takes any number"
            )
    return default_data_config(config)


class Predictor:
    """Top-k classes of whole videos with a trained model and its test pipeline.

    ``Predictor.from_checkpoint(path)`` reads the model, class names and data config from any
    checkpoint :func:`tsm.load_checkpoint` reads. Scores of all views (clips x crops) are averaged
    as logits (``average="logits"``, the reference's default) or as softmax probabilities.
    """

    def __init__(
        self,
        model: Recognizer,
        info: CheckpointInfo | None = None,
        views: str | None = None,
        clips: int | None = None,
        topk: int = 5,
        average: Average = "logits",
        device: str | torch.device = "cpu",
    ) -> None:
        if average not in ("logits", "softmax"):
            raise ValueError(f"average must be 'logits' or 'softmax', got {average!r}")
        if topk < 1:
            raise ValueError(f"topk must be at least 1, got {topk}")
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.class_names = class_names_of(info, model.num_classes)
        self.data_config = prediction_data_config(info, model.num_segments, views, clips)
        self.topk = min(topk, model.num_classes)
        self.average = average

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, **options: Any) -> Predictor:
        """Load ``checkpoint`` (any format :func:`tsm.load_checkpoint` reads) and wrap it."""
        model, info = load_checkpoint(checkpoint)
        return cls(model, info, **options)

    @torch.inference_mode()
    def scores(self, video: str | Path) -> Tensor:
        """Class probabilities (K,) of one video, averaged over the test views."""
        views = load_clip(video, self.data_config).to(self.device)  # (V, T, 3, S, S)
        logits = self.model(views)
        if self.average == "softmax":
            return logits.softmax(dim=1).mean(dim=0).cpu()
        return logits.mean(dim=0).softmax(dim=0).cpu()

    def predict_video(self, video: str | Path) -> Prediction:
        """The top-k classes of one video; raises on unreadable files."""
        probabilities = self.scores(video)
        top = probabilities.topk(self.topk)
        return Prediction(
            path=str(video),
            classes=[self.class_names[i] for i in top.indices.tolist()],
            scores=top.values.tolist(),
            views=views_per_sample(self.data_config),
        )

    def predict(self, videos: Iterable[str | Path]) -> list[Prediction]:
        """Predictions for many videos; a file that cannot be read gets an ``error``, not an exception."""
        predictions = []
        for video in videos:
            try:
                predictions.append(self.predict_video(video))
            except (OSError, ValueError, RuntimeError, IndexError) as error:
                predictions.append(Prediction(path=str(video), error=_one_line(error)))
        return predictions


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def predict(videos: Sequence[str | Path], checkpoint: str | Path, **options: Any) -> list[Prediction]:
    """Top-k classes of each video with a checkpoint; see :class:`Predictor` for ``options``."""
    return Predictor.from_checkpoint(checkpoint, **options).predict(videos)


def frame_transform(data_config: dict[str, Any]) -> Callable[[Tensor], Tensor]:
    """The test pipeline for single frames: uint8 (3, H, W) -> normalised centre crop (3, S, S)."""
    pipeline = EvalPipeline({**default_data_config(data_config), "num_segments": 1, "test_views": "center"})

    def transform(frame: Tensor) -> Tensor:
        views, _ = pipeline(frame.unsqueeze(0), -1)  # (1 view, 1 frame, 3, S, S)
        return views[0, 0]

    return transform


def crop_size(data_config: dict[str, Any]) -> int:
    """Side of the test crop of a data config (``resize`` when testing at full resolution)."""
    config = default_data_config(data_config)
    return config["resize"] if config["full_res"] and config["resize"] else config["input_size"]


def open_frames(source: str | int | Path) -> tuple[Iterator[Tensor], float]:
    """Decoded RGB frames, uint8 (3, H, W), of a video file or a camera (an index), and the frame rate.

    Cameras are opened with PyAV: ``/dev/video{N}`` (v4l2) on Linux, ``N`` (avfoundation) on macOS.
    """
    camera = isinstance(source, int) or (isinstance(source, str) and source.isdigit())
    if not camera and not Path(source).is_file():
        raise FileNotFoundError(f"video {str(source)!r} does not exist")
    try:
        if not camera:
            container = av.open(str(source))
        elif Path(f"/dev/video{int(source)}").exists():
            container = av.open(f"/dev/video{int(source)}", format="v4l2")
        else:
            container = av.open(str(int(source)), format="avfoundation")
    except (av.FFmpegError, ValueError) as error:
        hint = " (cameras are /dev/videoN with v4l2 on Linux, avfoundation on macOS)" if camera else ""
        kind = "camera" if camera else "video"
        raise ValueError(f"cannot open {kind} {source!r}: {_one_line(error)}{hint}") from None
    if not container.streams.video:
        container.close()
        raise ValueError(f"{source!r} has no video stream")
    stream = container.streams.video[0]
    fps = float(stream.average_rate or stream.guessed_rate or 0) or 25.0

    def frames() -> Iterator[Tensor]:
        try:
            for frame in container.decode(stream):
                yield torch.from_numpy(frame_to_rgb(frame)).permute(2, 0, 1)
        except av.FFmpegError as error:
            raise ValueError(f"decoding {source!r} failed: {_one_line(error)}") from None
        finally:
            container.close()

    return frames(), fps


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
    data_config: dict[str, Any],
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
