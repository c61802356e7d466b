"""tsm serve: how many live cameras keep real time, per engine and server setting, where each
frame's time goes, and (``--soak``) whether a server at its largest N holds for minutes.

N clients on loopback each send the JPEG frames of a real-looking clip (tsm.data's synthetic
task) at ``--fps`` for ``--seconds``, like cameras: at a fixed rate, whatever the replies do. A
stream keeps real time when every frame it sent got its reply (none dropped) and the p95 of its
frame latency (send -> reply, first second excluded) is under one frame interval (67 ms at 15 fps).
For each engine, servers run side by side (subprocesses running ``create_app`` and
``run_server``, as ``tsm serve`` does, on an engine made as ``tsm serve`` makes it): "measured"
(the default: batching decided from the engine's measured cost per frame), "one at a time"
(``--max-batch 1``) and, for ONNX Runtime, "spinning" (its threads spinning between calls, what
the "alone" workload sets); N grows from 1 for each until it fails twice, alternating between
them at every N. Each cell: p50 / p95 latency, frames without a reply, the median engine call,
the mean batch, and the stages from the server's /metrics (decode + preprocess, waiting for the
engine, the engine call, and the rest: socket, JSON, event loop). Also: one stream's end-to-end
latency against the bare model step (batch 1, the engine alone, in this process). ``--soak S``:
afterwards, the fastest engine's default server at its largest N for S seconds (600: ten
minutes), its resident memory after a warm-up and at the end, frames dropped.

    python benchmarks/bench_serve.py [--seconds 20] [--fps 15] [--size 224] [--engines torch,onnxruntime]
        [--precision fp32] [--threads 2] [--soak 600]
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
import urllib.request
from dataclasses import dataclass, field
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
# Server settings compared for each engine: (ServeSettings.max_batch, the engine's workload).
VARIANTS = {
    "measured": (None, "served"),
    "one at a time": (1, "served"),
    "spinning": (None, "alone"),  # ONNX Runtime only: its threads spin between calls
}
STAGES = ("decode", "queue", "step", "frame")  # the server's histograms, tsm_serve_<stage>_seconds


@dataclass
class RunResult:
    streams: int
    p50_ms: float
    p95_ms: float  # the worst stream's p95
    dropped: int  # frames sent that got no reply, all streams
    frames: int
    step_ms: float  # median engine call, as the server reported it (model_ms)
    batch: float  # mean streams per engine call
    stages_ms: dict[str, float] = field(default_factory=dict)  # mean ms per frame (step: per call)

    def real_time(self, interval_ms: float) -> bool:
        return self.dropped == 0 and self.p95_ms < interval_ms

    def cell(self) -> str:
        where = ""
        if self.stages_ms:
            stages = self.stages_ms
            where = (
                f"; mean decode {stages['decode']:.1f}, arrival to engine {stages['queue']:.1f}, "
                f"engine {stages['step']:.1f}, arrival to reply {stages['frame']:.1f} ms"
            )
        return (
            f"p50 {self.p50_ms:.0f} / p95 {self.p95_ms:.0f} ms, dropped {self.dropped}/{self.frames}, "
            f"step {self.step_ms:.0f} ms, batch {self.batch:.1f}{where}"
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


def stage_totals(address: str) -> dict[str, tuple[float, float]]:
    """(sum of seconds, count) of each stage histogram on the server's /metrics."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=30) as response:
        text = response.read().decode()
    totals = {}
    for stage in STAGES:
        values = []
        for part in ("sum", "count"):
            found = re.search(rf"^tsm_serve_{stage}_seconds_{part} (\S+)$", text, re.MULTILINE)
            values.append(float(found[1]) if found else 0.0)
        totals[stage] = (values[0], values[1])
    return totals


def stage_means(before: dict, after: dict) -> dict[str, float]:
    """Mean ms per observation of each stage between two /metrics readings."""
    means = {}
    for stage in STAGES:
        seconds, count = (after[stage][i] - before[stage][i] for i in (0, 1))
        means[stage] = 1e3 * seconds / count if count else float("nan")
    return means


async def run_streams(
    address: str, streams: int, jpegs: list[bytes], fps: float, seconds: float
) -> RunResult:
    url = f"ws://{address}/ws/stream"
    before = stage_totals(address)
    offsets = [index / (streams * fps) for index in range(streams)]  # cameras are not in step
    clients = await asyncio.gather(*(camera_client(url, jpegs, fps, seconds, o) for o in offsets))
    stages = stage_means(before, stage_totals(address))
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
    frames = sum(len(latencies) for latencies in runs)
    return RunResult(streams, p50, p95, dropped, frames, step, batch, stages)


def serve_child(args: argparse.Namespace) -> None:
    """The server process: what ``tsm serve`` runs, on an engine made as it makes it, with the
    variant's batching and workload."""
    from tsm.apps.serve import ServeSettings, create_app
    from tsm.apps.serve.server import run_server

    model, info = tsm.load_checkpoint(args.serve_child)
    size = info.data_config.test_crop_size
    engine = streaming_engine(
        model.eval(), args.engine, (size, size), threads=args.threads, precision=args.precision,
        workload=args.workload,
    )  # fmt: skip
    settings = ServeSettings(max_streams=32, max_batch=args.max_batch)
    app = create_app(model, info, engine=engine, settings=settings)
    run_server(app, host="127.0.0.1", port=0, log_level="warning")


