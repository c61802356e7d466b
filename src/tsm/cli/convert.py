"""``tsm convert IN OUT``: any supported checkpoint -> one self-describing tsm ``.safetensors`` file."""

from __future__ import annotations

import argparse

from tsm.checkpoint import Conversion, convert_checkpoint
from tsm.data import read_class_names
from tsm.ops import SHIFT_MODES


def run(args: argparse.Namespace) -> int:
    overrides = {
        name: value
        for name, value in (
            ("num_segments", args.num_segments),
            ("fold_div", args.fold_div),
            ("backbone", args.backbone),
            ("mode", args.mode),
        )
        if value is not None
    }
    class_names = read_class_names(args.class_names) if args.class_names else None
    result = convert_checkpoint(
        args.source,
        args.destination,
        class_names=class_names,
        allow_pickle=args.allow_pickle,
        size=args.size,
        **overrides,
    )
    return report_conversion(args.source, result)


def report_conversion(source: str, result: Conversion) -> int:
    """Print what was read (each setting with its source), written and checked; the exit status."""
    info = result.info
    print(f"read {source} ({info.format} format, written by {info.written_by})")
    for name, value in info.model_config.to_dict().items():
        source = info.sources.get(name, "default")
        print(f"  {name} = {value!r}  [{source}]")
    for note in info.notes:
        print(f"  note: {note}")
    if info.class_names is None:
        print("  class names: none (add them with --class-names FILE, one per line)")
    else:
        shown = ", ".join(info.class_names[:3]) + (", ..." if len(info.class_names) > 3 else "")
        print(f"  class names: {len(info.class_names)} ({shown})")
    print(f"wrote {result.path}")
    print(
        f"reloaded and compared on a random clip {result.clip_shape}: "
        f"max |logits difference| = {result.max_abs_difference:.3g}"
    )
    return 0 if result.max_abs_difference == 0 else 1  # the same weights in aligned memory: bit-exact


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert a reference / MMAction2 / tsm checkpoint into this project's format",
        description=(
            "Read a checkpoint of the reference implementation (ckpt.pth.tar, published .pth, online "
            "demo), of MMAction2 or of tsm; infer its architecture from the weights and its settings "
            "from its metadata or file name (or the options below); write one self-describing tsm "
            ".safetensors file; reload it and print the largest logit difference on a random clip."
        ),
    )
    parser.add_argument("source", metavar="IN", help="checkpoint to convert")
    parser.add_argument("destination", metavar="OUT", help="tsm checkpoint to write (.safetensors)")
    parser.add_argument("--num-segments", type=int, help="frames per clip the model was trained with")
    parser.add_argument("--fold-div", type=int, help="1/fold_div of the channels shift each way")
    parser.add_argument("--backbone", help="backbone name, only when the weights do not identify it")
    parser.add_argument("--mode", choices=SHIFT_MODES, help="shift direction (default: from the format)")
    parser.add_argument("--class-names", metavar="FILE", help="text file with one class name per line")
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="allow full unpickling (runs code from the file: only for files you trust)",
    )
    parser.add_argument("--size", type=int, default=224, help="frame size of the check clip (default 224)")
    parser.set_defaults(handler=run)
