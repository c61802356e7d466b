"""tsm serve: how many live streams keep real time, batched engine vs one stream at a time.

N clients on loopback each send the JPEG frames of a real-looking clip (tsm.data's synthetic
task) at ``--fps`` for ``--seconds``, like cameras: at a fixed rate, whatever the replies do. A
stream keeps real time when every frame it sent got its reply (none dropped) and the p95 of its
frame latency (send -> reply, first second excluded) is under one frame interval (67 ms at 15 fps).
For each engine, two servers run side by side (``tsm serve`` subprocesses): the batched engine
(all waiting streams in one call) and ``--max-batch 1`` (one stream at a time); N grows from 1
for each until it fails, alternating between the two at every N. Also: one stream's end-to-end
latency against the bare model step (batch 1, timed in this process while the servers idle).

    python benchmarks/bench_serve.py [--seconds 20] [--fps 15] [--size 224] [--engines torch,onnxruntime]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from websockets.asyncio.client import connect

import tsm
from bench_core import interleaved_medians, machine_name
from tsm.data import render_synthetic_clip
from tsm.inference import streaming_engine

MODEL = "tsm_online_mobilenet_v2"


@dataclass
class RunResult:
    streams: int
    p50_ms: float
    p95_ms: float  # the worst stream's p95
    dropped: int  # frames sent that got no reply, all streams
    frames: int
    step_ms: float  # median engine call, as the server reported it (model_ms)
    batch: float  # mean streams per engine call

    def real_time(self, interval_ms: float) -> bool:
        return self.dropped == 0 and self.p95_ms < interval_ms

    def cell(self) -> str:
        return (
            f"p50 {self.p50_ms:.0f} / p95 {self.p95_ms:.0f} ms, dropped {self.dropped}/{self.frames}, "
            f"step {self.step_ms:.0f} ms, batch {self.batch:.1f}"
        )


def clip_jpegs(size: int, frames: int = 64) -> list[bytes]:
    """A clip of the four synthetic motions, each frame as a JPEG (quality 85, like the page)."""
    rng = np.random.default_rng(0)
    names = ["move_right", "move_left", "grow", "shrink"]
    clip = np.concatenate([render_synthetic_clip(name, size, frames // 4, rng) for name in names])
    encoded = []
    for frame in clip:
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, "JPEG", quality=85)
        encoded.append(buffer.getvalue())
    return encoded


async def camera_client(
    url: str, jpegs: list[bytes], fps: float, seconds: float, offset: float
) -> tuple[list[float], list[dict]]:
    """Send frames at ``fps`` like a camera; the latency (s) of every frame that got a reply (NaN
    for those that did not: dropped), and the replies."""
    count = int(seconds * fps)
    sent, latencies, replies = {}, [float("nan")] * count, []
    async with connect(url, max_size=None) as socket:

        async def read() -> None:
            async for message in socket:
                reply = json.loads(message)
                if "error" in reply:
                    raise RuntimeError(reply["error"])
                latencies[reply["frame"]] = time.perf_counter() - sent[reply["frame"]]
                replies.append(reply)

        reader = asyncio.create_task(read())
        start = time.perf_counter() + offset
        for index in range(count):
            await asyncio.sleep(max(0.0, start + index / fps - time.perf_counter()))
            sent[index] = time.perf_counter()
            await socket.send(jpegs[index % len(jpegs)])
        await asyncio.sleep(1.0)  # the last replies
        reader.cancel()
    return latencies, replies


async def run_streams(
    address: str, streams: int, jpegs: list[bytes], fps: float, seconds: float
) -> RunResult:
    url = f"ws://{address}/ws/stream"
    offsets = [index / (streams * fps) for index in range(streams)]  # cameras are not in step
    clients = await asyncio.gather(*(camera_client(url, jpegs, fps, seconds, o) for o in offsets))
    runs = [latencies for latencies, _ in clients]
    replies = [reply for _, answered in clients for reply in answered]
    warm = int(fps)  # the first second is warm-up
    kept = [np.array(latencies[warm:]) * 1e3 for latencies in runs]
    answered = [values[~np.isnan(values)] for values in kept]
    dropped = sum(int(np.isnan(np.array(latencies)).sum()) for latencies in runs)
    p95 = max(float(np.percentile(values, 95)) if len(values) else float("inf") for values in answered)
    p50 = float(np.median(np.concatenate(answered))) if any(len(v) for v in answered) else float("inf")
    step = float(np.median([reply["model_ms"] for reply in replies])) if replies else float("nan")
    batch = float(np.mean([reply["batch"] for reply in replies])) if replies else float("nan")
    return RunResult(streams, p50, p95, dropped, sum(len(latencies) for latencies in runs), step, batch)


def start_server(
    checkpoint: Path, engine: str, max_batch: int | None, threads: int
) -> tuple[subprocess.Popen, str]:
    """``tsm serve`` on 127.0.0.1 and a free port; its process and address (its log goes next to
    the checkpoint)."""
    command = [sys.executable, "-m", "tsm.cli.main", "serve", "--checkpoint", str(checkpoint), "--port", "0"]
    command += [
        "--engine",
        engine,
        "--max-streams",
        "32",
        "--threads",
        str(threads),
        "--log-level",
        "warning",
    ]
    if max_batch is not None:
        command += ["--max-batch", str(max_batch)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    log = checkpoint.with_name(f"serve-{engine}-{max_batch}.log")
    with log.open("w") as errors:
        server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True, env=env)
    for line in server.stdout:
        found = re.search(r"tsm serve: http://(\S+?)/", line)
        if found:
            return server, found[1]
    server.wait()
    raise RuntimeError(f"tsm serve --engine {engine} did not start: {log.read_text().strip()}")


def compare(checkpoint: Path, engine: str, jpegs: list[bytes], args: argparse.Namespace) -> dict[str, list]:
    """Grow N for the batched and the unbatched server, alternating, until each has lost real time
    at two N in a row (one spurious stall on a shared machine does not end the sweep)."""
    interval_ms = 1e3 / args.fps
    servers = {
        "batched": start_server(checkpoint, engine, None, args.threads),
        "one at a time": start_server(checkpoint, engine, 1, args.threads),
    }
    results: dict[str, list[RunResult]] = {name: [] for name in servers}
    try:
        for streams in range(1, args.max_streams + 1):
            running = [
                name
                for name, runs in results.items()
                if len(runs) < 2 or any(run.real_time(interval_ms) for run in runs[-2:])
            ]
            if not running:
                break
            for name in running:
                result = asyncio.run(run_streams(servers[name][1], streams, jpegs, args.fps, args.seconds))
                results[name].append(result)
                print(f"  {engine:>11} {name:>13} N={streams}: {result.cell()}", flush=True)
    finally:
        for server, _ in servers.values():
            server.terminate()
            server.wait(30)
    return results


def bare_step_ms(model: tsm.Recognizer, engine: str, size: int, rounds: int, threads: int) -> float:
    """The streaming step of the benchmark's model on one frame (batch 1) on ``engine``, median ms."""
    step = streaming_engine(model.eval(), engine, frame_size=(size, size), threads=threads)
    frame = torch.randn(1, 3, size, size)
    caches = [torch.zeros(shape) for shape in step.cache_shapes((1, 3, size, size))]
    with torch.inference_mode():
        medians = interleaved_medians({"step": lambda: step(frame, *caches)}, rounds, torch.device("cpu"))
    return medians["step"] * 1e3


