"""OpenVINO's CPU settings that matter for tsm, against ONNX Runtime on the same file.

The online TSM-MobileNetV2 streaming step at 224x224 (the export cache's ONNX file, random
weights), batch 1 and 8, each call one synchronous request as tsm's engines make it, through
``tsm.inference.openvino_runtime.OpenVinoRunner`` with these settings overridden one at a time:

* the performance hint: LATENCY (tsm's: one stream) or THROUGHPUT (as many streams as the plugin
  picks: a synchronous request then runs on one stream's share of the cores);
* the thread count (``--threads``, and 1);
* CPU pinning (the plugin pins its threads to cores by default on Linux);
* the inference precision: f32 (tsm's) or the plugin's default (bf16 where the CPU has it: not
  exact, shown for its speed only).

Interleaved in one process, median of ``--rounds`` rounds, each turn after a camera frame's rest
(33 ms, "live") and 10 calls in a row ("back-to-back"); ratios to ONNX Runtime (tsm's session).

    python benchmarks/bench_openvino.py [--rounds 15] [--threads 2] [--size 224]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import torch

import tsm
from bench_core import interleaved_medians, machine_name, report
from tsm.inference import EngineOptions
from tsm.inference.export_cache import cached_export
from tsm.inference.onnxruntime_runtime import OnnxRuntimeRunner
from tsm.inference.openvino_runtime import OpenVinoRunner

BASE = "onnxruntime (tsm's session)"
FRAME_INTERVAL = 1 / 30


def variants(threads: int) -> dict[str, dict[str, str]]:
    """Each variant's overrides of the engine's settings."""
    return {
        f"openvino LATENCY, {threads} threads (tsm's)": {},
        "openvino LATENCY, 1 thread": {"INFERENCE_NUM_THREADS": "1"},
        "openvino LATENCY, no CPU pinning": {"ENABLE_CPU_PINNING": "NO"},
        "openvino THROUGHPUT (plugin's streams)": {"PERFORMANCE_HINT": "THROUGHPUT"},
        "openvino LATENCY, plugin's precision (bf16 where the CPU has it)": {
            "INFERENCE_PRECISION_HINT": "dynamic"
        },
    }


def runners(path: Path, threads: int) -> dict[str, object]:
    options = EngineOptions(threads=threads)
    found: dict[str, object] = {BASE: OnnxRuntimeRunner(path, options)}
    for name, overrides in variants(threads).items():
        try:
            found[name] = OpenVinoRunner(path, options, **overrides)
        except ValueError as error:  # a setting this OpenVINO does not take
            print(f"{name}: skipped ({error})")
    for name, runner in found.items():
        if name != BASE:
            model = runner.model
            print(
                f"{name}: streams {model.get_property('NUM_STREAMS')}, threads "
                f"{model.get_property('INFERENCE_NUM_THREADS')}, precision "
                f"{model.get_property('INFERENCE_PRECISION_HINT')}"
            )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    torch.manual_seed(0)
    import openvino

    print(
        f"{machine_name(torch.device('cpu'))}, openvino {openvino.__version__}, onnxruntime "
        f"{__import__('onnxruntime').__version__}, median of {args.rounds} interleaved rounds, load "
        f"average {os.getloadavg()[0]:.2f} (1 min) at the start"
    )
    model = tsm.create_model("tsm_online_mobilenet_v2", num_classes=27, num_segments=8).eval()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        size = (args.size, args.size)
        path = cached_export(model, "stream", size, "onnx", "torchscript", folder).path
        found = runners(path, args.threads)
        step = tsm.models.StreamingStep(model)
        for batch in (1, 8):
            frames = torch.randn(batch, 3, *size)
            with torch.no_grad():
                _, *caches = step(frames)
            inputs = [frames, *caches]
            calls = {name: (lambda r=runner, i=inputs: r.run(i)) for name, runner in found.items()}
            title = f"MobileNetV2 step, batch {batch}"
            live = interleaved_medians(calls, args.rounds, torch.device("cpu"), settle=FRAME_INTERVAL)
            report(f"{title}, live", live, results, base=BASE)
            busy = interleaved_medians(
                calls, args.rounds, torch.device("cpu"), repeat=10, settle=FRAME_INTERVAL
            )
            report(f"{title}, back-to-back (10 calls in a row)", busy, results, base=BASE)
    print(f"load average {os.getloadavg()[0]:.2f} (1 min) at the end")


if __name__ == "__main__":
    main()
