"""``tsm stream SOURCE --checkpoint CKPT``: online recognition of a video file or camera, frame by frame."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from tsm.cli.engine_options import add_engine_options
from tsm.cli.smoothing_options import add_smoothing_options
from tsm.data import write_video
from tsm.inference import (
    StreamingRecognizer,
    annotate_frame,
    class_names_of,
    open_model,
    plot_stream_timeline,
    stream_predictions,
)


def run(args: argparse.Namespace) -> int:
    model, info = open_model(args.checkpoint)
    data_config = info.data_config
    size = data_config.test_crop_size
    streamer = StreamingRecognizer(
        model,
        smooth_window=args.smooth_window,
        agree=args.agree,
        engine=args.engine,
        frame_size=size,
        device=args.device,
        threads=args.threads,
        precision=args.precision,
    )
    print(f"engine: {streamer.engine.reason}", flush=True)
    class_names = class_names_of(info, streamer.num_classes)
    times, probabilities, annotated = [], [], []
    shown, model_seconds, prepare_seconds, wait_seconds = None, 0.0, 0.0, 0.0
    start = time.perf_counter()
    events = stream_predictions(args.source, streamer, class_names, data_config, args.max_frames)
    for event in events:
        model_seconds += event.step_seconds
        prepare_seconds += event.prepare_seconds
        wait_seconds += event.wait_seconds
        times.append(event.time)
        probabilities.append(event.probabilities)
        if event.label != shown:
            score = float(event.probabilities[class_names.index(event.label)])
            print(f"{event.time:8.2f}s  frame {event.index:6d}  {event.label} ({score:.2f})", flush=True)
            shown = event.label
        if args.out_video:
            annotated.append(annotate_frame(event, class_names, args.topk))
    total_seconds = time.perf_counter() - start
    if not times:
        raise ValueError(f"{args.source} gave no frames")
    frames = len(times)
    print(
        f"{frames} frames: {frames / model_seconds:.1f} frames/s in the model, "
        f"{frames / total_seconds:.1f} frames/s with decoding and preprocessing "
        f"({1e3 * prepare_seconds / frames:.1f} ms each, on another thread; "
        f"the model waited {1e3 * wait_seconds / frames:.1f} ms each for them)"
    )
    if args.out_video:
        height, width = annotated[0].shape[:2]
        pix_fmt = "yuv420p" if height % 2 == 0 and width % 2 == 0 else "yuv444p"
        fps = max(1, round(frames / times[-1])) if times[-1] > 0 else 25
        print(f"wrote {write_video(Path(args.out_video), np.stack(annotated), fps=fps, pix_fmt=pix_fmt)}")
    if args.timeline:
        plot_stream_timeline(times, torch.stack(probabilities), class_names, args.timeline, args.topk)
        print(f"wrote {args.timeline}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stream",
        help="online recognition of a video file or camera with a uni-directional model",
        description=(
            "Run an online (uni-directional) TSM checkpoint frame by frame: each frame costs one pass "
            "of the 2D network, the shifted layers keep 1/fold_div of the previous frame's channels. "
            "Prints the label whenever it changes and the frames per second."
        ),
    )
    parser.add_argument("source", metavar="SOURCE", help="video file, or camera index (0, 1, ...)")
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="checkpoint of a uni-directional model, or its streaming step exported to .onnx or .pte",
    )
    add_smoothing_options(parser)
    parser.add_argument("--max-frames", type=int, help="stop after this many frames")
    parser.add_argument("--out-video", help="write the video with the label drawn on it (mp4)")
    parser.add_argument("--timeline", help="write a PNG plot of the top classes' probability over time")
    parser.add_argument(
        "--topk", type=int, default=3, help="classes in the timeline plot and under --out-video frames"
    )
    add_engine_options(parser)
    parser.set_defaults(handler=run)