def largest(runs: list[RunResult], interval_ms: float) -> int:
    return max((run.streams for run in runs if run.real_time(interval_ms)), default=0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="each run, per N (default 20)")
    parser.add_argument("--fps", type=float, default=15.0, help="frames per second per stream (default 15)")
    parser.add_argument("--size", type=int, default=224, help="the model's input (default 224)")
    parser.add_argument(
        "--frame-size", type=int, default=256, help="side of the JPEG frames sent (default 256)"
    )
    parser.add_argument("--max-streams", type=int, default=16, help="stop at this N (default 16)")
    parser.add_argument("--engines", default="torch,onnxruntime", help="engines to compare (default both)")
    parser.add_argument("--rounds", type=int, default=30, help="rounds of the bare step timing (default 30)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each server (default 2)")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)  # the bare step runs as the servers do
    interval_ms = 1e3 / args.fps
    print(
        f"{MODEL} at {args.size}, {args.frame_size}x{args.frame_size} JPEG frames, {args.fps:g} fps per "
        f"stream for {args.seconds:g} s; {machine_name(torch.device('cpu'))}, torch {torch.__version__}"
    )
    jpegs = clip_jpegs(args.frame_size)
    model = tsm.create_model(MODEL, num_classes=27, num_segments=8)
    data_config = {"num_segments": 8, "resize": args.size * 8 // 7, "input_size": args.size}
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = tsm.save_checkpoint(
            Path(folder) / "online_mobilenet_v2.safetensors", model, None, data_config
        )
        for engine in args.engines.split(","):
            try:
                results = compare(checkpoint, engine, jpegs, args)
            except RuntimeError as error:
                print(f"{engine}: not measured: {error}")
                continue
            batched, single = (largest(results[name], interval_ms) for name in ("batched", "one at a time"))
            ratio = f"{batched / single:.2f}x" if single else "n/a"
            print(f"{engine}: largest N in real time: batched {batched}, one at a time {single} ({ratio})")
            bare = bare_step_ms(model, engine, args.size, args.rounds, args.threads)
            one = results["batched"][0]
            print(
                f"{engine}: one stream end to end p50 {one.p50_ms:.1f} ms vs bare model step "
                f"{bare:.1f} ms ({one.p50_ms / bare:.2f}x; vs the server's own step in that run, "
                f"{one.step_ms:.1f} ms: {one.p50_ms / one.step_ms:.2f}x)"
            )


if __name__ == "__main__":
    main()
