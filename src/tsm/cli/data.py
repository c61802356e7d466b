"""``tsm data``: inspect datasets (``check``, ``probe``), write the synthetic task (``synth``), and
turn official downloads into list files (``prepare``), fast-loading videos (``resize``) or frame
folders (``extract-frames``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from torch.utils.data import DataLoader
from tqdm import tqdm

from tsm.data import (
    CLASS_ORDERS,
    DATASETS,
    DEFAULT_FRAME_TEMPLATE,
    DataConfig,
    FailedSample,
    TranscodeReport,
    VideoDataset,
    extract_frames,
    generate_synthetic_dataset,
    prepare_dataset,
    probe,
    resize_videos,
)


def _keep(sample: Any) -> Any:
    return sample


def _check(args: argparse.Namespace) -> int:
    config = DataConfig.from_dict(json.loads(args.data_config) if args.data_config else None)
    dataset = VideoDataset(args.source, train=False, data_config=config, root=args.root)
    bad: list[FailedSample] = []
    loader = DataLoader(dataset, batch_size=None, num_workers=args.workers, collate_fn=_keep)
    for sample in loader:
        if isinstance(sample, FailedSample):
            bad.append(sample)
            print(f"BAD {sample}", flush=True)
    print(f"{len(dataset)} samples ({dataset.layout}, {len(dataset.class_names)} classes), {len(bad)} bad")
    return 1 if bad else 0


def _probe(args: argparse.Namespace) -> int:
    for path in args.videos:
        info = probe(path)
        print(
            f"{path}: {info.num_frames} frames, {info.fps:.3f} fps, {info.width}x{info.height}, "
            f"{info.duration:.3f} s"
        )
    return 0


def _synth(args: argparse.Namespace) -> int:
    with tqdm(total=args.train + args.val + args.test, unit="clip", desc="writing clips") as bar:
        result = generate_synthetic_dataset(
            args.out,
            train=args.train,
            val=args.val,
            test=args.test,
            size=args.size,
            frames=args.frames,
            num_classes=args.classes,
            seed=args.seed,
            progress=lambda done, total: bar.update(done - bar.n),
        )
    print(f"wrote {result.root}: classes {', '.join(result.class_names)}")
    for split, path in result.lists.items():
        print(f"  {split}: {path}")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    result = prepare_dataset(
        args.dataset,
        args.annotations,
        args.videos,
        args.out,
        split=args.split,
        class_order=args.class_order,
        frames=True if args.frames else None,
        frame_template=args.frame_template,
    )
    print(result.summary())
    return 0


def _transcode_status(report: TranscodeReport) -> int:
    print(report.summary())
    return 1 if report.failed else 0


def _resize(args: argparse.Namespace) -> int:
    report = resize_videos(
        args.src, args.dst, args.short_side, args.keyframe_interval, args.fps, args.workers, progress=True
    )
    return _transcode_status(report)


def _extract_frames(args: argparse.Namespace) -> int:
    short_side = args.short_side or None  # 0: keep the decoded size
    report = extract_frames(args.src, args.dst, short_side, args.template, args.workers, progress=True)
    return _transcode_status(report)


def _register_preparation(commands: argparse._SubParsersAction) -> None:
    prepare = commands.add_parser(
        "prepare", help="list files (train/val/test.txt, classes.txt) from a dataset's official annotations"
    )
    prepare.add_argument("dataset", choices=DATASETS)
    prepare.add_argument("--annotations", required=True, help="folder with the official annotation files")
    prepare.add_argument("--videos", required=True, help="folder of the videos or frame folders, any layout")
    prepare.add_argument("--out", required=True, help="output folder for the list files")
    prepare.add_argument("--split", type=int, default=1, choices=(1, 2, 3), help="UCF101/HMDB51 split")
    prepare.add_argument(
        "--class-order",
        default="reference",
        choices=CLASS_ORDERS,
        help="label order of the checkpoints to match: the reference's (default) or MMAction2's",
    )
    prepare.add_argument(
        "--frames", action="store_true", help="list frame folders (dir num_frames label): sthv1/jester always"
    )
    prepare.add_argument(
        "--frame-template",
        default=None,
        help="frame file names (default {:05d}.jpg for sthv1/jester, else img_{:05d}.jpg)",
    )
    prepare.set_defaults(handler=_prepare)

    resize = commands.add_parser(
        "resize", help="re-encode a video tree as H.264 at a short side with dense keyframes (fast loading)"
    )
    resize.add_argument("src", help="folder of videos (searched recursively)")
    resize.add_argument("dst", help="output folder (same relative paths, .mp4)")
    resize.add_argument("--short-side", type=int, default=256, help="short side, even (default 256)")
    resize.add_argument(
        "--keyframe-interval", type=int, default=16, help="a keyframe every N frames (default 16)"
    )
    resize.add_argument("--fps", type=float, default=None, help="resample to this frame rate (default: keep)")
    resize.add_argument("--workers", type=int, default=None, help="processes (default: one per CPU)")
    resize.set_defaults(handler=_resize)

    frames = commands.add_parser("extract-frames", help="decode a video tree into frame folders (JPEG)")
    frames.add_argument("src", help="folder of videos (searched recursively)")
    frames.add_argument("dst", help="output folder: one frame folder per video, same relative paths")
    frames.add_argument(
        "--short-side", type=int, default=256, help="short side, even; 0 keeps the size (default 256)"
    )
    frames.add_argument(
        "--template", default=DEFAULT_FRAME_TEMPLATE, help=f"frame file names ({DEFAULT_FRAME_TEMPLATE})"
    )
    frames.add_argument("--workers", type=int, default=None, help="processes (default: one per CPU)")
    frames.set_defaults(handler=_extract_frames)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data", help="check, prepare, resize datasets; probe videos; write synthetic data"
    )
    commands = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    check = commands.add_parser(
        "check", help="decode every sample of a dataset (test pipeline) and list the bad files"
    )
    check.add_argument(
        "source", help="list file ('path label' or 'dir num_frames label') or class-folder root"
    )
    check.add_argument("--root", default=None, help="folder that list paths are relative to")
    check.add_argument("--data-config", default=None, help="data config as JSON (default: the defaults)")
    check.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    check.set_defaults(handler=_check)

    probe_parser = commands.add_parser("probe", help="frame count, fps, size and duration of videos")
    probe_parser.add_argument("videos", nargs="+")
    probe_parser.set_defaults(handler=_probe)

    synth = commands.add_parser("synth", help="write the synthetic reversed-motion task (mp4 + list files)")
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--train", type=int, default=320, help="training clips (default 320)")
    synth.add_argument("--val", type=int, default=80, help="validation clips (default 80)")
    synth.add_argument("--test", type=int, default=80, help="test clips (default 80)")
    synth.add_argument("--size", type=int, default=64, help="frame size in pixels, even (default 64)")
    synth.add_argument("--frames", type=int, default=16, help="frames per clip (default 16)")
    synth.add_argument("--classes", type=int, default=4, choices=(2, 4, 6, 8), help="classes (default 4)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.set_defaults(handler=_synth)

    _register_preparation(commands)
