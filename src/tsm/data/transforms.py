"""Video transforms on torchvision.transforms.v2 for clips (T, C, H, W): one crop for all frames.

``MultiScaleCrop`` is TSN's training crop: a square-ish crop whose sides are picked from
``scales`` x short side (at most ``max_distort`` scale steps apart, so the aspect changes at most
one step), placed at one of 13 fixed positions, then resized to ``size``. ``ThreeCrop`` gives the
left/centre/right (or top/centre/bottom) test views.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

TSN_SCALES = (1.0, 0.875, 0.75, 0.66)


def fixed_crop_offsets(width: int, height: int, crop_width: int, crop_height: int) -> list[tuple[int, int]]:
    """The 13 (left, top) crop positions of TSN: 4 corners, centre, then the 4 edge midpoints and
    the 4 quarter points, on a grid with steps of a quarter of the free space."""
    step_w, step_h = (width - crop_width) // 4, (height - crop_height) // 4
    grid = [(0, 0), (4, 0), (0, 4), (4, 4), (2, 2)]
    grid += [(0, 2), (4, 2), (2, 4), (2, 0), (1, 1), (3, 1), (1, 3), (3, 3)]
    return [(i * step_w, j * step_h) for i, j in grid]


def multiscale_crop_sizes(
    width: int, height: int, size: int, scales: Sequence[float], max_distort: int
) -> list[tuple[int, int]]:
    """Candidate (crop_width, crop_height) pairs: sides from ``scales`` x short side (snapped to
    ``size`` when within 3 pixels and not larger than the frame), width and height at most
    ``max_distort`` scale steps apart."""
    base = min(width, height)
    sides = [int(base * scale) for scale in scales]
    sides = [
        size if abs(side - size) < 3 and size <= base else side for side in sides
    ]  # never past the frame
    return [
        (crop_w, crop_h)
        for i, crop_h in enumerate(sides)
        for j, crop_w in enumerate(sides)
        if abs(i - j) <= max_distort
    ]


def _choice(options: Sequence[Any]) -> Any:
    return options[int(torch.randint(len(options), ()))]


class MultiScaleCrop(v2.Transform):
    """TSN's multi-scale crop at one of 13 fixed positions, resized to ``size`` x ``size``."""

    def __init__(self, size: int, scales: Sequence[float] = TSN_SCALES, max_distort: int = 1) -> None:
        super().__init__()
        self.size = int(size)
        self.scales = tuple(float(scale) for scale in scales)
        self.max_distort = int(max_distort)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = v2.query_size(flat_inputs)
        crop_w, crop_h = _choice(
            multiscale_crop_sizes(width, height, self.size, self.scales, self.max_distort)
        )
        left, top = _choice(fixed_crop_offsets(width, height, crop_w, crop_h))
        return {"top": top, "left": left, "height": crop_h, "width": crop_w}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return self._call_kernel(F.resized_crop, inpt, **params, size=[self.size, self.size], antialias=True)


def three_crop(clip: torch.Tensor, size: int) -> list[torch.Tensor]:
    """Three ``size`` x ``size`` crops along the long side (start, centre, end) of (..., H, W)."""
    height, width = clip.shape[-2:]
    if min(height, width) < size:
        raise ValueError(f"three_crop: frame {height}x{width} is smaller than the crop {size}")
    if width >= height:
        top = (height - size) // 2
        return [F.crop(clip, top, left, size, size) for left in (0, (width - size) // 2, width - size)]
    left = (width - size) // 2
    return [F.crop(clip, top, left, size, size) for top in (0, (height - size) // 2, height - size)]


def flip_clip(
    clip: torch.Tensor, label: int, probability: float, label_map: Mapping[int, int] | None = None
) -> tuple[torch.Tensor, int]:
    """Mirror all frames with ``probability``; a mirrored clip's label goes through ``label_map``
    (e.g. Something-Something's "left to right" <-> "right to left")."""
    if probability > 0 and torch.rand(()).item() < probability:
        clip = F.horizontal_flip(clip)
        if label_map:
            label = label_map.get(label, label)
    return clip, label


__all__ = [
    "TSN_SCALES",
    "MultiScaleCrop",
    "fixed_crop_offsets",
    "flip_clip",
    "multiscale_crop_sizes",
    "three_crop",
]
