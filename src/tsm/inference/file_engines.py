"""Engines of exported files, whatever runtime loaded them: the file's tsm metadata says what it
is (kind, classes, frames, frame size, precision), the runtime's :class:`Runner` runs it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from tsm.export import read_export_metadata
from tsm.inference.engine_api import Runner
from tsm.models import ModelKind


class _FileEngine:
    """What both file engines share: the file, its metadata, and a runner checked against it."""

    kind: ModelKind = "clip"

    def __init__(self, path: Path, runtime: str, runner: Runner, device: torch.device) -> None:
        self.path = path
        self.name = runtime
        self.metadata = read_export_metadata(path)
        self.runner = runner
        self.device = device
        self.num_classes: int = self.metadata["num_classes"]
        self.num_segments: int = self.metadata["num_segments"]
        self.frame_size: tuple[int, int] | None = tuple(self.metadata["frame_size"])
        self.precision = "int8" if self.metadata.get("int8") else "fp32"
        self.reason = f"{runner.description}, {self.precision}, {path}"

    def _run(self, inputs: Sequence[Tensor]) -> list[Tensor]:
        return [output.to(self.device) for output in self.runner.run(inputs)]

    def _check_frame_size(self, shape: Sequence[int], what: str) -> None:
        height, width = self.frame_size
        if tuple(shape) != (3, height, width):
            raise ValueError(
                f"{self.path} takes {what} of 3x{height}x{width}, got {'x'.join(map(str, shape))}; "
                "resize the frames, or export the model at that size"
            )


class FileStreamingEngine(_FileEngine):
    """A ``tsm export --streaming`` file: ``engine(frames, *caches) -> (logits, *new_caches)``,
    any batch size at every call."""

    kind: ModelKind = "stream"

    def __init__(self, path: Path, runtime: str, runner: Runner, device: torch.device) -> None:
        super().__init__(path, runtime, runner, device)
        self.num_caches = len(self.metadata["inputs"]) - 1
        shapes = self.metadata.get("input_shapes") or runner.input_shapes  # older files: the runtime's
        self._cache_shapes = [tuple(shape[1:]) for shape in shapes[1:]]

    def cache_shapes(self, frame_shape: Sequence[int]) -> list[tuple[int, ...]]:
        """Shapes of the caches for frames of ``frame_shape`` (B, 3, H, W)."""
        self._check_frame_size(frame_shape[1:], "frames")
        return [(frame_shape[0], *shape) for shape in self._cache_shapes]

    def __call__(self, frames: Tensor, *caches: Tensor) -> tuple[Tensor, ...]:
        """One frame per stream; no ``caches`` means new streams (all caches zero)."""
        if frames.dim() != 4:
            raise ValueError(f"frames must be shaped (B, 3, H, W), got {tuple(frames.shape)}")
        self._check_frame_size(frames.shape[1:], "frames")
        if not caches:
            caches = tuple(torch.zeros(shape) for shape in self.cache_shapes(frames.shape))
        elif len(caches) != self.num_caches:
            raise ValueError(f"expected {self.num_caches} caches (one per shifted layer), got {len(caches)}")
        return tuple(self._run([frames, *caches]))


class FileClipEngine(_FileEngine):
    """A ``tsm export`` clip file: ``engine(clips (N, T, 3, H, W)) -> logits (N, K)``."""

    kind: ModelKind = "clip"

    def __call__(self, clips: Tensor) -> Tensor:
        if clips.dim() != 5 or clips.shape[1] != self.num_segments:
            raise ValueError(
                f"{self.path} takes clips (N, {self.num_segments}, 3, H, W), got {tuple(clips.shape)}"
            )
        self._check_frame_size(clips.shape[2:], "clip frames")
        return self._run([clips])[0]


def file_engine(
    path: Path, runtime: str, open_runner: Callable[[], Runner], device: torch.device
) -> _FileEngine:
    """The engine of an exported file, of the kind its metadata records (read first: a file that is
    not a tsm export is refused before the runtime loads it); a file whose graph does not match its
    metadata is refused."""
    metadata = read_export_metadata(path)
    runner = open_runner()
    engine_type = FileStreamingEngine if metadata["tsm_export"] == "stream" else FileClipEngine
    named = (metadata["inputs"], metadata["outputs"])
    found = (runner.input_names, runner.output_names)
    counts = {len(named[0]), *((len(runner.input_shapes),) if runner.input_shapes is not None else ())}
    if len(counts) > 1 or any(
        names is not None and names != expected for names, expected in zip(found, named, strict=True)
    ):
        raise ValueError(
            f"{path}: the graph's inputs and outputs {found[0]} -> {found[1]} are not those its tsm "
            f"metadata names ({named[0]} -> {named[1]}): the metadata belongs to another model; "
            "export it again"
        )
    return engine_type(path, runtime, runner, device)
