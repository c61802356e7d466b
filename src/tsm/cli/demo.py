"""``tsm demo``: a short showcase of TSM-ResNet-50 (shapes, shifted blocks, TSM/TSN latency)."""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from tsm.models import create_model, shifted_modules


def _latency(model: torch.nn.Module, clip: torch.Tensor) -> float:
    start = time.perf_counter()
    model(clip)
    return time.perf_counter() - start


def run(args: argparse.Namespace) -> int:
    torch.manual_seed(0)
    clip = torch.randn(1, args.frames, 3, args.size, args.size)
    tsm_model = create_model("tsm_resnet50", num_classes=400, num_segments=args.frames).eval()
    tsn_model = create_model("tsn_resnet50", num_classes=400, num_segments=args.frames).eval()
    print(f"input clip: {tuple(clip.shape)} (N, T, C, H, W)")
    print(f"TSM-ResNet-50: {len(shifted_modules(tsm_model))} shifted blocks")
    tsm_times, tsn_times = [], []
    with torch.inference_mode():
        print(f"logits: {tuple(tsm_model(clip).shape)}")
        tsn_model(clip)
        for _ in range(args.rounds):  # interleaved, so both see the same machine state
            tsm_times.append(_latency(tsm_model, clip))
            tsn_times.append(_latency(tsn_model, clip))
    tsm_ms, tsn_ms = statistics.median(tsm_times) * 1e3, statistics.median(tsn_times) * 1e3
    print(
        f"latency (median of {args.rounds}): TSM {tsm_ms:.1f} ms, TSN {tsn_ms:.1f} ms, "
        f"TSM/TSN {tsm_ms / tsn_ms:.3f}"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="showcase TSM-ResNet-50 on a random clip")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip (default 8)")
    parser.add_argument("--size", type=int, default=224, help="frame size (default 224)")
    parser.add_argument("--rounds", type=int, default=5, help="timing rounds (default 5)")
    parser.add_argument("--out", default=None, help="output folder (unused by the showcase)")
    parser.set_defaults(handler=run)
