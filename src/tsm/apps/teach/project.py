"""A teach project on disk: an ordinary folder that ``tsm fit`` and ``tsm serve`` both read.

Layout of ``DIR``::

    teach.json                  the base model and the run now served (version 1)
    fit.yaml                    a tsm fit config for the clips: tsm fit --config DIR/fit.yaml
    clips/<class>/<id>.mp4      the clips: a class-folder dataset (tsm fit --data.train DIR/clips)
    thumbnails/<id>.jpg         each clip's middle frame
    models/<run>.safetensors    each run's model: a tsm checkpoint with its class names
    runs/<run>.json             each run's log: settings, clips, losses, accuracy, times, outcome
    downloads/<run>/            what the page offers to download beyond the checkpoint (made on demand)

Every file is written whole or not at all; temporary files a killed server left are removed when
the project is opened.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from tsm.apps.teach.clips import ClipRefused, read_clip, write_clip, write_thumbnail
from tsm.apps.teach.settings import TeachLimits
from tsm.data import VIDEO_EXTENSIONS, DataConfig, probe
from tsm.fileio import atomic_write_text, remove_abandoned_temporaries
from tsm.models import ModelConfig

PROJECT_FILE = "teach.json"
PROJECT_VERSION = 1
# Class names become folder names: letters, digits, spaces and _ . - (not first), at most 40.
_LABEL = re.compile(r"[^\W_][\w .-]{0,39}")
_CLIP_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_RUN = re.compile(r"run-\d{3,9}")
MIB = 1 << 20


@dataclass(frozen=True)
class Clip:
    """One clip of the project: its id (the file's stem), class, file, length and frame size."""

    id: str
    label: str
    path: Path
    frames: int
    seconds: float
    width: int
    height: int

    def to_dict(self) -> dict[str, Any]:
        """What ``GET /teach/clips`` says about it (no server path)."""
        return {key: value for key, value in asdict(self).items() if key != "path"}


def check_label(label: str) -> str:
    """``label`` as a class name, or a ValueError saying what a class name may be."""
    label = (label or "").strip()
    if not _LABEL.fullmatch(label):
        raise ValueError(
            f"bad class name {label[:50]!r}: use 1-40 letters, digits, spaces or _ . - "
            "(starting with a letter or digit)"
        )
    return label


class TeachProject:
    """The folder ``root`` (made when missing) holding clips, models and run logs; thread-safe."""

    def __init__(self, root: str | Path, base: str | None = None, limits: TeachLimits | None = None) -> None:
        self.root = Path(root)
        self.limits = limits or TeachLimits()
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(f"--teach {self.root} is a file: give a folder (new or a teach project)")
        if self.root.is_dir() and any(self.root.iterdir()) and not (self.root / PROJECT_FILE).is_file():
            raise ValueError(f"--teach {self.root} holds other files: give a new folder or a teach project")
        for folder in (self.clips_dir, self.thumbnails_dir, self.models_dir, self.runs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        remove_abandoned_temporaries(self.root)
        self._lock = threading.RLock()
        self._probed: dict[tuple[str, int, int], tuple[int, float, int, int]] = {}
        state = self.read_state()
        if base is not None and base != state.get("base"):
            state["base"] = base
            self._write_state(state)

    clips_dir = property(lambda self: self.root / "clips")
    thumbnails_dir = property(lambda self: self.root / "thumbnails")
    models_dir = property(lambda self: self.root / "models")
    runs_dir = property(lambda self: self.root / "runs")
    downloads_dir = property(lambda self: self.root / "downloads")

    # --- state ----------------------------------------------------------------------------------
    def read_state(self) -> dict[str, Any]:
        """teach.json: ``{"version", "base", "model"}`` (``model``: the run now served, or None)."""
        path = self.root / PROJECT_FILE
        if not path.is_file():
            return {"version": PROJECT_VERSION, "base": None, "model": None}
        state = json.loads(path.read_text(encoding="utf-8"))
        if state.get("version", 0) > PROJECT_VERSION:
            raise ValueError(f"{path} is of a newer tsm (version {state['version']}): upgrade tsm")
        return state

    def _write_state(self, state: dict[str, Any]) -> None:
        atomic_write_text(self.root / PROJECT_FILE, json.dumps(state, indent=1) + "\n")

    @property
    def base(self) -> str | None:
        """The base model the project was started from (a checkpoint path or published name)."""
        return self.read_state().get("base")

    def served_model_path(self) -> Path | None:
        """The checkpoint of the run the project serves, if a run succeeded."""
        run = self.read_state().get("model")
        path = self.models_dir / f"{run}.safetensors" if run else None
        return path if path is not None and path.is_file() else None

    def set_served_run(self, run: str) -> None:
        with self._lock:
            self._write_state({**self.read_state(), "model": run})

    def write_fit_config(self, model: ModelConfig, data: DataConfig, start: str) -> Path:
        """fit.yaml: ``tsm fit --config DIR/fit.yaml`` fine-tunes the whole network on the clips,
        from ``start`` (a checkpoint or published name; a classifier of another size is replaced),
        with the architecture ``model`` and the pipeline ``data`` (flips off: they swap left and
        right)."""
        architecture = {k: v for k, v in model.to_dict().items() if k not in ("num_classes", "num_segments")}
        config = {
            "model": {"model": architecture, "init": {"finetune_from": start}},
            "data": {
                "train": str(self.clips_dir.resolve()),
                "num_segments": model.num_segments,
                "data_config": data.replace(flip=False, flip_label_map=None).to_dict(),
                "batch_size": 8,
            },
            "trainer": {"max_epochs": 10},
        }
        heading = f"# tsm fit --config {self.root / 'fit.yaml'}: all layers, on the clips of this project\n"
        return atomic_write_text(self.root / "fit.yaml", heading + yaml.safe_dump(config, sort_keys=False))

    # --- clips ----------------------------------------------------------------------------------
    def _describe(self, path: Path, label: str) -> Clip | None:
        try:
            stat = path.stat()
            key = (str(path), stat.st_size, stat.st_mtime_ns)
            if key not in self._probed:
                info = probe(path)
                self._probed[key] = (info.num_frames, info.duration, info.width, info.height)
        except (OSError, RuntimeError):  # removed meanwhile, or not a readable video: not a clip
            return None
        frames, seconds, width, height = self._probed[key]
        return Clip(path.stem, label, path, frames, round(seconds, 2), width, height)

    def clips(self) -> list[Clip]:
        """The readable clips, by class name then file name (the order of ``tsm fit``'s dataset)."""
        with self._lock:
            found = []
            for folder in sorted(p for p in self.clips_dir.iterdir() if p.is_dir()):
                for path in sorted(folder.iterdir()):
                    if path.suffix.lower() in VIDEO_EXTENSIONS:
                        clip = self._describe(path, folder.name)
                        found += [clip] if clip is not None else []
            return found

    def disk_bytes(self) -> int:
        """Bytes of every file in the project."""
        return sum(path.stat().st_size for path in self.root.rglob("*") if path.is_file())

    def _check_room(self, label: str) -> None:
        clips = self.clips()
        limits = self.limits
        if len(clips) >= limits.max_clips:
            raise ValueError(f"the project has {len(clips)} clips, the limit: delete some first")
        labels = {clip.label for clip in clips}
        if label not in labels and len(labels) >= limits.max_classes:
            raise ValueError(f"the project has {limits.max_classes} classes, the limit: delete one first")
        if self.disk_bytes() >= limits.max_disk_mb * MIB:
            raise ValueError(f"the project uses its {limits.max_disk_mb} MB of disk: delete clips or runs")

    def add_clip(self, label: str, video: Path, short_side: int | None) -> Clip:
        """Make ``video`` a clip of class ``label`` (H.264 at ``short_side``, the pipeline's resize);
        a video that cannot be one raises :class:`ClipRefused` and leaves nothing behind."""
        label = check_label(label)
        self._check_room(label)
        limits = self.limits
        clip = read_clip(video, short_side, limits.fps, limits.max_clip_seconds)
        if len(clip.frames) < 2:
            raise ClipRefused("the video has a single frame: record at least a moment of movement")
        with self._lock:
            self._check_room(label)
            clip_id = secrets.token_hex(4)
            while any(existing.id == clip_id for existing in self.clips()):
                clip_id = secrets.token_hex(4)
            write_thumbnail(clip, self.thumbnails_dir / f"{clip_id}.jpg")
            destination = self.clips_dir / label / f"{clip_id}.mp4"
            try:
                write_clip(clip, destination)
            except Exception:
                (self.thumbnails_dir / f"{clip_id}.jpg").unlink(missing_ok=True)
                self._remove_if_empty(destination.parent)
                raise
            return self._describe(destination, label)

    def find_clip(self, clip_id: str) -> Clip | None:
        """The clip with this id, if any (ids are looked up, never used as paths)."""
        if not _CLIP_ID.fullmatch(clip_id or ""):
            return None
        return next((clip for clip in self.clips() if clip.id == clip_id), None)

    def thumbnail(self, clip: Clip) -> Path | None:
        path = self.thumbnails_dir / f"{clip.id}.jpg"
        return path if path.is_file() else None

    def delete_clip(self, clip: Clip) -> None:
        """Remove the clip, its thumbnail, and its class folder when it was the last one."""
        with self._lock:
            clip.path.unlink(missing_ok=True)
            (self.thumbnails_dir / f"{clip.id}.jpg").unlink(missing_ok=True)
            self._remove_if_empty(clip.path.parent)

    def _remove_if_empty(self, folder: Path) -> None:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # an empty class folder would be a class without clips for tsm fit

    # --- runs -----------------------------------------------------------------------------------
    def new_run_id(self) -> str:
        """A run name that sorts by time: ``run-NNN``."""
        numbers = [int(p.stem[4:]) for p in self.runs_dir.glob("run-*.json") if p.stem[4:].isdigit()]
        return f"run-{max(numbers, default=0) + 1:03d}"

    def write_run_log(self, run: str, log: dict[str, Any]) -> Path:
        return atomic_write_text(self.runs_dir / f"{run}.json", json.dumps(log, indent=1) + "\n")

    def model_path(self, run: str) -> Path:
        """Where the checkpoint of ``run`` (``run-NNN``; anything else is a ValueError) is."""
        if not _RUN.fullmatch(run):
            raise ValueError(f"{run[:40]!r} is not a run's name (run-001, run-002, ...)")
        return self.models_dir / f"{run}.safetensors"

    def downloads(self, run: str) -> Path:
        """The folder of ``run``'s downloads (made when missing)."""
        folder = self.downloads_dir / self.model_path(run).stem
        folder.mkdir(parents=True, exist_ok=True)
        return folder
