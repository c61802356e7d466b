"""Top-k classes of whole videos with a trained model, its class names and its test pipeline."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tsm.checkpoint import CheckpointInfo
from tsm.data import TEST_VIEWS, DataConfig, as_data_config, load_clip
from tsm.errors import one_line
from tsm.export import DEFAULT_ONNX_EXPORTER, OnnxExporter
from tsm.inference.engine_api import DEFAULT_WORKLOAD, ClipEngine, Workload
from tsm.inference.engines import DEFAULT_ENGINE, clip_engine, is_exported_file
from tsm.inference.precision import Precision
from tsm.inference.prefetch import prefetched
from tsm.inference.sources import exported_info, open_model
from tsm.models import VIEW_AVERAGES, Recognizer, ViewAverage, average_views

PREFETCH_VIDEOS = 2  # videos decoded ahead of the engine by Predictor.predict
# What a video that cannot be read (or run) raises: it gets an error line, the others go on.
READ_ERRORS = (OSError, ValueError, RuntimeError, IndexError)


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
) -> DataConfig:
    """The checkpoint's test pipeline, with the model's T and the asked views.

    ``views``: crops per clip, ``"center"``, ``"three"`` or ``"ten"``. ``clips``: 1 (uniform), 2
    (uniform plus the segment-start clip, ``twice_sample``) or, for dense sampling, any count.
    """
    # The model's T decides, not a second copy of it.
    config = as_data_config(info.data_config if info is not None else None, num_segments=num_segments)
    changes: dict[str, Any] = {}
    if views is not None:
        if views not in TEST_VIEWS:
            raise ValueError(f"unknown views {views!r}: use one of {', '.join(TEST_VIEWS)}")
        changes["test_views"] = views
    if clips is not None:
        if config.sampling == "dense":
            changes["num_clips"] = clips
        elif clips in (1, 2):
            changes["twice_sample"] = clips == 2
        else:
            raise ValueError(
                f"uniform sampling takes 1 or 2 clips per video, not {clips}; dense sampling "
                "(data config sampling='dense') takes any number"
            )
    return config.replace(**changes)


class Predictor:
    """Top-k classes of whole videos with a trained model and its test pipeline.

    ``Predictor.from_checkpoint(path)`` reads the model, class names and data config from any
    checkpoint :func:`tsm.load_checkpoint` reads, or from an exported file (a clip model, or a
    streaming step, which runs each clip frame by frame). ``engine``: "auto" (the default
    everywhere), "torch", "onnxruntime", ... (see :func:`~tsm.inference.clip_engine`; a
    Recognizer is exported once at the test crop size for a runtime that runs files). Scores of
    all views (clips x crops) are averaged as logits (``average="logits"``, the reference's way)
    or as softmax probabilities (``"softmax"``, MMAction2's); by default as the checkpoint's
    publisher does (``CheckpointInfo.view_average``). ``precision`` ("fp32", "bf16", "auto") and
    ``workload``: see :func:`~tsm.inference.clip_engine`.
    """

    def __init__(
        self,
        model: Recognizer | str | Path | ClipEngine,
        info: CheckpointInfo | None = None,
        views: str | None = None,
        clips: int | None = None,
        topk: int = 5,
        average: ViewAverage | None = None,
        device: str | torch.device = "cpu",
        engine: str = DEFAULT_ENGINE,
        threads: int | None = None,
        onnx_exporter: OnnxExporter = DEFAULT_ONNX_EXPORTER,
        cache_dir: str | Path | None = None,
        precision: Precision = "fp32",
        workload: Workload = DEFAULT_WORKLOAD,
    ) -> None:
        if info is None and is_exported_file(model):
            info = exported_info(model)
        if average is None:  # the checkpoint publisher's way
            average = info.view_average if info is not None else "logits"
        if average not in VIEW_AVERAGES:
            raise ValueError(f"average must be 'logits' or 'softmax', got {average!r}")
        if topk < 1:
            raise ValueError(f"topk must be at least 1, got {topk}")
        size = None  # an exported file or an engine has its own
        if isinstance(model, Recognizer):
            size = prediction_data_config(info, model.num_segments, views, clips).test_crop_size
        self.engine = clip_engine(
            model, engine, size, device, threads, onnx_exporter, cache_dir, precision, workload
        )
        self.data_config = prediction_data_config(info, self.engine.num_segments, views, clips)
        _check_frame_size(self.engine, self.data_config.test_crop_size)
        self.device = self.engine.device
        self.class_names = class_names_of(info, self.engine.num_classes)
        self.topk = min(topk, self.engine.num_classes)
        self.average = average

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, **options: Any) -> Predictor:
        """Load ``checkpoint`` (any format :func:`tsm.load_checkpoint` reads, or an exported file)
        and wrap it."""
        model, info = open_model(checkpoint)
        return cls(model, info, **options)

    def views(self, video: str | Path) -> Tensor:
        """The test views of one video (V, T, 3, S, S): decoded, sampled, preprocessed."""
        return load_clip(video, self.data_config)

    @torch.inference_mode()
    def scores_of_views(self, views: Tensor) -> Tensor:
        """Class probabilities (K,) of one video's test views, averaged over them."""
        scores = average_views(self.engine(views.to(self.device)).unsqueeze(0), self.average)[0]
        return (scores if self.average == "softmax" else scores.softmax(dim=0)).cpu()

    def scores(self, video: str | Path) -> Tensor:
        """Class probabilities (K,) of one video, averaged over the test views."""
        return self.scores_of_views(self.views(video))

    def _prediction(self, video: str | Path, probabilities: Tensor) -> Prediction:
        top = probabilities.topk(self.topk)
        return Prediction(
            path=str(video),
            classes=[self.class_names[i] for i in top.indices.tolist()],
            scores=top.values.tolist(),
            views=self.data_config.views_per_sample,
        )

    def predict_video(self, video: str | Path) -> Prediction:
        """The top-k classes of one video; raises on unreadable files."""
        return self._prediction(video, self.scores(video))

    def predict(self, videos: Iterable[str | Path], prefetch: int = PREFETCH_VIDEOS) -> list[Prediction]:
        """Predictions for many videos; a file that cannot be read gets an ``error``, not an exception.
        The next ``prefetch`` videos are decoded and preprocessed on another thread while the
        engine runs (:func:`~tsm.inference.prefetch.prefetched`; 0: in turn, on this thread)."""

        def loaded() -> Iterator[tuple[str | Path, Tensor | None, str | None]]:
            for video in videos:
                try:
                    yield video, self.views(video), None
                except READ_ERRORS as error:
                    yield video, None, one_line(error)

        predictions = []
        for video, views, error in prefetched(loaded(), prefetch):
            if views is not None:
                try:
                    predictions.append(self._prediction(video, self.scores_of_views(views)))
                    continue
                except READ_ERRORS as failure:
                    error = one_line(failure)
            predictions.append(Prediction(path=str(video), error=error))
        return predictions


def _check_frame_size(engine: ClipEngine, crop: int) -> None:
    """An exported file is made for one frame size: it must be the test pipeline's crop."""
    size = engine.frame_size
    if size is not None and tuple(size) != (crop, crop):
        raise ValueError(
            f"the exported model takes {size[0]}x{size[1]} frames but the test pipeline crops {crop}x{crop}; "
            "export it at that size (tsm export --size) or keep the pipeline's views"
        )


def predict(videos: Sequence[str | Path], checkpoint: str | Path, **options: Any) -> list[Prediction]:
    """Top-k classes of each video with a checkpoint; see :class:`Predictor` for ``options``."""
    return Predictor.from_checkpoint(checkpoint, **options).predict(videos)
