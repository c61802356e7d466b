"""``tsm stream SOURCE --checkpoint CKPT``: online recognition of a video file or camera, frame by frame."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torchvision.utils import draw_bounding_boxes

from tsm.checkpoint import load_checkpoint
from tsm.data import write_video
from tsm.inference import StreamEvent, class_names_of, prediction_data_config, stream_predictions
from tsm.models import StreamingRecognizer


def annotate(event: StreamEvent) -> np.ndarray:
    """The frame with its label and score on a dark band at the top: uint8 (H, W, 3)."""
    frame = event.frame
    height, width = frame.shape[1:]
    band = torch.tensor([[0, 0, width - 1, min(height - 1, 14)]])
    text = f"{event.label} {float(event.probabilities.max()):.2f}"
    drawn = draw_bounding_boxes(frame, band, labels=[text], colors="black", label_colors="white", fill=True)
    return drawn.permute(1, 2, 0).numpy()


def plot_timeline(
    events_time: list[float], probabilities: torch.Tensor, class_names: list[str], path: str, topk: int
):
    """Probability over time of the ``topk`` classes with the highest mean probability (PNG)."""
    from matplotlib.figure import Figure

    top = probabilities.mean(dim=0).topk(min(topk, probabilities.shape[1])).indices.tolist()
    figure = Figure(figsize=(8, 3), layout="constrained")
    axis = figure.subplots()
    for index in top:
        axis.plot(events_time, probabilities[:, index].numpy(), label=class_names[index])
    axis.set_xlabel("time (s)")
    axis.set_ylabel("probability (per frame)")
    axis.set_ylim(0, 1)
    axis.set_title("online TSM: top classes per frame")
    axis.legend(loc="upper left", fontsize="small")
    figure.savefig(path, dpi=100)


def run(args: argparse.Namespace) -> int:
    model, info = load_checkpoint(args.checkpoint)
    class_names = class_names_of(info, model.num_classes)
    streamer = StreamingRecognizer(model.to(args.device), smooth_window=args.smooth_window, agree=args.agree)
    data_config = prediction_data_config(info, model.num_segments)
    times, probabilities, annotated = [], [], []
    shown, model_seconds = None, 0.0
    start = time.perf_counter()
    events = stream_predictions(args.source, streamer, class_names, data_config, args.max_frames)
    for event in events:
        model_seconds += event.step_seconds
        times.append(event.time)
        probabilities.append(event.probabilities)
        if event.label != shown:
            score = float(event.probabilities[class_names.index(event.label)])
            print(f"{event.time:8.2f}s  frame {event.index:6d}  {event.label} ({score:.2f})", flush=True)
            shown = event.label
        if args.out_video:
            annotated.append(annotate(event))
    total_seconds = time.perf_counter() - start
    if not times:
        raise ValueError(f"{args.source} gave no frames")
    frames = len(times)
    print(
        f"{frames} frames: {frames / model_seconds:.1f} frames/s in the model, "
        f"{frames / total_seconds:.1f} frames/s with decoding and preprocessing"
    )
    if args.out_video:
        height, width = annotated[0].shape[:2]
        pix_fmt = "yuv420p" if height % 2 == 0 and width % 2 == 0 else "yuv444p"
        fps = max(1, round(frames / times[-1])) if times[-1] > 0 else 25
        print(f"wrote {write_video(Path(args.out_video), np.stack(annotated), fps=fps, pix_fmt=pix_fmt)}")
    if args.timeline:
        plot_timeline(times, torch.stack(probabilities), class_names, args.timeline, args.topk)
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
    parser.add_argument("--checkpoint", required=True, help="checkpoint of a uni-directional model")
    parser.add_argument(
        "--smooth-window",
        type=int,
        default=1,
        help="sum the logits of the last K frames (demo: 12; default 1)",
    )
    parser.add_argument(
        "--agree", type=int, default=1, help="change the label only when the last M frames agree (demo: 2)"
    )
    parser.add_argument("--max-frames", type=int, help="stop after this many frames")
    parser.add_argument("--out-video", help="write the video with the label drawn on it (mp4)")
    parser.add_argument("--timeline", help="write a PNG plot of the top classes' probability over time")
    parser.add_argument("--topk", type=int, default=3, help="classes in the timeline plot (default 3)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.set_defaults(handler=run)
