"""``tsm download NAME [--out FILE.safetensors]``: fetch a published checkpoint into the cache."""

from __future__ import annotations

import argparse

from tsm.checkpoint import MIRROR_VARIABLE, convert_checkpoint, download_pretrained
from tsm.cli.convert import report_conversion


def run(args: argparse.Namespace) -> int:
    path = download_pretrained(args.name, progress=not args.quiet)
    print(f"{args.name}: {path}")
    if args.out is None:
        return 0
    return report_conversion(args.name, convert_checkpoint(args.name, args.out, size=args.size))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "download",
        help="download a published checkpoint by name (tsm models --pretrained lists them)",
        description=(
            "Download a published checkpoint into torch's hub cache ($TORCH_HOME/hub/checkpoints), "
            "verified (complete, not an HTML page, sha256 prefix where its name has one), and print "
            f"its path. A cached file is not downloaded again. {MIRROR_VARIABLE}=<base URL> (http(s):// "
            "or file://) fetches it by its file name from a mirror. With --out, also convert it into "
            "one self-describing tsm .safetensors file with its class names and test protocol."
        ),
    )
    parser.add_argument(
        "name", metavar="NAME", help="published model name, e.g. tsm_resnet50.reference_kinetics400_8f"
    )
    parser.add_argument("--out", metavar="FILE.safetensors", help="also write it as a tsm checkpoint")
    parser.add_argument("--size", type=int, default=224, help="frame size of the conversion check clip")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)
