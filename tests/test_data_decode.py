"""Frame-accurate decoding against a full sequential decode, probe, raw frames, and bad files."""

from __future__ import annotations

import functools
import multiprocessing
import tempfile
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import tsm.data.decode as decode
from tsm.data import VideoReadError, probe, read_frame_folder, read_frames, write_video

FRAMES = 40


@dataclass(frozen=True)
class Spec:
    """How a test video is encoded."""

    options: dict[str, str]
    suffix: str = ".mp4"
    size: tuple[int, int] = (64, 48)  # width, height
    pix_fmt: str = "yuv420p"
    variable_rate: bool = False
    codec: str = "libx264"


VIDEOS = {
    "gop1": Spec({"g": "1", "bf": "0"}),
    "gop5_bframes": Spec({"g": "5", "bf": "2"}),
    "gop12_bframes3": Spec({"g": "12", "bf": "3", "b-pyramid": "normal"}, size=(48, 64)),
    "long_gop": Spec({"g": "250", "bf": "3"}),
    "odd_size": Spec({"g": "7", "bf": "1"}, size=(65, 47), pix_fmt="yuv444p"),
    "vfr": Spec({"g": "6", "bf": "2"}, variable_rate=True),
    "mkv": Spec({"g": "8", "bf": "2"}, suffix=".mkv"),
    # Something-Something V2 ships VP9 webm, UCF101 MPEG-4 part 2 avi.
    "vp9_webm": Spec({"g": "8", "deadline": "realtime", "cpu-used": "8"}, suffix=".webm", codec="libvpx-vp9"),
    "mpeg4_avi": Spec({"g": "8", "bf": "2"}, suffix=".avi", codec="mpeg4"),
}


