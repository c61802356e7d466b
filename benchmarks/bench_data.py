"""Training-pipeline throughput: decode 8 segments + augment, against decoding every frame first.

Writes 10-second 340x256 H.264 videos (30 fps, 300 frames) with PyAV, then measures clips per
second of the training pipeline (``tsm.data``: seek + decode only the sampled frames, MultiScaleCrop
224, flip, normalise) and of a naive loader (decode and convert every frame, then sample, same
augmentation). Both run interleaved, clip by clip, in this process with one torch thread; the
figures are medians over clips, by wall clock and by this process's CPU time (steadier on a shared
machine; the work is single-threaded, so CPU-time clips/s is the rate of one free core). Two
encodings: libx264 defaults (GOP up to 250 frames) and a 1-second GOP (30 frames), since seeking
can only skip whole GOPs.

Run: ``python benchmarks/bench_data.py [--videos 4 --rounds 5]``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from tsm.data import DataConfig, build_pipeline, probe, read_frames, segment_indices, write_video
from tsm.data.decode import frame_to_rgb

WIDTH, HEIGHT, FPS, SECONDS = 340, 256, 30, 10


def _moving_scene(seed: int) -> np.ndarray:
    """300 frames of a smooth random texture panning diagonally, with a bouncing bright square."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.uniform(0, 255, (1, 3, 40, 50)).astype(np.float32))
    texture = torch.nn.functional.interpolate(coarse, (HEIGHT * 2, WIDTH * 2), mode="bicubic")[0]
    texture = texture.clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    frames = np.empty((FPS * SECONDS, HEIGHT, WIDTH, 3), np.uint8)
    for t in range(len(frames)):
        dy, dx = (t * 2) % HEIGHT, (t * 3) % WIDTH
        frames[t] = texture[dy : dy + HEIGHT, dx : dx + WIDTH]
        x = int(abs((t * 7) % (2 * (WIDTH - 40)) - (WIDTH - 40)))
        frames[t, 100:140, x : x + 40] = 255
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--segments", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = DataConfig(num_segments=args.segments)
    pipeline = build_pipeline(config, train=True)
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, torch threads 1")
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
