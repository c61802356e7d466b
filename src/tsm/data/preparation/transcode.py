"""Re-encode a video tree for fast loading (``resize_videos``) or unpack it into frame folders
(``extract_frames``), in parallel over processes, resumably and atomically.

``resize_videos`` writes H.264 mp4 (libx264, no audio) at a given short side with a keyframe
every ``keyframe_interval`` frames: seeking can only start at a keyframe, so dense keyframes bound
what a clip of 8 scattered frames must decode (MMAction2's ``tools/data/resize_videos.py --dense``
does the same with ``-g 16``). Every output keeps its input's frame count (unless ``fps`` resamples
it), checked by probing both before the output is renamed into place. A finished output is
skipped on the next run after the same check, and the temporary files a killed run left are removed
(``tsm.fileio.remove_abandoned_temporaries``); a bad input is listed in the report
(``tsm_resize_report.txt`` / ``tsm_frames_report.txt`` in the destination) and never stops the run.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import shutil
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
from av.video.frame import PictureType
from tqdm import tqdm

from tsm.data.datasets import VIDEO_EXTENSIONS
from tsm.data.decode import (
    DEFAULT_FRAME_TEMPLATE,
    VideoReadError,
    convert_frame,
    count_frame_files,
    probe,
)
from tsm.fileio import atomic_write, atomic_write_text, remove_abandoned_temporaries, temporary_path

RESIZE_REPORT = "tsm_resize_report.txt"
FRAMES_REPORT = "tsm_frames_report.txt"
# What a bad input can raise while it is decoded, encoded or checked.
_BAD_INPUT = (av.FFmpegError, VideoReadError, OSError, ValueError, ZeroDivisionError)


@dataclass
class TranscodeReport:
    """Outcome of a ``resize_videos`` / ``extract_frames`` run: outputs written, outputs already
    there (skipped), and failed inputs with their reasons; ``report`` lists the failures."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    report: Path | None = None
    # Temporary files and folders of an interrupted earlier run, removed before this one started.
    removed: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        line = f"{len(self.written)} written, {len(self.skipped)} already done, {len(self.failed)} failed"
        line += f" (listed in {self.report})" if self.failed else ""
        if self.removed:
            line += f"; removed {len(self.removed)} temporary files an interrupted run left"
        return line


def scaled_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the short side ``short_side`` and the long side scaled to the nearest
    even number (H.264 4:2:0 needs even sizes)."""
    if short_side < 2 or short_side % 2:
        raise ValueError(f"short side must be an even number >= 2, got {short_side}")
    if width <= height:
        return short_side, max(2, round(height * short_side / width / 2) * 2)
    return max(2, round(width * short_side / height / 2) * 2), short_side


def _resampled(frames: Iterable[av.VideoFrame], in_fps: float, out_fps: float, duration: float):
    """Frames at ``out_fps`` over ``duration`` seconds: output frame k is the input frame on
    screen at time k / out_fps."""
    previous, start, emitted = None, None, 0
    for number, frame in enumerate(frames):
        time = float(frame.time) if frame.time is not None else number / in_fps
        start = time if start is None else start
        while previous is not None and emitted / out_fps < time - start:
            yield previous
            emitted += 1
        previous = frame
    while previous is not None and emitted < resampled_frame_count(duration, out_fps):
        yield previous
        emitted += 1


def resampled_frame_count(duration: float, out_fps: float) -> int:
    """Frames that resampling ``duration`` seconds of video to ``out_fps`` gives."""
    return max(1, math.ceil(duration * out_fps - 1e-6))


def resize_video(
    src: str | Path,
    dst: str | Path,
    short_side: int = 256,
    keyframe_interval: int = 16,
    fps: float | None = None,
) -> None:
    """Re-encode one video as H.264 (no audio) at ``short_side``, a keyframe every
    ``keyframe_interval`` frames, atomically; raises when the output's frame count differs from
    the input's (or from the resampled count with ``fps``)."""
    src = Path(src)
    expected = probe(src)
    wanted = resampled_frame_count(expected.duration, fps) if fps else expected.num_frames

    def encode(temporary: str) -> None:
        with av.open(str(src)) as source:
            stream_in = source.streams.video[0]
            stream_in.thread_count = 1
            in_fps = float(stream_in.average_rate or stream_in.guessed_rate or expected.fps or 25)
            out_rate = Fraction(fps or in_fps).limit_denominator(1001)
            context = stream_in.codec_context
            width, height = scaled_size(context.width, context.height, short_side)
            with av.open(temporary, mode="w", format="mp4") as target:
                stream = target.add_stream("libx264", rate=out_rate)
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                stream.codec_context.time_base = 1 / out_rate
                stream.options = {
                    "crf": "23",
                    "preset": "veryfast",
                    "g": str(keyframe_interval),
                    "keyint_min": str(keyframe_interval),
                    "sc_threshold": "0",  # no extra keyframes at scene cuts: exactly every g frames
                    "threads": "1",  # parallel over files, not inside one
                }
                frames = source.decode(stream_in)
                if fps:
                    frames = _resampled(frames, in_fps, fps, expected.duration)
                for number, frame in enumerate(frames):
                    picture = convert_frame(
                        frame, width=width, height=height, format="yuv420p", interpolation="BILINEAR"
                    )
                    picture.pts, picture.time_base = number, stream.codec_context.time_base
                    picture.pict_type = PictureType.NONE  # a decoded I-frame would force a keyframe
                    target.mux(stream.encode(picture))
                target.mux(stream.encode())
        got = probe(temporary).num_frames
        if got != wanted:
            raise VideoReadError(src, f"the output has {got} frames, the input {wanted}")

    atomic_write(dst, encode)