def _content(width: int, height: int, seed: int) -> np.ndarray:
    """Distinct frames: smooth random colour fields that change every frame."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (FRAMES, 6, 8, 3)).astype(np.float32)
    up = torch.nn.functional.interpolate(
        torch.from_numpy(small).permute(0, 3, 1, 2), (height, width), mode="bilinear"
    )
    return up.permute(0, 2, 3, 1).round().clamp(0, 255).to(torch.uint8).numpy()


@functools.cache
def _videos() -> dict[str, Path]:
    folder = Path(tempfile.mkdtemp(prefix="tsm-decode-"))
    paths = {}
    for seed, (name, spec) in enumerate(VIDEOS.items()):
        rng = np.random.default_rng(seed)
        timestamps = np.cumsum(rng.uniform(0.01, 0.3, FRAMES)) if spec.variable_rate else None
        frames = _content(*spec.size, seed)
        path = folder / f"{name}{spec.suffix}"
        paths[name] = write_video(path, frames, 10, 23, spec.pix_fmt, spec.options, timestamps, spec.codec)
    return paths


@functools.cache
def _sequential(path: Path) -> np.ndarray:
    """Independent reference: every frame of a plain sequential decode, in order."""
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def _no_sequential_fallback(*args: object) -> None:
    raise AssertionError("read_frames fell back to a sequential decode")


@pytest.mark.parametrize("name", list(VIDEOS))
def test_probe_counts_every_frame(name: str) -> None:
    path = _videos()[name]
    info = probe(path)
    reference = _sequential(path)
    assert info.num_frames == len(reference) == FRAMES
    assert (info.height, info.width) == reference.shape[1:3]
    assert info.duration > 0 and info.fps > 0


@pytest.mark.parametrize("name", list(VIDEOS))
def test_read_frames_matches_sequential_decode(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode, "_read_sequential", _no_sequential_fallback)
    path = _videos()[name]
    reference = _sequential(path)
    indices = [FRAMES - 1, 0, 17, 17, 3, 38, 4, 25, 12]
    frames = read_frames(path, indices)
    assert frames.dtype == torch.uint8 and frames.shape == (len(indices), 3, *reference.shape[1:3])
    np.testing.assert_array_equal(frames.permute(0, 2, 3, 1).numpy(), reference[indices])


@settings(max_examples=12, deadline=None)
@given(
    name=st.sampled_from(list(VIDEOS)), indices=st.lists(st.integers(0, FRAMES - 1), min_size=1, max_size=10)
)
def test_read_frames_any_indices(name: str, indices: list[int]) -> None:
    path = _videos()[name]
    np.testing.assert_array_equal(
        read_frames(path, indices).permute(0, 2, 3, 1).numpy(), _sequential(path)[indices]
    )


def test_streams_without_timestamps_are_counted_and_read_by_decoding(tmp_path: Path) -> None:
    path = write_video(tmp_path / "raw.h264", _content(32, 32, 9)[:12], options={"g": "4", "bf": "2"})
    with av.open(str(path)) as container:  # a raw H.264 stream: packets carry no pts
        assert all(packet.pts is None for packet in container.demux(video=0))
    reference = _sequential(path)
    assert probe(path).num_frames == len(reference) == 12
    np.testing.assert_array_equal(
        read_frames(path, [11, 2, 2]).permute(0, 2, 3, 1).numpy(), reference[[11, 2, 2]]
    )


def test_read_frames_rejects_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(IndexError, match="out of range"):
        read_frames(_videos()["gop1"], [0, FRAMES])
    with pytest.raises(ValueError, match="at least one"):
        read_frames(_videos()["gop1"], [])


def test_missing_empty_and_garbage_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="video not found"):
        probe(tmp_path / "nope.mp4")
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(VideoReadError, match="empty"):
        read_frames(empty, [0])
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoReadError, match=r"garbage\.mp4"):
        probe(garbage)


def test_truncated_files(tmp_path: Path) -> None:
    source = _videos()["gop5_bframes"].read_bytes()
    cut = tmp_path / "cut.mp4"  # moov at the end: the container cannot be opened
    cut.write_bytes(source[: len(source) // 2])
    with pytest.raises(VideoReadError):
        read_frames(cut, [0])
    # moov first (faststart): the container opens but the media data ends early; the frame count
    # is what can really be decoded, not what the header promises.
    faststart = tmp_path / "faststart.mp4"
    with (
        av.open(str(_videos()["gop5_bframes"])) as src,
        av.open(str(faststart), "w", options={"movflags": "faststart"}) as dst,
    ):
        out = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(video=0):
            if packet.dts is not None:
                packet.stream = out
                dst.mux(packet)
    data = faststart.read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) * 2 // 3])
    count = probe(truncated).num_frames
    assert 0 < count < FRAMES
    decodable = []  # independent reference: a sequential decode up to the first error
    with av.open(str(truncated)) as container:
        try:
            for frame in container.decode(video=0):
                decodable.append(frame.to_ndarray(format="rgb24"))
        except av.InvalidDataError:
            pass
    assert 0 < len(decodable) <= count
    wanted = [len(decodable) - 1, 0]
    np.testing.assert_array_equal(
        read_frames(truncated, wanted).permute(0, 2, 3, 1).numpy(), np.stack(decodable)[wanted]
    )
    if len(decodable) < count:
        with pytest.raises(VideoReadError, match="truncated"):
            read_frames(truncated, [count - 1])


def test_video_without_frames(tmp_path: Path) -> None:
    path = tmp_path / "noframes.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        container.start_encoding()  # header and trailer, no packets
    with pytest.raises(VideoReadError, match=r"no (video stream|frames)"):
        probe(path)


def test_raw_frame_folder(tmp_path: Path) -> None:
    frames = np.random.default_rng(0).integers(0, 256, (5, 16, 24, 3), dtype=np.uint8)
    for number, frame in enumerate(frames, start=1):
        Image.fromarray(frame).save(tmp_path / f"img_{number:05d}.png")
    got = read_frame_folder(tmp_path, [4, 0, 0, 2], template="img_{:05d}.png")
    assert got.dtype == torch.uint8
    np.testing.assert_array_equal(got.permute(0, 2, 3, 1).numpy(), frames[[4, 0, 0, 2]])
    Image.fromarray(frames[0]).save(tmp_path / "img_00001.jpg")
    assert read_frame_folder(tmp_path, [0]).shape == (1, 3, 16, 24)  # default template, 1-based
    with pytest.raises(VideoReadError, match=r"img_00002\.jpg"):
        read_frame_folder(tmp_path, [1])
    (tmp_path / "img_00002.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(VideoReadError, match="not a readable image"):
        read_frame_folder(tmp_path, [1])


class _CountingContainer:
    """Wraps an input container and counts the packets read after the last seek."""

    def __init__(self, container: av.container.InputContainer) -> None:
        self._container = container
        self.packets_after_seek = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._container, name)

    def seek(self, *args: object, **kwargs: object) -> None:
        self.packets_after_seek = 0
        self._container.seek(*args, **kwargs)

    def demux(self, *args: object, **kwargs: object):
        for packet in self._container.demux(*args, **kwargs):
            self.packets_after_seek += 1
            yield packet


@pytest.mark.parametrize(
    ("name", "gop"),
    [("gop5_bframes", 5), ("gop12_bframes3", 12), ("mkv", 8), ("vfr", 6), ("vp9_webm", 8), ("mpeg4_avi", 8)],
)
def test_seeks_to_the_keyframe_before_the_wanted_frame(
    name: str, gop: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[_CountingContainer] = []
    open_container = decode._open

    def counting_open(path: Path) -> _CountingContainer:
        opened.append(_CountingContainer(open_container(path)))
        return opened[-1]

    monkeypatch.setattr(decode, "_open", counting_open)
    read_frames(_videos()[name], [FRAMES - 2])
    # From the keyframe (at most gop - 1 frames before) to the wanted frame, plus the B-frame delay.
    assert opened[-1].packets_after_seek <= gop + 4 < FRAMES - 2


def _read_every_frame(path: str) -> None:
    read_frames(path, range(FRAMES))


@pytest.mark.skipif(int(av.__version__.split(".")[0]) < 18, reason="PyAV < 18 keeps no context per thread")
def test_a_forked_worker_reads_frames_whatever_its_parent_converted_before() -> None:
    """PyAV >= 18 keeps a swscale context per thread. A forked DataLoader worker inherits its parent's,
    with the thread pool PyAV uses by default on several CPUs, and hung for ever freeing it: reading
    frames there must finish."""
    path = _videos()["gop5_bframes"]
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        frame.reformat(width=32, height=24, format="rgb24", threads=2)  # this thread's context: a pool
    child = multiprocessing.get_context("fork").Process(target=_read_every_frame, args=(str(path),))
    child.start()
    child.join(timeout=60)
    hung = child.is_alive()
    if hung:
        child.kill()
    assert not hung and child.exitcode == 0
