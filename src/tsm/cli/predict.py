"""``tsm predict VIDEO... --checkpoint CKPT``: the top classes of each video."""

from __future__ import annotations

import argparse
import json
import sys

from tsm.cli.engine_options import add_engine_options
from tsm.data import TEST_VIEWS
from tsm.inference import Predictor


def run(args: argparse.Namespace) -> int:
    predictor = Predictor.from_checkpoint(
        args.checkpoint,
        views=args.views,
        clips=args.clips,
        topk=args.topk,
        average=args.average,
        device=args.device,
        engine=args.engine,
        threads=args.threads,
        precision=args.precision,
    )
    print(f"engine: {predictor.engine.reason}", file=sys.stderr, flush=True)
    predictions = predictor.predict(args.videos)
    for prediction in predictions:
        if args.json:
            print(json.dumps(prediction.to_dict()))
        elif prediction.error is not None:
            print(f"tsm predict: {prediction}", file=sys.stderr)
        else:
            print(prediction)
    return 1 if any(p.error is not None for p in predictions) else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="classify video files with a checkpoint",
        description=(
            "Print the top classes of each video with the checkpoint's class names and test pipeline "
            "(sampling, resize, crops, normalisation). A file that cannot be read gets an error line; "
            "the others are still classified (the exit status is 1 if any failed)."
        ),
    )
    parser.add_argument("videos", metavar="VIDEO", nargs="+", help="video files (or raw-frame folders)")
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="checkpoint (tsm, reference or MMAction2) or a tsm-exported .onnx or .pte",
    )
    parser.add_argument(
        "--views",
        choices=sorted(TEST_VIEWS),
        help="crops per clip: center (1), three (left/centre/right), ten (5 crops + flips); "
        "default: the checkpoint's test pipeline",
    )
    parser.add_argument(
        "--clips", type=int, help="clips per video: 1 or 2 (uniform sampling), any for dense sampling"
    )
    parser.add_argument("--topk", type=int, default=5, help="classes to print (default 5)")
    parser.add_argument(
        "--average",
        choices=("logits", "softmax"),
        help="how view scores are averaged (default: as the checkpoint's publisher does: logits for "
        "the reference and tsm, softmax for MMAction2)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per video")
    add_engine_options(parser)
    parser.set_defaults(handler=run)
