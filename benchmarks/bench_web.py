"""The streaming step in the browser (tsm.js on ONNX Runtime Web, headless Chromium) against
ONNX Runtime in Python, on the same machine and the same ONNX file.

Online TSM-MobileNetV2 (27 classes, 224x224), exported with ``tsm export --format web``
(fp32), or any streaming ONNX file given with ``--onnx`` (e.g. an int8 one). Contenders, timed
interleaved (round-robin) in one run, median of ``--rounds`` rounds of ``--steps`` steps, each
step's caches fed to the next:

* Python: onnxruntime (CPU EP) with all cores and with one thread, on a prepared input tensor,
  and with the test pipeline (frame_transform) on a 640x480 frame first;
* Chromium, WASM, threads on (the page cross-origin isolated: COOP/COEP) and off (no headers):
  ``recognizer.step`` on a 224-pixel frame (centre crop + normalise only), and on a 640x480 frame
  (the antialiased resize too).

    python benchmarks/bench_web.py [--rounds 7] [--steps 10] [--onnx STEP.onnx]

Needs Chromium (/usr/bin/chromium), Playwright and npm (or a cached onnxruntime-web).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import tsm
from bench_core import machine_name
from tsm.data import DataConfig, frame_transform
from tsm.export.web import export_web, write_web_folder

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from web_helpers import add_harness, chromium, open_harness, playwright_session, served

CAMERA = (480, 640)
BROWSER_STEPS = """async ({steps, camera}) => {
    if (!window.bench) {
        window.bench = await tsm.loadRecognizer('./model/', {engine: 'wasm'});
        const frames = {};
        for (const [name, h, w] of [['model', 224, 224], ['camera', ...camera]]) {
            const data = new Uint8ClampedArray(h * w * 4).map((_, i) => (i * 2654435761) % 251);
            frames[name] = new ImageData(data, w, h);
        }
        window.benchFrames = frames;
        await window.bench.step(frames.model);  // warm-up
    }
    const times = {};
    for (const name of ['model', 'camera']) {
        const started = performance.now();
        for (let i = 0; i < steps; i++) await window.bench.step(window.benchFrames[name]);
        times[name] = (performance.now() - started) / steps / 1000;
    }
    return {times, label: window.bench.info.label, cores: navigator.hardwareConcurrency};
}"""


def python_steppers(model_path: Path, data: DataConfig) -> dict[str, Callable[[int], float]]:
    """Timed loops of ``steps`` ONNX Runtime steps (seconds per step)."""
    import onnxruntime as ort

    transform = frame_transform(data)
    camera = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, *CAMERA), dtype=np.uint8))
    contenders = {}
    for label, threads in (("all cores", 0), ("1 thread", 1)):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        inputs = session.get_inputs()
        zeros = [np.zeros([1, *node.shape[1:]], np.float32) for node in inputs[1:]]

        def loop(steps: int, session=session, inputs=inputs, zeros=zeros, preprocess: bool = False) -> float:
            caches = zeros
            frame = np.zeros([1, *inputs[0].shape[1:]], np.float32)
            started = time.perf_counter()
            for _ in range(steps):
                if preprocess:
                    frame = transform(camera).unsqueeze(0).numpy()
                feeds = {node.name: value for node, value in zip(inputs, [frame, *caches], strict=True)}
                outputs = session.run(None, feeds)
                caches = outputs[1:]
            return (time.perf_counter() - started) / steps

        contenders[f"Python ORT, {label}"] = loop
        with_pipeline = f"Python ORT, {label}, + pipeline 640x480"
        contenders[with_pipeline] = lambda steps, loop=loop: loop(steps, preprocess=True)
    return contenders


def write_folder(out: Path, onnx: Path | None) -> Path:
    model = tsm.create_model("tsm_online_mobilenet_v2", num_classes=27, num_segments=8).eval()
    data = DataConfig(resize=256, input_size=224)
    if onnx is None:
        export_web(model, out, frame_size=224, data_config=data, name="tsm_online_mobilenet_v2", check=False)
    else:

        def copy_model(path: Path) -> None:
            shutil.copyfile(onnx, path)

        write_web_folder(out, copy_model, name=onnx.stem)
    return out / "model" / "model.onnx"


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed round")
    parser.add_argument("--onnx", type=Path, help="time this streaming ONNX file (tsm export --streaming)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        site = Path(folder) / "site"
        model_path = write_folder(site, args.onnx)
        add_harness(site)
        contenders = python_steppers(model_path, DataConfig(resize=256, input_size=224))
        times: dict[str, list[float]] = {name: [] for name in contenders}
        labels = {}
        with (
            playwright_session() as playwright,
            chromium(playwright) as browser,
            served(site, isolated=True) as isolated_url,
            served(site, isolated=False) as plain_url,
        ):
            pages = {
                "threads on": open_harness(browser, isolated_url),
                "threads off": open_harness(browser, plain_url),
            }
            for name in contenders:  # warm-up
                contenders[name](2)
            for _ in range(args.rounds):
                for name, run in contenders.items():
                    times[name].append(run(args.steps))
                for threading, page in pages.items():
                    result = page.evaluate(BROWSER_STEPS, {"steps": args.steps, "camera": list(CAMERA)})
                    labels[threading] = f"{result['label']}, hardwareConcurrency {result['cores']}"
                    for frame, seconds in result["times"].items():
                        frames = "224x224 frame" if frame == "model" else "640x480 frame"
                        times.setdefault(f"Chromium WASM {threading}, {frames}", []).append(seconds)
    print(f"{model_path.name if args.onnx is None else args.onnx}: {machine_name(torch.device('cpu'))}")
    for threading, label in labels.items():
        print(f"Chromium {threading}: {label}")
    print(f"median of {args.rounds} interleaved rounds of {args.steps} steps")
    reference = statistics.median(times["Python ORT, all cores"])
    for name, values in times.items():
        median = statistics.median(values)
        ratio = median / reference
        print(f"{name}: {median * 1e3:.1f} ms/step, {1 / median:.1f} frames/s, {ratio:.2f}x Python ORT time")


if __name__ == "__main__":
    main()
