"""The registry of published checkpoints as text: the aligned table ``tsm models --pretrained``
prints and the Markdown tables of docs/model-zoo.md (``tsm models --markdown``)."""

from __future__ import annotations

import json

from tsm.checkpoint.published import (
    DATASET_TITLES,
    MMACTION2,
    REFERENCE,
    PretrainedInfo,
    is_cached,
    list_pretrained,
    pretrained_info,
)

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


def registry_table(names: list[str]) -> str:
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


def registry_markdown() -> str:
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
