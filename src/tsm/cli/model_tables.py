"""The registry of published checkpoints as text: the aligned table ``tsm models --pretrained``
prints and the Markdown tables of docs/model-zoo.md (``tsm models --markdown``)."""

from __future__ import annotations

import json

from tsm.checkpoint import PretrainedInfo, is_cached, list_pretrained, pretrained_info
from tsm.checkpoint.zoo import MMACTION2, PUBLISHER_TITLES, REFERENCE
from tsm.data import public_dataset


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
    remarks += [f"also {info.also_reported}"] if info.also_reported else []
    return [*remarks, *info.notes, f"tsm 0.1 name: `{info.legacy_name}`"]


def registry_table(names: list[str]) -> str:
    """Aligned text: name, dataset, frames, views, reported top-1, cached here or not, remarks."""
    rows = [["name", "dataset", "frames", "views", "top-1", "cached", ""]]
    for name in names:
        info = pretrained_info(name)
        cached = "yes" if is_cached(name) else "no"
        remark = "" if info.buildable else f"not buildable: {info.reason}"
        row = [name, public_dataset(info.dataset).title, str(info.num_segments), _views(info), _top1(info)]
        rows.append([*row, cached, remark])
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


def registry_markdown() -> str:
    """The registry as the Markdown tables of docs/model-zoo.md (one per publisher)."""
    sections = []
    for source in (REFERENCE, MMACTION2):
        lines = [
            f"### {PUBLISHER_TITLES[source]}",
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
                public_dataset(info.dataset).title,
                f"{info.protocol} (`{json.dumps(_test_settings(info))}`)",
                f"{_top1(info)} ({info.top1_measured_on})" if info.top1 is not None else "not reported",
                f"[{info.filename}]({info.url})",
                f"`{info.sha256_prefix}`" if info.sha256_prefix else "-",
                remarks,
            )
            lines.append("| " + " | ".join(cells) + " |")
        sections.append("\n".join(lines))
    return "\n\n".join(sections) + "\n"