def start_server(
    checkpoint: Path, engine: str, variant: str, args: argparse.Namespace
) -> tuple[subprocess.Popen, str]:
    """A server process of ``variant`` on 127.0.0.1 and a free port; its process and address (its
    log goes next to the checkpoint)."""
    max_batch, workload = VARIANTS[variant]
    command = [sys.executable, __file__, "--serve-child", str(checkpoint), "--engine", engine]
    command += ["--workload", workload, "--threads", str(args.threads), "--precision", args.precision]
    command += ["--max-batch", str(max_batch)] if max_batch is not None else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    log = checkpoint.with_name(f"serve-{engine}-{variant.replace(' ', '_')}.log")
    with log.open("w") as errors:
        server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True, env=env)
    for line in server.stdout:
        found = re.search(r"tsm serve: http://(\S+?)/", line)
        if found:
            return server, found[1]
    server.wait()
    raise RuntimeError(f"the {engine} server ({variant}) did not start: {log.read_text().strip()}")


def compare(checkpoint: Path, engine: str, jpegs: list[bytes], args: argparse.Namespace) -> dict[str, list]:
    """Grow N for every variant, alternating, until each has lost real time at two N in a row
    (one spurious stall on a shared machine does not end the sweep)."""
    interval_ms = 1e3 / args.fps
    variants = [name for name in VARIANTS if engine == "onnxruntime" or VARIANTS[name][1] != "alone"]
    servers = {name: start_server(checkpoint, engine, name, args) for name in variants}
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


def bare_step_ms(model: tsm.Recognizer, engine: str, args: argparse.Namespace) -> float:
    """The streaming step of the benchmark's model on one frame (batch 1) on ``engine`` alone
    (the "alone" workload: ONNX Runtime's threads spin), median ms."""
    size = args.size
    step = streaming_engine(
        model.eval(), engine, (size, size), threads=args.threads, precision=args.precision, workload="alone"
    )
    frame = torch.randn(1, 3, size, size)
    caches = [torch.zeros(shape) for shape in step.cache_shapes((1, 3, size, size))]
    with torch.inference_mode():
        medians = interleaved_medians(
            {"step": lambda: step(frame, *caches)}, args.rounds, torch.device("cpu")
        )
    return medians["step"] * 1e3


def largest(runs: list[RunResult], interval_ms: float) -> int:
    return max((run.streams for run in runs if run.real_time(interval_ms)), default=0)


def resident_mib(pid: int) -> float:
    """The process's resident memory (VmRSS), MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)[1]) / 1024


def soak(checkpoint: Path, engine: str, streams: int, jpegs: list[bytes], args: argparse.Namespace) -> None:
    """The default server at ``streams`` cameras for ``args.soak`` seconds: resident memory after
    a warm-up (a tenth of the soak, at most a minute) and at the end, and every frame's reply."""
    server, address = start_server(checkpoint, engine, "measured", args)
    warm_up = min(60.0, args.soak / 10)
    try:
        asyncio.run(run_streams(address, streams, jpegs, args.fps, warm_up))
        start_rss = resident_mib(server.pid)
        result = asyncio.run(run_streams(address, streams, jpegs, args.fps, args.soak))
        end_rss = resident_mib(server.pid)
    finally:
        server.terminate()
        server.wait(30)
    growth = 100 * (end_rss - start_rss) / start_rss
    verdict = "every stream held" if result.real_time(1e3 / args.fps) else "NOT every stream held"
    print(
        f"soak, {engine}, {streams} cameras for {args.soak:g} s: resident memory {start_rss:.0f} MiB after "
        f"{warm_up:g} s of warm-up, {end_rss:.0f} MiB at the end ({growth:+.1f} %); {result.cell()}; "
        f"{verdict}"
    )


def arguments() -> argparse.Namespace:
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
    parser.add_argument("--precision", default="fp32", help="the torch engine's precision (default fp32)")
    parser.add_argument("--rounds", type=int, default=30, help="rounds of the bare step timing (default 30)")
    parser.add_argument("--threads", type=int, default=2, help="engine threads of each server (default 2)")
    parser.add_argument("--soak", type=float, help="then hold the largest N this many seconds (600: 10 min)")
    parser.add_argument("--serve-child", metavar="CHECKPOINT", help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--workload", help=argparse.SUPPRESS)
    parser.add_argument("--max-batch", type=int, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = arguments()
    if args.serve_child:
        serve_child(args)
        return
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)  # the bare step runs as the servers do
    interval_ms = 1e3 / args.fps
    print(
        f"{MODEL} at {args.size}, {args.frame_size}x{args.frame_size} JPEG frames, {args.fps:g} fps per "
        f"stream for {args.seconds:g} s; {machine_name(torch.device('cpu'))}, torch {torch.__version__}, "
        f"load average {os.getloadavg()[0]:.2f} at the start"
    )
    jpegs = clip_jpegs(args.frame_size)
    model = tsm.create_model(MODEL, num_classes=27, num_segments=8)
    data_config = {"num_segments": 8, "resize": args.size * 8 // 7, "input_size": args.size}
    held: dict[str, int] = {}
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
            counts = {name: largest(runs, interval_ms) for name, runs in results.items()}
            held[engine] = counts["measured"]
            print(f"{engine}: largest N in real time: {', '.join(f'{n} {c}' for n, c in counts.items())}")
            bare = bare_step_ms(model, engine, args)
            one = results["measured"][0]
            print(
                f"{engine}: one stream end to end p50 {one.p50_ms:.1f} ms vs the bare model step alone "
                f"{bare:.1f} ms ({one.p50_ms / bare:.2f}x; vs the server's own step in that run, "
                f"{one.step_ms:.1f} ms: {one.p50_ms / one.step_ms:.2f}x)"
            )
        if args.soak and held and max(held.values()) > 0:
            engine = max(held, key=held.get)
            soak(checkpoint, engine, held[engine], jpegs, args)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
