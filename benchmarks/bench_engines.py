"""Inference engines on the CPU: PyTorch eager vs ONNX Runtime fp32 and int8.

In one process, interleaved (round-robin), the median of ``--rounds`` rounds, ratios to torch eager:

1. the online TSM-MobileNetV2 streaming step at 224x224, batch 1 and batch 8 (frames + caches);
2. the TSM ResNet-50 8-frame clip at 224x224, batch 1;

each under torch eager (NCHW), torch eager channels_last, torch bf16 (``precision="bf16"``: a
bf16 channels_last copy, BatchNorms folded), ONNX Runtime fp32 and ONNX Runtime int8
(every turn starts after a camera frame's interval of rest, so that no engine runs while the
threads of the one before still spin),
all through tsm's engines (``tsm.streaming_engine`` / ``tsm.clip_engine``: what ``tsm stream``,
``tsm predict`` and the live server run). The int8 models are calibrated as ``tsm export --int8``
does, on decoded H.264 clips of the synthetic task; the weights are random (no pretrained weights
here), so the int8 check printed with them says nothing about accuracy (the demo measures that).

    python benchmarks/bench_engines.py [--rounds 15] [--threads 2] [--calibration-clips 8]
        [--other-exporter]

Each case is timed twice: "live", one call after a rest of one camera frame (33 ms), as on a live
stream (the engine's threads have gone idle, its weights may have left the CPU caches), and
"back-to-back", several calls in a row (a batch job). ``--other-exporter`` adds the step as
PyTorch's torch.export-based ONNX exporter writes it (the export cache uses the TorchScript-based
one) and prints how long each export took.
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

import tsm
from bench_core import CLOCKS, interleaved_medians, machine_name, report
from tsm.export import export_int8
from tsm.inference import StreamingEngine

BASE = "torch eager"
# Before each timed call, the pause between two frames of a 30 frames/s camera: as on a live
# stream, every engine starts with its threads idle, never spun up by the engine timed before it.
FRAME_INTERVAL = 1 / 30
CPU = torch.device("cpu")


def channels_last_copy(model: tsm.Recognizer) -> tsm.Recognizer:
    return copy.deepcopy(model).to(memory_format=torch.channels_last)


def step_candidates(
    model: tsm.Recognizer,
    int8_file: Path,
    batch: int,
    size: int,
    threads: int,
    cache: Path,
    other_exporter: bool,
) -> dict[str, Callable[[], object]]:
    """One streaming step per call, on frames and caches of a running stream, for each engine."""
    engines: dict[str, StreamingEngine] = {
        BASE: tsm.streaming_engine(model, "torch"),
        "torch eager channels_last": tsm.streaming_engine(channels_last_copy(model), "torch"),
        "torch bf16": tsm.streaming_engine(model, "torch", precision="bf16"),
        "onnxruntime fp32": tsm.streaming_engine(
            model, "onnxruntime", size, threads=threads, cache_dir=cache
        ),
        "onnxruntime int8": tsm.streaming_engine(int8_file, threads=threads),
    }
    if other_exporter:  # the same step as PyTorch's torch.export-based exporter writes it
        engines["onnxruntime fp32 (torch.export-based export)"] = tsm.streaming_engine(
            model, "onnxruntime", size, threads=threads, cache_dir=cache, onnx_exporter="dynamo"
        )
    for name, engine in engines.items():
        if "exported in" in engine.reason:
            print(f"{name}: {engine.reason.rsplit('(', 1)[1].rstrip(')')}")
    frames = torch.randn(batch, 3, size, size)
    _, *caches = engines[BASE](frames)  # caches of a stream that has seen one frame
    inputs: dict[str, tuple[Tensor, ...]] = {name: (frames, *caches) for name in engines}
    last = tuple(t.contiguous(memory_format=torch.channels_last) for t in (frames, *caches))
    inputs["torch eager channels_last"] = last
    return {name: (lambda e=engine, i=inputs[name]: e(*i)) for name, engine in engines.items()}


def clip_candidates(
    model: tsm.Recognizer, int8_file: Path, size: int, threads: int, cache: Path
) -> dict[str, Callable[[], object]]:
    """One clip (1, T, 3, H, W) per call, for each engine."""
    clips = torch.randn(1, model.num_segments, 3, size, size)
    engines = {
        BASE: tsm.clip_engine(model, "torch"),
        "torch eager channels_last": tsm.clip_engine(channels_last_copy(model), "torch"),
        "torch bf16": tsm.clip_engine(model, "torch", precision="bf16"),
        "onnxruntime fp32": tsm.clip_engine(model, "onnxruntime", size, threads=threads, cache_dir=cache),
        "onnxruntime int8": tsm.clip_engine(int8_file, threads=threads),
    }
    return {name: (lambda e=engine: e(clips)) for name, engine in engines.items()}


def int8_file(model: tsm.Recognizer, folder: Path, name: str, streaming: bool, data, clips: int) -> Path:
    """``tsm export --int8``'s file, calibrated on ``clips`` decoded clips of the synthetic task."""
    path = folder / f"{name}_int8.onnx"
    check = export_int8(
        model,
        path,
        data.lists["train"],
        streaming=streaming,
        frame_size=data.data_config.input_size,
        data_config=data.data_config.replace(num_segments=model.num_segments),
        calibration_clips=clips,
        max_drop=None,  # random weights: the check's figures mean nothing here
        onnx_exporter="torchscript",
    )
    print(f"{name} int8: calibrated on {check.calibration_clips} clips ({check.calibration_inputs} inputs)")
    return path


