"""``tsm data resize`` / ``extract-frames``: frame counts against a full decode of the input,
short side, keyframe interval read from the output packets, no audio, resume, bad inputs."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from tsm.cli.main import main
from tsm.data import extract_frames, probe, resize_videos, write_video
from tsm.data.preparation.transcode import FRAMES_REPORT, RESIZE_REPORT, scaled_size
from tsm.fileio import temporary_path


def _frames(count: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth moving gradient (JPEG/H.264 keep it close), different per seed."""
    y, x = np.mgrid[0:height, 0:width]
    frames = [
        np.stack([(x * 4 + t * 9 + seed * 40) % 256, (y * 4 + t * 5) % 256, np.full_like(x, 128)], -1)
        for t in range(count)
    ]
    return np.stack(frames).astype(np.uint8)


def _with_audio(path: Path, frames: np.ndarray, fps: int = 10) -> Path:
    """An mp4 with an H.264 video stream and an AAC audio stream."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        audio = container.add_stream("aac", rate=8000)
        audio.layout = "mono"
        for number, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts, frame.time_base = number, Fraction(1, fps)
            container.mux(video.encode(frame))
        samples = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        samples.sample_rate, samples.pts = 8000, 0
        container.mux(audio.encode(samples))
        container.mux(video.encode())
        container.mux(audio.encode())
    return path


def _decoded_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def _keyframe_positions(path: Path) -> list[int]:
    """Positions (presentation order) of the packets flagged as keyframes."""
    with av.open(str(path)) as container:
        packets = sorted((p for p in container.demux(video=0) if p.size), key=lambda p: p.pts)
    return [number for number, packet in enumerate(packets) if packet.is_keyframe]


def _stream_kinds(path: Path) -> list[str]:
    with av.open(str(path)) as container:
        return [stream.type for stream in container.streams]


def _tree(root: Path) -> dict[str, Path]:
    videos = {
        "a b/x y.mp4": write_video(_mkdir(root / "a b") / "x y.mp4", _frames(37, 48, 64), fps=10),
        "portrait.avi": write_video(root / "portrait.avi", _frames(21, 64, 48, 1), fps=12, codec="mpeg4"),
        "deep/er/sound.mp4": _with_audio(_mkdir(root / "deep" / "er") / "sound.mp4", _frames(18, 36, 64, 2)),
        "gop250.mkv": write_video(root / "gop250.mkv", _frames(40, 40, 40, 3), fps=25, options={"bf": "2"}),
    }
    (root / "broken.mp4").write_bytes(videos["a b/x y.mp4"].read_bytes()[:1500])  # truncated
    (root / "garbage.webm").write_bytes(b"not a video" * 50)
    (root / "notes.txt").write_text("not a video, ignored")
    return videos


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_scaled_size() -> None:
    assert scaled_size(340, 256, 256) == (340, 256)
    assert scaled_size(1280, 720, 256) == (456, 256)  # 455.1 -> nearest even
    assert scaled_size(48, 64, 32) == (32, 42)
    with pytest.raises(ValueError, match="even number"):
        scaled_size(64, 48, 31)


def test_resize_tree(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    videos = _tree(src)
    report = resize_videos(src, dst, short_side=32, keyframe_interval=8, workers=0, progress=False)
    outputs = {relative: dst / Path(relative).with_suffix(".mp4") for relative in videos}
    assert sorted(report.written) == sorted(outputs.values()) and report.skipped == []
    assert [path.name for path, _ in report.failed] == ["broken.mp4", "garbage.webm"]
    assert all(str(path) in reason for path, reason in report.failed)
    assert (dst / RESIZE_REPORT).read_text().splitlines() == [
        f"{path}: {reason}" for path, reason in report.failed
    ]
    for relative, source in videos.items():
        output = outputs[relative]
        count = _decoded_count(output)
        assert count == _decoded_count(source), relative
        with av.open(str(output)) as container:
            stream = container.streams.video[0]
            size = (stream.codec_context.width, stream.codec_context.height)
            assert stream.codec_context.name == "h264"
        assert min(size) == 32 and size[0] % 2 == 0 and size[1] % 2 == 0
        assert _keyframe_positions(output) == list(range(0, count, 8)), relative
        assert _stream_kinds(output) == ["video"]
    assert _stream_kinds(videos["deep/er/sound.mp4"]) == ["video", "audio"]
    leftovers = [name for _, _, files in os.walk(dst) for name in files if ".tmp" in name]
    assert leftovers == []
    assert oct(outputs["portrait.avi"].stat().st_mode & 0o777) == oct(0o666 & ~_umask())

    # Resumable: finished outputs are probed and skipped, not rewritten.
    stamps = {path: path.stat().st_mtime_ns for path in outputs.values()}
    again = resize_videos(src, dst, short_side=32, keyframe_interval=8, workers=0, progress=False)
    assert (
        again.written == [] and sorted(again.skipped) == sorted(outputs.values()) and len(again.failed) == 2
    )
    assert {path: path.stat().st_mtime_ns for path in outputs.values()} == stamps
    # An output damaged afterwards is redone.
    outputs["gop250.mkv"].write_bytes(b"damaged")
    redone = resize_videos(src, dst, short_side=32, keyframe_interval=8, workers=0, progress=False)
    assert redone.written == [outputs["gop250.mkv"]] and _decoded_count(outputs["gop250.mkv"]) == 40


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_resize_fps_resamples(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    write_video(src / "v.mp4", _frames(30, 32, 32), fps=10)  # 3 s
    report = resize_videos(
        src, tmp_path / "dst", short_side=32, keyframe_interval=4, fps=4, workers=0, progress=False
    )
    info = probe(report.written[0])
    assert (info.num_frames, info.fps) == (math.ceil(3 * 4), 4.0)
    with av.open(str(report.written[0])) as container:
        decoded = [frame.to_ndarray(format="gray") for frame in container.decode(video=0)]
    with av.open(str(src / "v.mp4")) as container:
        source = [frame.to_ndarray(format="gray") for frame in container.decode(video=0)]
    # Output frame k shows the input frame on screen at k / 4 s: input frame floor(k * 10 / 4).
    for k, frame in enumerate(decoded):
        errors = [np.abs(frame.astype(int) - other.astype(int)).mean() for other in source]
        assert int(np.argmin(errors)) == (k * 10) // 4
    again = resize_videos(
        src, tmp_path / "dst", short_side=32, keyframe_interval=4, fps=4, workers=0, progress=False
    )
    assert again.skipped == report.written and again.written == []


def test_resize_in_worker_processes(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    for number in range(3):
        write_video(src / f"v{number}.mp4", _frames(9 + number, 32, 48, number), fps=10)
    (src / "bad.mp4").write_bytes(b"\x00" * 100)
    report = resize_videos(src, dst, short_side=32, keyframe_interval=4, workers=2, progress=False)
    assert sorted(path.name for path in report.written) == ["v0.mp4", "v1.mp4", "v2.mp4"]
    assert [path.name for path, _ in report.failed] == ["bad.mp4"]
    assert [probe(dst / f"v{n}.mp4").num_frames for n in range(3)] == [9, 10, 11]


def test_extract_frames(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "frames"
    videos = _tree(src)
    report = extract_frames(src, dst, short_side=32, template="img_{:05d}.jpg", workers=0, progress=False)
    assert len(report.written) == len(videos) and len(report.failed) == 2
    assert (dst / FRAMES_REPORT).read_text().count("\n") == 2
    for relative, source in videos.items():
        folder = dst / Path(relative).with_suffix("")
        names = sorted(os.listdir(folder))
        count = _decoded_count(source)
        assert names == [f"img_{number:05d}.jpg" for number in range(1, count + 1)]
        with Image.open(folder / names[-1]) as image:
            assert min(image.size) == 32
        assert oct(folder.stat().st_mode & 0o777) == oct(0o777 & ~_umask())  # not mkdtemp's 0o700
    with av.open(str(videos["a b/x y.mp4"])) as container:
        last = list(container.decode(video=0))[-1].reformat(42, 32, format="rgb24").to_ndarray()
    with Image.open(dst / "a b" / "x y" / "img_00037.jpg") as image:
        assert np.abs(np.asarray(image).astype(int) - last.astype(int)).mean() < 4
    again = extract_frames(src, dst, short_side=32, workers=0, progress=False)
    assert again.written == [] and len(again.skipped) == len(videos)
    (dst / "portrait" / "img_00021.jpg").unlink()  # a folder someone else changed is left alone
    changed = extract_frames(src, dst, short_side=32, workers=0, progress=False)
    assert [path.name for path, _ in changed.failed] == ["broken.mp4", "garbage.webm", "portrait.avi"]
    assert "exists with a different frame count" in changed.failed[2][1]
    assert len(os.listdir(dst / "portrait")) == 20


def test_cli_resize_and_errors(tmp_path: Path, capsys) -> None:
    src = tmp_path / "src"
    src.mkdir()
    write_video(src / "v.mp4", _frames(6, 32, 32), fps=10)
    dst = tmp_path / "dst"
    args = [
        "data",
        "resize",
        str(src),
        str(dst),
        "--short-side",
        "16",
        "--keyframe-interval",
        "2",
        "--workers",
        "0",
    ]
    assert main(args) == 0
    assert "1 written, 0 already done, 0 failed" in capsys.readouterr().out
    assert _keyframe_positions(dst / "v.mp4") == [0, 2, 4]
    (src / "bad.avi").write_bytes(b"junk")
    assert main(args) == 1
    assert "0 written, 1 already done, 1 failed" in capsys.readouterr().out
    assert main(["data", "resize", str(tmp_path / "nowhere"), str(dst)]) == 1
    assert "source folder not found" in capsys.readouterr().err
    assert main([*args[:4], "--short-side", "15"]) == 1
    assert "short side must be an even number" in capsys.readouterr().err
    frames_args = [
        "data",
        "extract-frames",
        str(src),
        str(tmp_path / "f"),
        "--short-side",
        "16",
        "--workers",
        "0",
    ]
    assert main(frames_args) == 1 and (tmp_path / "f" / "v" / "img_00006.jpg").is_file()


# A process of this test that writes OUT atomically and dies half way (os._exit skips every cleanup),
# as a `tsm data resize` killed mid-file does.
_KILLED_WRITER = """
import os, sys
from pathlib import Path
from tsm.fileio import atomic_write
def write_half(tmp):
    Path(tmp).write_bytes(b"half a video")
    os._exit(9)
