"""The demo: TSM beats TSN on a task that needs time, trained and tested on the CPU in minutes.

Generates the synthetic reversed-motion dataset (pairs of classes that are each other's time
reverse), trains TSN, bi-directional TSM and uni-directional (online) TSM with the same small
budget, tests each on the held-out split, streams the online model on PyTorch, ONNX Runtime and
ONNX Runtime int8 (and ExecuTorch fp32 and int8 where installed), and writes metrics, curves,
confusion matrices and a README.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tsm.apps.demo.report import plot_curves, write_readme
from tsm.apps.demo.settings import DEMO_MODELS, DemoSettings
from tsm.apps.demo.training import exit_with_parent, train_and_test


def print_engines(engines: dict[str, Any], size: int) -> None:
    """The online model's engines: top-1 and speed, int8's and bf16's agreement with fp32, and a
    warning when bf16 loses more top-1 than tsm's ``--precision auto`` allows."""
    print(f"online TSM streamed frame by frame (one stream, {size}x{size}):")
    for title, row in engines["engines"].items():
        print(f"  {title:<30} {row['top1']:6.1f}%   {row['frames_per_second']:8.0f} frames/s")
    print(f"  int8 agrees with fp32 on {engines['int8_check']['agreement']:.1f}% of the test clips")
    if "executorch_int8_check" in engines:
        agreement = engines["executorch_int8_check"]["agreement"]
        print(f"  ExecuTorch int8 agrees with fp32 on {agreement:.1f}% of the test clips")
    bf16 = engines["bf16_check"]
    rows = engines["engines"]
    change = rows["PyTorch bf16"]["top1"] - rows["PyTorch fp32"]["top1"]
    print(f"  bf16 agrees with fp32 on {bf16['agreement']:.1f}% of the test clips (top-1 {change:+.1f})")
    if not bf16["within"]:
        print(
            f"  warning: bf16 loses {bf16['top1_drop']:.1f} points of top-1, more than "
            f"{bf16['max_drop']:g}: run this model with --precision fp32"
        )


def run_demo(settings: DemoSettings, out: str | Path = "demo-output") -> dict[str, Any]:
    """Train and test TSN, TSM and online TSM side by side on the synthetic task; write the
    results to ``out`` (README.md, metrics.json, curves, reports, checkpoints) and return the
    metrics. Progress is printed as it goes."""
    from tsm.apps.demo.runtimes_report import online_engines
    from tsm.data import generate_synthetic_dataset
    from tsm.inference import ENGINE_RUNTIMES

    # The three trainings run side by side, one process each: on few cores, one thread per process
    # uses the CPU better than one training at a time with all threads (small convolutions).
    cores = settings.threads or os.cpu_count() or 1
    workers = len(DEMO_MODELS)
    threads = max(1, cores // workers)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    print(f"tsm demo: writing the synthetic dataset to {out / 'data'} ...", flush=True)
    dataset = generate_synthetic_dataset(
        out / "data",
        train=settings.train,
        val=settings.val,
        test=settings.test,
        size=settings.size,
        frames=settings.frames,
        seed=settings.seed,
    )
    print(
        f"  {settings.train}/{settings.val}/{settings.test} clips, classes {', '.join(dataset.class_names)} "
        f"({time.perf_counter() - started:.0f} s)",
        flush=True,
    )
    print(
        f"training {', '.join(title for title, _ in DEMO_MODELS.values())} ({settings.backbone}, "
        f"{settings.epochs} epochs each), side by side with {threads} thread(s) each ...",
        flush=True,
    )
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=exit_with_parent) as pool:
        futures = {
            name: pool.submit(train_and_test, name, settings, dataset, out, threads) for name in DEMO_MODELS
        }
        results = {name: future.result() for name, future in futures.items()}
    formats = "ONNX" if ENGINE_RUNTIMES["executorch"].missing_packages() else "ONNX, ExecuTorch"
    print(f"online TSM: exporting it as fp32 and int8 ({formats}), streaming the test clips ...", flush=True)
    engines_started = time.perf_counter()
    engines = online_engines(settings, dataset, out, cores)
    print(f"  done ({time.perf_counter() - engines_started:.0f} s)", flush=True)
    total = time.perf_counter() - started
    plot_curves(results, out / "training_curves.png")
    metrics = {
        name: {key: value for key, value in result.items() if key != "history"}
        for name, result in results.items()
    }
    chance = 100.0 / len(dataset.class_names)
    metrics["tsm_online_engines"] = engines
    metrics["settings"] = {**asdict(settings), "parallel_trainings": workers, "threads_each": threads}
    metrics["total_wall_seconds"] = round(total, 1)
    metrics["chance_top1"] = round(chance, 2)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    write_readme(out / "README.md", settings, dataset.class_names, metrics, cores)
    print(f"\ntest top-1 on {settings.test} held-out clips (chance {chance:.0f}%):")
    for name, result in results.items():
        print(f"  {DEMO_MODELS[name][0]:<30} {result['top1']:6.1f}%   ({result['wall_seconds']:.0f} s)")
    print_engines(engines, settings.size)
    print(f"total {total:.0f} s; results in {out} (README.md, metrics.json, training_curves.png)")
    return metrics
