"""Inference engines on the CPU: PyTorch eager against every runtime of the engine table, fp32 and int8.

In one process, interleaved (round-robin), the median of ``--rounds`` rounds, ratios to torch eager
and to ONNX Runtime fp32 (as tsm runs it):

1. the online TSM-MobileNetV2 streaming step at 224x224, batch 1 and batch 8 (frames + caches);
2. the TSM ResNet-50 8-frame clip at 224x224, batch 1;

each under torch eager (NCHW), torch eager channels_last, torch bf16 (``precision="bf16"``: a
bf16 channels_last copy, BatchNorms folded), and every installed runtime of
``tsm.inference.ENGINE_RUNTIMES`` in fp32 (a Recognizer through the export cache, as ``tsm stream
CKPT --engine NAME`` runs it) and in int8 (``tsm export --int8``'s file of the runtime's format:
the ONNX QDQ file on ONNX Runtime and OpenVINO, the PT2E program on ExecuTorch), all through
tsm's engines (``tsm.streaming_engine`` / ``tsm.clip_engine``: what ``tsm stream``, ``tsm
predict`` and the live server run). Every turn starts after a camera frame's interval of rest, so
that no engine runs while the threads of the one before still spin. The int8 models are
calibrated on decoded H.264 clips of the synthetic task; the weights are random (no pretrained
weights here), so the int8 check printed with them says nothing about accuracy (the demo
measures that).

    python benchmarks/bench_engines.py [--rounds 15] [--threads 2] [--calibration-clips 8]
        [--engines torch,onnxruntime,openvino,executorch] [--skip-clip] [--other-exporter]

Each case is timed twice: "live", one call after a rest of one camera frame (33 ms), as on a live
stream (the engine's threads have gone idle, its weights may have left the CPU caches), and
"back-to-back", several calls in a row (a batch job). ``--other-exporter`` adds the step as
PyTorch's torch.export-based ONNX exporter writes it (the export cache uses the TorchScript-based
one). Lowering to ExecuTorch takes minutes for ResNet-50 (once: the export cache keeps the
fp32 programs in ``--cache``); leave it out with ``--engines``.
"""

from __future__ import annotations

import argparse
import copy
import importlib.metadata
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

import tsm
from bench_core import CLOCKS, interleaved_medians, machine_name, report
from tsm.export import FORMATS, export_int8

BASE = "torch eager"
# Before each timed call, the pause between two frames of a 30 frames/s camera: as on a live
# stream, every engine starts with its threads idle, never spun up by the engine timed before it.
FRAME_INTERVAL = 1 / 30
CPU = torch.device("cpu")


def channels_last_copy(model: tsm.Recognizer) -> tsm.Recognizer:
    return copy.deepcopy(model).to(memory_format=torch.channels_last)


def runtime_names(asked: str) -> list[str]:
    """The installed runtimes of the engine table among ``asked`` (comma-separated), in table order."""
    wanted = set(asked.split(","))
    rows = tsm.inference.ENGINE_RUNTIMES.values()
    for row in rows:
        if row.name in wanted and row.missing_packages():
            print(f"{row.name}: not installed ({row.install_hint()}), left out")
    return [row.name for row in rows if row.name in wanted and not row.missing_packages()]


def int8_formats(runtimes: list[str]) -> dict[str, str]:
    """Runtime -> the suffix of the int8 file it runs (its format's, where the format has an int8 writer)."""
    found = {}
    for name in runtimes:
        row = tsm.inference.ENGINE_RUNTIMES[name]
        if row.export_format and FORMATS[row.export_format].quantize is not None:
            found[name] = FORMATS[row.export_format].suffixes[0]
    return found