def _finished_video(src: Path, dst: Path, short_side: int, fps: float | None) -> bool:
    if not dst.is_file():
        return False
    try:
        output, source = probe(dst), probe(src)
    except (VideoReadError, OSError):
        return False
    if fps is None:
        frames_match = output.num_frames == source.num_frames
    else:
        frames_match = output.num_frames == resampled_frame_count(source.duration, fps)
    return frames_match and min(output.width, output.height) == short_side


def _resize_job(
    src: str, dst: str, short_side: int, keyframe_interval: int, fps: float | None
) -> tuple[str, str]:
    try:
        if _finished_video(Path(src), Path(dst), short_side, fps):
            return "skipped", ""
        resize_video(src, dst, short_side, keyframe_interval, fps)
    except _BAD_INPUT as error:
        return "failed", str(error)
    return "written", ""


def extract_video_frames(
    src: str | Path,
    dst: str | Path,
    short_side: int | None = 256,
    template: str = DEFAULT_FRAME_TEMPLATE,
    quality: int = 90,
) -> int:
    """Decode one video into ``dst/`` as JPEG files ``template.format(1)``, ... (the reference's
    1-based layout) at ``short_side`` (None: keep the size); the folder appears complete or not at
    all. Returns the frame count (equal to ``probe(src).num_frames``, checked)."""
    src, dst = Path(src), Path(dst)
    expected = probe(src)
    if dst.exists():  # not one of ours (those appear complete): leave it to the user
        raise VideoReadError(src, f"{dst} exists with a different frame count; delete it to redo it")
    dst.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(dst)
    temporary.mkdir()  # an ordinary folder (0o777 less the umask), not mkdtemp's 0o700
    try:
        count = 0
        with av.open(str(src)) as source:
            stream = source.streams.video[0]
            stream.thread_count = 1
            size = None
            if short_side:
                size = scaled_size(stream.codec_context.width, stream.codec_context.height, short_side)
            for frame in source.decode(stream):
                width, height = size or (None, None)
                picture = convert_frame(
                    frame, width=width, height=height, format="rgb24", interpolation="BILINEAR"
                )
                count += 1
                picture.to_image().save(temporary / template.format(count), quality=quality)
        if count != expected.num_frames:
            raise VideoReadError(src, f"decoded {count} frames, the container has {expected.num_frames}")
        os.replace(temporary, dst)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary)
    return count


def _frames_job(src: str, dst: str, short_side: int | None, template: str) -> tuple[str, str]:
    try:
        if Path(dst).is_dir() and count_frame_files(dst, template) == probe(src).num_frames:
            return "skipped", ""
        extract_video_frames(src, dst, short_side, template)
    except _BAD_INPUT as error:
        return "failed", str(error)
    return "written", ""


def find_videos(root: Path) -> list[Path]:
    """Video files under ``root`` (by extension: temporary files end in ``.tmp``), sorted."""
    return sorted(
        Path(directory, name)
        for directory, _, files in os.walk(root)
        for name in files
        if Path(name).suffix.lower() in VIDEO_EXTENSIONS
    )


