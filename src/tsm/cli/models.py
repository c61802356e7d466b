"""``tsm models [PATTERN] [--pretrained]``: the architectures, or the published checkpoints by name."""

from __future__ import annotations

import argparse
import json
import sys

from tsm.checkpoint.published import (
    DATASET_TITLES,
    MMACTION2,
    REFERENCE,
    PretrainedInfo,
    is_cached,
    list_pretrained,
    pretrained_info,
)
from tsm.models import list_models, model_config

_SOURCE_TITLES = {REFERENCE: "The reference (mit-han-lab/temporal-shift-module)", MMACTION2: "MMAction2"}


def _top1(info: PretrainedInfo) -> str:
    return "-" if info.top1 is None else f"{info.top1:g}"


def _views(info: PretrainedInfo) -> str:
    """The protocol without the frame count (a column of its own)."""
    return info.protocol.split(" x ", 1)[1]


def _test_settings(info: PretrainedInfo) -> dict:
    """The data-config settings of the test protocol (not the training flips) that are not defaults."""
    training = ("flip", "flip_label_map")
    return {key: value for key, value in info.protocol_settings.items() if key not in training}


def _remarks(info: PretrainedInfo) -> list[str]:
    remarks = [] if info.buildable else [f"not buildable: {info.reason}"]
    return remarks + ([f"also {info.also_reported}"] if info.also_reported else []) + list(info.notes)


def pretrained_table(names: list[str]) -> str:
    """Aligned text: name, dataset, frames, views, reported top-1, cached here or not, remarks."""
    rows = [["name", "dataset", "frames", "views", "top-1", "cached", ""]]
    for name in names:
        info = pretrained_info(name)
        cached = "yes" if is_cached(name) else "no"
        remark = "" if info.buildable else f"not buildable: {info.reason}"
        row = [name, DATASET_TITLES[info.dataset], str(info.num_segments), _views(info), _top1(info)]
        rows.append([*row, cached, remark])
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


def pretrained_markdown() -> str:
    """The registry as the Markdown tables of docs/model-zoo.md (one per publisher)."""
    sections = []
    for source in (REFERENCE, MMACTION2):
        lines = [
            f"### {_SOURCE_TITLES[source]}",
            "",
            "| name | data | frames x views (protocol) | reported top-1 | file | sha256 | remarks |",
            "|---|---|---|---|---|---|---|",
        ]
        for info in map(pretrained_info, list_pretrained()):
            if info.source != source:
                continue
            remarks = "; ".join(_remarks(info))
            cells = (
                f"`{info.name}`",
                DATASET_TITLES[info.dataset],
                f"{info.protocol} (`{json.dumps(_test_settings(info))}`)",
                f"{_top1(info)} ({info.top1_measured_on})" if info.top1 is not None else "not reported",
                f"[{info.filename}]({info.url})",
                f"`{info.sha256_prefix}`" if info.sha256_prefix else "-",
                remarks,
            )
            lines.append("| " + " | ".join(cells) + " |")
        sections.append("\n".join(lines))
    return "\n\n".join(sections) + "\n"


def run(args: argparse.Namespace) -> int:
    if args.markdown:
        print(pretrained_markdown(), end="")
        return 0
    if args.pretrained:
        names = list_pretrained(args.pattern)
        if not names:
            print(f"tsm models: no published model matches {args.pattern!r}", file=sys.stderr)
            return 1
        print(pretrained_table(names))
        return 0
    names = list_models(args.pattern)
    for name in names:
        settings = ", ".join(f"{key}={value!r}" for key, value in model_config(name).items())
        print(f"{name}  ({settings})")
    print("published checkpoints, loadable by name: tsm models --pretrained")
    return 0 if names else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the model architectures, or the published checkpoints (--pretrained)",
        description=(
            "Without --pretrained: the architectures that --model.model and tsm.create_model accept. "
            "With --pretrained: the published checkpoints that every --checkpoint / --ckpt_path / "
            "--init_from option and tsm.load_pretrained accept by name, with their dataset, frames, "
            "test views, reported top-1 and whether the file is in the cache."
        ),
    )
    parser.add_argument("pattern", metavar="PATTERN", nargs="?", help="glob (e.g. '*r50*') or substring")
    parser.add_argument("--pretrained", action="store_true", help="the published checkpoints")
    parser.add_argument(
        "--markdown", action="store_true", help="all published checkpoints as Markdown (docs/model-zoo.md)"
    )
    parser.set_defaults(handler=run)
