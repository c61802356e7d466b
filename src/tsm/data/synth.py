"""A synthetic video task that only temporal models can solve.

Classes come in pairs that are the time reverse of each other: "move_right" / "move_left",
"grow" / "shrink", "rotate_clockwise" / "rotate_anticlockwise", "move_down" / "move_up". Every clip
is drawn as a forward motion with random appearance (background, texture, object colour and size),
start and speed; a clip of the second class of a pair is such a forward clip played backwards. So
the *set* of frames of a clip has exactly the same distribution for both classes of a pair, and an
order-blind model (TSN) cannot beat chance within a pair; frame order tells them apart. Frames are
drawn sharp (no motion blur or trails), so a single frame carries no hint of the direction.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tsm.data.config import DataConfig

MOTIONS = ("move_right", "grow", "rotate_clockwise", "move_down")
REVERSED = {
    "move_right": "move_left",
    "grow": "shrink",
    "rotate_clockwise": "rotate_anticlockwise",
    "move_down": "move_up",
}
# Mirroring a clip left-right turns these motions into their partners (used by the flip label map).
MIRROR_SWAPS = ("move_right", "rotate_clockwise")


def synthetic_class_names(num_classes: int = 4) -> list[str]:
    """Class names of the synthetic task: pairs (forward, reversed), ``num_classes`` in 2, 4, 6, 8."""
    if num_classes not in (2, 4, 6, 8):
        raise ValueError(f"num_classes must be 2, 4, 6 or 8 (pairs of reversed motions), got {num_classes}")
    return [name for motion in MOTIONS[: num_classes // 2] for name in (motion, REVERSED[motion])]


def synthetic_flip_label_map(class_names: list[str]) -> dict[str, int]:
    """Label map for horizontal flips: mirrored left/right motions and rotations swap classes."""
    label_map: dict[str, int] = {}
    for motion in MIRROR_SWAPS:
        if motion in class_names:
            forward, backward = class_names.index(motion), class_names.index(REVERSED[motion])
            label_map[str(forward)], label_map[str(backward)] = backward, forward
    return label_map


class _Canvas:
    """Random static appearance: background colour with texture, object colour and size."""

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        self.size = size
        self.y, self.x = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
        background = rng.uniform(0.0, 1.0, 3).astype(np.float32)
        texture = rng.normal(0.0, 0.03, (size, size, 1)).astype(np.float32)
        self.background = np.clip(background + texture, 0.0, 1.0)
        colour = rng.uniform(0.0, 1.0, 3).astype(np.float32)
        while np.abs(colour - background).max() < 0.4:  # keep the object visible
            colour = rng.uniform(0.0, 1.0, 3).astype(np.float32)
        self.colour = colour

    def paint(self, coverage: np.ndarray) -> np.ndarray:
        alpha = np.clip(coverage, 0.0, 1.0)[..., None]
        return ((1 - alpha) * self.background + alpha * self.colour) * 255

    def disc(self, cx: float, cy: float, radius: float) -> np.ndarray:
        return radius - np.hypot(self.x - cx, self.y - cy) + 0.5

    def hand(self, cx: float, cy: float, length: float, angle: float, width: float) -> np.ndarray:
        """A clock hand from the centre (hub disc) to a dot at ``angle`` (radians, clockwise on screen)."""
        dx, dy = math.cos(angle), math.sin(angle)
        along = (self.x - cx) * dx + (self.y - cy) * dy
        across = np.abs(-(self.x - cx) * dy + (self.y - cy) * dx)
        bar = np.minimum(width / 2 - across + 0.5, np.minimum(along + 0.5, length - along + 0.5))
        tip = self.disc(cx + dx * length, cy + dy * length, width * 1.2)
        return np.maximum(np.maximum(bar, tip), self.disc(cx, cy, width * 0.8))


def _forward_frames(motion: str, size: int, frames: int, rng: np.random.Generator) -> np.ndarray:
    canvas = _Canvas(size, rng)
    progress = np.linspace(0.0, 1.0, frames)
    if motion in ("move_right", "move_down"):
        radius = rng.uniform(0.08, 0.12) * size
        distance = rng.uniform(0.45, 0.7) * size
        start = rng.uniform(radius, size - radius - distance)
        across = rng.uniform(radius, size - radius)
        along = start + distance * progress
        positions = [(a, across) if motion == "move_right" else (across, a) for a in along]
        shapes = [canvas.disc(cx, cy, radius) for cx, cy in positions]
    elif motion == "grow":
        small = rng.uniform(0.05, 0.1) * size
        large = small + rng.uniform(0.2, 0.3) * size
        cx, cy = rng.uniform(large, size - large, 2)
        shapes = [canvas.disc(cx, cy, small + (large - small) * p) for p in progress]
    elif motion == "rotate_clockwise":
        length = rng.uniform(0.25, 0.4) * size
        cx, cy = rng.uniform(length + 2, size - length - 2, 2)
        start, turn = rng.uniform(0, 2 * math.pi), rng.uniform(0.4, 0.8) * math.pi
        shapes = [canvas.hand(cx, cy, length, start + turn * p, max(2.0, size / 24)) for p in progress]
    else:
        raise ValueError(f"unknown motion {motion!r}")
    return np.stack([canvas.paint(shape) for shape in shapes]).round().astype(np.uint8)


def render_synthetic_clip(class_name: str, size: int, frames: int, rng: np.random.Generator) -> np.ndarray:
    """Frames (F, S, S, 3) uint8 of one clip of ``class_name``; reversed classes are forward clips
    played backwards."""
    for motion, reverse in REVERSED.items():
        if class_name == motion:
            return _forward_frames(motion, size, frames, rng)
        if class_name == reverse:
            return _forward_frames(motion, size, frames, rng)[::-1].copy()
    raise ValueError(f"unknown synthetic class {class_name!r}; known: {synthetic_class_names(8)}")


def write_video(
    path: str | Path,
    frames: np.ndarray,
    fps: int = 8,
    crf: int = 18,
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    timestamps: Sequence[float] | None = None,
    codec: str = "libx264",
) -> Path:
    """Encode uint8 frames (F, H, W, 3) with PyAV, H.264 by default (container from the file suffix).

    ``pix_fmt`` "yuv420p" needs even sizes ("yuv444p" takes any with libx264); ``options`` go to
    the encoder (e.g. ``{"g": "12", "bf": "2"}``: GOP size, B-frames); ``crf`` applies to libx264;
    ``timestamps`` (seconds, increasing) give a variable frame rate.
    """
    path = Path(path)
    height, width = frames.shape[1:3]
    if pix_fmt == "yuv420p" and (height % 2 or width % 2):
        raise ValueError(f"yuv420p needs even frame sizes, got {width}x{height}; use pix_fmt='yuv444p'")
    if timestamps is not None and len(timestamps) != len(frames):
        raise ValueError(f"{len(timestamps)} timestamps for {len(frames)} frames")
    time_base = Fraction(1, 1000) if timestamps is not None else Fraction(1, fps)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.codec_context.time_base = time_base
        x264_defaults = {"crf": str(crf), "preset": "veryfast"} if codec == "libx264" else {}
        stream.options = {**x264_defaults, **(options or {})}
        for number, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.time_base = time_base
            frame.pts = round(timestamps[number] * 1000) if timestamps is not None else number
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@dataclass(frozen=True)
class SyntheticDataset:
    """Where ``generate_synthetic_dataset`` wrote things: the folder, its list files by split, the
    classes file and the suggested data config (``data_config.json``)."""

    root: Path
    lists: dict[str, Path]
    classes_file: Path
    data_config: DataConfig
    class_names: list[str]


def generate_synthetic_dataset(
    out_dir: str | Path,
    train: int = 320,
    val: int = 80,
    test: int = 80,
    size: int = 64,
    frames: int = 16,
    num_classes: int = 4,
    seed: int = 0,
    fps: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> SyntheticDataset:
    """Write the synthetic reversed-motion task: ``<split>/<class>_<n>.mp4``, the list files
    ``train.txt`` / ``val.txt`` / ``test.txt`` (``path label``), ``classes.txt`` and
    ``data_config.json`` (a data config for ``VideoDataset``). Classes are balanced and the output
    is the same for the same arguments."""
    if size < 16 or size % 2:
        raise ValueError(f"size must be an even number >= 16, got {size}")
    if frames < 2:
        raise ValueError(f"frames must be >= 2, got {frames}")
    class_names = synthetic_class_names(num_classes)
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    splits = {"train": train, "val": val, "test": test}
    total, done = sum(splits.values()), 0
    lists: dict[str, Path] = {}
    for split_number, (split, count) in enumerate(splits.items()):
        (root / split).mkdir(exist_ok=True)
        lines = []
        for n in range(count):
            label = n % num_classes
            rng = np.random.default_rng([seed, split_number, n])
            name = f"{split}/{class_names[label]}_{n:05d}.mp4"
            write_video(root / name, render_synthetic_clip(class_names[label], size, frames, rng), fps)
            lines.append(f"{name} {label}\n")
            done += 1
            if progress is not None:
                progress(done, total)
        lists[split] = root / f"{split}.txt"
        lists[split].write_text("".join(lines))
    classes_file = root / "classes.txt"
    classes_file.write_text("".join(f"{name}\n" for name in class_names))
    # The TSN augmentation at the clip size, mirrored clips with label swaps.
    flips = synthetic_flip_label_map(class_names)
    data_config = DataConfig(resize=size, input_size=size, flip_label_map=flips)
    (root / "data_config.json").write_text(json.dumps(data_config.to_dict(), indent=2) + "\n")
    return SyntheticDataset(root, lists, classes_file, data_config, class_names)


__all__ = [
    "SyntheticDataset",
    "generate_synthetic_dataset",
    "render_synthetic_clip",
    "synthetic_class_names",
    "synthetic_flip_label_map",
    "write_video",
]