atomic_write(sys.argv[1], write_half)
"""


def _renamed(temporary: Path, pid: int) -> Path:
    """``temporary`` (a name of tsm.fileio.temporary_path) as process ``pid`` would have named it."""
    return temporary.with_name(temporary.name.replace(f"-{os.getpid()}-", f"-{pid}-"))


def test_a_rerun_removes_what_a_killed_run_left(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    for number in range(2):
        write_video(src / f"v{number}.mp4", _frames(9 + number, 32, 48, number), fps=10)
    (dst / "sub").mkdir(parents=True)
    killed = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(dst / "v0.mp4")], check=False)
    assert killed.returncode == 9
    [left_by_killed] = dst.glob(".v0.mp4.*.tmp")
    ended_pid = _ended_process()
    frames_folder = _renamed(temporary_path(dst / "sub" / "clip"), ended_pid)  # extract-frames' kind
    frames_folder.mkdir()
    (frames_folder / "img_00001.jpg").write_bytes(b"jpeg")
    old_style = dst / ".v1.mp4.0123456789abcdef.tmp"  # an earlier version's name, untouched for 2 hours
    old_style.write_bytes(b"partial")
    os.utime(old_style, (time.time() - 7200, time.time() - 7200))
    kept = [
        _renamed(temporary_path(dst / "live.mp4"), os.getppid()),  # its writer runs
        dst / ".fresh.mp4.fedcba9876543210.tmp",  # an earlier version's name, written to just now
        dst / f".remote.mp4.00000000-{ended_pid}-0a0b0c0d.tmp",  # another machine's: cannot be checked
        dst / ".notes.tmp",  # not one of ours
    ]
    for path in kept:
        path.write_bytes(b"in progress")
    report = resize_videos(src, dst, short_side=32, keyframe_interval=4, workers=0, progress=False)
    assert sorted(report.removed) == sorted([left_by_killed, frames_folder, old_style])
    assert not left_by_killed.exists() and not frames_folder.exists() and not old_style.exists()
    assert all(path.is_file() for path in kept)
    assert sorted(path.name for path in report.written) == ["v0.mp4", "v1.mp4"]
    assert [_decoded_count(dst / f"v{n}.mp4") for n in range(2)] == [9, 10]
    assert "removed 3 temporary files an interrupted run left" in report.summary()


def _ended_process() -> int:
    """The pid of a process that has ended."""
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    return ended.pid