def measure(title: str, candidates: dict, args: argparse.Namespace, repeat: int, results: dict) -> None:
    """Both pacings of one case: one call after a camera frame's rest, and ``repeat`` calls in a row."""
    live = interleaved_medians(candidates, args.rounds, CPU, settle=FRAME_INTERVAL, clock=args.clock)
    report(f"{title}, live (one call after a {FRAME_INTERVAL * 1e3:.0f} ms rest)", live, results, base=BASE)
    busy = interleaved_medians(
        candidates, args.rounds, CPU, repeat=repeat, settle=FRAME_INTERVAL, clock=args.clock
    )
    report(f"{title}, back-to-back ({repeat} calls in a row)", busy, results, base=BASE)


def print_targets(results: dict[str, dict[str, float]]) -> None:
    """The issues' speed targets (the batch-1 step's runtimes; bf16 on the clip), met or not."""
    for title, ratios in results.items():
        if title.startswith("TSM ResNet-50 8-frame clip"):
            bf16 = ratios["torch bf16"]
            pacing = title.split(", ")[-1]
            verdict = "met" if bf16 <= 0.5 else "not met"
            print(f"target, {pacing}: torch bf16 <= 0.5 x fp32: {bf16:.3f} ({verdict})")
        if title.startswith("online TSM-MobileNetV2 step, batch 1"):
            pacing = title.split(", ")[-1]
            fp32, int8 = ratios["onnxruntime fp32"], ratios["onnxruntime int8"] / ratios["onnxruntime fp32"]
            for target, ratio, bound in (
                ("onnxruntime fp32 <= 0.25 x torch eager", fp32, 0.25),
                ("int8 <= 0.6 x onnxruntime fp32", int8, 0.6),
            ):
                print(f"target, {pacing}: {target}: {ratio:.3f} ({'met' if ratio <= bound else 'not met'})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for PyTorch and ONNX Runtime")
    parser.add_argument("--calibration-clips", type=int, default=8)
    parser.add_argument("--skip-clip", action="store_true", help="only the streaming step")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall: elapsed time (default); cpu: the process's CPU time (a shared machine, --threads 1)",
    )
    parser.add_argument(
        "--other-exporter",
        action="store_true",
        help="also the step as the ONNX exporter the cache does not use writes it (torch.export-based)",
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    print(
        f"{machine_name(CPU)}, torch {torch.__version__}, onnxruntime "
        f"{__import__('onnxruntime').__version__}, median of {args.rounds} interleaved rounds, "
        f"load average {os.getloadavg()[0]:.2f} (1 min) at the start"
    )
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        data = tsm.generate_synthetic_dataset(
            folder / "data", train=args.calibration_clips + 2, val=1, test=1, size=args.size, frames=16
        )
        online = tsm.create_model("tsm_online_mobilenet_v2", num_classes=27, num_segments=8).eval()
        step_int8 = int8_file(online, folder, "MobileNetV2 step", True, data, args.calibration_clips)
        cache = folder / "cache"
        for batch in (1, 8):
            candidates = step_candidates(
                online, step_int8, batch, args.size, args.threads, cache, args.other_exporter
            )
            measure(f"online TSM-MobileNetV2 step, batch {batch}", candidates, args, 10, results)
        if not args.skip_clip:
            resnet = tsm.create_model("tsm_resnet50", num_classes=400, num_segments=8).eval()
            clip_int8 = int8_file(resnet, folder, "ResNet-50 clip", False, data, args.calibration_clips)
            candidates = clip_candidates(resnet, clip_int8, args.size, args.threads, cache)
            measure("TSM ResNet-50 8-frame clip, batch 1", candidates, args, 3, results)
    print(f"load average {os.getloadavg()[0]:.2f} (1 min) at the end")
    print_targets(results)


if __name__ == "__main__":
    main()
