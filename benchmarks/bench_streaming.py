"""Online TSM per-frame latency, and onnxruntime vs PyTorch for the offline clip model.

Three comparisons, each timed interleaved (round-robin) in one process, median of ``--rounds``:

1. streaming step of online TSM-MobileNetV2 (caches) vs plain MobileNetV2 (TSN, same head) on one
   frame: the cost of the caches (the paper: 4.8 ms vs 4.7 ms on ResNet-50);
2. streaming step vs re-running an 8-frame window for every new frame (what a sliding-window
   webcam demo such as MMAction2's does): expect about 1/8;
3. onnxruntime (CPU) vs PyTorch on the offline TSM-ResNet-50 clip (1 x 8 x 3 x 224 x 224).

    python benchmarks/bench_streaming.py [--rounds 15] [--size 224] [--threads 2] [--skip-onnx]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

import tsm
from bench_core import interleaved_medians, machine_name


def ratio_line(title: str, medians: dict[str, float], numerator: str, denominator: str) -> str:
    cells = ", ".join(f"{name} {seconds * 1e3:.2f} ms" for name, seconds in medians.items())
    return f"{title}: {numerator}/{denominator} {medians[numerator] / medians[denominator]:.3f}   ({cells})"


def streaming_figures(size: int, rounds: int) -> None:
    cpu = torch.device("cpu")
    online = tsm.create_model("tsm_online_mobilenet_v2", num_classes=27, num_segments=8).eval()
    plain = tsm.Recognizer(**{**online.config, "shift": False}).eval()
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for PyTorch and onnxruntime")
    parser.add_argument("--skip-onnx", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    print(
        f"batch 1, {args.size}x{args.size}, fp32, {machine_name(torch.device('cpu'))}, "
        f"torch {torch.__version__}, median of {args.rounds} interleaved rounds"
    )
    streaming_figures(args.size, args.rounds)
    if not args.skip_onnx:
        onnx_figures(args.size, args.rounds, args.threads)


if __name__ == "__main__":
    main()
