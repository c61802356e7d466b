"""``VideoDataset``: videos or raw-frame folders in, sampled and augmented clips out.

Layouts (``layout="auto"`` picks from the source):

- a list file of ``path label`` lines (MMAction2 video lists);
- a list file of ``dir num_frames label`` lines (the reference's raw-frame lists);
- a folder per class, ``root/<class>/<video>`` (class names sorted, label = position).

Relative paths in list files are relative to ``root`` (default: the list file's folder). Class
names come from ``classes`` (a list or a file with one name per line), else from ``classes.txt``
beside the list file, else ``"0"``, ``"1"``...

``dataset[i]`` is a ``VideoSample(clip, label, index)``; the batches keep the indices, so results
can be matched with the samples they came from in any sampler order (shuffled, distributed).

Bad files (missing, empty, truncated, corrupt): ``dataset[i]`` returns a ``FailedSample`` marker
instead of raising (``on_error="raise"`` raises). Batch with ``collate_fn=dataset.collate``: in
training it replaces each failed sample by another, randomly drawn one; in evaluation it drops it.
Either way the batch (a ``VideoBatch``) carries the failures, so they reach the main process
even from DataLoader workers; report them once per epoch (``summarize_failures``) and keep
them out of the metrics.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import torch

from tsm.data.config import DataConfig, as_data_config
from tsm.data.decode import VideoReadError
from tsm.data.pipelines import build_pipeline, read_clip_frames

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg")
Layout = Literal["auto", "video_list", "frame_list", "class_folders"]


@dataclass(frozen=True)
class VideoRecord:
    """One sample of a dataset: a video file or a raw-frame folder, its frame count if the list
    gave it, and its label."""

    path: str
    label: int
    num_frames: int | None = None


@dataclass
class FailedSample:
    """Marker for a sample that could not be loaded: its dataset index, path and the reason.
    (Not frozen: Lightning's batch transfer rebuilds dataclasses inside a batch.)"""

    index: int
    path: str
    reason: str

    def __str__(self) -> str:
        return self.reason if self.path in self.reason else f"{self.path}: {self.reason}"


class VideoSample(NamedTuple):
    """One loaded sample: clip (T, 3, H, W) or (V, T, 3, H, W), label, and its dataset index."""

    clip: torch.Tensor
    label: int
    index: int


class VideoBatch(NamedTuple):
    """A collated batch: clips (N, T, 3, H, W) or (N, V, T, 3, H, W), labels (N,), the dataset
    indices of the rows (N,), and the samples that failed (replaced in training, dropped in
    evaluation)."""

    clips: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor
    failures: list[FailedSample]


def summarize_failures(failures: Iterable[FailedSample]) -> str:
    """An end-of-epoch report of failed samples: a count, then one line per bad file (each file
    once, with how many times it failed and its first reason). Empty when nothing failed."""
    by_path: dict[str, list[FailedSample]] = {}
    for failure in failures:
        by_path.setdefault(failure.path, []).append(failure)
    if not by_path:
        return ""
    lines = [f"{sum(map(len, by_path.values()))} failed samples from {len(by_path)} bad files:"]
    for path, events in sorted(by_path.items()):
        times = f" ({len(events)} times)" if len(events) > 1 else ""
        lines.append(f"  {path}{times}: {events[0].reason}")
    return "\n".join(lines)


# A list line: a path (which may hold spaces), then one integer (label) or two (num_frames label).
_LIST_LINE = re.compile(r"^\s*(?P<path>.+?)\s+(?:(?P<frames>-?\d+)\s+)?(?P<label>-?\d+)\s*$")


def _parse_list_line(line: str, list_file: Path, number: int) -> tuple[str, int | None, int]:
    match = _LIST_LINE.match(line)
    if match is None:
        raise ValueError(
            f"{list_file}:{number}: cannot parse {line.strip()!r}; expected 'path label' (video list) "
            "or 'dir num_frames label' (raw-frame list) with integer num_frames and label"
        )
    frames = match["frames"]
    return match["path"], None if frames is None else int(frames), int(match["label"])


def format_list_line(path: str, label: int, num_frames: int | None = None) -> str:
    """One list-file line (``path label`` or ``dir num_frames label``) that ``read_list_file``
    reads back as the same path; a path it cannot hold (line breaks, surrounding whitespace,
    ending in a space and a number) is a ValueError."""
    line = f"{path} {label}" if num_frames is None else f"{path} {num_frames} {label}"
    match = _LIST_LINE.match(line)
    if "\n" in path or "\r" in path or match is None or match["path"] != path:
        raise ValueError(f"path {path!r} cannot be written to a list file (line break or edge whitespace)")
    return line + "\n"


def read_list_file(list_file: str | Path, root: str | Path | None = None) -> tuple[list[VideoRecord], str]:
    """Records of a list file and its layout ("video_list" or "frame_list"); a clear error names
    the first malformed line. Paths may hold spaces (the last one or two fields are the numbers);
    relative paths are relative to ``root`` (default: the list file's folder)."""
    list_file = Path(list_file)
    root = Path(root) if root is not None else list_file.parent
    records, widths = [], set()
    for number, line in enumerate(list_file.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        path, num_frames, label = _parse_list_line(line, list_file, number)
        if label < 0:
            raise ValueError(f"{list_file}:{number}: negative label {label}")
        widths.add(num_frames is None)
        records.append(VideoRecord(str(root / path), label, num_frames))
    if not records:
        raise ValueError(f"{list_file} lists no samples")
    if len(widths) > 1:
        raise ValueError(f"{list_file} mixes 'path label' and 'dir num_frames label' lines; use one layout")
    return records, "video_list" if widths == {True} else "frame_list"


def scan_class_folders(root: str | Path) -> tuple[list[VideoRecord], list[str]]:
    """Records of a ``root/<class>/<video>`` tree and its sorted class names."""
    root = Path(root)
    class_names = sorted(entry.name for entry in root.iterdir() if entry.is_dir())
    if not class_names:
        raise ValueError(f"{root} has no class folders; expected {root}/<class>/<video>.mp4")
    records = [
        VideoRecord(str(file), label)
        for label, name in enumerate(class_names)
        for file in sorted((root / name).iterdir())
        if file.suffix.lower() in VIDEO_EXTENSIONS
    ]
    if not records:
        raise ValueError(f"no videos ({', '.join(VIDEO_EXTENSIONS)}) under {root}/<class>/")
    return records, class_names


def read_class_names(path: str | Path) -> list[str]:
    """Class names from a text file, one per line in label order (blank lines ignored)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"class-names file {str(path)!r} does not exist")
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not names:
        raise ValueError(f"class-names file {path} is empty; write one class name per line")
    return names


def _class_names_for(classes: Sequence[str] | str | Path | None, list_file: Path) -> list[str] | None:
    """``classes`` (names or a file), else ``classes.txt`` beside the list file, else None."""
    if classes is None:
        beside = list_file.parent / "classes.txt"
        if not beside.is_file():
            return None
        classes = beside
    if isinstance(classes, (str, Path)):
        return read_class_names(classes)
    return list(classes)


class VideoDataset(torch.utils.data.Dataset):
    """Clips of a video dataset: ``VideoSample(clip, label, index)`` with clip float (T, 3, H, W) in
    training and (V, T, 3, H, W) in evaluation (V test views: clips x crops; V is there even when 1).

    ``data_config`` is a :class:`tsm.data.DataConfig` (or its dict form; store
    ``dataset.data_config`` in the checkpoint); ``num_segments`` overrides its ``num_segments``.
    ``pipeline`` replaces the named pipeline with any callable ``(uint8 frames, label) -> (clip, label)``.
    """

    def __init__(
        self,
        source: str | Path,
        num_segments: int | None = None,
        train: bool = True,
        pipeline: Callable[[torch.Tensor, int], tuple[torch.Tensor, int]] | None = None,
        data_config: DataConfig | Mapping[str, Any] | None = None,
        root: str | Path | None = None,
        classes: Sequence[str] | str | Path | None = None,
        layout: Layout = "auto",
        on_error: Literal["mark", "raise"] = "mark",
        max_resample: int = 20,
    ) -> None:
        source = Path(source)
        if not source.exists():
            raise FileNotFoundError(f"dataset source not found: {source} (a list file or a folder per class)")
        overrides = {} if num_segments is None else {"num_segments": num_segments}
        self.data_config = as_data_config(data_config, **overrides)
        if source.is_dir():
            if layout not in ("auto", "class_folders"):
                raise ValueError(f"{source} is a folder: layout must be 'class_folders', got {layout!r}")
            if classes is not None:
                raise ValueError(f"{source} is a folder per class: class names come from the folder names")
            self.records, names = scan_class_folders(source)
            self.layout = "class_folders"
        else:
            self.records, self.layout = read_list_file(source, root)
            if layout not in ("auto", self.layout):
                raise ValueError(f"{source} looks like a {self.layout} file, not {layout!r}")
            names = _class_names_for(classes, source)
        num_labels = max(record.label for record in self.records) + 1
        if names is None:
            names = [str(label) for label in range(num_labels)]
        if len(names) < num_labels:
            raise ValueError(f"{source}: labels go up to {num_labels - 1} but only {len(names)} class names")
        if on_error not in ("mark", "raise"):
            raise ValueError(f"on_error must be 'mark' or 'raise', got {on_error!r}")
        self.class_names: list[str] = list(names)
        self.train = train
        self.on_error = on_error
        self.max_resample = max_resample
        self.pipeline = pipeline if pipeline is not None else build_pipeline(self.data_config, train)

    def __len__(self) -> int:
        return len(self.records)

    def load(self, index: int) -> VideoSample:
        """Sample ``index``; a missing or unreadable file raises FileNotFoundError or VideoReadError."""
        record = self.records[index]
        frames, _ = read_clip_frames(record.path, self.data_config, self.train, record.num_frames)
        clip, label = self.pipeline(frames, record.label)
        return VideoSample(clip, label, index)

    def __getitem__(self, index: int) -> VideoSample | FailedSample:
        try:
            return self.load(index)
        except (FileNotFoundError, VideoReadError) as error:  # bad data; configuration errors raise
            if self.on_error == "raise":
                raise
            return FailedSample(index, self.records[index].path, str(error))

    def _replacement(self, failures: list[FailedSample]) -> VideoSample:
        for _ in range(self.max_resample):
            sample = self[int(torch.randint(len(self), ()))]
            if not isinstance(sample, FailedSample):
                return sample
            failures.append(sample)
        raise RuntimeError(
            f"{self.max_resample} random samples in a row failed to load (last: {failures[-1]}); "
            "run `tsm data check` on the dataset"
        )

    def collate(self, samples: Sequence[VideoSample | FailedSample]) -> VideoBatch:
        """Batch samples; failed ones are replaced (training) or dropped (evaluation) and listed in
        ``VideoBatch.failures``. Runs inside DataLoader workers, so use it as ``collate_fn``."""
        failures = [sample for sample in samples if isinstance(sample, FailedSample)]
        good = [sample for sample in samples if not isinstance(sample, FailedSample)]
        if self.train:
            good += [self._replacement(failures) for _ in range(len(samples) - len(good))]
        if not good:
            nothing = torch.empty(0, dtype=torch.long)
            return VideoBatch(torch.empty(0), nothing, nothing.clone(), failures)
        clips = torch.stack([sample.clip for sample in good])
        labels = torch.tensor([sample.label for sample in good], dtype=torch.long)
        indices = torch.tensor([sample.index for sample in good], dtype=torch.long)
        return VideoBatch(clips, labels, indices, failures)


__all__ = [
    "VIDEO_EXTENSIONS",
    "FailedSample",
    "VideoBatch",
    "VideoDataset",
    "VideoRecord",
    "VideoSample",
    "format_list_line",
    "read_class_names",
    "read_list_file",
    "scan_class_folders",
    "summarize_failures",
]
