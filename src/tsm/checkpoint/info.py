"""``CheckpointInfo``: what a checkpoint said about itself, and where each model setting came from."""

from __future__ import annotations

from dataclasses import dataclass, field

from tsm.data import DataConfig
from tsm.models import ModelConfig


@dataclass
class CheckpointInfo:
    """What a checkpoint said about itself, and how each setting was obtained."""

    format: str
    model_config: ModelConfig
    class_names: list[str] | None = None
    data_config: DataConfig = field(default_factory=DataConfig)
    written_by: str | None = None
    notes: list[str] = field(default_factory=list)
    # Where each model setting came from (e.g. "weights: 3-4-6-3 bottleneck blocks", "argument").
    sources: dict[str, str] = field(default_factory=dict)
    # How the publisher averages the scores of test views: "logits" (the reference, tsm) or
    # "softmax" (MMAction2's average_clips='prob'); Predictor follows it unless told otherwise.
    view_average: str = "logits"
