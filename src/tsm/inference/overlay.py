"""The prediction drawn under a video frame, as the reference's online demo shows it: a white band
below the picture with the label in large type, here followed by the runners-up, each with its
probability ("bikes 35%") on a bar of that length. Type scales with the frame's width (DejaVu Sans,
the TrueType font matplotlib ships), so it reads the same at 320 or 1920 pixels."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

# Label size as a fraction of the frame width: the reference's 0.7-scale text on 640-pixel frames.
FONT_WIDTH_FRACTION = 1 / 24
MIN_FONT_PIXELS = 12  # smallest size that stays legible
RUNNER_UP_SCALE = 0.75  # the other classes, smaller than the label shown
_BAND, _TEXT = (255, 255, 255), (0, 0, 0)
_SHOWN_BAR, _OTHER_BAR = (183, 228, 199), (221, 221, 221)


@functools.cache
def _font(pixels: int, bold: bool) -> ImageFont.FreeTypeFont:
    from matplotlib import font_manager

    properties = font_manager.FontProperties(family="DejaVu Sans", weight="bold" if bold else "normal")
    return ImageFont.truetype(font_manager.findfont(properties), pixels)


def _rows(label: str, probabilities: Tensor, names: Sequence[str], topk: int) -> list[tuple[str, float]]:
    """The label shown first, then the most probable other classes: ``topk`` (name, probability)."""
    order = probabilities.argsort(descending=True).tolist()
    shown = names.index(label)
    others = [index for index in order if index != shown][: max(topk, 1) - 1]
    return [(names[index], float(probabilities[index])) for index in (shown, *others)]


@functools.cache
def _fitted(name: str, percent: str, pixels: int, bold: bool, room: int) -> str:
    """``name percent``, the name shortened with an ellipsis until the line fits ``room`` pixels."""
    font, text = _font(pixels, bold), f"{name} {percent}"
    while font.getlength(text) > room and len(name) > 1:
        name = name[:-1]
        text = f"{name.rstrip()}… {percent}"
    return text


def _row_sizes(width: int, topk: int) -> list[tuple[int, int]]:
    """(font pixels, line height) of each row under a frame ``width`` pixels wide."""
    label = max(MIN_FONT_PIXELS, round(width * FONT_WIDTH_FRACTION))
    runner_up = max(MIN_FONT_PIXELS, round(label * RUNNER_UP_SCALE))
    return [(label, round(label * 1.5))] + [(runner_up, round(runner_up * 1.35))] * (max(topk, 1) - 1)


def band_height(width: int, topk: int) -> int:
    """Height in pixels of the band under a frame ``width`` pixels wide (even, for yuv420p video)."""
    sizes = _row_sizes(width, topk)
    height = sum(line for _, line in sizes) + sizes[0][0] // 3
    return height + height % 2


def draw_prediction_band(
    frame: Tensor, label: str, probabilities: Tensor, class_names: Sequence[str], topk: int = 3
) -> np.ndarray:
    """``frame`` (uint8, 3 x H x W) above a band with ``label`` (the class shown) and the next
    ``topk - 1`` classes of ``probabilities``, each with its percentage: uint8 (H + band, W, 3)."""
    height, width = frame.shape[1:]
    canvas = Image.new("RGB", (width, height + band_height(width, topk)), _BAND)
    canvas.paste(Image.fromarray(frame.permute(1, 2, 0).numpy()), (0, 0))
    draw = ImageDraw.Draw(canvas)
    sizes = _row_sizes(width, topk)
    margin, top = sizes[0][0] // 3, height + sizes[0][0] // 6
    rows = _rows(label, probabilities, class_names, topk)
    for row, ((name, probability), (pixels, line)) in enumerate(zip(rows, sizes, strict=False)):
        bar_end = margin + round(probability * (width - 2 * margin))
        bar = _SHOWN_BAR if row == 0 else _OTHER_BAR
        draw.rectangle((margin, top + 1, bar_end, top + line - 2), fill=bar)
        left = margin + pixels // 4
        text = _fitted(name, f"{probability:.0%}", pixels, row == 0, width - left - margin)
        draw.text((left, top + line // 2), text, fill=_TEXT, font=_font(pixels, row == 0), anchor="lm")
        top += line
    return np.asarray(canvas)


__all__ = ["FONT_WIDTH_FRACTION", "MIN_FONT_PIXELS", "band_height", "draw_prediction_band"]
