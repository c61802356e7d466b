"""The demo's online model on its engines: PyTorch fp32 and bf16, ONNX Runtime fp32 and int8, and
(where executorch is installed) ExecuTorch fp32 and int8, the int8 files calibrated on the demo's
training videos, each streamed frame by frame over the test clips: top-1 and frames per second side
by side, and how far bf16 strays from fp32 (tsm's ``--precision auto`` picks bf16 on CPUs with AMX
or AVX-512 BF16: the demo warns beyond :data:`~tsm.inference.BF16_MAX_DROP`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tsm.apps.demo.settings import DemoSettings
from tsm.checkpoint import load_checkpoint
from tsm.data import FailedSample, VideoDataset
from tsm.export import export_int8, export_model
from tsm.inference import (
    BF16_MAX_DROP,
    ENGINE_RUNTIMES,
    StreamingEngine,
    bf16_feature,
    streaming_engine,
)

CALIBRATION_CLIPS = 64  # training clips drawn to calibrate the int8 model on
ENGINE_TITLES = ("PyTorch fp32", "PyTorch bf16", "ONNX Runtime fp32", "ONNX Runtime int8")
EXECUTORCH_TITLES = ("ExecuTorch fp32", "ExecuTorch int8")


def _stream_clip(engine: StreamingEngine, clip: Tensor) -> tuple[Tensor, float]:
    """Clip logits (mean of the per-frame logits of a new stream) and the seconds in the engine."""
    logits, caches, seconds = [], (), 0.0
    for frame in clip:
        start = time.perf_counter()
        frame_logits, *caches = engine(frame.unsqueeze(0), *caches)
        seconds += time.perf_counter() - start
        logits.append(frame_logits[0])
    return torch.stack(logits).mean(0), seconds


def _race(
    engines: dict[str, StreamingEngine], clips: list[tuple[Tensor, int]]
) -> tuple[dict[str, dict[str, float]], dict[str, list[int]]]:
    """Every engine streams every clip, interleaved clip by clip; top-1 and frames/s of each, and
    each engine's class for every clip."""
    for engine in engines.values():  # warm-up: allocations, kernel choices
        _stream_clip(engine, clips[0][0])
    predicted: dict[str, list[int]] = {name: [] for name in engines}
    seconds = dict.fromkeys(engines, 0.0)
    for clip, _ in clips:
        for name, engine in engines.items():
            logits, spent = _stream_clip(engine, clip)
            predicted[name].append(int(logits.argmax()))
            seconds[name] += spent
    frames = sum(len(clip) for clip, _ in clips)
    labels = [label for _, label in clips]
    rows = {
        name: {
            "top1": round(
                100.0 * sum(p == y for p, y in zip(predicted[name], labels, strict=True)) / len(clips), 2
            ),
            "frames_per_second": round(frames / seconds[name], 1),
        }
        for name in engines
    }
    return rows, predicted


def bf16_check(rows: dict[str, dict[str, float]], predicted: dict[str, list[int]]) -> dict[str, Any]:
    """bf16 against fp32 on the test clips: the top-1 change, the clips where the class differs,
    the CPU's native bf16 (None: emulated), and whether the drop is within BF16_MAX_DROP."""
    drop = round(rows["PyTorch fp32"]["top1"] - rows["PyTorch bf16"]["top1"], 2)
    same = sum(a == b for a, b in zip(predicted["PyTorch fp32"], predicted["PyTorch bf16"], strict=True))
    return {
        "top1_drop": drop,
        "agreement": round(100.0 * same / len(predicted["PyTorch fp32"]), 2),
        "max_drop": BF16_MAX_DROP,
        "within": drop <= BF16_MAX_DROP,
        "cpu_bf16": bf16_feature(),
    }


def online_engines(settings: DemoSettings, dataset: Any, out: Path, threads: int) -> dict[str, Any]:
    """Export the online model as fp32 and int8 ONNX, then race the three engines on the test clips."""
    folder = out / "tsm_online"
    model, info = load_checkpoint(folder / "model.safetensors")
    size = settings.size
    files = {"fp32": folder / "model_step.onnx", "int8": folder / "model_step_int8.onnx"}
    described = {"class_names": info.class_names, "data_config": info.data_config}
    check = export_model(model, files["fp32"], streaming=True, frame_size=size, **described)
    report = export_int8(
        model,
        files["int8"],
        dataset.lists["train"],
        streaming=True,
        frame_size=size,
        calibration_clips=CALIBRATION_CLIPS,
        check=dataset.lists["test"],
        max_drop=None,  # the demo shows the figures whatever they are
        **described,
    )
    torch.set_num_threads(threads)
    engines = dict(
        zip(
            ENGINE_TITLES,
            (
                streaming_engine(model, "torch"),
                streaming_engine(model, "torch", precision="bf16"),
                streaming_engine(files["fp32"], "onnxruntime", threads=threads),
                streaming_engine(files["int8"], "onnxruntime", threads=threads),
            ),
            strict=True,
        )
    )
    executorch = {}
    if not ENGINE_RUNTIMES["executorch"].missing_packages():
        executorch = _executorch_files(model, folder, dataset, size, described)
        for title, kind in zip(EXECUTORCH_TITLES, ("executorch_fp32", "executorch_int8"), strict=True):
            files[kind] = executorch[kind]
            engines[title] = streaming_engine(files[kind], threads=threads)
    test = VideoDataset(dataset.lists["test"], data_config=info.data_config, train=False)
    samples = [test[index] for index in range(len(test))]
    clips = [(sample.clip[0], sample.label) for sample in samples if not isinstance(sample, FailedSample)]
    rows, predicted = _race(engines, clips)
    return {
        "engines": rows,
        "bf16_check": bf16_check(rows, predicted),
        "int8_check": _details(report),
        **({"executorch_int8_check": _details(executorch["report"])} if executorch else {}),
        "fp32_export_check": check.summary(),
        "files": {kind: str(path.relative_to(out)) for kind, path in files.items()},
        "threads": threads,
        "test_clips": len(clips),
    }


def _details(report) -> dict[str, Any]:
    return {key: value for key, value in report.to_dict().items() if key != "path"}


def _executorch_files(model, folder: Path, dataset: Any, size: int, described: dict) -> dict[str, Any]:
    """The online model as ExecuTorch programs, fp32 and int8 (PT2E, calibrated as the ONNX file is)."""
    fp32, int8 = folder / "model_step.pte", folder / "model_step_int8.pte"
    export_model(model, fp32, streaming=True, frame_size=size, **described)
    report = export_int8(
        model,
        int8,
        dataset.lists["train"],
        streaming=True,
        frame_size=size,
        calibration_clips=CALIBRATION_CLIPS,
        check=dataset.lists["test"],
        max_drop=None,
        **described,
    )
    return {"executorch_fp32": fp32, "executorch_int8": int8, "report": report}
