"""``tsm models [PATTERN] [--pretrained]``: the architectures, or the published checkpoints by name."""

from __future__ import annotations

import argparse
import sys

from tsm.checkpoint import list_models, list_pretrained, model_config
from tsm.cli.model_tables import registry_markdown, registry_table
from tsm.models import ModelConfig


def run(args: argparse.Namespace) -> int:
    if args.markdown:
        print(registry_markdown(), end="")
        return 0
    if args.pretrained:
        names = list_pretrained(args.pattern)
        if not names:
            print(f"tsm models: no published model matches {args.pattern!r}", file=sys.stderr)
            return 1
        print(registry_table(names))
        return 0
    names = list_models(args.pattern)
    defaults = ModelConfig().to_dict()
    for name in names:
        config = model_config(name).to_dict()
        shown = {
            key: value
            for key, value in config.items()
            if key in ("backbone", "shift") or value != defaults[key]
        }
        print(f"{name}  ({', '.join(f'{key}={value!r}' for key, value in shown.items())})")
    print("published checkpoints, loadable by name: tsm models --pretrained")
    return 0 if names else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the model architectures, or the published checkpoints (--pretrained)",
        description=(
            "Without --pretrained: the architectures that --model.model and tsm.create_model accept. "
            "With --pretrained: the published checkpoints that every --checkpoint / --model.init.* "
            "option and tsm.load_pretrained accept by name, with their dataset, frames, "
            "test views, reported top-1 and whether the file is in the cache."
        ),
    )
    parser.add_argument("pattern", metavar="PATTERN", nargs="?", help="glob (e.g. '*r50*') or substring")
    parser.add_argument("--pretrained", action="store_true", help="the published checkpoints")
    parser.add_argument(
        "--markdown", action="store_true", help="all published checkpoints as Markdown (docs/model-zoo.md)"
    )
    parser.set_defaults(handler=run)
