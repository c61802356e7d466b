"""Which frames a clip uses: TSN uniform segment sampling, twice_sample and dense (I3D-style) sampling.

Indices are 0-based frame positions. The formulas are those of the reference implementation:

- uniform, train: ``avg = n // T``; frame ``i*avg + randint(avg)`` from each segment.
- uniform, test: ``tick = n / T``; frame ``int(tick/2 + tick*i)`` (the segment centre);
  ``twice_sample`` adds a second clip at ``int(tick*i)`` (the segment start).
- dense: a 64-frame window with stride ``64 // T``, indices wrap modulo ``n``; train draws the window
  start in ``[0, n - 64)``, test uses ``num_clips`` starts ``linspace(0, n - 64, num_clips)``.

Videos shorter than ``T`` frames (``n < T``): both modes return the evenly spread, repeating
``int(n/T/2 + n/T*i)`` (the reference returns all zeros there, MMAction2 spreads them too).
"""

from __future__ import annotations

import numpy as np
import torch

from tsm.data.config import DataConfig

DENSE_WINDOW = 64


def _randint(high: int, size: int, rng: torch.Generator | None) -> list[int]:
    return torch.randint(high, (size,), generator=rng).tolist()


def _check(num_frames: int, num_segments: int) -> None:
    if num_frames < 1:
        raise ValueError(f"cannot sample from a video with {num_frames} frames (empty or unreadable)")
    if num_segments < 1:
        raise ValueError(f"num_segments must be >= 1, got {num_segments}")


def _centres(num_frames: int, num_segments: int) -> list[int]:
    tick = num_frames / num_segments
    return [int(tick / 2.0 + tick * i) for i in range(num_segments)]


def segment_indices(
    num_frames: int,
    num_segments: int,
    train: bool,
    rng: torch.Generator | None = None,
    twice_sample: bool = False,
) -> list[int]:
    """TSN uniform sampling: one frame per segment (random in training, centre in test).

    ``twice_sample`` (test only) returns ``2 * num_segments`` indices: the centre clip then the
    segment-start clip. ``rng`` is a ``torch.Generator``; None uses torch's global generator, which
    DataLoader seeds differently in every worker.
    """
    _check(num_frames, num_segments)
    if twice_sample and train:
        raise ValueError("twice_sample is a test-time option; set train=False or twice_sample=False")
    if num_frames < num_segments:
        indices = _centres(num_frames, num_segments)
        return indices * 2 if twice_sample else indices
    if train:
        average = num_frames // num_segments
        offsets = _randint(average, num_segments, rng)
        return [i * average + offset for i, offset in enumerate(offsets)]
    indices = _centres(num_frames, num_segments)
    if twice_sample:
        tick = num_frames / num_segments
        indices += [int(tick * i) for i in range(num_segments)]
    return indices


def dense_indices(
    num_frames: int,
    num_segments: int,
    train: bool,
    rng: torch.Generator | None = None,
    num_clips: int = 10,
    window: int = DENSE_WINDOW,
) -> list[int]:
    """Dense sampling: ``num_segments`` frames with stride ``window // num_segments`` from a
    ``window``-frame window, wrapping modulo ``num_frames``. Test returns ``num_clips`` clips
    (``num_clips * num_segments`` indices) with window starts ``linspace(0, n - window, num_clips)``."""
    _check(num_frames, num_segments)
    if window < num_segments:
        raise ValueError(f"dense window {window} is shorter than num_segments {num_segments}")
    stride = window // num_segments
    last_start = max(0, num_frames - window)
    if train:
        # As the reference: start in [0, n - window) (exclusive), 0 for videos up to one window.
        starts = _randint(last_start, 1, rng) if last_start > 0 else [0]
    else:
        if num_clips < 1:
            raise ValueError(f"num_clips must be >= 1, got {num_clips}")
        starts = np.linspace(0, last_start, num=num_clips, dtype=int).tolist()
    return [(start + i * stride) % num_frames for start in starts for i in range(num_segments)]


def clip_indices(
    num_frames: int, config: DataConfig, train: bool, rng: torch.Generator | None = None
) -> tuple[list[int], int]:
    """Frame indices for one sample under a data config, and how many clips they hold.

    Uses ``num_segments``, ``sampling`` ("uniform" or "dense"), ``twice_sample``, ``test_clips``
    and ``dense_window`` of ``config``.
    """
    num_segments = config.num_segments
    if config.sampling == "dense":
        indices = dense_indices(
            num_frames, num_segments, train, rng, num_clips=config.test_clips, window=config.dense_window
        )
    else:
        indices = segment_indices(num_frames, num_segments, train, rng, config.twice_sample and not train)
    return indices, len(indices) // num_segments


__all__ = ["DENSE_WINDOW", "clip_indices", "dense_indices", "segment_indices"]
