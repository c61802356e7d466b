"""``tsm data``: inspect datasets (``check``, ``probe``) and write the synthetic task (``synth``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from torch.utils.data import DataLoader

from tsm.data import (
    DataConfig,
    FailedSample,
    VideoDataset,
    generate_synthetic_dataset,
    probe,
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
    def progress(done: int, total: int) -> None:
        if done == total or done % 50 == 0:
            print(f"\r{done}/{total} clips", end="\n" if done == total else "", file=sys.stderr, flush=True)

    result = generate_synthetic_dataset(
        args.out,
        train=args.train,
        val=args.val,
        test=args.test,
        size=args.size,
        frames=args.frames,
        num_classes=args.classes,
        seed=args.seed,
        progress=progress,
    )
    print(f"wrote {result.root}: classes {', '.join(result.class_names)}")
    for split, path in result.lists.items():
        print(f"  {split}: {path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="check datasets, probe videos, write synthetic data")
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
