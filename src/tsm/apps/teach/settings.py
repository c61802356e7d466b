"""The typed settings of teaching: what a project accepts (:class:`TeachLimits`) and how a run
fine-tunes (:class:`FitSettings`), each checked once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


def _check_positive(owner: str, name: str, value: object, kind: type = int) -> None:
    if isinstance(value, bool) or not isinstance(value, kind | int) or not value > 0:
        raise ValueError(f"{owner}: {name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class TeachLimits:
    """What a teach project takes, so that a page left open cannot fill the disk.

    Attributes:
        max_clip_seconds: the longest clip; a longer one is refused (a recording is 3 s by default).
        max_clips: clips in the project, all classes together.
        max_classes: classes in the project.
        max_disk_mb: the project's clips, thumbnails, models and downloads together.
        fps: the frame rate clips are stored at (frames are picked by their time stamps, so a
            recording's uneven frame times become even).
    """

    max_clip_seconds: float = 10.0
    max_clips: int = 300
    max_classes: int = 20
    max_disk_mb: int = 2000
    fps: int = 15

    def __post_init__(self) -> None:
        _check_positive("teach limits", "max_clip_seconds", self.max_clip_seconds, float)
        for name in ("max_clips", "max_classes", "max_disk_mb", "fps"):
            _check_positive("teach limits", name, getattr(self, name))


@dataclass(frozen=True)
class FitSettings:
    """How a run fine-tunes the base: the network stays frozen, each clip's features are computed
    once per view and cached, and a new classifier is trained on them (docs/teach.md says how the
    defaults were chosen).

    Attributes:
        views: augmented views per training clip (random frames in each segment, a random
            multi-scale crop): the few clips a person records become ``views`` times as many
            examples.
        steps: full-batch optimizer steps of the classifier (AdamW on standardised features).
        lr, weight_decay: of those steps.
        held_out: the share of each class's clips kept out of training to measure the accuracy
            shown (at least one clip of every class that has two); the served model is then
            trained on all clips.
        flip: mirror views; off by default, since mirroring turns "swipe left" into "swipe right".
        seed: of the split and the views.
    """

    views: int = 4
    steps: int = 200
    lr: float = 0.01
    weight_decay: float = 0.0
    held_out: float = 0.2
    flip: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("views", "steps"):
            _check_positive("fit settings", name, getattr(self, name))
        _check_positive("fit settings", "lr", self.lr, float)
        if not self.weight_decay >= 0:
            raise ValueError(f"fit settings: weight_decay must be >= 0, got {self.weight_decay!r}")
        if not 0 <= self.held_out < 1:
            raise ValueError(f"fit settings: held_out must be a share in [0, 1), got {self.held_out!r}")


@dataclass(frozen=True)
class TeachOptions:
    """Teach mode of ``tsm serve``: the project folder, its limits and how runs fine-tune."""

    folder: Path
    limits: TeachLimits = field(default_factory=TeachLimits)
    fit: FitSettings = field(default_factory=FitSettings)

    def __post_init__(self) -> None:
        object.__setattr__(self, "folder", Path(self.folder))
