"""Frame-accurate video decoding on PyAV (FFmpeg), and raw-frame folders.

Frame ``i`` of a video is the ``i``-th frame a full sequential decode produces (0-based). Demuxing
packets is cheap and yields every frame's presentation timestamp (pts) and keyframe flag without
decoding; the sorted pts list is the presentation order (correct with B-frames and variable frame
rate). ``read_frames`` seeks to the keyframe at or before the first wanted frame, decodes forward
(H.264/HEVC decoders drop the non-reference frames nobody asked for) and converts only the wanted
frames to RGB. The per-video index is cached per process (an LRU keyed by path, size and
modification time); no container stays open, so readers are safe across fork. Tested against a
full sequential decode on H.264 mp4/mkv (GOP 1 to 250, B-frames, odd sizes, variable frame rate),
VP9 webm, MPEG-4 avi and raw H.264 (no timestamps: counted and read by decoding).
"""

from __future__ import annotations

import bisect
import functools
import itertools
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter
from PIL import Image, UnidentifiedImageError

from tsm.data.camera import camera_help, camera_input
from tsm.errors import one_line

DEFAULT_FRAME_TEMPLATE = "img_{:05d}.jpg"


class VideoReadError(RuntimeError):
    """A video (or frame folder) exists but cannot be read: corrupt, truncated, empty."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"cannot read video {path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe`` found: the exact frame count, frame rate, size and duration in seconds."""

    num_frames: int
    fps: float
    width: int
    height: int
    duration: float


@dataclass(frozen=True)
class _VideoIndex:
    """Presentation-ordered pts of every frame, the sorted pts of the keyframes, and for each
    keyframe the timestamp to seek to (the demuxer's own index time: mp4 indexes samples by
    decode time plus a constant shift, which differs from the pts with B-frames and a variable
    frame rate)."""

    frame_pts: tuple[int, ...] | None  # None: packets carry no pts, frames are found by decoding
    keyframes: tuple[int, ...]
    seek_points: tuple[int, ...]
    info: VideoInfo


def _check_exists(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"video not found: {path} (check the path and the dataset root)")
    return path


def _open(path: Path) -> av.container.InputContainer:
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, OSError) as error:
        raise VideoReadError(path, f"not a readable container ({error})") from None
    if not container.streams.video:
        container.close()
        raise VideoReadError(path, "the file has no video stream")
    return container


