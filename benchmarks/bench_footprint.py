"""What running an exported file costs a small board: resident memory, start-up time, install size.

For each engine, in a fresh Python process: ``tsm stream VIDEO --checkpoint FILE --engine NAME``
on the online TSM-MobileNetV2 step exported at 224x224 (ONNX fp32 for onnxruntime and openvino,
ExecuTorch for executorch, the checkpoint itself for torch), and the runtime alone running the
same file in a loop of its own (no tsm, no torch where the runtime does without). Printed: the
peak resident memory (``ru_maxrss``), the seconds to import what ``tsm stream`` imports, the
top-level packages it loaded, and the installed size of each package on disk (its files as pip
recorded them).

    python benchmarks/bench_footprint.py [--frames 60] [--size 224] [--cache DIR]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

import tsm
from tsm.data import render_synthetic_clip
from tsm.inference import ENGINE_RUNTIMES, cached_export

# The child's peak resident memory: VmHWM of its own address space (ru_maxrss would also count
# the parent's, which a child started by fork and exec inherits on Linux).
PEAK = """
def peak_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
"""
# Run in the child: time the imports of `tsm stream`, stream, report memory and loaded packages.
STREAM_CHILD = """
import json, sys, time
started = time.perf_counter()
from tsm.cli.main import build_parser, main
build_parser()
imported = time.perf_counter() - started
code = main(sys.argv[1:])
packages = sorted({name.split(".")[0] for name in sys.modules if not name.startswith("_")})
print(json.dumps({"code": code, "import_seconds": imported, "peak_mb": peak_mb(), "packages": packages}))
"""
# The runtime alone: load the file, run the streaming step `frames` times, caches fed back.
ALONE = {
    "onnxruntime": """
import json, sys, numpy as np, onnxruntime as ort
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
shapes = {i.name: [1 if d == "batch" else d for d in i.shape] for i in session.get_inputs()}
inputs = {name: np.zeros(shape, np.float32) for name, shape in shapes.items()}
names = [i.name for i in session.get_inputs()]
for _ in range(int(sys.argv[2])):
    outputs = session.run(None, inputs)
    inputs = dict(zip(names, [inputs[names[0]], *outputs[1:]]))
""",
    "openvino": """
import json, sys, numpy as np, openvino as ov
settings = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
model = ov.Core().compile_model(sys.argv[1], "CPU", settings)
request = model.create_infer_request()
shapes = [[1 if d.is_dynamic else d.get_length() for d in i.get_partial_shape()] for i in model.inputs]
inputs = [np.zeros(shape, np.float32) for shape in shapes]
for _ in range(int(sys.argv[2])):
    results = request.infer(inputs)
    inputs = [inputs[0], *[results[o] for o in model.outputs[1:]]]
""",
    "executorch": """
import json, sys, torch
from executorch.extension.pybindings import _C  # the runtime's C extension, as tsm loads it
method = _C._load_program(sys.argv[1], enable_etdump=False, debug_buffer_size=0).load_method("forward")
meta = method.method_meta()
inputs = [torch.zeros(1, *meta.input_tensor_meta(i).sizes()[1:]) for i in range(meta.num_inputs())]
for _ in range(int(sys.argv[2])):
    outputs = method(inputs)
    inputs = [inputs[0], *outputs[1:]]
""",
}
ALONE_END = """
print(json.dumps({"peak_mb": peak_mb(),
    "packages": sorted({name.split(".")[0] for name in sys.modules if not name.startswith("_")})}))
"""
WATCHED = (
    "torch",
    "torchvision",
    "onnxruntime",
    "openvino",
    "executorch",
    "torchao",
    "onnx",
    "lightning",
    "av",
)


def run_child(code: str, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False, env=os.environ
    )
    if result.returncode != 0:
        raise RuntimeError(f"the child failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def installed_mb(distribution: str) -> float:
    """The size on disk of a distribution's installed files, in MB (0 when it is not installed)."""
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        return 0.0
    total = 0
    for file in files:
        path = Path(file.locate())
        if path.is_file():
            total += path.stat().st_size
    return total / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--cache", type=Path, help="export cache (bench_engines.py --cache shares its files)")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.2f} (1 min) at the start")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        torch.manual_seed(0)  # the weights bench_engines.py exports: --cache may share its files
        model = tsm.create_model("tsm_online_mobilenet_v2", num_classes=27, num_segments=8).eval()
        config = {"num_segments": 8, "resize": args.size, "input_size": args.size}
        checkpoint = tsm.save_checkpoint(folder / "online.safetensors", model, None, config)
        rng = np.random.default_rng(0)
        video = tsm.data.write_video(
            folder / "clip.mp4", render_synthetic_clip("move_right", args.size, args.frames, rng)
        )
        files = {"torch": checkpoint}
        cache = args.cache or folder / "cache"
        for suffix, format in ((".onnx", "onnx"), (".pte", "executorch")):
            if format == "executorch" and ENGINE_RUNTIMES["executorch"].missing_packages():
                continue
            size = (args.size, args.size)
            files[suffix] = cached_export(model, "stream", size, format, "torchscript", cache).path
        print("| engine | tsm stream: peak resident MB | import s | runtime alone: peak resident MB |")
        print("|---|---|---|---|")
        for name, row in ENGINE_RUNTIMES.items():
            if row.missing_packages():
                continue
            source = files.get(row.suffixes[0]) if row.suffixes else files["torch"]
            if source is None:
                continue
            streamed = run_child(
                PEAK + STREAM_CHILD, "stream", str(video), "--checkpoint", str(source), "--engine", name
            )
            alone = (
                run_child(PEAK + ALONE[name] + ALONE_END, str(source), str(args.frames))
                if name in ALONE
                else None
            )
            loaded = ", ".join(package for package in WATCHED if package in streamed["packages"])
            alone_cell = (
                f"{alone['peak_mb']:.0f} ({', '.join(p for p in WATCHED if p in alone['packages'])})"
                if alone
                else "-"
            )
            cells = [f"{streamed['peak_mb']:.0f} ({loaded})", f"{streamed['import_seconds']:.1f}", alone_cell]
            print(f"| {name} | {' | '.join(cells)} |")
    sizes = {name: installed_mb(name) for name in WATCHED}
    print("installed size on disk (MB): " + ", ".join(f"{name} {mb:.0f}" for name, mb in sizes.items() if mb))
    print(f"load average {os.getloadavg()[0]:.2f} (1 min) at the end")


if __name__ == "__main__":
    main()
