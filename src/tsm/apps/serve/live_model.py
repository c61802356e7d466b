"""The model a running server answers with, and switching it without a restart.

:class:`LiveModel` is what the batcher's worker thread runs for the streams (the slot runner, the
frame transform, the class names); :class:`ModelSwitch` holds the served model and replaces it,
together with the uploads' predictor, between two engine calls on that worker thread: streams in
flight keep their connections, and their next frames start afresh on the new model.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor

from tsm.apps.serve.batch_policy import BatchPolicy
from tsm.apps.serve.served_model import ServedModel
from tsm.apps.serve.settings import ServeSettings
from tsm.apps.serve.step_runner import StepRunner
from tsm.apps.serve.window_runner import WindowRunner
from tsm.data import frame_transform
from tsm.inference import Predictor

_VERSIONS = itertools.count()


class SlotRunner(Protocol):
    """Per-slot model state and one batched call (:class:`StepRunner`, :class:`WindowRunner`)."""

    def clear(self, rows: Sequence[int]) -> None: ...

    def run(self, rows: Sequence[int], frames: Tensor) -> list[Tensor | None]: ...


@dataclass(frozen=True)
class LiveModel:
    """One served model as the streams' worker runs it; ``version`` tells replies of one model
    from those of the next, ``info`` is what ``GET /info`` says about it."""

    runner: SlotRunner
    transform: Callable[[Tensor], Tensor]
    class_names: list[str]
    device: torch.device
    info: dict[str, Any]
    version: int = field(default_factory=lambda: next(_VERSIONS))


def describe(served: ServedModel, settings: ServeSettings) -> dict[str, Any]:
    """What ``GET /info`` answers about ``served`` under ``settings``."""
    info = {**served.describe(), "max_streams": settings.max_streams}
    if served.kind == "clip":
        info["every"] = settings.every or served.engine.num_segments
        info["offline_reason"] = served.offline_reason
    return info


def live_model(served: ServedModel, settings: ServeSettings) -> LiveModel:
    """``served`` ready for the streams: a cache row per slot (online models) or a window per
    slot (offline models), all empty."""
    if served.kind == "stream":
        runner: SlotRunner = StepRunner(served.engine, settings.max_streams)
    else:
        every = settings.every or served.engine.num_segments
        runner = WindowRunner(served.engine, settings.max_streams, served.frame_size, every, served.device)
    transform = frame_transform(served.data_config)
    return LiveModel(runner, transform, served.class_names, served.device, describe(served, settings))


class Installer(Protocol):
    """What runs a function on the model's worker thread (:class:`StreamBatcher`), with the model
    it runs and the batch policy it measures on that model."""

    live: LiveModel
    policy: BatchPolicy

    async def in_worker(self, function: Callable[..., Any], *args: Any) -> Any: ...


class PredictorHolder(Protocol):
    """What answers uploads with a predictor it holds (:class:`UploadPredictor`)."""

    predictor: Predictor


class ModelSwitch:
    """The served model of an app; :meth:`switch` replaces it for the streams, the uploads and
    ``/info`` at once, on the worker thread between two engine calls."""

    def __init__(
        self, served: ServedModel, batcher: Installer, uploads: PredictorHolder, settings: ServeSettings
    ) -> None:
        self.current = served
        self.batcher = batcher
        self.uploads = uploads
        self.settings = settings

    def info(self) -> dict[str, Any]:
        """``GET /info``: the current model, and how its calls are batched."""
        return {**self.batcher.live.info, "batching": self.batcher.policy.describe()}

    async def switch(self, served: ServedModel) -> None:
        """Serve ``served`` from the next engine call on: every stream starts afresh on it (its
        replies say so first, with the new model's ``/info``), uploads run on it."""
        live = live_model(served, self.settings)
        predictor = Predictor(served.uploads, served.info)
        await self.batcher.in_worker(self._install, served, live, predictor)

    def _install(self, served: ServedModel, live: LiveModel, predictor: Predictor) -> None:
        self.batcher.live = live
        self.batcher.policy = BatchPolicy(self.settings.max_batch)  # costs measured on the new engine
        self.uploads.predictor = predictor
        self.current = served
