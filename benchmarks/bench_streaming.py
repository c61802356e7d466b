"""Online TSM per-frame latency, onnxruntime vs PyTorch for the offline clip model, and
``tsm stream`` end to end on H.264 clips.

Four comparisons, each timed interleaved (round-robin) in one process, median of ``--rounds``:

1. streaming step of online TSM-MobileNetV2 (caches) vs plain MobileNetV2 (TSN, same head) on one
   frame: the cost of the caches (the paper: 4.8 ms vs 4.7 ms on ResNet-50);
2. streaming step vs re-running an 8-frame window for every new frame (what a sliding-window
   webcam demo such as MMAction2's does): expect about 1/8;
3. onnxruntime (CPU) vs PyTorch on the offline TSM-ResNet-50 clip (1 x 8 x 3 x 224 x 224);
4. ``--end-to-end``: what ``tsm stream`` runs (``stream_predictions``) on H.264 clips of
   176x144, 640x272 and 1280x720 (``--stream-frames`` frames each) with the online MobileNetV2 at
   ``--stream-size`` (112), per engine: the model alone (frames/s of the bare step on prepared
   frames), end to end with decoding and preprocessing in turn on one thread ("serial") and
   overlapped on another thread ("overlapped", what tsm stream does), with ONNX Runtime's
   threads sleeping between calls (tsm stream's setting) or spinning; the ratio end to end /
   model; the per-frame stages (decode + preprocess, model, the model's wait for the next frame);
   p50/p95 of the time from one frame's result to the next, and whether a 15 frames/s camera
   is held (p95 under 67 ms).

    python benchmarks/bench_streaming.py [--rounds 15] [--size 224] [--threads 2] [--skip-onnx]
        [--end-to-end] [--only-end-to-end] [--stream-rounds 5] [--stream-frames 150]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import tsm
from bench_core import interleaved_medians, machine_name


def ratio_line(title: str, medians: dict[str, float], numerator: str, denominator: str) -> str:
    cells = ", ".join(f"{name} {seconds * 1e3:.2f} ms" for name, seconds in medians.items())
    return f"{title}: {numerator}/{denominator} {medians[numerator] / medians[denominator]:.3f}   ({cells})"


def streaming_figures(size: int, rounds: int) -> None:
    cpu = torch.device("cpu")
    online = tsm.create_model("tsm_online_mobilenet_v2", num_classes=27, num_segments=8).eval()
    plain = tsm.Recognizer(online.config.replace(shift=False)).eval()
    plain.load_state_dict({k.replace(".net.", "."): v for k, v in online.state_dict().items()})
    streamer = tsm.StreamingRecognizer(online)
    frame = torch.randn(1, 3, size, size)
    window = torch.randn(1, 8, 3, size, size)
    with torch.inference_mode():
        streamer.step(frame)

        def plain_frame() -> None:
            plain.new_fc(plain.base_model(frame))

        steps = {
            "online TSM step": lambda: streamer.step(frame),
            "MobileNetV2 frame": plain_frame,
            "8-frame window": lambda: online(window),
        }
        medians = interleaved_medians(steps, rounds, cpu)
    print(ratio_line("per-frame latency, MobileNetV2", medians, "online TSM step", "MobileNetV2 frame"))
    print(ratio_line("streaming vs 8-frame window per frame", medians, "online TSM step", "8-frame window"))


def onnx_figures(size: int, rounds: int, threads: int) -> None:
    import onnxruntime as ort

    model = tsm.create_model("tsm_resnet50", num_classes=400, num_segments=8).eval()
    clips = torch.randn(1, 8, 3, size, size)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tsm_r50.onnx"
        check = tsm.export_model(model, path, frame_size=size, onnx_exporter="torchscript")
        print(f"export check: {check.summary()}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feeds = {"clips": clips.numpy()}
        with torch.inference_mode():
            steps = {
                "onnxruntime": lambda: session.run(None, feeds),
                "PyTorch": lambda: model(clips),
            }
            medians = interleaved_medians(steps, rounds, torch.device("cpu"))
    print(ratio_line("offline TSM-ResNet-50 clip, 1x8 frames", medians, "onnxruntime", "PyTorch"))


STREAM_CLIPS = ((176, 144), (640, 272), (1280, 720))
CAMERA_INTERVAL_MS = 1e3 / 15


def textured_clip(folder: Path, width: int, height: int, frames: int) -> Path:
    """An H.264 clip of the synthetic task's moving object over a textured background (so that
    decoding costs what a camera's frames cost), ``width`` x ``height``."""
    rng = np.random.default_rng(width)
    moving = tsm.data.render_synthetic_clip("move_right", max(width, height), frames, rng)[:, :height, :width]
    texture = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
    video = np.clip(moving.astype(np.int16) + texture, 0, 255).astype(np.uint8)
    return tsm.data.write_video(folder / f"clip_{width}x{height}.mp4", video, fps=30, crf=23)


