"""The prediction band drawn under the frames of ``tsm stream --out-video``: the picture untouched,
the label shown first with its percentage on a bar of that length, the runners-up below, type that
scales with the frame's width."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tsm.inference import StreamEvent, annotate_frame
from tsm.inference.overlay import FONT_WIDTH_FRACTION, MIN_FONT_PIXELS, band_height, draw_prediction_band

NAMES = ["biking", "walking the dog", "juggling balls", "surfing water"]
PROBABILITIES = torch.tensor([0.30, 0.10, 0.45, 0.15])
SHOWN_BAR = (183, 228, 199)


def _frame(height: int, width: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (3, height, width), generator=generator, dtype=torch.uint8)


def _ink_rows(band: np.ndarray) -> np.ndarray:
    """Rows of the band with text on them (near-black pixels)."""
    return np.flatnonzero((band.max(axis=2) < 60).any(axis=1))


def test_the_band_holds_the_label_and_the_runners_up_under_the_untouched_picture() -> None:
    frame = _frame(90, 160)
    drawn = draw_prediction_band(frame, "biking", PROBABILITIES, NAMES, topk=3)
    band = drawn[90:]
    assert drawn.shape == (90 + band_height(160, 3), 160, 3) and drawn.dtype == np.uint8
    assert np.array_equal(drawn[:90], frame.permute(1, 2, 0).numpy())  # the picture is not covered
    assert len(_ink_rows(band)) > band.shape[0] // 3  # text on several lines
    # The label shown (not this frame's most probable class) comes first, its bar 30% of the width.
    label_pixels = max(MIN_FONT_PIXELS, round(160 * FONT_WIDTH_FRACTION))
    margin, first_row = label_pixels // 3, band[label_pixels // 6 + 2]
    green = np.flatnonzero((first_row == SHOWN_BAR).all(axis=1))
    assert green.min() == margin and abs(green.max() - (margin + round(0.30 * (160 - 2 * margin)))) <= 1
    other = draw_prediction_band(frame, "juggling balls", PROBABILITIES, NAMES, topk=3)
    assert not np.array_equal(other[90:], band)  # the text depends on the label


@pytest.mark.parametrize("width", [960, 1920])
def test_type_scales_with_the_frame_width(width: int) -> None:
    """Band and text twice as tall on a frame twice as wide (above the smallest legible size)."""
    base, scale = 480, width / 480
    bands = [draw_prediction_band(_frame(60, w), "biking", PROBABILITIES, NAMES)[60:] for w in (base, width)]
    assert abs(bands[1].shape[0] / bands[0].shape[0] - scale) < 0.05 * scale
    heights = []
    for band, frame_width in zip(bands, (base, width), strict=True):  # ink of the label's line
        label_pixels = round(frame_width * FONT_WIDTH_FRACTION)
        ink = _ink_rows(band)
        heights.append(np.ptp(ink[ink < label_pixels // 6 + round(1.5 * label_pixels)]))
    assert abs(heights[1] / heights[0] - scale) < 0.15 * scale


def test_tiny_frames_keep_a_legible_font_and_even_sizes() -> None:
    assert band_height(16, 3) == band_height(32, 3) >= 3 * MIN_FONT_PIXELS
    assert all(band_height(width, topk) % 2 == 0 for width in (31, 64, 101, 640) for topk in (1, 2, 5))
    assert band_height(640, 1) < band_height(640, 3) < band_height(640, 5)
    drawn = draw_prediction_band(_frame(9, 31), "walking the dog", PROBABILITIES, NAMES, topk=5)  # 4 classes
    assert drawn.shape == (9 + band_height(31, 5), 31, 3)


def test_annotate_frame_draws_the_event() -> None:
    frame = _frame(48, 64)
    event = StreamEvent(3, 0.1, "surfing water", PROBABILITIES, frame, 0.01)
    expected = draw_prediction_band(frame, "surfing water", PROBABILITIES, NAMES, topk=2)
    assert np.array_equal(annotate_frame(event, NAMES, topk=2), expected)