def engines_of(
    model: tsm.Recognizer,
    kind: str,
    int8_files: dict[str, Path],
    runtimes: list[str],
    size: int,
    threads: int,
    cache: Path,
) -> dict[str, object]:
    """Every engine of the case: torch eager (NCHW, channels_last), each runtime fp32 and int8."""
    make = tsm.streaming_engine if kind == "stream" else tsm.clip_engine
    engines = {
        BASE: make(model, "torch"),
        "torch eager channels_last": make(channels_last_copy(model), "torch"),
        "torch bf16": make(model, "torch", precision="bf16"),
    }
    for name in runtimes:
        if name == "torch":
            continue
        engines[f"{name} fp32"] = make(model, name, size, threads=threads, cache_dir=cache)
        suffix = int8_formats([name]).get(name)
        if suffix in int8_files:
            engines[f"{name} int8"] = make(int8_files[suffix], name, threads=threads)
    for name, engine in engines.items():
        if "exported in" in engine.reason:
            print(f"{name}: {engine.reason.rsplit('(', 1)[1].rstrip(')')}")
    return engines


def step_candidates(engines: dict, model: tsm.Recognizer, batch: int, size: int, other: dict) -> dict:
    """One streaming step per call, on frames and caches of a running stream, for each engine."""
    engines = {**engines, **other}
    frames = torch.randn(batch, 3, size, size)
    _, *caches = engines[BASE](frames)  # caches of a stream that has seen one frame
    inputs: dict[str, tuple[Tensor, ...]] = {name: (frames, *caches) for name in engines}
    last = tuple(t.contiguous(memory_format=torch.channels_last) for t in (frames, *caches))
    inputs["torch eager channels_last"] = last
    return {name: (lambda e=engine, i=inputs[name]: e(*i)) for name, engine in engines.items()}


def clip_candidates(engines: dict, model: tsm.Recognizer, size: int) -> dict[str, Callable[[], object]]:
    """One clip (1, T, 3, H, W) per call, for each engine."""
    clips = torch.randn(1, model.num_segments, 3, size, size)
    return {name: (lambda e=engine: e(clips)) for name, engine in engines.items()}


def int8_files(
    model: tsm.Recognizer, folder: Path, name: str, streaming: bool, data, clips: int, suffixes: set[str]
) -> dict[str, Path]:
    """``tsm export --int8``'s file in each format, calibrated on ``clips`` decoded clips of the
    synthetic task."""
    paths = {}
    for suffix in sorted(suffixes):
        paths[suffix] = folder / f"{name.replace(' ', '_')}_int8{suffix}"
        check = export_int8(
            model,
            paths[suffix],
            data.lists["train"],
            streaming=streaming,
            frame_size=data.data_config.input_size,
            data_config=data.data_config.replace(num_segments=model.num_segments),
            calibration_clips=clips,
            max_drop=None,  # random weights: the check's figures mean nothing here
            onnx_exporter="torchscript",
        )
        print(
            f"{name} int8 {suffix}: calibrated on {check.calibration_clips} clips "
            f"({check.calibration_inputs} inputs), agreement with fp32 {check.agreement:.0f}%"
        )
    return paths


def measure(title: str, candidates: dict, args: argparse.Namespace, repeat: int, results: dict) -> None:
    """Both pacings of one case: one call after a camera frame's rest, and ``repeat`` calls in a row."""
    live = interleaved_medians(candidates, args.rounds, CPU, settle=FRAME_INTERVAL, clock=args.clock)
    report(f"{title}, live (one call after a {FRAME_INTERVAL * 1e3:.0f} ms rest)", live, results, base=BASE)
    busy = interleaved_medians(
        candidates, args.rounds, CPU, repeat=repeat, settle=FRAME_INTERVAL, clock=args.clock
    )
    report(f"{title}, back-to-back ({repeat} calls in a row)", busy, results, base=BASE)