def _pool_context() -> multiprocessing.context.BaseContext:
    """forkserver (or spawn): PyAV/FFmpeg state inherited through a plain fork has hung children."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _run_in_pools(
    job: Callable[..., tuple[str, str]],
    tasks: list[tuple[Path, Path]],
    extra: tuple,
    workers: int,
    record: Callable[[Path, Path, str, str], None],
) -> None:
    """Run the tasks in a process pool. A worker that dies (a crash inside FFmpeg) breaks the pool:
    the unfinished tasks then run one at a time until the one that kills its worker is found and
    reported as failed, and the rest goes on in parallel."""
    pending, size = list(tasks), workers
    while pending:
        finished: set[tuple[Path, Path]] = set()
        with ProcessPoolExecutor(size, mp_context=_pool_context()) as pool:
            futures = {pool.submit(job, str(src), str(dst), *extra): (src, dst) for src, dst in pending}
            try:
                for future in as_completed(futures):
                    record(*futures[future], *future.result())
                    finished.add(futures[future])
            except BrokenProcessPool:
                pass
        pending = [task for task in pending if task not in finished]
        if pending and size == 1:  # tasks run in order: the first unfinished one killed its worker
            src, dst = pending.pop(0)
            record(src, dst, "failed", "the worker process died while converting it (crash in the decoder?)")
            size = workers
        elif pending:
            size = 1


def _run(
    job: Callable[..., tuple[str, str]],
    tasks: list[tuple[Path, Path]],
    extra: tuple,
    workers: int,
    description: str,
    progress: bool,
    dst: Path,
) -> TranscodeReport:
    # What a killed run left in the destination goes first (files of live writers stay).
    outcome = TranscodeReport(removed=remove_abandoned_temporaries(dst) if dst.is_dir() else [])
    bar = tqdm(total=len(tasks), unit="file", desc=description, disable=not progress, dynamic_ncols=True)

    def record(src: Path, dst: Path, status: str, reason: str) -> None:
        if status == "failed":
            outcome.failed.append((src, reason))
        else:
            (outcome.written if status == "written" else outcome.skipped).append(dst)
        bar.update()

    try:
        if workers <= 1:
            for src, dst in tasks:
                record(src, dst, *job(str(src), str(dst), *extra))
        else:
            _run_in_pools(job, tasks, extra, workers, record)
    finally:
        bar.close()
    return outcome


def _plan(
    src: Path, dst: Path, output: Callable[[Path], Path]
) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    if not src.is_dir():
        raise FileNotFoundError(f"source folder not found: {src}")
    tasks, clashes, taken = [], [], {}
    for video in find_videos(src):
        target = dst / output(video.relative_to(src))
        if target in taken:
            clashes.append((video, f"same output {target} as {taken[target]}; skipped"))
            continue
        taken[target] = video
        tasks.append((video, target))
    return tasks, clashes


def _finish(
    outcome: TranscodeReport, clashes: list[tuple[Path, str]], dst: Path, name: str
) -> TranscodeReport:
    outcome.failed = clashes + sorted(outcome.failed)
    outcome.report = atomic_write_text(
        dst / name, "".join(f"{path}: {reason}\n" for path, reason in outcome.failed)
    )
    return outcome


def default_workers() -> int:
    """Worker processes by default: the CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def resize_videos(
    src: str | Path,
    dst: str | Path,
    short_side: int = 256,
    keyframe_interval: int = 16,
    fps: float | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> TranscodeReport:
    """Re-encode every video under ``src`` into ``dst`` (same relative paths, ``.mp4``); see the
    module docstring. ``workers`` processes (default: one per CPU; 0 or 1: in this process)."""
    scaled_size(2, 2, short_side)  # validates short_side
    if keyframe_interval < 1:
        raise ValueError(f"keyframe interval must be >= 1, got {keyframe_interval}")
    if fps is not None and fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    src, dst = Path(src), Path(dst)
    tasks, clashes = _plan(src, dst, lambda relative: relative.with_suffix(".mp4"))
    outcome = _run(
        _resize_job,
        tasks,
        (short_side, keyframe_interval, fps),
        default_workers() if workers is None else workers,
        "resize",
        progress,
        dst,
    )
    return _finish(outcome, clashes, dst, RESIZE_REPORT)


def extract_frames(
    src: str | Path,
    dst: str | Path,
    short_side: int | None = 256,
    template: str = DEFAULT_FRAME_TEMPLATE,
    workers: int | None = None,
    progress: bool = True,
) -> TranscodeReport:
    """Every video under ``src`` as a frame folder ``dst/<relative path without extension>/``
    with files ``template`` (1-based, e.g. ``img_00001.jpg``) at ``short_side`` (None: as decoded)."""
    if short_side is not None:
        scaled_size(2, 2, short_side)
    template.format(1)  # a bad template fails here, not in every worker
    src, dst = Path(src), Path(dst)
    tasks, clashes = _plan(src, dst, lambda relative: relative.with_suffix(""))
    outcome = _run(
        _frames_job,
        tasks,
        (short_side, template),
        default_workers() if workers is None else workers,
        "frames",
        progress,
        dst,
    )
    return _finish(outcome, clashes, dst, FRAMES_REPORT)


__all__ = [
    "FRAMES_REPORT",
    "RESIZE_REPORT",
    "TranscodeReport",
    "extract_frames",
    "extract_video_frames",
    "find_videos",
    "resize_video",
    "resize_videos",
    "scaled_size",
]
