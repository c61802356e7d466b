"""Fine-tuning a base on a few clips per class: a new classifier on the frozen network's cached clip
features, its accuracy measured on held-out clips, then trained on every clip."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from tsm.apps.teach.features import ClipFeatures, FeatureCache
from tsm.apps.teach.settings import FitSettings
from tsm.data import VideoReadError
from tsm.models import Recognizer


class RunCancelled(Exception):
    """The run was asked to stop (the server is shutting down)."""


@dataclass(frozen=True)
class LabelledClip:
    """A clip file and its class's index."""

    path: Path
    label: int


@dataclass
class FitProgress:
    """Where a run stands, updated as it goes (read by the status endpoint)."""

    phase: str = "preparing"  # then "features", "training", "switching", and "done" or "failed"
    clips_done: int = 0
    clips_total: int = 0
    loss: float | None = None
    held_out_accuracy: float | None = None
    feature_seconds_per_clip: float | None = None


@dataclass(frozen=True)
class FitResult:
    """The taught model and what its run measured."""

    model: Recognizer
    class_names: list[str]
    held_out_accuracy: float | None  # None when no class had a clip to hold out
    held_out_clips: int
    train_clips: int
    losses: list[float] = field(repr=False)  # the final training's loss, every tenth step
    skipped: list[str]  # clips that could not be read: "path: reason"
    feature_seconds: float
    train_seconds: float


def held_out_split(labels: Sequence[int], share: float, seed: int) -> tuple[list[int], list[int]]:
    """Positions of the training and the held-out clips: ``share`` of each class (rounded), at
    least one of every class of two or more clips when ``share`` > 0, never all of a class."""
    generator = torch.Generator().manual_seed(seed)
    train, held = [], []
    for label in sorted(set(labels)):
        members = [i for i, value in enumerate(labels) if value == label]
        members = [members[i] for i in torch.randperm(len(members), generator=generator).tolist()]
        count = min(max(round(share * len(members)), 1 if share > 0 else 0), len(members) - 1)
        held += members[:count]
        train += members[count:]
    return sorted(train), sorted(held)


