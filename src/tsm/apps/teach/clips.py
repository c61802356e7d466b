"""A recorded or uploaded video made into a project clip: decoded, its frames picked at an even
frame rate by their time stamps, scaled to the pipeline's resize, and written as H.264."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image

from tsm.data import convert_frame, write_video
from tsm.errors import one_line
from tsm.fileio import atomic_write, atomic_write_named

THUMBNAIL_SIDE = 96  # short side of a clip's thumbnail, in pixels


class ClipRefused(ValueError):
    """A video that cannot become a clip, with the one-line reason."""


@dataclass(frozen=True)
class ClipFrames:
    """A clip's frames (F, H, W, 3) uint8 at ``fps`` frames per second."""

    frames: np.ndarray
    fps: int


def _target_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """(width, height) with the short side at ``short_side`` (None: as it is), even for H.264."""
    if short_side is not None:
        scale = short_side / min(width, height)
        width, height = round(width * scale), round(height * scale)
    return max(2, width - width % 2), max(2, height - height % 2)


def _timed_frames(path: Path, short_side: int | None, max_seconds: float) -> list[tuple[float, np.ndarray]]:
    """Every frame, scaled as it is decoded, with its time in seconds; a video past ``max_seconds``
    is refused as soon as a frame shows it (the rest is not decoded)."""
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as error:
        raise ClipRefused(f"not a readable video ({one_line(error)})") from None
    timed: list[tuple[float, np.ndarray]] = []
    try:
        if not container.streams.video:
            raise ClipRefused("the file has no video stream")
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        for number, frame in enumerate(container.decode(stream)):
            when = frame.time if frame.time is not None else number / rate
            if timed and when - timed[0][0] > max_seconds:
                raise ClipRefused(f"the video is longer than the limit of {max_seconds:g} s: trim it")
            width, height = _target_size(frame.width, frame.height, short_side)
            scaled = convert_frame(frame, width=width, height=height, format="rgb24", interpolation="AREA")
            timed.append((when, scaled.to_ndarray()))
    except av.FFmpegError as error:
        if not timed:
            raise ClipRefused(f"not a readable video ({one_line(error)})") from None
        # A recording cut short (a closed tab) keeps the frames decoded before the damage.
    finally:
        container.close()
    if not timed:
        raise ClipRefused("the video has no frames")
    return timed


def _even_times(timed: list[tuple[float, np.ndarray]], fps: int) -> np.ndarray:
    """The frame shown at each tick of an even ``fps`` clock, from the first frame's time to the last's."""
    times = np.array([when for when, _ in timed])
    order = np.argsort(times, kind="stable")
    times = times[order] - times[order[0]]
    ticks = np.arange(0.0, times[-1] + 1e-6, 1.0 / fps)
    shown = np.searchsorted(times, ticks + 1e-6, side="right") - 1
    return np.stack([timed[order[index]][1] for index in shown])


def read_clip(path: Path, short_side: int | None, fps: int, max_seconds: float) -> ClipFrames:
    """The video at ``path`` as clip frames: even ``fps``, short side ``short_side`` (even sizes);
    refused (:class:`ClipRefused`) when it is not a readable video or is longer than ``max_seconds``."""
    return ClipFrames(_even_times(_timed_frames(path, short_side, max_seconds), fps), fps)


def write_clip(clip: ClipFrames, destination: Path) -> None:
    """Write ``clip`` as H.264 at ``destination``, whole or not at all."""
    atomic_write_named(destination, lambda target: write_video(target, clip.frames, fps=clip.fps))


def write_thumbnail(clip: ClipFrames, destination: Path) -> None:
    """The clip's middle frame, short side :data:`THUMBNAIL_SIDE`, as a JPEG (atomically)."""
    image = Image.fromarray(clip.frames[len(clip.frames) // 2])
    scale = THUMBNAIL_SIDE / min(image.size)
    image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    atomic_write(destination, lambda tmp: image.save(tmp, "JPEG", quality=85))
