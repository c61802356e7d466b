"""Readers of the official annotation files of each dataset, as they are distributed.

Each reader takes the annotation folder, the class names in the wanted label order and the split
number, and returns the annotated samples per split (``train``, ``val``, ``test``) with the
problems it met (malformed rows, unknown labels, duplicate ids), each naming its file and line.
A labels file (or HMDB51's set of split files) may hold a subset of the classes, for a quick
experiment: samples keep their published labels, those of the other classes are left out and
counted. A missing required file, or a class name the dataset does not have, is an
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
    """Samples per split (``train``, ``val``, optionally ``test``), the problems met, the classes
    used (in label order) and how many annotated samples of the dataset's other classes were left
    out (a labels file that lists a subset)."""

    splits: dict[str, list[AnnotatedSample]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    left_out: int = 0

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


def _in_label_order(names: Iterable[str], class_names: list[str]) -> list[str]:
    labels = _index_of(class_names)
    return sorted(set(names), key=labels.__getitem__)


def _check_known_classes(path: Path, found: list[str], class_names: list[str]) -> list[str]:
    """The classes a labels file (``path``) lists, in published label order: all of the dataset's or
    a subset (their labels stay the published ones); a name the dataset does not have is an error."""
    if len(found) != len(set(found)):
        raise AnnotationError(f"{path}: repeated class names; is this the dataset's own labels file?")
    unknown = [name for name in found if name not in set(class_names)]
    if unknown:
        shown = ", ".join(map(repr, unknown[:5])) + (", ..." if len(unknown) > 5 else "")
        raise AnnotationError(
            f"{path}: {len(unknown)} of its {len(found)} class names are not classes of the dataset "
            f"({shown}); write them as the dataset's labels file does, or check that it is this dataset's"
        )
    return _in_label_order(found, class_names)


class _LabelOf:
    """Published label of a class name when the annotations use that class; a class of the dataset
    left out of the labels file is counted in ``annotations.left_out``, any other name is a problem."""

    def __init__(self, annotations: Annotations, class_names: list[str]) -> None:
        self.annotations = annotations
        self.published = _index_of(class_names)
        self.used = set(annotations.classes)

    def __call__(self, name: str | None, source: str, problem: str) -> int | None:
        if name in self.used:
            return self.published[name]
        if name in self.published:
            self.annotations.left_out += 1
        else:
            self.annotations.problems.append(f"{source}: {problem}")
        return None


# Kinetics ----------------------------------------------------------------------------------------

_KINETICS_FILES = {
    "train": ("train.csv", "kinetics_train.csv"),
    "val": ("validate.csv", "val.csv", "kinetics_val.csv"),
    "test": ("test.csv", "kinetics_test.csv"),
}


def kinetics_sample_id(youtube_id: str, time_start: str, time_end: str) -> str:
    """File name stem of a Kinetics clip: ``{youtube_id}_{start:06d}_{end:06d}``."""
    return f"{youtube_id}_{int(float(time_start)):06d}_{int(float(time_end)):06d}"


def _read_kinetics_csv(path: Path, labels: _LabelOf, problems: list[str]) -> list[tuple[str, int, str]]:
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
            label = labels(row["label"], source, f"unknown label {row['label']!r}")
            if label is not None:
                samples.append((sample_id, label, source))
    except csv.Error as error:
        raise AnnotationError(f"{path}:{reader.line_num}: not a readable CSV ({error})") from None
    return samples


def read_kinetics(folder: Path, class_names: list[str], split: int) -> Annotations:
    """Kinetics-400/600/700: ``train.csv``, ``validate.csv`` (or ``val.csv``), ``test.csv``, or
    MMAction2's ``kinetics_{train,val,test}.csv``; labels parsed as CSV (they may be quoted). The
    classes used are those of the labelled rows (Kinetics has no labels file to trim)."""
    annotations = Annotations(classes=list(class_names))
    labels = _LabelOf(annotations, class_names)
    for split_name, names in _KINETICS_FILES.items():
        path = find_annotation(folder, names, required=split_name != "test")
        if path is None:
            continue
        samples = _read_kinetics_csv(path, labels, annotations.problems)
        if samples or split_name != "test":  # a test CSV without labels: nothing to evaluate on
            annotations.add_split(split_name, samples)
    seen = (class_names[sample.label] for samples in annotations.splits.values() for sample in samples)
    annotations.classes = _in_label_order(seen, class_names)
    return annotations


# Something-Something V2 --------------------------------------------------------------------------


def _load_json(path: Path):
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as error:
        raise AnnotationError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None


def read_sthv2(folder: Path, class_names: list[str], split: int) -> Annotations:
    """Something-Something V2: ``something-something-v2-{labels,train,validation}.json``; the
    class of a sample is its ``template`` with ``[`` and ``]`` removed, its label the published
    index of that class (whatever index the labels json gives it)."""
    annotations = Annotations()
    labels_path = find_annotation(folder, ["something-something-v2-labels.json"])
    label_map = _load_json(labels_path)
    if not isinstance(label_map, dict):
        raise AnnotationError(f"{labels_path}: expected an object {{class name: index}}")
    try:
        by_index = sorted(label_map, key=lambda name: int(label_map[name]))
    except (TypeError, ValueError):
        raise AnnotationError(f"{labels_path}: class indices must be integers (as strings)") from None
    annotations.classes = _check_known_classes(labels_path, by_index, class_names)
    labels = _LabelOf(annotations, class_names)
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
                label = labels(name, source, f"unknown template {item['template']!r}")
                if label is not None:
                    yield str(item["id"]), label, source

        annotations.add_split(split_name, samples())
    return annotations


# Something-Something V1 and Jester ---------------------------------------------------------------


def _semicolon_reader(prefix: str) -> Callable[[Path, list[str], int], Annotations]:
    def read(folder: Path, class_names: list[str], split: int) -> Annotations:
        annotations = Annotations()
        labels_path = find_annotation(folder, [f"{prefix}-labels.csv"])
        found = [line.strip() for line in _text_lines(labels_path) if line.strip()]
        annotations.classes = _check_known_classes(labels_path, found, class_names)
        labels = _LabelOf(annotations, class_names)
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
                        continue
                    label = labels(name.strip(), source, f"unknown label {name.strip()!r}")
                    if label is not None:
                        yield sample_id.strip(), label, source

            annotations.add_split(split_name, samples())
        return annotations

    read.__doc__ = (
        f"``{prefix}-labels.csv`` (one name a line) and ``{prefix}-{{train,validation}}.csv`` (``id;label``)."
    )
    return read


read_sthv1 = _semicolon_reader("something-something-v1")
read_jester = _semicolon_reader("jester-v1")


# UCF101 ------------------------------------------------------------------------------------------


def _ucf101_path(text: str) -> PurePosixPath:
    return PurePosixPath(text.replace("\\", "/"))


def _ucf101_class(parts: list[str], class_ind: dict[int, str], folders: dict[str, str]) -> str | None:
    """The class of a list row ``Class/v_Class_gXX_cYY.avi [N]``: its folder's class (case-insensitive),
    which ``N`` must agree with when classInd.txt numbers it (a renumbered subset must not relabel
    rows); None for a malformed row or an unknown or contradictory class."""
    if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        return None
    video = _ucf101_path(parts[0])
    folder = folders.get(video.parts[0].casefold()) if len(video.parts) == 2 else None
    if len(parts) == 1:
        return folder
    numbered = class_ind.get(int(parts[1]))
    if numbered is None:  # a number classInd.txt does not list: a class left out of it, or nonsense
        return folder if folder not in class_ind.values() else None
    return numbered if folder in (None, numbered) else None


def _read_class_ind(path: Path) -> dict[int, str]:
    class_ind: dict[int, str] = {}
    for number, line in enumerate(_text_lines(path), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[0].isdigit():
            raise AnnotationError(f"{path}:{number}: expected 'index ClassName', got {line!r}")
        class_ind[int(parts[0])] = parts[1]
    return class_ind


def read_ucf101(folder: Path, class_names: list[str], split: int) -> Annotations:
    """UCF101: ``classInd.txt`` (``1 ApplyEyeMakeup``), ``trainlist0N.txt`` (``Class/v_Class_gXX_cYY.avi
    N``, 1-based), ``testlist0N.txt`` (path only, class from the folder); CRLF line endings."""
    annotations = Annotations()
    class_path = find_annotation(folder, ["classInd.txt"])
    class_ind = _read_class_ind(class_path)
    annotations.classes = _check_known_classes(
        class_path, [class_ind[key] for key in sorted(class_ind)], class_names
    )
    labels = _LabelOf(annotations, class_names)
    folders = {name.casefold(): name for name in class_names}
    for split_name, stem in (("train", "trainlist"), ("val", "testlist")):
        path = find_annotation(folder, [f"{stem}{split:02d}.txt"])

        def samples(path=path):
            for number, line in enumerate(_text_lines(path), start=1):
                parts = line.split()
                if not parts:
                    continue
                source = f"{path}:{number}"
                name = _ucf101_class(parts, class_ind, folders)
                problem = f"malformed row, unknown class or classInd.txt number of another class {line!r}"
                label = labels(name, source, problem)
                if label is not None:
                    yield _ucf101_path(parts[0]).stem, label, source

        annotations.add_split(split_name, samples())
    return annotations


# HMDB51 ------------------------------------------------------------------------------------------

_HMDB_SPLITS = {"1": "train", "2": "val"}  # 0: not used in this split


def _hmdb51_split_files(folder: Path, class_names: list[str], split: int) -> dict[str, Path]:
    """``<class>_test_split{split}.txt`` by class: all 51 classes or a subset; another name is an error."""
    suffix = f"_test_split{split}.txt"
    files = {path.name[: -len(suffix)]: path for path in sorted(folder.rglob(f"*{suffix}"))}
    if not files:
        raise AnnotationError(
            f"annotation files <class>{suffix} (testTrainMulti_7030_splits) not found under {folder}"
        )
    unknown = [path.name for name, path in files.items() if name not in set(class_names)]
    if unknown:
        shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise AnnotationError(
            f"{len(unknown)} split files under {folder} name no HMDB51 class ({shown}); "
            "name them <class>" + suffix + " with the class as the dataset writes it"
        )
    return files


def read_hmdb51(folder: Path, class_names: list[str], split: int) -> Annotations:
    """HMDB51: ``<class>_test_split{N}.txt`` per class (all 51, or the classes of a quick experiment),
    lines ``<video>.avi <0|1|2>`` (1 train, 2 test, 0 unused)."""
    files = _hmdb51_split_files(folder, class_names, split)
    annotations = Annotations(classes=_in_label_order(files, class_names))
    labels = _index_of(class_names)
    per_split: dict[str, list[tuple[str, int, str]]] = {"train": [], "val": []}
    for name, path in files.items():
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