def fit_classifier(
    features: Tensor,
    labels: Tensor,
    num_classes: int,
    settings: FitSettings,
    on_loss: Callable[[float], None] | None = None,
) -> tuple[nn.Linear, list[float]]:
    """A linear classifier (D -> K) trained full-batch on ``features`` (N, D): AdamW on
    standardised features (the standardisation is folded into the returned layer), classes
    weighted by their inverse frequency. Returns it and the loss every tenth step."""
    generator = torch.Generator().manual_seed(settings.seed)
    mean, std = features.mean(dim=0), features.std(dim=0, unbiased=False).clamp_min(1e-6)
    inputs = (features - mean) / std
    counts = torch.bincount(labels, minlength=num_classes).to(features.dtype)
    weights = counts.sum() / (num_classes * counts.clamp_min(1))
    layer = nn.Linear(features.shape[1], num_classes, dtype=features.dtype)
    with torch.no_grad():
        layer.weight.normal_(0, 0.01, generator=generator)
        layer.bias.zero_()
    optimizer = torch.optim.AdamW(layer.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    losses = []
    with torch.enable_grad():
        for step in range(settings.steps):
            loss = nn.functional.cross_entropy(layer(inputs), labels, weight=weights)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step % 10 == 0 or step == settings.steps - 1:
                losses.append(round(loss.item(), 5))
                if on_loss is not None:
                    on_loss(losses[-1])
    with torch.no_grad():  # layer(standardised x) == folded(x)
        folded = nn.Linear(features.shape[1], num_classes, dtype=features.dtype)
        folded.weight.copy_(layer.weight / std)
        folded.bias.copy_(layer.bias - (layer.weight * mean / std).sum(dim=1))
    return folded, losses


def taught_model(base: Recognizer, classifier: nn.Linear) -> Recognizer:
    """A copy of ``base`` whose classifier is ``classifier`` (and whose class count is its)."""
    model = copy.deepcopy(base).eval()
    model.config = model.config.replace(num_classes=classifier.out_features)
    model.new_fc = copy.deepcopy(classifier)
    return model


def _all_features(
    clips: Sequence[LabelledClip],
    cache: FeatureCache,
    progress: FitProgress,
    cancelled: Callable[[], bool],
) -> tuple[list[int], list[ClipFeatures], list[str]]:
    """Every readable clip's features (the positions kept, their features) and the skipped clips."""
    kept, found, skipped = [], [], []
    started = time.perf_counter()
    for position, clip in enumerate(clips):
        if cancelled():
            raise RunCancelled
        try:
            found.append(cache.features(clip.path))
        except (FileNotFoundError, VideoReadError) as error:  # deleted or damaged meanwhile: skip it
            skipped.append(f"{clip.path.name}: {error}")
        else:
            kept.append(position)
        progress.clips_done = position + 1
        progress.feature_seconds_per_clip = (time.perf_counter() - started) / (position + 1)
    return kept, found, skipped


def training_set(features: Sequence[ClipFeatures], labels: Sequence[int]) -> tuple[Tensor, Tensor]:
    """The examples of clips (:meth:`ClipFeatures.examples`) and their labels, as a classifier
    trains on them: (N * (1 + V), D) and (N * (1 + V),)."""
    examples = [clip.examples() for clip in features]
    inputs = torch.cat(examples)
    return inputs, torch.tensor(labels).repeat_interleave(torch.tensor([len(e) for e in examples]))


def _accuracy(classifier: nn.Linear, features: Tensor, labels: Tensor) -> float:
    with torch.no_grad():
        return (classifier(features).argmax(dim=1) == labels).float().mean().item()


def fine_tune(
    base: Recognizer,
    clips: Sequence[LabelledClip],
    class_names: Sequence[str],
    cache: FeatureCache,
    settings: FitSettings,
    progress: FitProgress | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> FitResult:
    """Teach ``base`` the classes of ``clips``: features of every clip (cached), a classifier
    trained without the held-out clips to measure their accuracy, then one trained on all clips
    for the model returned. Unreadable clips are skipped and listed."""
    progress = progress or FitProgress()
    progress.clips_total = len(clips)
    started = time.perf_counter()
    progress.phase = "preparing"
    cache.engine()  # the first run of a base exports its network for the engine (then it is cached)
    progress.phase = "features"
    kept, found, skipped = _all_features(clips, cache, progress, cancelled)
    labels = [clips[position].label for position in kept]
    missing = [name for index, name in enumerate(class_names) if index not in labels]
    if missing:
        raise ValueError(f"no readable clip of {', '.join(missing)}: record some again")
    feature_seconds = time.perf_counter() - started
    progress.phase = "training"
    train, held = held_out_split(labels, settings.held_out, settings.seed)
    accuracy = None
    if held:
        inputs, targets = training_set([found[i] for i in train], [labels[i] for i in train])
        classifier, _ = fit_classifier(inputs, targets, len(class_names), settings)
        held_features = torch.stack([found[i].test for i in held])
        accuracy = _accuracy(classifier, held_features, torch.tensor([labels[i] for i in held]))
        progress.held_out_accuracy = accuracy
    if cancelled():
        raise RunCancelled

    def on_loss(loss: float) -> None:
        progress.loss = loss

    inputs, targets = training_set(found, labels)
    classifier, losses = fit_classifier(inputs, targets, len(class_names), settings, on_loss)
    return FitResult(
        model=taught_model(base, classifier),
        class_names=list(class_names),
        held_out_accuracy=accuracy,
        held_out_clips=len(held),
        train_clips=len(train),
        losses=losses,
        skipped=skipped,
        feature_seconds=round(feature_seconds, 2),
        train_seconds=round(time.perf_counter() - started - feature_seconds, 2),
    )


def estimated_seconds_left(progress: FitProgress, export_seconds: float) -> float | None:
    """Seconds until the run ends: the clips left at the measured rate, then the classifier and
    the export (``export_seconds``, measured by the previous run or guessed)."""
    rate = progress.feature_seconds_per_clip
    if rate is None:
        return None
    left = (progress.clips_total - progress.clips_done) * rate if progress.phase == "features" else 0.0
    return math.ceil(left + export_seconds)