def print_targets(results: dict[str, dict[str, float]]) -> None:
    """The issues' speed targets on the batch-1 step, met or not, for each pacing."""
    for title, ratios in results.items():
        if title.startswith("TSM ResNet-50 8-frame clip") and "torch bf16" in ratios:
            bf16, pacing = ratios["torch bf16"], title.split(", ")[-1]
            verdict = "met" if bf16 <= 0.5 else "not met"
            print(f"target, {pacing}: torch bf16 <= 0.5 x fp32: {bf16:.3f} ({verdict})")
        if not title.startswith("online TSM-MobileNetV2 step, batch 1"):
            continue
        pacing = title.split(", ")[-1]
        ort = ratios.get("onnxruntime fp32")
        fp32 = {name: ratio for name, ratio in ratios.items() if name.endswith(" fp32")}
        checks = []
        if ort:
            checks.append(("onnxruntime fp32 <= 0.25 x torch eager", ort, 0.25))
            if "onnxruntime int8" in ratios:
                checks.append(
                    ("onnxruntime int8 <= 0.6 x onnxruntime fp32", ratios["onnxruntime int8"] / ort, 0.6)
                )
            fastest = min(fp32, key=fp32.get)
            checks.append((f"fastest fp32 ({fastest}) <= 0.6 x onnxruntime fp32", fp32[fastest] / ort, 0.6))
            if "executorch fp32" in ratios:
                checks.append(("executorch fp32 <= onnxruntime fp32", ratios["executorch fp32"] / ort, 1.0))
        if "executorch int8" in ratios:
            et = ratios["executorch int8"] / ratios["executorch fp32"]
            checks.append(("executorch int8 <= 0.7 x executorch fp32", et, 0.7))
        for target, ratio, bound in checks:
            print(f"target, {pacing}: {target}: {ratio:.3f} ({'met' if ratio <= bound else 'not met'})")


def print_ratios_to(results: dict[str, dict[str, float]], base: str) -> None:
    """Every case's ratios to ``base`` (side by side), from the ratios to torch eager."""
    for title, ratios in results.items():
        if base in ratios:
            cells = ", ".join(
                f"{name} {ratio / ratios[base]:.3f}" for name, ratio in ratios.items() if name != base
            )
            print(f"{title}, / {base}: {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of PyTorch and every runtime")
    parser.add_argument("--calibration-clips", type=int, default=8)
    parser.add_argument("--engines", default=",".join(tsm.inference.ENGINE_RUNTIMES), help="runtimes to time")
    parser.add_argument("--skip-clip", action="store_true", help="only the streaming step")
    parser.add_argument(
        "--cache", type=Path, help="export cache to keep the fp32 files in (default: a temporary one)"
    )
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
    runtimes = runtime_names(args.engines)
    packages = [package for name in runtimes for package in tsm.inference.ENGINE_RUNTIMES[name].packages]
    versions = ", ".join(f"{name} {importlib.metadata.version(name)}" for name in ("torch", *packages))
    print(
        f"{machine_name(CPU)}, {versions}, median of {args.rounds} interleaved rounds, "
        f"load average {os.getloadavg()[0]:.2f} (1 min) at the start"
    )
    results: dict[str, dict[str, float]] = {}
    suffixes = set(int8_formats(runtimes).values())
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        cache = args.cache or folder / "cache"
        data = tsm.generate_synthetic_dataset(
            folder / "data", train=args.calibration_clips + 2, val=1, test=1, size=args.size, frames=16
        )
        online = tsm.create_model("tsm_online_mobilenet_v2", num_classes=27, num_segments=8).eval()
        files = int8_files(online, folder, "MobileNetV2 step", True, data, args.calibration_clips, suffixes)
        engines = engines_of(online, "stream", files, runtimes, args.size, args.threads, cache)
        other = {}
        if args.other_exporter:  # the same step as PyTorch's torch.export-based exporter writes it
            other["onnxruntime fp32 (torch.export-based export)"] = tsm.streaming_engine(
                online,
                "onnxruntime",
                args.size,
                threads=args.threads,
                cache_dir=cache,
                onnx_exporter="dynamo",
            )
        for batch in (1, 8):
            candidates = step_candidates(engines, online, batch, args.size, other)
            measure(f"online TSM-MobileNetV2 step, batch {batch}", candidates, args, 10, results)
        if not args.skip_clip:
            resnet = tsm.create_model("tsm_resnet50", num_classes=400, num_segments=8).eval()
            files = int8_files(
                resnet, folder, "ResNet-50 clip", False, data, args.calibration_clips, suffixes
            )
            engines = engines_of(resnet, "clip", files, runtimes, args.size, args.threads, cache)
            measure(
                "TSM ResNet-50 8-frame clip, batch 1",
                clip_candidates(engines, resnet, args.size),
                args,
                3,
                results,
            )
    print(f"load average {os.getloadavg()[0]:.2f} (1 min) at the end")
    print_ratios_to(results, "onnxruntime fp32")
    print_targets(results)


if __name__ == "__main__":
    main()
