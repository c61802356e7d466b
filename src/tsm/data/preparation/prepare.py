"""``prepare_dataset``: official annotations + downloaded videos (or frame folders) -> list files.

Writes ``train.txt``, ``val.txt``, ``test.txt`` (when the dataset gives test labels),
``classes.txt`` (all the dataset's classes, in the label order of the chosen publisher, also when
the annotations use a subset: labels keep their published indices), ``missing.txt`` (annotated samples without
a file: ``split id`` lines) and ``problems.txt`` (rows that were skipped, with file and line).
List paths are relative to the output folder, which ``read_list_file`` resolves them against, so
the lists work from any working directory (and keep working if both folders move together).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tsm.data.datasets import VIDEO_EXTENSIONS, format_list_line
from tsm.data.decode import DEFAULT_FRAME_TEMPLATE, count_frame_files
from tsm.data.preparation.annotations import AnnotatedSample
from tsm.data.preparation.catalog import public_dataset
from tsm.data.preparation.class_names import ClassOrder, dataset_class_names
from tsm.fileio import atomic_write_text

SPLITS = ("train", "val", "test")


@dataclass
class PreparedDataset:
    """What ``prepare_dataset`` wrote: list files by split, sample counts, class names (all of the
    dataset's, in label order) and the classes the annotations use (all or a subset), how many
    annotated samples of the other classes were left out, the ids with no file (``(split, id)``)
    and the problems met (one line each, with file and line)."""

    out_dir: Path
    lists: dict[str, Path]
    counts: dict[str, int]
    class_names: list[str]
    classes_used: list[str] = field(default_factory=list)
    left_out: int = 0
    missing: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def summary(self, examples: int = 5) -> str:
        """A few lines for the terminal: samples per split, classes, missing and problems."""
        splits = ", ".join(f"{split} {count}" for split, count in self.counts.items())
        used, total = len(self.classes_used), len(self.class_names)
        classes = f"{total} classes" if used == total else f"{used} of the {total} classes"
        lines = [f"{self.out_dir}: {splits} samples, {classes}"]
        if used != total:
            lines.append(f"  labels keep their published indices (0-{total - 1}, classes.txt)")
        if self.left_out:
            lines.append(f"  {self.left_out} annotated samples of the other classes left out")
        if self.missing:
            first = ", ".join(sample_id for _, sample_id in self.missing[:examples])
            lines.append(f"  {len(self.missing)} annotated samples have no file (missing.txt), e.g. {first}")
        if self.problems:
            lines.append(f"  {len(self.problems)} problems (problems.txt), e.g.:")
            lines += [f"    {problem}" for problem in self.problems[:examples]]
        return "\n".join(lines)


class _SampleFinder:
    """Files (or frame folders) under ``root`` by id: the name without extension, exact first,
    then case-insensitive (UCF101 lists write ``v_HandStandPushups`` for ``v_HandstandPushups``)."""

    def __init__(self, root: Path, folders: bool) -> None:
        self.exact: dict[str, list[Path]] = {}
        self.folded: dict[str, list[Path]] = {}
        for directory, subdirs, files in os.walk(root):
            subdirs.sort()
            if folders:
                entries = [(name, name) for name in subdirs]
            else:
                entries = [
                    (name, os.path.splitext(name)[0])
                    for name in sorted(files)
                    if os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS
                ]
            for name, key in entries:
                path = Path(directory, name)
                self.exact.setdefault(key, []).append(path)
                self.folded.setdefault(key.casefold(), []).append(path)

    def find(self, sample_id: str) -> list[Path]:
        return self.exact.get(sample_id) or self.folded.get(sample_id.casefold(), [])


def _list_path(path: Path, out_dir: Path) -> str:
    try:
        relative = os.path.relpath(path, out_dir)
    except ValueError:  # another drive (Windows)
        return str(path.resolve())
    return relative if relative[:1].strip() else os.path.join(".", relative)


def _list_lines(
    split: str,
    samples: Iterable[AnnotatedSample],
    finder: _SampleFinder,
    out_dir: Path,
    frame_template: str | None,
    result: PreparedDataset,
) -> list[str]:
    lines = []
    for sample in samples:
        found = finder.find(sample.sample_id)
        if len(found) > 1:
            others = ", ".join(map(str, found[1:3]))
            result.problems.append(
                f"{sample.source}: {len(found)} files for id {sample.sample_id!r}: "
                f"using {found[0]} (also {others})"
            )
        num_frames = None
        if found and frame_template is not None:
            num_frames = count_frame_files(found[0], frame_template)
            if num_frames == 0:
                result.problems.append(
                    f"{sample.source}: frame folder {found[0]} has no {frame_template.format(1)}"
                )
        if not found or num_frames == 0:
            result.missing.append((split, sample.sample_id))
            continue
        try:
            lines.append(format_list_line(_list_path(found[0], out_dir), sample.label, num_frames))
        except ValueError as error:
            result.problems.append(f"{sample.source}: {error}")
    return lines


def prepare_dataset(
    dataset: str,
    annotations: str | Path,
    videos: str | Path,
    out_dir: str | Path,
    split: int = 1,
    class_order: ClassOrder = "reference",
    frames: bool | None = None,
    frame_template: str | None = None,
) -> PreparedDataset:
    """List files of ``dataset`` from its official annotation files (``annotations``) and the
    videos found under ``videos`` (any layout: matched by id), in the label order of
    ``class_order`` ("reference" or "mmaction2" checkpoints); ``split`` picks the UCF101 / HMDB51
    split (its test split becomes ``val.txt``). ``frames`` lists frame folders (``dir num_frames
    label``, counted with ``frame_template``) instead of videos: the default for sthv1 / jester."""
    facts = public_dataset(dataset)
    if split not in (1, 2, 3):
        raise ValueError(f"split must be 1, 2 or 3, got {split}")
    annotations, videos, out_dir = Path(annotations), Path(videos), Path(out_dir)
    for name, folder in (("annotations", annotations), ("videos", videos)):
        if not folder.is_dir():
            raise FileNotFoundError(f"{name} folder not found: {folder}")
    class_names = dataset_class_names(dataset, class_order)
    read = facts.read_annotations(annotations, class_names, split)
    frames = facts.frame_template is not None if frames is None else frames
    template = (frame_template or facts.frame_template or DEFAULT_FRAME_TEMPLATE) if frames else None
    finder = _SampleFinder(videos, folders=frames)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = PreparedDataset(
        out_dir, {}, {}, class_names, read.classes, read.left_out, problems=list(read.problems)
    )
    for split_name in SPLITS:
        if split_name not in read.splits:
            continue
        lines = _list_lines(split_name, read.splits[split_name], finder, out_dir, template, result)
        result.lists[split_name] = atomic_write_text(out_dir / f"{split_name}.txt", "".join(lines))
        result.counts[split_name] = len(lines)
    atomic_write_text(out_dir / "classes.txt", "".join(f"{name}\n" for name in class_names))
    atomic_write_text(
        out_dir / "missing.txt", "".join(f"{split} {sample_id}\n" for split, sample_id in result.missing)
    )
    atomic_write_text(out_dir / "problems.txt", "".join(f"{problem}\n" for problem in result.problems))
    return result


__all__ = ["SPLITS", "PreparedDataset", "prepare_dataset"]
