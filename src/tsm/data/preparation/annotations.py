"""Readers of the official annotation files of each dataset, as they are distributed.

Each reader takes the annotation folder, the class names in the wanted label order and the split
number, and returns the annotated samples per split (``train``, ``val``, ``test``) with the
problems it met (malformed rows, unknown labels, duplicate ids), each naming its file and line.
A missing required file, or a labels file that does not hold the published classes, is an
``AnnotationError`` naming the file. Formats (see docs/data.md): Kinetics CSVs
(``label,youtube_id,time_start,time_end,split[,is_cc]``), Something-Something V2 json,
Something-Something V1 / Jester ``;`` CSVs, UCF101 ``classInd.txt`` + ``trainlist0N.txt`` /
``testlist0N.txt``, HMDB51 ``<class>_test_splitN.txt``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath


class AnnotationError(ValueError):
    """An annotation file is missing or does not have the dataset's format."""


@dataclass(frozen=True)
class AnnotatedSample:
    """One annotated sample: the id its file is found by (file name without extension, or frame
    folder name), its label and where it was read (``file:line``)."""

    sample_id: str
    label: int
    source: str


@dataclass
class Annotations:
    """Samples per split (``train``, ``val``, optionally ``test``) and the problems met."""

    splits: dict[str, list[AnnotatedSample]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add_split(self, split: str, samples: Iterable[tuple[str, int, str]]) -> None:
        """Add samples, reporting (and dropping) repeated ids of the same split."""
        kept: list[AnnotatedSample] = []
        first_seen: dict[str, str] = {}
        for sample_id, label, source in samples:
            if sample_id in first_seen:
                self.problems.append(
                    f"{source}: duplicate id {sample_id!r} (first at {first_seen[sample_id]})"
                )
                continue
            first_seen[sample_id] = source
            kept.append(AnnotatedSample(sample_id, label, source))
        self.splits[split] = kept


def find_annotation(folder: Path, names: Iterable[str], required: bool = True) -> Path | None:
    """The first of ``names`` found in ``folder`` or below it (shallowest first)."""
    names = list(names)
    for name in names:
        found = sorted(folder.rglob(name), key=lambda path: (len(path.parts), str(path)))
        if found:
            return found[0]
    if required:
        raise AnnotationError(f"annotation file {' or '.join(names)} not found under {folder}")
    return None


def _read_text(path: Path) -> str:
    """A text file's content (UTF-8, BOM dropped); anything else is an AnnotationError."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise AnnotationError(
            f"{path}: not UTF-8 text (byte {error.start}); is it the annotation file?"
        ) from None


def _text_lines(path: Path) -> list[str]:
    """Lines of a text file without their terminators (LF or CRLF)."""
    return _read_text(path).splitlines()


def _index_of(class_names: list[str]) -> dict[str, int]:
    return {name: label for label, name in enumerate(class_names)}


def _check_same_classes(path: Path, found: list[str], class_names: list[str], ordered: bool) -> None:
    """A labels file must hold the published classes (in the same order when ``ordered``)."""
    if len(found) != len(set(found)):
        raise AnnotationError(f"{path}: repeated class names; is this the dataset's own labels file?")
    if set(found) != set(class_names):
        extra, absent = sorted(set(found) - set(class_names)), sorted(set(class_names) - set(found))
        raise AnnotationError(
            f"{path}: classes differ from the published ones ({len(found)} vs {len(class_names)}; "
            f"unknown {extra[:3]}, absent {absent[:3]}); is it the right dataset's labels file?"
        )
    if ordered and found != class_names:
        line = next(number for number, (a, b) in enumerate(zip(found, class_names, strict=True), 1) if a != b)
        raise AnnotationError(
            f"{path}:{line}: class order differs from the published order ({found[line - 1]!r})"
        )


# Kinetics ----------------------------------------------------------------------------------------

_KINETICS_FILES = {
    "train": ("train.csv", "kinetics_train.csv"),
    "val": ("validate.csv", "val.csv", "kinetics_val.csv"),
    "test": ("test.csv", "kinetics_test.csv"),
}


def kinetics_sample_id(youtube_id: str, time_start: str, time_end: str) -> str:
    """File name stem of a Kinetics clip: ``{youtube_id}_{start:06d}_{end:06d}``."""
    return f"{youtube_id}_{int(float(time_start)):06d}_{int(float(time_end)):06d}"


def _read_kinetics_csv(path: Path, labels: dict[str, int], problems: list[str]) -> list[tuple[str, int, str]]:
    """(id, label, source) of each row; a CSV without a label column (Kinetics test) gives none."""
    samples = []
    reader = csv.DictReader(io.StringIO(_read_text(path), newline=""))
    try:
        columns = set(reader.fieldnames or ())
        if not {"youtube_id", "time_start", "time_end"} <= columns:
            raise AnnotationError(
                f"{path}: header {sorted(columns)} lacks youtube_id,time_start,time_end; "
                "expected the Kinetics CSV header label,youtube_id,time_start,time_end,split"
            )
        if "label" not in columns:
            return samples
        for row in reader:
            source = f"{path}:{reader.line_num}"
            try:
                sample_id = kinetics_sample_id(row["youtube_id"], row["time_start"], row["time_end"])
            except (TypeError, ValueError):
                problems.append(f"{source}: malformed row {list(row.values())}")
                continue
            if row["label"] not in labels:
                problems.append(f"{source}: unknown label {row['label']!r}")
            else:
                samples.append((sample_id, labels[row["label"]], source))
    except csv.Error as error:
        raise AnnotationError(f"{path}:{reader.line_num}: not a readable CSV ({error})") from None
    return samples


def read_kinetics(folder: Path, class_names: list[str], split: int) -> Annotations:
    """Kinetics-400/600/700: ``train.csv``, ``validate.csv`` (or ``val.csv``), ``test.csv``, or
    MMAction2's ``kinetics_{train,val,test}.csv``; labels parsed as CSV (they may be quoted)."""
    annotations, labels = Annotations(), _index_of(class_names)
    for split_name, names in _KINETICS_FILES.items():
        path = find_annotation(folder, names, required=split_name != "test")
        if path is None:
            continue
        samples = _read_kinetics_csv(path, labels, annotations.problems)
        if samples or split_name != "test":  # a test CSV without labels: nothing to evaluate on
            annotations.add_split(split_name, samples)
    return annotations


# Something-Something V2 --------------------------------------------------------------------------


def _load_json(path: Path):
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as error:
        raise AnnotationError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None


def read_sthv2(folder: Path, class_names: list[str], split: int) -> Annotations:
    """Something-Something V2: ``something-something-v2-{labels,train,validation}.json``; the
    class of a sample is its ``template`` with ``[`` and ``]`` removed."""
    annotations = Annotations()
    labels_path = find_annotation(folder, ["something-something-v2-labels.json"])
    label_map = _load_json(labels_path)
    if not isinstance(label_map, dict):
        raise AnnotationError(f"{labels_path}: expected an object {{class name: index}}")
    try:
        by_index = sorted(label_map, key=lambda name: int(label_map[name]))
    except (TypeError, ValueError):
        raise AnnotationError(f"{labels_path}: class indices must be integers (as strings)") from None
    _check_same_classes(labels_path, by_index, class_names, ordered=True)
    labels = _index_of(class_names)
    for split_name, stem in (("train", "train"), ("val", "validation")):
        path = find_annotation(folder, [f"something-something-v2-{stem}.json"])
        items = _load_json(path)
        if not isinstance(items, list):
            raise AnnotationError(f"{path}: expected a list of {{'id', 'label', 'template', ...}} objects")

        def samples(items=items, path=path):
            for number, item in enumerate(items):
                source = f"{path}: item {number}"
                if not isinstance(item, dict) or "id" not in item or "template" not in item:
                    annotations.problems.append(f"{source}: malformed entry (needs 'id' and 'template')")
                    continue
                name = str(item["template"]).replace("[", "").replace("]", "")
                if name not in labels:
                    annotations.problems.append(f"{source}: unknown template {item['template']!r}")
                    continue
                yield str(item["id"]), labels[name], source

        annotations.add_split(split_name, samples())
    return annotations


# Something-Something V1 and Jester ---------------------------------------------------------------


def _semicolon_reader(prefix: str) -> Callable[[Path, list[str], int], Annotations]:
    def read(folder: Path, class_names: list[str], split: int) -> Annotations:
        annotations = Annotations()
        labels_path = find_annotation(folder, [f"{prefix}-labels.csv"])
        found = [line.strip() for line in _text_lines(labels_path) if line.strip()]
        _check_same_classes(labels_path, found, class_names, ordered=False)
        labels = _index_of(class_names)
        for split_name, stem in (("train", "train"), ("val", "validation")):
            path = find_annotation(folder, [f"{prefix}-{stem}.csv"])

            def samples(path=path):
                for number, line in enumerate(_text_lines(path), start=1):
                    if not line.strip():
                        continue
                    sample_id, separator, name = line.partition(";")
                    source = f"{path}:{number}"
                    if not separator or not sample_id.strip():
                        annotations.problems.append(f"{source}: malformed row {line!r} (expected 'id;label')")
                    elif name.strip() not in labels:
                        annotations.problems.append(f"{source}: unknown label {name.strip()!r}")
                    else:
                        yield sample_id.strip(), labels[name.strip()], source

            annotations.add_split(split_name, samples())
        return annotations

    read.__doc__ = (
        f"``{prefix}-labels.csv`` (one name a line) and ``{prefix}-{{train,validation}}.csv`` (``id;label``)."
    )
    return read


read_sthv1 = _semicolon_reader("something-something-v1")
read_jester = _semicolon_reader("jester-v1")


# UCF101 ------------------------------------------------------------------------------------------


def read_ucf101(folder: Path, class_names: list[str], split: int) -> Annotations:
    """UCF101: ``classInd.txt`` (``1 ApplyEyeMakeup``), ``trainlist0N.txt`` (``Class/v_Class_gXX_cYY.avi
    N``, 1-based), ``testlist0N.txt`` (path only, class from the folder); CRLF line endings."""
    annotations = Annotations()
    class_path = find_annotation(folder, ["classInd.txt"])
    class_ind: dict[int, str] = {}
    for number, line in enumerate(_text_lines(class_path), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[0].isdigit():
            raise AnnotationError(f"{class_path}:{number}: expected 'index ClassName', got {line!r}")
        class_ind[int(parts[0])] = parts[1]
    _check_same_classes(class_path, [class_ind[key] for key in sorted(class_ind)], class_names, ordered=True)
    labels = _index_of(class_names)
    folder_labels = {name.casefold(): label for name, label in labels.items()}
    for split_name, stem in (("train", "trainlist"), ("val", "testlist")):
        path = find_annotation(folder, [f"{stem}{split:02d}.txt"])

        def samples(path=path):
            for number, line in enumerate(_text_lines(path), start=1):
                parts = line.split()
                if not parts:
                    continue
                source = f"{path}:{number}"
                video = PurePosixPath(parts[0].replace("\\", "/"))
                if len(parts) == 2 and parts[1].isdigit() and int(parts[1]) in class_ind:
                    label = labels[class_ind[int(parts[1])]]
                elif len(parts) == 1 and len(video.parts) == 2 and video.parts[0].casefold() in folder_labels:
                    label = folder_labels[video.parts[0].casefold()]
                else:
                    annotations.problems.append(f"{source}: malformed row or unknown class {line!r}")
                    continue
                yield video.stem, label, source

        annotations.add_split(split_name, samples())
    return annotations


# HMDB51 ------------------------------------------------------------------------------------------

_HMDB_SPLITS = {"1": "train", "2": "val"}  # 0: not used in this split


def read_hmdb51(folder: Path, class_names: list[str], split: int) -> Annotations:
    """HMDB51: ``<class>_test_split{N}.txt`` per class, lines ``<video>.avi <0|1|2>`` (1 train,
    2 test, 0 unused)."""
    annotations = Annotations()
    suffix = f"_test_split{split}.txt"
    files = {path.name[: -len(suffix)]: path for path in sorted(folder.rglob(f"*{suffix}"))}
    if not files:
        raise AnnotationError(
            f"annotation files <class>{suffix} (testTrainMulti_7030_splits) not found under {folder}"
        )
    absent = [name for name in class_names if name not in files]
    if absent:
        raise AnnotationError(f"annotation file {absent[0]}{suffix} not found under {folder}")
    labels = _index_of(class_names)
    per_split: dict[str, list[tuple[str, int, str]]] = {"train": [], "val": []}
    for name, path in files.items():
        if name not in labels:
            annotations.problems.append(f"{path}: unknown class {name!r} (file ignored)")
            continue
        for number, line in enumerate(_text_lines(path), start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                annotations.problems.append(
                    f"{path}:{number}: malformed row {line!r} (expected '<video>.avi 0|1|2')"
                )
            elif parts[1] in _HMDB_SPLITS:
                per_split[_HMDB_SPLITS[parts[1]]].append(
                    (PurePosixPath(parts[0]).stem, labels[name], f"{path}:{number}")
                )
    for split_name, samples in per_split.items():
        annotations.add_split(split_name, samples)
    return annotations


__all__ = [
    "AnnotatedSample",
    "AnnotationError",
    "Annotations",
    "find_annotation",
    "kinetics_sample_id",
]