def _stream_fps(stream: av.video.stream.VideoStream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def _count_by_decoding(path: Path) -> int:
    """Count frames by decoding (fallback when packets carry no timestamps; such streams, e.g.
    raw H.264, often cannot seek, so this opens its own container)."""
    count = 0
    container = _open(path)
    try:
        for _ in container.decode(video=0):
            count += 1
    except av.FFmpegError as error:
        raise VideoReadError(path, f"decoding failed after {count} frames ({error})") from None
    finally:
        container.close()
    return count


def _build_index(path: Path) -> _VideoIndex:
    container = _open(path)
    try:
        stream = container.streams.video[0]
        frame_pts: list[int] = []
        keyframes: list[tuple[int, int]] = []  # (pts, seek point)
        dts_shift: int | None = None
        missing_pts = False
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.is_discard:
                    continue
                if packet.pts is None:
                    missing_pts = True
                    break
                frame_pts.append(packet.pts)
                if dts_shift is None and packet.dts is not None:
                    dts_shift = packet.pts - packet.dts
                if packet.is_keyframe:
                    seek_point = (
                        packet.pts if packet.dts is None or dts_shift is None else packet.dts + dts_shift
                    )
                    keyframes.append((packet.pts, seek_point))
        except av.FFmpegError as error:
            raise VideoReadError(path, f"demuxing failed ({error})") from None
        fps = _stream_fps(stream)
        if missing_pts:
            num_frames = _count_by_decoding(path)
            pts: tuple[int, ...] | None = None
        else:
            frame_pts.sort()
            pts, num_frames = tuple(frame_pts), len(frame_pts)
        if num_frames == 0:
            raise VideoReadError(path, "the video stream has no frames")
        if pts is not None and not keyframes:
            raise VideoReadError(path, "no keyframe found in the video stream")
        if pts is not None and stream.time_base is not None and len(pts) > 1:
            span = float((pts[-1] - pts[0]) * stream.time_base)
            duration = span * num_frames / (num_frames - 1)
        else:
            duration = num_frames / fps if fps else 0.0
        info = VideoInfo(num_frames, fps, stream.codec_context.width, stream.codec_context.height, duration)
        keyframes.sort()
        return _VideoIndex(
            pts, tuple(key for key, _ in keyframes), tuple(seek for _, seek in keyframes), info
        )
    finally:
        container.close()


@functools.lru_cache(maxsize=4096)
def _cached_index(path: str, size: int, mtime_ns: int) -> _VideoIndex:
    return _build_index(Path(path))


def _index(path: str | Path) -> _VideoIndex:
    path = _check_exists(path)
    if path.is_dir():
        raise VideoReadError(path, "is a folder; use read_frame_folder for raw frames")
    stat = path.stat()
    if stat.st_size == 0:
        raise VideoReadError(path, "the file is empty (0 bytes)")
    return _cached_index(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def probe(path: str | Path) -> VideoInfo:
    """Frame count (exact: counted from the packets, or by decoding when they carry no timestamps),
    frame rate, size and duration of a video file."""
    return _index(path).info


# PyAV >= 17 converts with a swscale thread pool (one thread per CPU) by default: setting it up
# costs ~10x the conversion of a small frame. PyAV >= 18 also keeps that context per thread, so a
# forked DataLoader worker inherits its parent's one, pool included, and hangs for ever freeing it
# (the pool's threads were not forked). Here: one thread per conversion, and contexts of this
# process only.
_SINGLE_THREADED = {"threads": 1} if int(av.__version__.split(".")[0]) >= 17 else {}
_converters = threading.local()


def convert_frame(frame: av.VideoFrame, **options: Any) -> av.VideoFrame:
    """``frame`` scaled and/or converted by swscale (``width``, ``height``, ``format``,
    ``interpolation`` as PyAV's ``VideoFrame.reformat``), single-threaded, with a context made in
    this process and thread: safe in forked workers whatever their parent converted before."""
    if getattr(_converters, "pid", None) != os.getpid():
        _converters.pid, _converters.reformatter = os.getpid(), VideoReformatter()
    return _converters.reformatter.reformat(frame, **options, **_SINGLE_THREADED)


def frame_to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame as an (H, W, 3) uint8 RGB array."""
    return convert_frame(frame, format="rgb24").to_ndarray()


def _check_indices(indices: Sequence[int], num_frames: int, path: str | Path) -> list[int]:
    wanted = [int(i) for i in indices]
    if not wanted:
        raise ValueError("read_frames needs at least one frame index")
    bad = [i for i in wanted if not 0 <= i < num_frames]
    if bad:
        raise IndexError(f"frame indices {bad[:5]} out of range for {path} with {num_frames} frames")
    return wanted


def _stack(frames: dict[int, np.ndarray], wanted: list[int]) -> torch.Tensor:
    array = np.stack([frames[i] for i in wanted])  # (T, H, W, 3)
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()


def _read_sequential(path: Path, wanted: list[int]) -> dict[int, np.ndarray]:
    targets, last = set(wanted), max(wanted)
    frames: dict[int, np.ndarray] = {}
    container = _open(path)
    try:
        for position, frame in enumerate(container.decode(video=0)):
            if position in targets:
                frames[position] = frame_to_rgb(frame)
            if position >= last:
                break
    except av.FFmpegError as error:
        raise VideoReadError(path, f"decoding failed ({error})") from None
    finally:
        container.close()
    return frames


# Decoders whose "skip non-reference frames" mode is exact: a skipped frame is never a reference.
_SKIP_NONREF_CODECS = frozenset({"h264", "hevc"})


def _seek(container: av.container.InputContainer, index: _VideoIndex, key: int) -> Iterator[av.Packet] | None:
    """Demux from keyframe ``key`` (or earlier); None when seeking lands after it."""
    stream = container.streams.video[0]
    key_pts = index.keyframes[key]
    for timestamp in dict.fromkeys((index.seek_points[key], key_pts)):
        container.seek(timestamp, stream=stream, backward=True, any_frame=False)
        packets = container.demux(stream)
        first = next(packets, None)
        if first is not None and (first.pts is None or first.pts <= key_pts):
            return itertools.chain([first], packets)
    return None


def _read_seeking(path: Path, index: _VideoIndex, wanted: list[int]) -> dict[int, np.ndarray]:
    """Decode the wanted frames by pts: seek to a keyframe only when it skips work, and let the
    decoder drop non-reference frames nobody asked for (H.264/HEVC)."""
    assert index.frame_pts is not None
    position_of = {index.frame_pts[i]: i for i in set(wanted)}
    frames: dict[int, np.ndarray] = {}
    container = _open(path)
    try:
        stream = container.streams.video[0]
        context = stream.codec_context
        skip_unwanted = context.name in _SKIP_NONREF_CODECS
        packets = None
        current_pts: int | None = None  # pts of the last decoded frame
        for target_pts in sorted(position_of):
            if position_of[target_pts] in frames:
                continue
            key = max(bisect.bisect_right(index.keyframes, target_pts) - 1, 0)
            if packets is None or current_pts is None or index.keyframes[key] > current_pts:
                packets, current_pts = _seek(container, index, key), None
                if packets is None:  # the demuxer cannot land at or before the keyframe
                    return _read_sequential(path, wanted)
            reached = False
            for packet in packets:
                if skip_unwanted:
                    context.skip_frame = (
                        "DEFAULT" if packet.pts is None or packet.pts in position_of else "NONREF"
                    )
                for frame in packet.decode():
                    if frame.pts is None:
                        raise VideoReadError(path, "decoded frame without timestamp")
                    if current_pts is None and frame.pts > target_pts:
                        # The seek landed after the wanted frame: decode from the start instead.
                        return _read_sequential(path, wanted)
                    current_pts = frame.pts
                    if frame.pts in position_of and position_of[frame.pts] not in frames:
                        frames[position_of[frame.pts]] = frame_to_rgb(frame)
                    reached = reached or frame.pts >= target_pts
                if reached:
                    break
            if position_of[target_pts] not in frames:
                position = position_of[target_pts]
                raise VideoReadError(
                    path, f"frame {position} could not be decoded (truncated or corrupt data)"
                )
    except av.FFmpegError as error:
        raise VideoReadError(path, f"decoding failed ({error})") from None
    finally:
        container.close()
    return frames


def read_frames(path: str | Path, indices: Sequence[int]) -> torch.Tensor:
    """Frames ``indices`` (0-based, any order, repeats allowed) of a video as uint8 (T, 3, H, W).

    Exactly the frames a full sequential decode gives, decoding only from the keyframe before the
    first wanted frame up to the last one.
    """
    path = _check_exists(path)
    index = _index(path)
    wanted = _check_indices(indices, index.info.num_frames, path)
    frames = _read_sequential(path, wanted) if index.frame_pts is None else _read_seeking(path, index, wanted)
    missing = [i for i in wanted if i not in frames]
    if missing:
        raise VideoReadError(path, f"frames {missing[:5]} could not be decoded (truncated or corrupt data)")
    return _stack(frames, wanted)


def count_frame_files(
    directory: str | Path, template: str = DEFAULT_FRAME_TEMPLATE, start_index: int = 1
) -> int:
    """Number of consecutive frame files ``template.format(start_index + i)`` in ``directory``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"frame folder not found: {directory}")
    count = 0
    while (directory / template.format(start_index + count)).is_file():
        count += 1
    return count


def read_frame_folder(
    directory: str | Path,
    indices: Sequence[int],
    template: str = DEFAULT_FRAME_TEMPLATE,
    start_index: int = 1,
) -> torch.Tensor:
    """Frames ``indices`` (0-based) of a raw-frame folder (``img_00001.jpg``... by default, 1-based
    file numbers as in the reference) as uint8 (T, 3, H, W)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"frame folder not found: {directory}")
    wanted = [int(i) for i in indices]
    if not wanted:
        raise ValueError("read_frame_folder needs at least one frame index")
    images: dict[int, torch.Tensor] = {}
    for i in set(wanted):
        file = directory / template.format(start_index + i)
        if i < 0 or not file.is_file():
            raise VideoReadError(directory, f"frame file {file.name} (frame {i}) is missing")
        try:
            with Image.open(file) as image:
                images[i] = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)
        except (UnidentifiedImageError, OSError) as error:
            raise VideoReadError(
                directory, f"frame file {file.name} is not a readable image ({error})"
            ) from None
    return torch.stack([images[i] for i in wanted])


def open_frames(source: str | int | Path) -> tuple[Iterator[torch.Tensor], float]:
    """Decoded RGB frames, uint8 (3, H, W), of a video file or a camera (an index), and the frame rate.

    Cameras are opened with PyAV: ``/dev/video{N}`` (v4l2) on Linux, ``N`` (avfoundation) on macOS;
    an error names the device and lists the cameras found (:mod:`tsm.data.camera`).
    """
    camera = isinstance(source, int) or (isinstance(source, str) and source.isdigit())
    if not camera and not Path(source).is_file():
        raise FileNotFoundError(f"video {str(source)!r} does not exist")
    file, input_format = camera_input(int(source)) if camera else (str(source), None)
    try:
        container = av.open(file, format=input_format)
    except (av.FFmpegError, OSError, ValueError) as error:
        what = f"camera {int(source)} ({file}, {input_format})" if camera else f"video {source!r}"
        hint = f"; {camera_help()}" if camera else ""
        raise ValueError(f"cannot open {what}: {one_line(error)}{hint}") from None
    if not container.streams.video:
        container.close()
        raise ValueError(f"{source!r} has no video stream")
    stream = container.streams.video[0]
    fps = _stream_fps(stream) or 25.0

    def frames() -> Iterator[torch.Tensor]:
        try:
            for frame in container.decode(stream):
                yield torch.from_numpy(frame_to_rgb(frame)).permute(2, 0, 1)
        except av.FFmpegError as error:
            raise ValueError(f"decoding {source!r} failed: {one_line(error)}") from None
        finally:
            container.close()

    return frames(), fps


__all__ = [
    "DEFAULT_FRAME_TEMPLATE",
    "VideoInfo",
    "VideoReadError",
    "count_frame_files",
    "frame_to_rgb",
    "open_frames",
    "probe",
    "read_frame_folder",
    "read_frames",
]
