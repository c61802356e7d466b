"""Training-pipeline throughput: decode 8 segments + augment, against decoding every frame first.

Writes 10-second 340x256 H.264 videos (30 fps, 300 frames) with PyAV, then measures clips per
second of the training pipeline (``tsm.data``: seek + decode only the sampled frames, MultiScaleCrop
224, flip, normalise) and of a naive loader (decode and convert every frame, then sample, same
augmentation). Both run interleaved, clip by clip, in this process with one torch thread; the
figures are medians over clips, by wall clock and by this process's CPU time (steadier on a shared
machine; the work is single-threaded, so CPU-time clips/s is the rate of one free core). Two
encodings: libx264 defaults (GOP up to 250 frames) and a 1-second GOP (30 frames), since seeking
can only skip whole GOPs.

``--part resize`` measures what ``tsm data resize`` buys: 10-second web-style sources (340x256 and
1280x720, libx264 defaults) against the same videos after ``tsm.data.resize_video`` (short side
256, a keyframe every 16 frames), in training clips per CPU second of ``tsm.data``; when decord
and torchcodec are installed they read the same frame indices of the same files side by side
(decord and torchcodec with one decoder thread, tsm.data with PyAV's default decoder threads: CPU
time counts all threads; same augmentation after decoding).

Run: ``python benchmarks/bench_data.py [--part pipeline|resize|all --videos 4 --rounds 5]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from tsm.data import (
    DataConfig,
    build_pipeline,
    probe,
    read_frames,
    resize_video,
    segment_indices,
    write_video,
)
from tsm.data.decode import frame_to_rgb

WIDTH, HEIGHT, FPS, SECONDS = 340, 256, 30, 10


def _moving_scene(seed: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """300 frames of a smooth random texture panning diagonally, with a bouncing bright square."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.uniform(0, 255, (1, 3, 40, 50)).astype(np.float32))
    texture = torch.nn.functional.interpolate(coarse, (height * 2, width * 2), mode="bicubic")[0]
    texture = texture.clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    frames = np.empty((FPS * SECONDS, height, width, 3), np.uint8)
    box = height * 40 // HEIGHT
    for t in range(len(frames)):
        dy, dx = (t * 2) % height, (t * 3) % width
        frames[t] = texture[dy : dy + height, dx : dx + width]
        x = int(abs((t * 7) % (2 * (width - box)) - (width - box)))
        frames[t, height * 100 // HEIGHT : height * 100 // HEIGHT + box, x : x + box] = 255
    return frames


def _naive_clip(path: Path, pipeline, num_segments: int) -> torch.Tensor:
    with av.open(str(path)) as container:
        every = [frame_to_rgb(frame) for frame in container.decode(video=0)]  # same conversion as ours
    indices = segment_indices(len(every), num_segments, train=True)
    frames = torch.from_numpy(np.stack([every[i] for i in indices])).permute(0, 3, 1, 2)
    return pipeline(frames, 0)[0]


def _our_clip(path: Path, pipeline, num_segments: int) -> torch.Tensor:
    indices = segment_indices(probe(path).num_frames, num_segments, train=True)
    return pipeline(read_frames(path, indices), 0)[0]


def _decord_reader(path: Path, indices: list[int]) -> torch.Tensor:
    import decord

    batch = decord.VideoReader(str(path), num_threads=1).get_batch(indices).asnumpy()  # (T, H, W, 3)
    return torch.from_numpy(batch).permute(0, 3, 1, 2)


def _torchcodec_reader(path: Path, indices: list[int]) -> torch.Tensor:
    from torchcodec.decoders import VideoDecoder

    return VideoDecoder(str(path), num_ffmpeg_threads=1, seek_mode="exact").get_frames_at(indices).data


def _readers() -> dict[str, object]:
    """tsm.data, and decord / torchcodec where they are installed and load."""
    readers: dict[str, object] = {"tsm.data": read_frames}
    for name, reader in (("decord", _decord_reader), ("torchcodec", _torchcodec_reader)):
        if importlib.util.find_spec(name) is None:
            print(f"{name}: not installed, skipped")
            continue
        try:
            importlib.import_module(name if name == "decord" else "torchcodec.decoders")
        except (ImportError, OSError, RuntimeError) as error:  # e.g. torchcodec without system FFmpeg
            print(f"{name}: installed but does not load ({str(error).splitlines()[0][:100]}), skipped")
            continue
        readers[name] = reader
    return readers


def _resize_part(args: argparse.Namespace, pipeline) -> None:
    """Clips per CPU second of raw web-style sources vs the same videos after resize_video."""
    readers = _readers()
    print(f"readers: {', '.join(readers)}; clips/s = 1 / median CPU s per clip (all threads counted)")
    with tempfile.TemporaryDirectory() as folder:
        for width, height in ((340, 256), (1280, 720)):
            variants: dict[str, list[Path]] = {"raw": [], "resized": []}
            for number in range(args.videos):
                raw = Path(folder) / f"raw{width}_{number}.mp4"
                write_video(raw, _moving_scene(number, width, height), FPS, 23)
                resized = Path(folder) / f"resized{width}_{number}.mp4"
                resize_video(raw, resized, short_side=256, keyframe_interval=16)
                variants["raw"].append(raw)
                variants["resized"].append(resized)
            info = probe(variants["resized"][0])
            print(f"{width}x{height} source -> resized {info.width}x{info.height}, keyframe every 16 frames")
            generator = torch.Generator().manual_seed(0)
            clips = [
                list(segment_indices(FPS * SECONDS, args.segments, train=True, rng=generator))
                for _ in range(args.rounds)
            ]
            times: dict[tuple[str, str], list[float]] = {}
            for variant, paths in variants.items():  # warm-up, and do the readers agree on the frames?
                ours = read_frames(paths[0], clips[0]).float()
                for name, reader in readers.items():
                    difference = (reader(paths[0], clips[0]).float() - ours).abs().mean()
                    if name != "tsm.data":
                        print(f"  {variant}: {name} vs tsm.data, mean |difference| {difference:.2f} / 255")
            for indices in clips:  # interleaved, so every reader sees the same machine state
                for number in range(args.videos):
                    for variant, paths in variants.items():
                        for name, reader in readers.items():
                            cpu = time.process_time()
                            pipeline(reader(paths[number], indices), 0)
                            times.setdefault((name, variant), []).append(time.process_time() - cpu)
            for name in readers:
                raw, resized = (statistics.median(times[(name, variant)]) for variant in ("raw", "resized"))
                print(
                    f"  {name}: raw {1 / raw:.2f} clips/CPU s ({raw * 1000:.0f} ms), resized "
                    f"{1 / resized:.2f} clips/CPU s ({resized * 1000:.0f} ms), speed-up {raw / resized:.2f}x "
                    f"(median of {len(times[(name, 'raw')])} clips)"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--segments", type=int, default=8)
    parser.add_argument("--part", choices=("pipeline", "resize", "all"), default="all")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = DataConfig(num_segments=args.segments)
    pipeline = build_pipeline(config, train=True)
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, torch threads 1")
    if args.part in ("resize", "all"):
        _resize_part(args, pipeline)
    if args.part == "resize":
        return
    print(
        f"videos: {args.videos} x {SECONDS} s {WIDTH}x{HEIGHT} H.264 {FPS} fps; T={args.segments}, input 224"
    )
    with tempfile.TemporaryDirectory() as folder:
        for label, options in (("libx264 default GOP (<=250)", {}), ("1-second GOP (g=30)", {"g": "30"})):
            paths = []
            for number in range(args.videos):
                path = Path(folder) / f"v{number}_{len(options)}.mp4"
                paths.append(write_video(path, _moving_scene(number), FPS, 23, options=options))
            for path in paths:  # warm-up: per-process index cache, first-call costs
                _our_clip(path, pipeline, args.segments)
                _naive_clip(path, pipeline, args.segments)
            times: dict[str, dict[str, list[float]]] = {"ours": {"wall": [], "cpu": []}}
            times["naive"] = {"wall": [], "cpu": []}
            for _ in range(args.rounds):
                for path in paths:  # interleaved clip by clip, so both see the same machine state
                    for name, runner in (("ours", _our_clip), ("naive", _naive_clip)):
                        wall, cpu = time.perf_counter(), time.process_time()
                        runner(path, pipeline, args.segments)
                        times[name]["wall"].append(time.perf_counter() - wall)
                        times[name]["cpu"].append(time.process_time() - cpu)
            for clock in ("wall", "cpu"):
                ours, naive = (
                    statistics.median(times["ours"][clock]),
                    statistics.median(times["naive"][clock]),
                )
                print(
                    f"{label}, {clock} clock: tsm.data {1 / ours:.1f} clips/s, decode-all {1 / naive:.1f} "
                    f"clips/s, speed-up {naive / ours:.2f}x (median of {len(times['ours'][clock])} clips)"
                )


if __name__ == "__main__":
    main()