def stream_engines(model: tsm.Recognizer, size: int, threads: int) -> dict[str, tsm.StreamingRecognizer]:
    """The engines tsm stream can run, as it makes them (and ONNX Runtime spinning, for the choice)."""
    make = lambda engine, **options: tsm.StreamingRecognizer(  # noqa: E731
        model, engine=engine, frame_size=size, threads=threads, **options
    )
    streamers = {"torch fp32": make("torch"), "torch bf16": make("torch", precision="bf16")}
    streamers["onnxruntime"] = make("onnxruntime")  # the "overlapped" workload: threads sleep
    streamers["onnxruntime spinning"] = make("onnxruntime", workload="alone")
    return streamers


def run_stream(video: Path, streamer, config: dict, prefetch: int) -> dict[str, float]:
    """One pass of tsm stream over ``video``: frames/s and the per-frame stages (ms)."""
    start = time.perf_counter()
    events, finished = [], []
    for event in tsm.inference.stream_predictions(video, streamer, ["x"] * 27, config, prefetch=prefetch):
        events.append(event)
        finished.append(time.perf_counter())
    seconds = time.perf_counter() - start
    gaps = np.diff(np.array(finished)) * 1e3
    return {
        "fps": len(events) / seconds,
        "prepare_ms": 1e3 * float(np.mean([e.prepare_seconds for e in events])),
        "model_ms": 1e3 * float(np.mean([e.step_seconds for e in events])),
        "wait_ms": 1e3 * float(np.mean([e.wait_seconds for e in events])),
        "p50_ms": float(np.percentile(gaps, 50)),
        "p95_ms": float(np.percentile(gaps, 95)),
    }


def bare_fps(streamers: dict, size: int, rounds: int) -> dict[str, float]:
    """Frames/s of each engine's step alone, on one prepared frame: blocks of back-to-back calls,
    the engines in turn, each block's first calls left out (an engine whose threads spin after
    its calls, ONNX Runtime's "alone" workload, would otherwise slow the next engine's calls)."""
    frame = torch.randn(1, 3, size, size)
    times: dict[str, list[float]] = {name: [] for name in streamers}
    with torch.inference_mode():
        for _ in range(rounds):
            for name, streamer in streamers.items():
                for call in range(13):
                    start = time.perf_counter()
                    streamer.step(frame)
                    if call >= 3:
                        times[name].append(time.perf_counter() - start)
    return {name: 1.0 / float(np.median(seconds)) for name, seconds in times.items()}


def end_to_end_figures(args: argparse.Namespace) -> None:
    model = tsm.create_model("tsm_online_mobilenet_v2", num_classes=27, num_segments=8).eval()
    size = args.stream_size
    config = {"num_segments": 8, "resize": size * 8 // 7, "input_size": size}
    streamers = stream_engines(model, size, args.threads)
    model_fps = bare_fps(streamers, size, args.stream_rounds)
    with tempfile.TemporaryDirectory() as folder:
        clips = [textured_clip(Path(folder), w, h, args.stream_frames) for w, h in STREAM_CLIPS]
        for video, (width, height) in zip(clips, STREAM_CLIPS, strict=True):
            runs: dict[tuple[str, str], list[dict[str, float]]] = {}
            for _ in range(args.stream_rounds):  # interleaved: every engine and mode once a round
                for name, streamer in streamers.items():
                    for mode, prefetch in (("serial", 0), ("overlapped", 4)):
                        runs.setdefault((name, mode), []).append(
                            run_stream(video, streamer, config, prefetch)
                        )
            print(f"tsm stream, {width}x{height} H.264, {args.stream_frames} frames, model at {size}:")
            for (name, mode), results in runs.items():
                median = {key: float(np.median([r[key] for r in results])) for key in results[0]}
                held = "holds" if median["p95_ms"] < CAMERA_INTERVAL_MS else "does not hold"
                print(
                    f"  {name:>21} {mode:>10}: {median['fps']:6.1f} frames/s = "
                    f"{median['fps'] / model_fps[name]:.2f} x the model alone ({model_fps[name]:.1f}); "
                    f"per frame: decode+preprocess {median['prepare_ms']:.2f} ms, model "
                    f"{median['model_ms']:.2f} ms, wait {median['wait_ms']:.2f} ms; result to result "
                    f"p50 {median['p50_ms']:.1f} / p95 {median['p95_ms']:.1f} ms ({held} a 15 fps camera)"
                )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for PyTorch and onnxruntime")
    parser.add_argument("--skip-onnx", action="store_true")
    parser.add_argument("--end-to-end", action="store_true", help="also tsm stream on H.264 clips")
    parser.add_argument("--only-end-to-end", action="store_true", help="only tsm stream on H.264 clips")
    parser.add_argument("--stream-size", type=int, default=112, help="the model's input there (default 112)")
    parser.add_argument("--stream-frames", type=int, default=150, help="frames of each clip (default 150)")
    parser.add_argument("--stream-rounds", type=int, default=5, help="passes over each clip (default 5)")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    print(
        f"batch 1, {args.size}x{args.size}, fp32, {machine_name(torch.device('cpu'))}, "
        f"torch {torch.__version__}, median of {args.rounds} interleaved rounds"
    )
    if not args.only_end_to_end:
        streaming_figures(args.size, args.rounds)
        if not args.skip_onnx:
            onnx_figures(args.size, args.rounds, args.threads)
    if args.end_to_end or args.only_end_to_end:
        end_to_end_figures(args)


if __name__ == "__main__":
    main()
