"""Clip features under the frozen base network, computed once per clip and kept.

A Recognizer's clip logits are ``new_fc(mean over frames of base_model(frame))`` (the mean of the
per-frame logits of a linear head), so the mean feature of a clip's T frames is all a new
classifier needs: training it on cached features gives exactly the model that the base network
plus that classifier is, with no pass through the network per step.

The features are those of the base with an identity classifier (:func:`feature_model`), run by a
clip engine of the engine table (``engine="auto"``: ONNX Runtime on the CPU, about 8x PyTorch's
speed for MobileNetV2 on 2 busy cores), exported once per base into the export cache.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from tsm.apps.teach.settings import FitSettings
from tsm.data import DataConfig, EvalPipeline, TrainPipeline, probe, read_frames, segment_indices
from tsm.inference import DEFAULT_ENGINE, ClipEngine, clip_engine
from tsm.models import Recognizer


@dataclass(frozen=True)
class ClipFeatures:
    """A clip's mean features: ``views`` augmented training views (V, D) and the test view (D,)."""

    train: Tensor
    test: Tensor

    def examples(self, views: int | None = None) -> Tensor:
        """What a classifier trains on: the test view and the first ``views`` augmented views (all
        when None), (1 + V, D). The test view is the one the clip is judged on; without it among
        the examples, a classifier of few clips may learn the augmentation's offset instead."""
        return torch.cat([self.test[None], self.train[:views]])


def feature_model(base: Recognizer) -> Recognizer:
    """``base`` with an identity classifier: its clip "logits" are the clip's mean features."""
    model = copy.deepcopy(base).eval()
    width = base.new_fc.in_features
    model.new_fc = nn.Linear(width, width)
    with torch.no_grad():
        model.new_fc.weight.copy_(torch.eye(width))
        model.new_fc.bias.zero_()
    model.config = model.config.replace(num_classes=width, dropout=0.0)
    return model


def _seed(*parts: object) -> int:
    """A seed from ``parts`` that is the same in every process (Python's hash() is not)."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little") & (2**63 - 1)


def _pixel_digest(frames: Tensor) -> str:
    """The sha256 of a clip's decoded frames: what seeds its views, whatever its file's name,
    folder or container (an mp4 records when it was written)."""
    return hashlib.sha256(frames.contiguous().numpy().tobytes()).hexdigest()


class FeatureCache:
    """Features of clips under ``base``'s frozen network (eval mode: BatchNorm statistics as
    trained), for the pipeline ``data_config``; computed once per clip file (its path, size and
    modification time) and kept, so a run after new recordings only computes the new clips.

    Training views: ``settings.views`` per clip, each with random frames in each of the T
    segments (TSN sampling) and the data config's training crop (multi-scale, TSN's); the test
    view: the segment centres and the centre crop, as ``tsm test`` sees the clip. Views are
    seeded by the clip's pixels, so a clip's features are the same in every run. ``engine``,
    ``threads``: what runs the network (an engine name of the engine table).
    """

    def __init__(
        self,
        base: Recognizer,
        data_config: DataConfig,
        settings: FitSettings,
        engine: str = DEFAULT_ENGINE,
        threads: int | None = None,
    ) -> None:
        self.base = base.eval()
        self.settings = settings
        self.engine_name = engine
        self.threads = threads
        self._engine: ClipEngine | None = None
        self._engine_lock = threading.Lock()
        self.config = data_config.replace(
            num_segments=base.num_segments, train_pipeline="multiscale_crop", flip=settings.flip,
            flip_label_map=None, test_views="center", twice_sample=False, sampling="uniform",
        )  # fmt: skip
        self.train_pipeline = TrainPipeline(self.config)
        self.test_pipeline = EvalPipeline(self.config)
        self._kept: dict[tuple[str, int, int], ClipFeatures] = {}
        self._lock = threading.Lock()

    @property
    def feature_dim(self) -> int:
        return self.base.new_fc.in_features

    def engine(self) -> ClipEngine:
        """The clip engine of the feature model, made (exported, for a runtime of files) at the
        first call for the frame sizes of the views; later calls wait for it."""
        with self._engine_lock:
            if self._engine is None:
                device = next(self.base.parameters()).device
                model = feature_model(self.base)
                engine = clip_engine(model, self.engine_name, device=device, threads=self.threads)
                for size in {self.config.input_size, self.config.test_crop_size}:
                    engine(torch.zeros(1, self.config.num_segments, 3, size, size, device=device))
                self._engine = engine
            return self._engine

    def clip_views(self, path: Path) -> list[Tensor]:
        """The training views then the test view of the clip at ``path``, each (T, 3, S, S); the
        views are seeded by the clip's pixels."""
        frames = read_frames(path, range(probe(path).num_frames))
        count, segments, seed = frames.shape[0], self.config.num_segments, _pixel_digest(frames)
        views = []
        with torch.random.fork_rng(devices=[]):  # the crops draw from torch's global generator
            for view in range(self.settings.views):
                torch.manual_seed(_seed(self.settings.seed, seed, view))
                indices = segment_indices(count, segments, train=True)
                views.append(self.train_pipeline(frames[indices], 0)[0])
        centres = segment_indices(count, segments, train=False)
        views.append(self.test_pipeline(frames[centres], 0)[0][0])
        return views

    @torch.inference_mode()
    def features(self, path: Path) -> ClipFeatures:
        """The clip's features (computed now, or kept from before); a missing or unreadable file
        raises FileNotFoundError or :class:`tsm.data.VideoReadError`."""
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if key in self._kept:
                return self._kept[key]
        *train, test = self.clip_views(path)
        engine = self.engine()
        train_features = engine(torch.stack(train).to(engine.device)).float().cpu()
        found = ClipFeatures(train_features, engine(test[None].to(engine.device))[0].float().cpu())
        with self._lock:
            self._kept[key] = found
        return found

    def forget_others(self, paths: set[Path]) -> None:
        """Drop the features of every clip file but ``paths`` (deleted or replaced clips)."""
        names = {str(path) for path in paths}
        with self._lock:
            self._kept = {key: value for key, value in self._kept.items() if key[0] in names}
