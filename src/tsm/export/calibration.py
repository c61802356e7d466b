"""Real decoded clips for int8 calibration and its check, through the checkpoint's test pipeline.

A source is a list file or a class-folder root (what ``--data.train`` takes). Clips are read
lazily, one centre view per video; a video that cannot be read is skipped and counted. For a
streaming step, calibration inputs are the clip's frames one by one with the recurrent caches the
fp32 step produced for the frames before, so the cache inputs see real statistics.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tsm.data import DataConfig, FailedSample, VideoDataset, as_data_config
from tsm.models import Recognizer, StreamingStep

SELECTION_SEED = 0  # calibration clips are drawn from the source in a fixed shuffled order


def single_view_config(
    data_config: DataConfig | Mapping[str, Any] | None, num_segments: int, size: int
) -> DataConfig:
    """The test pipeline with one clip and one centre crop of ``size`` (what the file takes)."""
    config = as_data_config(data_config, num_segments=num_segments)
    clips = {"num_clips": 1} if config.sampling == "dense" else {"twice_sample": False}
    return config.replace(input_size=size, full_res=False, test_views="center", **clips)


def open_source(source: str | Path, config: DataConfig) -> VideoDataset:
    """The videos of a list file or a class-folder root; a missing or unreadable source raises
    FileNotFoundError or ValueError, a bad video in it is marked (skipped later)."""
    return VideoDataset(source, data_config=config, train=False)


def shuffled(count: int) -> list[int]:
    """A fixed shuffled order of ``count`` records (calibration clips spread over the classes)."""
    return torch.randperm(count, generator=torch.Generator().manual_seed(SELECTION_SEED)).tolist()


class ClipReader:
    """Reads clips ``(T, 3, S, S)`` and labels from a dataset in a given order, skipping bad videos."""

    def __init__(self, dataset: VideoDataset, order: Sequence[int], limit: int | None = None) -> None:
        self.dataset = dataset
        self.order = list(order)
        self.limit = limit
        self.used: list[int] = []  # dataset indices of the clips handed out
        self.skipped: list[FailedSample] = []

    def __iter__(self) -> Iterator[tuple[Tensor, int]]:
        for index in self.order:
            if self.limit is not None and len(self.used) >= self.limit:
                return
            sample = self.dataset[index]
            if isinstance(sample, FailedSample):
                self.skipped.append(sample)
                continue
            self.used.append(index)
            yield sample.clip[0], sample.label  # the one view


@torch.no_grad()
def calibration_inputs(model: Recognizer, clips: ClipReader, streaming: bool) -> list[tuple[Tensor, ...]]:
    """The inputs a calibrator runs, all made before it starts (a calibrating session may spin
    its threads between runs, which would starve PyTorch computing caches in between).

    A clip model gets each clip as one input; a streaming step gets every frame of the clip with
    the caches the fp32 step left after the previous frames (zeros at the first).
    """
    stepper = StreamingStep(model.eval()) if streaming else None
    inputs: list[tuple[Tensor, ...]] = []
    for clip, _ in clips:
        if stepper is None:
            inputs.append((clip.unsqueeze(0),))
            continue
        caches: list[Tensor] = []  # none: a new stream (zeros)
        for frame in clip:
            _, *new_caches = stepper(frame.unsqueeze(0), *caches)
            inputs.append((frame.unsqueeze(0), *(caches or map(torch.zeros_like, new_caches))))
            caches = new_caches
    return inputs
